"""A timeline PNG of a load run, drawn with Pillow (no plotting library needed).

Three stacked panels share the time axis (seconds since the start):

(a) requests a second by answering model (stacked bars; unanswered requests, i.e. 5xx, 429,
    connection errors and timeouts, in red; requests skipped at the concurrency cap in grey),
(b) the primary's failure rate (a line; a sample without a value leaves a gap) with the
    rollback threshold as a dashed line,
(c) the mode over time (a step plot over the levels primary, previous, stable, emergency).

Events (label, t) are vertical dashed lines through all panels, labelled above panel (a).
Panels (b) and (c) can show another fraction and another state (`Panels`: for example a canary's
weight and its rollout phase); the default is the failure rate and the mode.
Every time (records, samples, events) is epoch seconds, as time.time() gives it.

CLI::

    python -m pizza_load.timeline records.jsonl samples.jsonl out.png \\
        [--title T] [--threshold 0.5] [--event "fault injected=1764692410.5"]...

records.jsonl is what `LoadGenerator` writes (see pizza_load.loadgen). samples.jsonl has
one JSON object a line, of three kinds::

    {"t": 1764692401.0, "failure_rate": 0.12, "mode": "primary"}   # a sample; either may be null
    {"t": 1764692410.5, "event": "fault injected"}                  # an event
    {"threshold": 0.5}                                              # the threshold line

`write_samples` writes that file.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

from pizza_load.loadgen import Record, read_records

MODE_LEVELS = ("primary", "previous", "stable", "emergency")
"""Top to bottom in panel (c); other modes are added below them."""

WIDTH = 1400
LEFT = 90
RIGHT = 210
TITLE_H = 44
EVENT_ROW_H = 18
PANEL_H = (300, 200, 150)
PANEL_GAP = 34
BOTTOM = 56

BACKGROUND = (255, 255, 255)
AXIS = (60, 60, 60)
GRID = (228, 228, 228)
TEXT = (20, 20, 20)
MUTED = (110, 110, 110)
RED = (214, 39, 40)
SKIP_GREY = (190, 190, 190)
EVENT_COLOR = (90, 90, 160)
MODEL_COLORS = (
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (148, 103, 189),
    (140, 86, 75),
    (23, 190, 207),
    (188, 189, 34),
    (227, 119, 194),
)
MODE_COLORS = {
    "primary": (44, 160, 44),
    "previous": (31, 119, 180),
    "stable": (255, 127, 14),
    "emergency": RED,
}

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Color = tuple[int, int, int]


@dataclass(frozen=True)
class Panels:
    """What panels (b) and (c) show: the samples' fraction (`Sample.failure_rate`, 0..1) and
    state (`Sample.mode`), their titles, the state's levels top to bottom and their colours."""

    fraction_title: str = "primary failure rate"
    fraction_legend: str = "failure rate"
    state_title: str = "mode"
    levels: tuple[str, ...] = MODE_LEVELS
    colors: tuple[tuple[str, Color], ...] = tuple(MODE_COLORS.items())


@dataclass(frozen=True)
class Sample:
    """What was observed at `t`: the primary's failure rate (0..1) and the mode; None = unknown."""

    t: float
    failure_rate: float | None = None
    mode: str | None = None


def write_samples(
    path: Path,
    samples: Iterable[Sample],
    events: Iterable[tuple[str, float]] = (),
    threshold: float | None = None,
) -> Path:
    lines = [
        json.dumps({"t": s.t, "failure_rate": s.failure_rate, "mode": s.mode}) for s in samples
    ]
    lines += [json.dumps({"t": t, "event": label}) for label, t in events]
    if threshold is not None:
        lines.append(json.dumps({"threshold": threshold}))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(line + "\n" for line in lines))
    return path


