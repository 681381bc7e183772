"""The text screens: status, list and history, coloured (ANSI) only for a terminal."""

from __future__ import annotations

import datetime
from collections.abc import Mapping, Sequence
from typing import Any

from pizza_operator.kubectl_pizza.view import ANALYSED, age, moment

CODES = {"red": "31", "green": "32", "yellow": "33", "bold": "1", "dim": "2"}
MODE_COLOURS = {"primary": "green", "previous": "yellow", "stable": "yellow", "emergency": "red"}
VERDICT_COLOURS = {"Healthy": "green", "Failed": "red", "Inconclusive": "yellow"}
READY_COLOURS = {"True": "green", "False": "red", "Unknown": "yellow"}
OUTCOME_COLOURS = {"Good": "green", "Failed": "red", "Pending": "yellow"}


class Style:
    """Wraps text in ANSI codes when enabled; plain text otherwise."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled

    def __call__(self, text: str, colour: str | None) -> str:
        if not self.enabled or not colour:
            return text
        return f"\x1b[{CODES[colour]}m{text}\x1b[0m"


PLAIN = Style(False)


def number(value: float | None) -> str:
    if value is None:
        return "-"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.4g}"


def percent(value: float | None) -> str:
    return "-" if value is None else f"{value * 100:.1f}%"


def when(text: str | None, now: datetime.datetime) -> str:
    return f"{text} ({age(text, now)} ago)" if text else "-"


def table(rows: Sequence[Sequence[str]], indent: str = "") -> list[str]:
    """Left-aligned columns, two spaces apart (widths from the plain text, ANSI not counted)."""
    widths = [max(len(_strip(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = []
    for row in rows:
        cells = [cell + " " * (widths[i] - len(_strip(cell))) for i, cell in enumerate(row)]
        lines.append((indent + "  ".join(cells)).rstrip())
    return lines


def _strip(text: str) -> str:
    while "\x1b[" in text:
        start = text.index("\x1b[")
        end = text.index("m", start)
        text = text[:start] + text[end + 1 :]
    return text


def _nodes(component: Mapping[str, Any]) -> str:
    parts = []
    for node in component.get("nodes") or []:
        count = f" x{node['pods']}" if node.get("pods", 1) > 1 else ""
        parts.append(f"{node['name']} ({node['type']}){count}")
    if component.get("pending"):
        parts.append(f"{component['pending']} pending")
    return ", ".join(parts) or "-"


def _signal_lines(check: Mapping[str, Any], style: Style) -> list[str]:
    rows = []
    for sig in check.get("signals") or []:
        limit = "" if sig["threshold"] is None else f"{sig['op']} {number(sig['threshold'])}"
        if sig.get("skipped"):
            mark = sig["skipped"]
        elif sig["ok"] is None:
            mark = "no data" if sig["threshold"] is not None and sig["value"] is None else ""
        elif sig["ok"]:
            mark = style("ok", "green")
        elif sig["signal"] == "requests":
            mark = style("too few", "yellow")  # too little traffic: no verdict, not a failure
        else:
            mark = style("FAIL", "red")
        rows.append([sig["signal"], number(sig["value"]), limit, mark])
    return table(rows, indent="    ") if rows else []


def _head(view: Mapping[str, Any], style: Style) -> list[str]:
    mode = view["mode"]
    ready = view["ready"]
    head = (
        f"{style('PizzaModelDeployment', 'bold')} {view['namespace']}/{view['name']}"
        f"   mode: {style(mode, MODE_COLOURS.get(mode))}"
        f"   Ready: {style(str(ready['status']), READY_COLOURS.get(str(ready['status'])))}"
    )
    if ready.get("reason"):
        head += f" ({ready['reason']})"
    if view.get("paused"):
        head += "   " + style("PAUSED", "yellow")
    lines = [head]
    if ready.get("message"):
        lines.append(f"  {ready['message']}")
    lines.append(
        f"Revision: current {view.get('currentRevision') or '-'}"
        f", serving {view.get('servingRevision') or '-'}"
        f"   generation {number(view.get('generation'))}"
        f" (observed {number(view.get('observedGeneration'))})"
        f"   error rate {percent(view.get('errorRate'))}"
    )
    return lines


def _components(view: Mapping[str, Any], style: Style) -> list[str]:
    rows = [["COMPONENT", "READY", "NODES"]]
    for name, component in view["components"].items():
        summary = component["summary"]
        colour = "green" if component["readyReplicas"] >= component["replicas"] else "yellow"
        if component["replicas"] and not component["readyReplicas"]:
            colour = "red"
        rows.append([name, style(summary, colour), _nodes(component)])
    return table(rows)


def _check(
    component: str, check: Mapping[str, Any] | None, now: datetime.datetime, style: Style
) -> list[str]:
    if not check:
        return [f"  {component}: no check yet"]
    verdict = str(check.get("verdict"))
    text = (
        f"  {component:<10}{style(verdict, VERDICT_COLOURS.get(verdict))}"
        f"   {check['consecutiveFailures']} consecutive failures"
        f"   checked {age(check.get('time'), now)} ago"
    )
    if check.get("healthySince"):
        text += f"   healthy since {check['healthySince']}"
    lines = [text]
    if check.get("reasons"):
        lines.append(f"    reasons: {', '.join(check['reasons'])}")
    return lines + _signal_lines(check, style)


def _analysis(
    analysis: Mapping[str, Any] | None, now: datetime.datetime, style: Style
) -> list[str]:
    if not analysis:
        return ["Analysis: none yet"]
    head = (
        f"Analysis ({analysis['source'] or '-'}, {analysis['checks']} checks,"
        f" {analysis['inconclusive']} inconclusive)"
    )
    if analysis.get("clientRequests") is not None:
        head += (
            f"   client errors {percent(analysis.get('clientErrorRate'))}"
            f" of {number(analysis['clientRequests'])} requests"
        )
    lines = [head]
    reasons = analysis.get("fallbackReasons") or {}
    if reasons:
        listed = ", ".join(f"{k} {number(v)}" for k, v in sorted(reasons.items()))
        lines.append(f"  fallbacks by reason: {listed}")
    for component in ANALYSED:
        lines += _check(component, analysis.get(component), now, style)
    return lines


def _autoscaling(
    autoscaling: Mapping[str, Any] | None, now: datetime.datetime, style: Style
) -> list[str]:
    """The autoscaler's decisions: wanted, why, when (and an asleep primary)."""
    if not autoscaling:
        return []
    rows = []
    for component in ("primary", "fallback"):
        scaled = autoscaling.get(component)
        if not scaled:
            continue
        wanted = str(scaled.get("wanted", "?"))
        if scaled.get("asleep"):
            wanted = style(f"{wanted} (asleep)", "yellow")
        flight = scaled.get("inFlight")
        rows.append(
            [
                component,
                wanted,
                f"in flight {number(flight)}" if flight is not None else "in flight -",
                when(scaled.get("time"), now),
                str(scaled.get("reason", "")),
            ]
        )
    return ["Autoscaling:", *table(rows, indent="  "), ""] if rows else []


