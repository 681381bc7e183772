"""What was read, as plain data: the `-o json` output and what the text screens show."""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from pizza_operator.api.v1alpha1 import GPU_RESOURCE

COMPONENTS = ("primary", "fallback", "router")
ANALYSED = ("primary", "fallback")
COMPONENT_LABEL = "app.kubernetes.io/component"
HASH_LABEL = "pizza.ai/revision-hash"
APPLIED_AT = "pizza.ai/applied-at"
EVENTS_SHOWN = 5

# signal -> (threshold key, how the value must compare to pass)
SIGNAL_LIMITS: dict[str, tuple[str, str]] = {
    "failureRate": ("failureRate", "<="),
    "latencyP95Seconds": ("latencyP95Seconds", "<="),
    "requests": ("minRequests", ">="),
    "restarts": ("maxRestarts", "<="),
}
SIGNAL_ORDER = ("failureRate", "latencyP95Seconds", "requests", "restarts", "ready", "desired")


def parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=datetime.UTC)


def age(text: str | None, now: datetime.datetime) -> str:
    """kubectl-style age: 42s, 5m, 3h, 2d; '-' when unknown."""
    moment = parse_time(text)
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    if seconds < 120:
        return f"{seconds}s"
    if seconds < 2 * 3600:
        return f"{seconds // 60}m"
    if seconds < 2 * 86400:
        return f"{seconds // 3600}h"
    return f"{seconds // 86400}d"


def node_type(node: Mapping[str, Any] | None) -> str:
    """GPU when the node offers nvidia.com/gpu or says it has one; CPU else; ? when unknown."""
    if node is None:
        return "?"
    capacity = (node.get("status") or {}).get("capacity") or {}
    labels = (node.get("metadata") or {}).get("labels") or {}
    gpus = str(capacity.get(GPU_RESOURCE, "0")).strip()
    if (gpus and gpus != "0") or labels.get("nvidia.com/gpu.present") == "true":
        return "GPU"
    return "CPU"


def condition(status: Mapping[str, Any], type_: str) -> dict[str, Any] | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == type_:
            return dict(cond)
    return None


def component_pods(
    pods: list[dict[str, Any]], nodes: Mapping[str, Mapping[str, Any] | None]
) -> dict[str, dict[str, Any]]:
    """Per component: the nodes its (live) pods run on, with their type, and pending pods."""
    out: dict[str, dict[str, Any]] = {c: {"nodes": [], "pending": 0} for c in COMPONENTS}
    counts: dict[str, dict[str, int]] = {c: {} for c in COMPONENTS}
    for pod in pods:
        meta = pod.get("metadata") or {}
        component = (meta.get("labels") or {}).get(COMPONENT_LABEL, "")
        phase = (pod.get("status") or {}).get("phase")
        finished = phase in ("Succeeded", "Failed")
        if component not in out or meta.get("deletionTimestamp") or finished:
            continue
        node = (pod.get("spec") or {}).get("nodeName")
        if not node:
            out[component]["pending"] += 1
            continue
        counts[component][node] = counts[component].get(node, 0) + 1
    for component, by_node in counts.items():
        out[component]["nodes"] = [
            {"name": node, "type": node_type(nodes.get(node)), "pods": n}
            for node, n in sorted(by_node.items())
        ]
    return out


