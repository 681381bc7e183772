"""The elastic bench's timeline PNG (Pillow): the same trace through the always-on resource and
the autoscaled one, on one time axis.

Panels: (1) and (2) requests a second by answer (the primary; the fallback because the primary
slept, `primary_idle`; the fallback for any other reason; unanswered), always-on then elastic;
(3) ready pods of the primary and the fallback of both; (4) p99 latency per bin of both.
Phases of the trace are shaded, wake-ups are dashed lines."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont
from pizza_load.loadgen import Record
from pizza_load.timeline import nice_step, ticks
from report import PRIMARY_IDLE, Sample, percentile

WIDTH, LEFT, RIGHT, TOP, GAP, BOTTOM = 1400, 80, 250, 50, 26, 50
HEIGHTS = (190, 190, 170, 170)
BIN = 5.0
TEXT, GRID, AXIS, MUTED = (20, 20, 20), (228, 228, 228), (60, 60, 60), (110, 110, 110)
PRIMARY, FB_IDLE, FB_OTHER, RED = (31, 119, 180), (255, 127, 14), (44, 160, 44), (214, 39, 40)
ALWAYS, ELASTIC = (140, 140, 140), (31, 119, 180)
FB_ALWAYS, FB_ELASTIC = (240, 190, 140), (214, 100, 10)
SHADE, WAKE = (245, 245, 250), (90, 90, 160)
Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Color = tuple[int, ...]


class _Box:
    def __init__(self, top: float, height: float, t_max: float, y_max: float) -> None:
        self.top, self.bottom = top, top + height
        self.left, self.right = LEFT, WIDTH - RIGHT
        self.t_max, self.y_max = t_max, y_max

    def x(self, t: float) -> float:
        return self.left + (self.right - self.left) * max(0.0, min(t / self.t_max, 1.0))

    def y(self, v: float) -> float:
        return self.bottom - (self.bottom - self.top) * max(0.0, min(v / self.y_max, 1.0))


def _frame(draw: ImageDraw.ImageDraw, box: _Box, title: str, font: Font) -> None:
    for v in ticks(0, box.y_max, 4):
        y = box.y(v)
        draw.line((box.left, y, box.right, y), fill=GRID)
        draw.text((box.left - 8, y), f"{v:g}", fill=TEXT, font=font, anchor="rm")
    for t in ticks(0, box.t_max, 12):
        draw.line((box.x(t), box.top, box.x(t), box.bottom), fill=GRID)
    draw.rectangle((box.left, box.top, box.right, box.bottom), outline=AXIS)
    draw.text((box.left + 6, box.top + 4), title, fill=MUTED, font=font)


def _legend(draw: ImageDraw.ImageDraw, box: _Box, items: Sequence[tuple[str, Color]],
            font: Font) -> None:  # fmt: skip
    for i, (label, color) in enumerate(items):
        y = box.top + 6 + 20 * i
        draw.rectangle((box.right + 14, y + 3, box.right + 26, y + 15), fill=color)
        draw.text((box.right + 32, y + 1), label, fill=TEXT, font=font)


def _answer(r: Record, primary: str) -> str:
    if not r.answered:
        return "unanswered"
    if r.model_used == primary:
        return "primary"
    return "fallback, primary asleep" if r.fallback_reason == PRIMARY_IDLE else "fallback, other"


def _requests(draw: ImageDraw.ImageDraw, box: _Box, records: Sequence[Record], *, t0: float,
              primary: str, title: str, font: Font) -> None:  # fmt: skip
    bins = math.ceil(box.t_max / BIN)
    kinds = {"primary": PRIMARY, "fallback, primary asleep": FB_IDLE,
             "fallback, other": FB_OTHER, "unanswered": RED}  # fmt: skip
    counts = {k: [0] * bins for k in kinds}
    for r in records:
        if r.sent:
            counts[_answer(r, primary)][min(bins - 1, max(0, int((r.t - t0) / BIN)))] += 1
    _frame(draw, box, title, font)
    for i in range(bins):
        level = 0.0
        for kind, color in kinds.items():
            value = counts[kind][i] / BIN
            if value:
                x0, x1 = box.x(i * BIN) + 0.5, box.x((i + 1) * BIN) - 0.5
                draw.rectangle((x0, box.y(level + value), x1, box.y(level)), fill=color)
                level += value
    _legend(draw, box, [(f"{k} ({sum(v)})", kinds[k]) for k, v in counts.items()], font)


def _steps(draw: ImageDraw.ImageDraw, box: _Box, samples: Sequence[Sample], *, t0: float,
           field: str, color: Color, width: int) -> None:  # fmt: skip
    points: list[tuple[float, float]] = []
    for s in sorted(samples, key=lambda s: s.t):
        value = getattr(s, field)
        if value is None or not 0 <= s.t - t0 <= box.t_max:
            continue
        x, y = box.x(s.t - t0), box.y(value)
        if points:
            points.append((x, points[-1][1]))
        points.append((x, y))
    if len(points) > 1:
        draw.line(points, fill=color, width=width)


def draw(
    out: Path,
    title: str,
    runs: dict[str, tuple[Sequence[Record], Sequence[Sample]]],
    *,
    primary: str,
    t0: float,
    t_end: float,
    phases: Sequence[tuple[str, float, float]],
    wakes: Sequence[float],
) -> Path:
    """`runs`: "always-on" and "elastic" -> (records, samples); times are time.time()."""
    font, big = ImageFont.load_default(size=13), ImageFont.load_default(size=18)
    height = TOP + sum(HEIGHTS) + GAP * (len(HEIGHTS) - 1) + BOTTOM
    image = Image.new("RGB", (WIDTH, height), (255, 255, 255))
    d = ImageDraw.Draw(image)
    d.text((LEFT, 14), title, fill=TEXT, font=big)
    t_max = t_end - t0
    rate_peak = max(
        (sum(1 for r in recs if r.sent and int((r.t - t0) / BIN) == i) / BIN
         for recs, _ in runs.values() for i in range(math.ceil(t_max / BIN))),
        default=1.0,
    )  # fmt: skip
    step = nice_step(rate_peak * 1.1, 4)
    y_rate = math.ceil(rate_peak * 1.1 / step) * step
    pods_max = max(
        (getattr(s, f) or 0 for _, samples in runs.values() for s in samples
         for f in ("primary_ready", "fallback_ready")), default=1,
    ) + 1  # fmt: skip
    p99s: dict[str, list[tuple[float, float]]] = {}
    for name, (recs, _) in runs.items():
        series = []
        for i in range(math.ceil(t_max / BIN)):
            values = [r.latency_s for r in recs if r.answered and r.latency_s is not None
                      and int((r.t - t0) / BIN) == i]  # fmt: skip
            p = percentile(values, 99)
            if p is not None:
                series.append(((i + 0.5) * BIN, p * 1000))
        p99s[name] = series
    lat_max = max((v for s in p99s.values() for _, v in s), default=100.0)
    lat_step = nice_step(lat_max * 1.1, 4)
    boxes, top = [], float(TOP)
    for h, y_max in zip(HEIGHTS, (y_rate, y_rate, float(pods_max), lat_step * math.ceil(
            lat_max * 1.1 / lat_step)), strict=True):  # fmt: skip
        boxes.append(_Box(top, h, t_max, y_max))
        top += h + GAP
    for box in boxes:
        for label, lo, hi in phases:
            if label != "idle":
                d.rectangle((box.x(lo - t0), box.top, box.x(hi - t0), box.bottom), fill=SHADE)
    for (name, (recs, _)), box in zip(runs.items(), boxes[:2], strict=True):
        _requests(
            d, box, recs, t0=t0, primary=primary,
            title=f"{name}: requests/s by answer ({BIN:g} s bins)", font=font,
        )  # fmt: skip
    _frame(d, boxes[2], "ready pods", font)
    legend = []
    for name, (_, samples) in runs.items():
        color = ELASTIC if name == "elastic" else ALWAYS
        _steps(d, boxes[2], samples, t0=t0, field="primary_ready", color=color, width=4)
        light = FB_ELASTIC if name == "elastic" else FB_ALWAYS
        _steps(d, boxes[2], samples, t0=t0, field="fallback_ready", color=light, width=2)
        legend += [(f"{name} primary (thick)", color),
                   (f"{name} fallback", light)]  # fmt: skip
    _legend(d, boxes[2], legend, font)
    _frame(d, boxes[3], f"p99 latency per {BIN:g} s bin (ms)", font)
    for name, series in p99s.items():
        color = ELASTIC if name == "elastic" else ALWAYS
        points = [(boxes[3].x(t), boxes[3].y(v)) for t, v in series]
        for (t_a, _), (t_b, _), a, b in zip(series, series[1:], points, points[1:], strict=False):
            if t_b - t_a <= BIN * 1.5:  # adjacent bins only: no line across an idle stretch
                d.line((a, b), fill=color, width=2)
        for x, y in points:
            d.ellipse((x - 2, y - 2, x + 2, y + 2), fill=color)
    _legend(d, boxes[3], [(name, ELASTIC if name == "elastic" else ALWAYS) for name in p99s], font)
    for t in wakes:
        x = boxes[0].x(t - t0)
        for y in range(int(boxes[0].top), int(boxes[-1].bottom), 10):
            d.line((x, y, x, y + 5), fill=WAKE, width=1)
    for label, lo, _ in phases:
        d.text((boxes[0].x(lo - t0) + 2, boxes[0].top - 16), label, fill=MUTED, font=font)
    for t in ticks(0, t_max, 12):
        d.text((boxes[-1].x(t), boxes[-1].bottom + 6), f"{t:g}", fill=TEXT, font=font, anchor="mt")
    d.text(((LEFT + WIDTH - RIGHT) / 2, boxes[-1].bottom + 26),
           "seconds since the trace started (shaded: load; dashed: wake-ups)",
           fill=TEXT, font=font, anchor="mt")  # fmt: skip
    out.parent.mkdir(parents=True, exist_ok=True)
    image.save(out, format="PNG", optimize=True)
    return out