def read_samples(path: Path) -> tuple[list[Sample], list[tuple[str, float]], float | None]:
    """(samples, events, threshold) of a samples.jsonl."""
    samples: list[Sample] = []
    events: list[tuple[str, float]] = []
    threshold: float | None = None
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        data = json.loads(line)
        if not isinstance(data, dict):
            raise ValueError(f"{path}:{number}: expected a JSON object")
        if "threshold" in data and "t" not in data:
            threshold = None if data["threshold"] is None else float(data["threshold"])
        elif "event" in data:
            events.append((str(data["event"]), float(data["t"])))
        else:
            rate = data.get("failure_rate")
            mode = data.get("mode")
            samples.append(
                Sample(
                    float(data["t"]),
                    None if rate is None else float(rate),
                    None if mode is None else str(mode),
                )
            )
    return samples, events, threshold


# --- drawing helpers -----------------------------------------------------------------------------


def _font(size: int) -> Font:
    return ImageFont.load_default(size=size)


def nice_step(span: float, target: int) -> float:
    """A 1-2-5 step giving about `target` intervals over `span`."""
    if span <= 0:
        return 1.0
    raw = span / max(target, 1)
    magnitude = 10 ** math.floor(math.log10(raw))
    for factor in (1, 2, 5, 10):
        if raw <= factor * magnitude:
            return float(factor * magnitude)
    return float(10 * magnitude)


def ticks(lo: float, hi: float, target: int = 8) -> list[float]:
    step = nice_step(hi - lo, target)
    first = math.ceil(lo / step - 1e-9) * step
    count = math.floor((hi - first) / step + 1e-9) + 1
    return [round(first + i * step, 10) for i in range(max(count, 0))]


def _label(value: float) -> str:
    return f"{value:g}" if abs(value) < 1e5 else f"{value:.3g}"


def _dashed(
    draw: ImageDraw.ImageDraw,
    start: tuple[float, float],
    end: tuple[float, float],
    fill: Color,
    *,
    width: int = 1,
    dash: float = 7.0,
    gap: float = 5.0,
) -> None:
    (x0, y0), (x1, y1) = start, end
    length = math.hypot(x1 - x0, y1 - y0)
    if length == 0:
        return
    dx, dy = (x1 - x0) / length, (y1 - y0) / length
    position = 0.0
    while position < length:
        stop = min(position + dash, length)
        draw.line(
            (x0 + dx * position, y0 + dy * position, x0 + dx * stop, y0 + dy * stop),
            fill=fill,
            width=width,
        )
        position = stop + gap


def _text_size(draw: ImageDraw.ImageDraw, text: str, font: Font) -> tuple[float, float]:
    box = draw.textbbox((0, 0), text, font=font)
    return box[2] - box[0], box[3] - box[1]


@dataclass(frozen=True)
class _Panel:
    top: float
    bottom: float
    left: float
    right: float
    t_max: float
    y_max: float

    def x(self, t: float) -> float:
        return self.left + (self.right - self.left) * (t / self.t_max if self.t_max else 0.0)

    def y(self, value: float) -> float:
        fraction = value / self.y_max if self.y_max else 0.0
        return self.bottom - (self.bottom - self.top) * min(max(fraction, 0.0), 1.0)


@dataclass(frozen=True)
class _Canvas:
    """What every panel shares: where to draw, the font and the time axis."""

    draw: ImageDraw.ImageDraw
    font: Font
    t0: float
    t_max: float
    x_ticks: Sequence[float]

    def panel(self, box: tuple[float, float], y_max: float) -> _Panel:
        return _Panel(box[0], box[1], LEFT, WIDTH - RIGHT, self.t_max, y_max)


def _frame(
    canvas: _Canvas,
    panel: _Panel,
    y_ticks: Sequence[tuple[float, str]],
    y_title: str,
    *,
    x_labels: bool,
) -> None:
    draw, font = canvas.draw, canvas.font
    for t in canvas.x_ticks:
        x = panel.x(t)
        draw.line((x, panel.top, x, panel.bottom), fill=GRID)
        draw.line((x, panel.bottom, x, panel.bottom + 5), fill=AXIS)
        if x_labels:
            text = _label(t)
            w, _ = _text_size(draw, text, font)
            draw.text((x - w / 2, panel.bottom + 8), text, fill=TEXT, font=font)
    for value, text in y_ticks:
        y = panel.y(value)
        draw.line((panel.left, y, panel.right, y), fill=GRID)
        draw.line((panel.left - 5, y, panel.left, y), fill=AXIS)
        w, h = _text_size(draw, text, font)
        draw.text((panel.left - 9 - w, y - h / 2 - 2), text, fill=TEXT, font=font)
    draw.rectangle((panel.left, panel.top, panel.right, panel.bottom), outline=AXIS)
    draw.text((panel.left + 6, panel.top + 4), y_title, fill=MUTED, font=font)


