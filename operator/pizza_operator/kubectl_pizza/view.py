"""What was read, as plain data: the `-o json` output and what the text screens show.

The resource comes typed (`PizzaModelDeployment`, its status as the operator writes it); pods,
nodes, Events and ControllerRevisions are plain Kubernetes objects (dicts). Names, the
known-good rule and the time format come from `pizza_operator.contract`.
"""

from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import Any

from pizza_operator.api.v1alpha1 import (
    GPU_RESOURCE,
    AnalysisStatus,
    ComponentCheck,
    ComponentStatus,
    Condition,
    PizzaModelDeployment,
    PizzaModelDeploymentStatus,
)
from pizza_operator.contract import (
    APPLIED_AT_ANNOTATION,
    COMPONENT_LABEL,
    REVISION_HASH_LABEL,
    SIGNAL_LIMITS,
    SIGNALS,
    ConditionType,
    RevisionOutcome,
    RevisionRef,
    format_time,
    known_good,
    parse_time,
)
from pizza_operator.rollout.bake import bake_ends

COMPONENTS = ("primary", "fallback", "router")
ANALYSED = ("primary", "fallback")
GPU_PRESENT_LABEL = "nvidia.com/gpu.present"  # set by NVIDIA GPU feature discovery
EVENTS_SHOWN = 5


def moment(text: str | None) -> datetime.datetime | None:
    """`contract.parse_time`, or None when there is no time or it is not one."""
    if not text:
        return None
    try:
        return parse_time(text)
    except ValueError:
        return None


def age(text: str | None, now: datetime.datetime) -> str:
    """kubectl-style age: 42s, 5m, 3h, 2d; '-' when unknown."""
    then = moment(text)
    if then is None:
        return "-"
    seconds = max(0, int((now - then).total_seconds()))
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
    if (gpus and gpus != "0") or labels.get(GPU_PRESENT_LABEL) == "true":
        return "GPU"
    return "CPU"


def condition(status: PizzaModelDeploymentStatus, type_: ConditionType) -> Condition | None:
    return next((c for c in status.conditions if c.type == type_), None)


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


def _signal_names(check: ComponentCheck) -> list[str]:
    """The signals to show: measured ones in a fixed order, then thresholds without a value
    yet (no data); `desired` only as the limit of `ready`."""
    values, thresholds = check.values, check.thresholds
    names = [n for n in SIGNALS if n in values]
    names += sorted(n for n in values if n not in SIGNALS)
    names += [n for n, (key, _) in SIGNAL_LIMITS.items() if n not in names and key in thresholds]
    if "ready" in values and "desired" in values:
        names.remove("desired")  # shown as ready >= desired
    return names


def signals(check: ComponentCheck) -> list[dict[str, Any]]:
    """Each signal's value against its threshold (None where a signal has none).

    A component scaled to zero (`ScaledDown`: the stable or emergency mode's primary) is not
    judged: its values are shown, marked `skipped`, never as a pass or a FAIL (the router's
    window may still hold the failures that led to the rollback)."""
    skipped = "scaled down, not judged" if "ScaledDown" in check.reasons else None
    out = []
    for name in _signal_names(check):
        value = check.values.get(name)
        key, op = SIGNAL_LIMITS.get(name, ("", ""))
        threshold = check.thresholds.get(key) if key else None
        if name == "ready" and "desired" in check.values:
            threshold, op = check.values["desired"], ">="
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


def check_view(check: ComponentCheck | None) -> dict[str, Any] | None:
    if check is None:
        return None
    return {
        "time": check.time,
        "verdict": check.verdict,
        "reasons": list(check.reasons),
        "consecutiveFailures": check.consecutive_failures,
        "healthySince": check.healthy_since,
        "signals": signals(check),
    }


def analysis_view(analysis: AnalysisStatus | None) -> dict[str, Any] | None:
    if analysis is None or not analysis.model_fields_set:
        return None  # never analysed (`analysis: {}` included)
    return {
        "source": analysis.source,
        "checks": analysis.checks,
        "inconclusive": analysis.inconclusive,
        "clientErrorRate": analysis.client_error_rate,
        "clientRequests": analysis.client_requests,
        "fallbackReasons": dict(analysis.fallback_reasons),
        "primary": check_view(analysis.primary),
        "fallback": check_view(analysis.fallback),
    }


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
    ordered = sorted(events, key=lambda e: moment(event_time(e)) or oldest)
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