ROLLOUT_COLOURS = {"Promoted": "green", "Aborted": "red", "Paused": "yellow"}


def _rollout(
    rollout: Mapping[str, Any] | None,
    bake_ends: str | None,
    now: datetime.datetime,
    style: Style,
) -> list[str]:
    """The canary: phase, step, weight and plan, then canary against stable side by side; a
    promoted revision's bake time while it lasts."""
    if not rollout:
        return []
    ends = moment(bake_ends)
    if ends is not None and ends > now:
        left = int((ends - now).total_seconds())
        baking = [
            f"  baking until {bake_ends} ({left}s left): one failed check goes back to "
            f"{rollout.get('stableRevision', '?')}"
        ]
    else:
        baking = []
    phase = str(rollout.get("phase", "?"))
    lines = [
        f"Rollout: {style(phase, ROLLOUT_COLOURS.get(phase))}   revision "
        f"{rollout.get('revision', '?')} (stable {rollout.get('stableRevision', '?')})   step "
        f"{int(rollout.get('step', 0)) + 1}   canary weight {rollout.get('canaryWeight', 0)}%   "
        f"plan {rollout.get('plan', '?')}   {when(rollout.get('stepStartedAt'), now)}",
        f"  {rollout.get('reason', '')}",
        *baking,
    ]
    signals = rollout.get("signals")
    if signals:
        requests = float(signals.get("canaryRequests", 0))
        failures = float(signals.get("canaryFailures", 0))
        rows = [
            ["", "canary", "stable"],
            ["failure rate", percent(failures / requests if requests else None), ""],
            ["p95", seconds(signals.get("canaryP95")), seconds(signals.get("stableP95"))],
            [
                "agreement",
                f"{percent(signals.get('agreement'))} of {number(signals.get('pairs', 0))} pairs",
                "",
            ],
            ["requests", number(requests), ""],
        ]
        lines += table(rows, indent="  ")
    return [*lines, ""]