def _legend(canvas: _Canvas, panel: _Panel, items: Sequence[tuple[str, Color, str]]) -> None:
    """items: (label, color, style) with style "box", "line", "dash" or "none"."""
    draw, font = canvas.draw, canvas.font
    x, y = panel.right + 14, panel.top + 4
    for label, color, style in items:
        if style == "box":
            draw.rectangle((x, y + 3, x + 12, y + 15), fill=color)
        elif style == "dash":
            _dashed(draw, (x, y + 9), (x + 22, y + 9), color, width=2, dash=5, gap=3)
        elif style == "line":
            draw.line((x, y + 9, x + 22, y + 9), fill=color, width=3)
        draw.text((x + 28, y + 1), label, fill=TEXT, font=font)
        y += 20


# --- the panels ----------------------------------------------------------------------------------


def _bin_width(span: float) -> float:
    for width in (1.0, 2.0, 5.0, 10.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0):
        if span / width <= 180:
            return width
    return nice_step(span, 180)


def _requests_panel(canvas: _Canvas, box: tuple[float, float], records: Sequence[Record]) -> None:
    draw, t0, t_max = canvas.draw, canvas.t0, canvas.t_max
    width = _bin_width(t_max)
    bins = max(1, math.ceil(t_max / width))
    models = sorted(
        {r.model_used or "?" for r in records if r.answered},
        key=lambda m: (-sum(1 for r in records if r.answered and (r.model_used or "?") == m), m),
    )
    series = [*models, "unanswered", "skipped"]
    counts = {name: [0] * bins for name in series}
    for r in records:
        index = min(bins - 1, max(0, int((r.t - t0) / width)))
        if r.answered:
            counts[r.model_used or "?"][index] += 1
        elif r.sent:
            counts["unanswered"][index] += 1
        else:
            counts["skipped"][index] += 1
    # the last bin may be shorter: a rate over its real span (unless under half a bin)
    spans = [min((i + 1) * width, t_max) - i * width for i in range(bins)]
    spans = [span if span >= width / 2 else width for span in spans]
    totals = [sum(counts[name][i] for name in series) / spans[i] for i in range(bins)]
    peak = max(totals, default=0.0) or 1.0
    step = nice_step(peak, 5)
    y_max = math.ceil(peak * 1.08 / step) * step
    panel = canvas.panel(box, y_max)
    y_ticks = [(v, _label(v)) for v in ticks(0, y_max, 5)]
    title = f"requests/s by answering model (bins of {width:g} s)"
    _frame(canvas, panel, y_ticks, title, x_labels=False)
    colors: dict[str, Color] = {
        m: MODEL_COLORS[i % len(MODEL_COLORS)] for i, m in enumerate(models)
    }
    colors["unanswered"], colors["skipped"] = RED, SKIP_GREY
    for i in range(bins):
        x0 = panel.x(i * width) + 0.5
        x1 = max(x0 + 1, panel.x(min((i + 1) * width, t_max)) - 0.5)
        level = 0.0
        for name in series:
            value = counts[name][i] / spans[i]
            if value:
                draw.rectangle((x0, panel.y(level + value), x1, panel.y(level)), fill=colors[name])
                level += value
    items = [(f"{m} ({sum(counts[m])})", colors[m], "box") for m in models]
    items.append((f"unanswered ({sum(counts['unanswered'])})", RED, "box"))
    if sum(counts["skipped"]):
        items.append((f"skipped, cap ({sum(counts['skipped'])})", SKIP_GREY, "box"))
    _legend(canvas, panel, items)