def signals(check: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Each signal's value against its threshold (None where a signal has none).

    A component scaled to zero (`ScaledDown`: the stable or emergency mode's primary) is not
    judged: its values are shown, marked `skipped`, never as a pass or a FAIL (the router's
    window may still hold the failures that led to the rollback)."""
    values: Mapping[str, float] = check.get("values") or {}
    skipped = "scaled down, not judged" if "ScaledDown" in (check.get("reasons") or []) else None
    thresholds: Mapping[str, float] = check.get("thresholds") or {}
    names = [n for n in SIGNAL_ORDER if n in values]
    names += sorted(n for n in values if n not in SIGNAL_ORDER)
    for name, (key, _) in SIGNAL_LIMITS.items():
        if name not in names and key in thresholds:
            names.append(name)  # a threshold without a value yet (no data)
    if "ready" in values and "desired" in values:
        names.remove("desired")  # shown as ready >= desired
    out = []
    for name in names:
        value = values.get(name)
        key, op = SIGNAL_LIMITS.get(name, ("", ""))
        threshold = thresholds.get(key) if key else None
        if name == "ready" and "desired" in values:
            threshold, op = values["desired"], ">="
        ok: bool | None = None
        if value is not None and threshold is not None and skipped is None:
            ok = value <= threshold if op == "<=" else value >= threshold
        out.append(
            {
                "signal": name,
                "value": value,
                "threshold": threshold,
                "op": op if threshold is not None else None,
                "ok": ok,
                **({"skipped": skipped} if skipped else {}),
            }
        )
    return out


def analysis_view(analysis: Mapping[str, Any] | None) -> dict[str, Any] | None:
    if not analysis:
        return None
    out: dict[str, Any] = {
        "source": analysis.get("source", ""),
        "checks": analysis.get("checks", 0),
        "inconclusive": analysis.get("inconclusive", 0),
        "clientErrorRate": analysis.get("clientErrorRate"),
        "clientRequests": analysis.get("clientRequests"),
        "fallbackReasons": dict(analysis.get("fallbackReasons") or {}),
    }
    for component in ANALYSED:
        check = analysis.get(component)
        out[component] = (
            None
            if not check
            else {
                "time": check.get("time"),
                "verdict": check.get("verdict"),
                "reasons": list(check.get("reasons") or []),
                "consecutiveFailures": check.get("consecutiveFailures", 0),
                "healthySince": check.get("healthySince"),
                "signals": signals(check),
            }
        )
    return out


def event_time(event: Mapping[str, Any]) -> str:
    meta = event.get("metadata") or {}
    return str(
        event.get("lastTimestamp")
        or event.get("eventTime")
        or event.get("firstTimestamp")
        or meta.get("creationTimestamp")
        or ""
    )


def recent_events(events: list[dict[str, Any]], limit: int = EVENTS_SHOWN) -> list[dict[str, Any]]:
    """The newest `limit` Events, oldest first."""
    oldest = datetime.datetime.min.replace(tzinfo=datetime.UTC)
    ordered = sorted(events, key=lambda e: parse_time(event_time(e)) or oldest)
    return [
        {
            "time": event_time(e),
            "type": e.get("type", ""),
            "reason": e.get("reason", ""),
            "message": e.get("message", ""),
            "count": e.get("count") or 1,
        }
        for e in ordered[-limit:]
    ]


def status_view(
    pmd: Mapping[str, Any],
    pods: list[dict[str, Any]],
    nodes: Mapping[str, Mapping[str, Any] | None],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything `kubectl pizza status` shows, as JSON-able data."""
    meta = pmd.get("metadata") or {}
    spec = pmd.get("spec") or {}
    status = pmd.get("status") or {}
    ready = condition(status, "Ready")
    placed = component_pods(pods, nodes)
    components = {}
    for component in COMPONENTS:
        counts = status.get(component) or {}
        components[component] = {
            "readyReplicas": counts.get("readyReplicas", 0),
            "replicas": counts.get("replicas", 0),
            "summary": counts.get("summary")
            or f"{counts.get('readyReplicas', 0)}/{counts.get('replicas', 0)}",
            **placed[component],
        }
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "generation": meta.get("generation"),
        "observedGeneration": status.get("observedGeneration"),
        "paused": bool(spec.get("paused", False)),
        "mode": status.get("mode") or "primary",
        "ready": (
            {
                "status": ready.get("status"),
                "reason": ready.get("reason", ""),
                "message": ready.get("message", ""),
            }
            if ready
            else {"status": "Unknown", "reason": "", "message": ""}
        ),
        "errorRate": status.get("errorRate"),
        "components": components,
        "analysis": analysis_view(status.get("analysis")),
        "lastRollback": dict(status["lastRollback"]) if status.get("lastRollback") else None,
        "currentRevision": status.get("currentRevision"),
        "servingRevision": status.get("servingRevision") or status.get("currentRevision"),
        "events": recent_events(events),
    }


def list_row(pmd: Mapping[str, Any]) -> dict[str, Any]:
    meta = pmd.get("metadata") or {}
    status = pmd.get("status") or {}
    ready = condition(status, "Ready")
    last = status.get("lastRollback") or None
    return {
        "namespace": meta.get("namespace", ""),
        "name": meta.get("name", ""),
        "mode": status.get("mode") or "primary",
        "ready": ready.get("status") if ready else "Unknown",
        "primary": (status.get("primary") or {}).get("summary", "-"),
        "fallback": (status.get("fallback") or {}).get("summary", "-"),
        "errorRate": status.get("errorRate"),
        "lastRollback": (
            {"to": last.get("to"), "reason": last.get("reason"), "time": last.get("time")}
            if last
            else None
        ),
    }


def revision_number(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj.get("revision", 0))
    except (TypeError, ValueError):
        return 0


def known_good(revisions: list[dict[str, Any]], outcomes: Mapping[str, str]) -> str | None:
    """The newest revision marked Good."""
    good = [r for r in revisions if outcomes.get(r["metadata"]["name"]) == "Good"]
    if not good:
        return None
    return str(max(good, key=revision_number)["metadata"]["name"])


def history_view(pmd: Mapping[str, Any], revisions: list[dict[str, Any]]) -> list[dict[str, Any]]:
    status = pmd.get("status") or {}
    outcomes: Mapping[str, str] = status.get("revisionOutcomes") or {}
    good = known_good(revisions, outcomes)
    serving = status.get("servingRevision") or status.get("currentRevision")
    rows = []
    for obj in sorted(revisions, key=revision_number):
        meta = obj.get("metadata") or {}
        name = meta.get("name", "")
        rows.append(
            {
                "revision": revision_number(obj),
                "name": name,
                "hash": (meta.get("labels") or {}).get(HASH_LABEL, ""),
                "appliedAt": (meta.get("annotations") or {}).get(APPLIED_AT, ""),
                "outcome": outcomes.get(name, "Pending"),
                "current": name == status.get("currentRevision"),
                "serving": name == serving,
                "knownGood": name == good,
            }
        )
    return rows