def ready_view(status: PizzaModelDeploymentStatus) -> dict[str, Any]:
    ready = condition(status, "Ready")
    if ready is None:
        return {"status": "Unknown", "reason": "", "message": ""}
    return {"status": ready.status, "reason": ready.reason, "message": ready.message}


def counts_view(counts: ComponentStatus | None) -> dict[str, Any]:
    counts = counts or ComponentStatus()
    return {
        "readyReplicas": counts.ready_replicas,
        "replicas": counts.replicas,
        "summary": counts.summary or f"{counts.ready_replicas}/{counts.replicas}",
    }


def status_view(
    pmd: PizzaModelDeployment,
    pods: list[dict[str, Any]],
    nodes: Mapping[str, Mapping[str, Any] | None],
    events: list[dict[str, Any]],
) -> dict[str, Any]:
    """Everything `kubectl pizza status` shows, as JSON-able data."""
    status = pmd.status
    placed = component_pods(pods, nodes)
    counts = {"primary": status.primary, "fallback": status.fallback, "router": status.router}
    last = status.last_rollback
    return {
        "namespace": pmd.metadata.namespace,
        "name": pmd.metadata.name,
        "generation": pmd.metadata.generation,
        "observedGeneration": status.observed_generation,
        "paused": pmd.spec.paused,
        "mode": status.mode or "primary",
        "ready": ready_view(status),
        "errorRate": status.error_rate,
        "components": {c: {**counts_view(counts[c]), **placed[c]} for c in COMPONENTS},
        "analysis": analysis_view(status.analysis),
        "autoscaling": status.autoscaling.to_wire() if status.autoscaling else None,
        "rollout": status.rollout.to_wire() if status.rollout else None,
        "bakeEnds": format_time(ends) if (ends := bake_ends(pmd)) is not None else None,
        "lastRollback": last.to_wire() if last else None,
        "currentRevision": status.current_revision,
        "servingRevision": status.serving_revision or status.current_revision,
        "events": recent_events(events),
    }


def list_row(pmd: PizzaModelDeployment) -> dict[str, Any]:
    status = pmd.status
    ready = condition(status, "Ready")
    last = status.last_rollback
    return {
        "namespace": pmd.metadata.namespace,
        "name": pmd.metadata.name,
        "mode": status.mode or "primary",
        "ready": ready.status if ready else "Unknown",
        "primary": status.primary.summary if status.primary else "-",
        "fallback": status.fallback.summary if status.fallback else "-",
        "errorRate": status.error_rate,
        "lastRollback": (
            {"to": last.to, "reason": last.reason, "time": last.time} if last else None
        ),
    }


def revision_number(obj: Mapping[str, Any]) -> int:
    try:
        return int(obj.get("revision", 0))
    except (TypeError, ValueError):
        return 0


def _revision_ref(obj: Mapping[str, Any], outcomes: Mapping[str, RevisionOutcome]) -> RevisionRef:
    name = str((obj.get("metadata") or {}).get("name", ""))
    return RevisionRef(name, revision_number(obj), outcomes.get(name, "Pending"))


def revision_refs(pmd: PizzaModelDeployment, revisions: list[dict[str, Any]]) -> list[RevisionRef]:
    """The ControllerRevisions, oldest first, as the rollback rules see them (the outcome:
    `status.revisionOutcomes`, Pending when it has none)."""
    ordered = sorted(revisions, key=revision_number)
    return [_revision_ref(obj, pmd.status.revision_outcomes) for obj in ordered]


def history_view(
    pmd: PizzaModelDeployment, revisions: list[dict[str, Any]]
) -> list[dict[str, Any]]:
    status = pmd.status
    ordered = sorted(revisions, key=revision_number)
    refs = revision_refs(pmd, ordered)
    good = known_good(refs, status.current_revision)
    serving = status.serving_revision or status.current_revision
    rows = []
    for obj, ref in zip(ordered, refs, strict=True):
        meta = obj.get("metadata") or {}
        rows.append(
            {
                "revision": ref.number,
                "name": ref.name,
                "hash": (meta.get("labels") or {}).get(REVISION_HASH_LABEL, ""),
                "appliedAt": (meta.get("annotations") or {}).get(APPLIED_AT_ANNOTATION, ""),
                "outcome": ref.outcome,
                "current": ref.name == status.current_revision,
                "serving": ref.name == serving,
                "knownGood": good is not None and ref.name == good.name,
            }
        )
    return rows