def _failure_panel(
    canvas: _Canvas,
    box: tuple[float, float],
    samples: Sequence[Sample],
    threshold: float | None,
    panels: Panels,
) -> None:
    draw, t0 = canvas.draw, canvas.t0
    values = [s.failure_rate for s in samples if s.failure_rate is not None]
    top = max([*values, threshold or 0.0, 0.0])
    if top > 0:
        step = nice_step(top * 1.15, 4)
        y_max = min(1.0, math.ceil(top * 1.15 / step) * step)
    else:
        y_max = 0.1
    panel = canvas.panel(box, y_max)
    y_ticks = [(v, f"{v * 100:g}%") for v in ticks(0, y_max, 4)]
    _frame(canvas, panel, y_ticks, panels.fraction_title, x_labels=False)
    line = (31, 119, 180)
    run: list[tuple[float, float]] = []

    def flush() -> None:
        if len(run) > 1:
            draw.line(run, fill=line, width=2, joint="curve")
        for x, y in run if len(run) == 1 else ():
            draw.ellipse((x - 2.5, y - 2.5, x + 2.5, y + 2.5), fill=line)
        run.clear()

    for s in sorted(samples, key=lambda s: s.t):
        if s.failure_rate is None:
            flush()
        else:
            run.append((panel.x(s.t - t0), panel.y(s.failure_rate)))
    flush()
    items = [(panels.fraction_legend, line, "line")]
    if threshold is not None:
        y = panel.y(threshold)
        _dashed(draw, (panel.left, y), (panel.right, y), RED, width=2)
        items.append((f"threshold {threshold * 100:g}%", RED, "dash"))
    if any(s.failure_rate is None for s in samples):
        items.append(("gap: no value", MUTED, "none"))
    _legend(canvas, panel, items)


def _mode_panel(
    canvas: _Canvas, box: tuple[float, float], samples: Sequence[Sample], panels: Panels
) -> None:
    draw, t0, t_max = canvas.draw, canvas.t0, canvas.t_max
    seen = [s.mode for s in samples if s.mode is not None]
    levels = [*panels.levels, *sorted({m for m in seen if m not in panels.levels})]
    colors = dict(panels.colors)
    n = len(levels)
    panel = canvas.panel(box, float(n))

    def level_y(mode: str) -> float:
        return panel.y(n - levels.index(mode) - 0.5)

    y_ticks = [(n - i - 0.5, name) for i, name in enumerate(levels)]
    _frame(canvas, panel, y_ticks, "", x_labels=True)
    ordered = sorted(samples, key=lambda s: s.t)
    previous: tuple[float, float] | None = None
    for i, s in enumerate(ordered):
        if s.mode is None:
            previous = None
            continue
        x0 = panel.x(s.t - t0)
        x1 = panel.x(ordered[i + 1].t - t0) if i + 1 < len(ordered) else panel.x(t_max)
        y = level_y(s.mode)
        color = colors.get(s.mode, MUTED)
        if previous is not None and previous[1] != y:
            draw.line((x0, previous[1], x0, y), fill=AXIS, width=1)
        draw.line((x0, y, max(x1, x0 + 1), y), fill=color, width=4)
        previous = (x1, y)
    _legend(canvas, panel, [(panels.state_title, MUTED, "none")])