def seconds(value: Any) -> str:
    return "-" if value is None else f"{float(value):.3f} s"


def _last_rollback(
    last: Mapping[str, Any] | None, now: datetime.datetime, style: Style
) -> list[str]:
    if not last:
        return ["Last rollback: none"]
    lines = [
        f"Last rollback #{last.get('number', '?')}: {last.get('from', '?')} -> "
        f"{style(str(last.get('to', '?')), MODE_COLOURS.get(str(last.get('to'))))}"
        f"   reason {last.get('reason', '')}   {when(last.get('time'), now)}"
    ]
    if last.get("message"):
        lines.append(f"  {last['message']}")
    if last.get("revision"):
        lines.append(f"  revision {last['revision']}")
    return lines


def _events(events: Sequence[Mapping[str, Any]], now: datetime.datetime, style: Style) -> list[str]:
    if not events:
        return ["Events: none"]
    rows = []
    for event in events:
        kind = str(event["type"])
        count = f" (x{event['count']})" if event.get("count", 1) > 1 else ""
        rows.append(
            [
                age(event["time"], now),
                style(kind, "yellow" if kind == "Warning" else None),
                str(event["reason"]),
                f"{event['message']}{count}",
            ]
        )
    return [f"Events (last {len(events)}):", *table(rows, indent="  ")]


def render_status(view: Mapping[str, Any], now: datetime.datetime, style: Style = PLAIN) -> str:
    """The one screen of `kubectl pizza status`: the view of `view.status_view`."""
    lines = [
        *_head(view, style),
        "",
        *_components(view, style),
        "",
        *_analysis(view.get("analysis"), now, style),
        "",
        *_autoscaling(view.get("autoscaling"), now, style),
        *_rollout(view.get("rollout"), view.get("bakeEnds"), now, style),
        *_last_rollback(view.get("lastRollback"), now, style),
        "",
        *_events(view.get("events") or [], now, style),
    ]
    return "\n".join(lines) + "\n"


def render_list(
    rows: Sequence[Mapping[str, Any]], now: datetime.datetime, style: Style = PLAIN
) -> str:
    if not rows:
        return "No PizzaModelDeployments found.\n"
    header = ["NAMESPACE", "NAME", "MODE", "READY", "PRIMARY", "FALLBACK", "ERROR-RATE"]
    out = [[*header, "LAST-ROLLBACK"]]
    for row in rows:
        last = row.get("lastRollback")
        rollback = "-"
        if last:
            rollback = f"{last['to']} ({last['reason']}, {age(last.get('time'), now)} ago)"
        mode = str(row["mode"])
        ready = str(row["ready"])
        out.append(
            [
                row["namespace"],
                row["name"],
                style(mode, MODE_COLOURS.get(mode)),
                style(ready, READY_COLOURS.get(ready)),
                row["primary"],
                row["fallback"],
                percent(row.get("errorRate")),
                rollback,
            ]
        )
    return "\n".join(table(out)) + "\n"


def render_history(rows: Sequence[Mapping[str, Any]], style: Style = PLAIN) -> str:
    if not rows:
        return "No revisions recorded.\n"
    out = [["REVISION", "NAME", "HASH", "APPLIED-AT", "OUTCOME", "MARKERS"]]
    for row in rows:
        markers = [
            label
            for label, on in (
                ("current", row["current"]),
                ("serving", row["serving"]),
                ("known-good", row["knownGood"]),
            )
            if on
        ]
        outcome = str(row["outcome"])
        out.append(
            [
                str(row["revision"]),
                row["name"],
                row["hash"] or "-",
                row["appliedAt"] or "-",
                style(outcome, OUTCOME_COLOURS.get(outcome)),
                ", ".join(markers) or "-",
            ]
        )
    return "\n".join(table(out)) + "\n"