def draw_timeline(
    records: Sequence[Record],
    samples: Sequence[Sample],
    out_png: Path,
    title: str,
    events: Iterable[tuple[str, float]] = (),
    *,
    threshold: float | None = None,
    t0: float | None = None,
    panels: Panels = Panels(),
) -> Path:
    """Draws the three panels into `out_png`; times are epoch seconds, shown as seconds since
    `t0` (default: the earliest record, sample or event); `panels` names what (b) and (c) show."""
    event_list = sorted(((label, t) for label, t in events), key=lambda e: e[1])
    times = [r.t for r in records] + [s.t for s in samples] + [t for _, t in event_list]
    if not times:
        raise ValueError("nothing to draw: no records, samples or events")
    start = min(times) if t0 is None else t0
    ends = [r.t + (r.latency_s or 0.0) for r in records] + [s.t for s in samples]
    ends += [t for _, t in event_list]
    t_max = max(max(ends) - start, 1.0)
    x_ticks = ticks(0, t_max, 10)

    font, title_font = _font(13), _font(18)
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    rows = _event_rows(probe, event_list, start, t_max, font)
    event_band = (max(rows, default=-1) + 1) * EVENT_ROW_H + (6 if rows else 0)
    height = TITLE_H + event_band + sum(PANEL_H) + PANEL_GAP * (len(PANEL_H) - 1) + BOTTOM
    image = Image.new("RGB", (WIDTH, height), BACKGROUND)
    draw = ImageDraw.Draw(image)
    draw.text((LEFT, 12), title, fill=TEXT, font=title_font)

    top = TITLE_H + event_band
    boxes: list[tuple[float, float]] = []
    for panel_height in PANEL_H:
        boxes.append((top, top + panel_height))
        top += panel_height + PANEL_GAP
    canvas = _Canvas(draw, font, start, t_max, x_ticks)
    _requests_panel(canvas, boxes[0], records)
    _failure_panel(canvas, boxes[1], samples, threshold, panels)
    _mode_panel(canvas, boxes[2], samples, panels)

    label = "seconds since start"
    w, _ = _text_size(draw, label, font)
    plot_right = WIDTH - RIGHT
    draw.text(((LEFT + plot_right - w) / 2, boxes[2][1] + 30), label, fill=TEXT, font=font)

    scale = _Panel(0, 0, LEFT, plot_right, t_max, 1.0)
    for (text, t), row in zip(event_list, rows, strict=True):
        x = scale.x(t - start)
        label_y = TITLE_H + row * EVENT_ROW_H
        _dashed(draw, (x, label_y + EVENT_ROW_H - 2), (x, boxes[2][1]), EVENT_COLOR, width=2)
        draw.text((x + 4, label_y), f"{text} ({t - start:.1f} s)", fill=EVENT_COLOR, font=font)

    out_png.parent.mkdir(parents=True, exist_ok=True)
    image.save(out_png, format="PNG", optimize=True)
    return out_png


def _event_rows(
    draw: ImageDraw.ImageDraw,
    events: Sequence[tuple[str, float]],
    start: float,
    t_max: float,
    font: Font,
) -> list[int]:
    """A text row for each event label, so that labels do not overlap."""
    scale = _Panel(0, 0, LEFT, WIDTH - RIGHT, t_max, 1.0)
    row_ends: list[float] = []
    rows: list[int] = []
    for text, t in events:
        x = scale.x(t - start)
        w, _ = _text_size(draw, f"{text} ({t - start:.1f} s)", font)
        for row, end in enumerate(row_ends):
            if x > end + 8:
                row_ends[row] = x + 4 + w
                rows.append(row)
                break
        else:
            row_ends.append(x + 4 + w)
            rows.append(len(row_ends) - 1)
    return rows


def _event_arg(text: str) -> tuple[str, float]:
    label, sep, t = text.rpartition("=")
    if not sep or not label:
        raise argparse.ArgumentTypeError(f"expected LABEL=EPOCH_SECONDS, got {text!r}")
    return label, float(t)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pizza_load.timeline", description="Draw a load run's timeline PNG."
    )
    parser.add_argument("records", type=Path, help="records.jsonl (LoadGenerator)")
    parser.add_argument("samples", type=Path, help="samples.jsonl (samples, events, threshold)")
    parser.add_argument("out", type=Path, help="the PNG to write")
    parser.add_argument("--title", default="pizza router under load")
    parser.add_argument("--threshold", type=float, default=None, help="overrides samples.jsonl")
    parser.add_argument("--event", type=_event_arg, action="append", default=[])
    args = parser.parse_args(argv)
    records = read_records(args.records)
    samples, events, threshold = read_samples(args.samples)
    if args.threshold is not None:
        threshold = args.threshold
    out = draw_timeline(
        records, samples, args.out, args.title, [*events, *args.event], threshold=threshold
    )
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
