"""What the elastic bench reports, from its raw records (pure: no clock, no I/O).

Inputs: the load generator's records (`pizza_load.loadgen.Record`), the per-second samples of
each resource (`Sample`: ready and wanted replicas, the primary asleep or not) and the pods seen
by the watch (`PodTimes`: local times of creation, container running, Ready, deletion)."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from pizza_load.loadgen import Record

PRIMARY_IDLE = "primary_idle"


@dataclass(frozen=True)
class Sample:
    """One look at a resource at `t` (time.time()); None where the look failed."""

    t: float
    primary_ready: int | None
    primary_wanted: int | None
    fallback_ready: int | None
    fallback_wanted: int | None
    asleep: bool | None


@dataclass
class PodTimes:
    """Local times (time.time()) the watch saw each step of one pod; None: not seen."""

    namespace: str
    name: str
    component: str
    created: float
    running: float | None = None
    ready: float | None = None
    deleting: float | None = None
    gone: float | None = None
    log: dict[str, float] | None = None  # log mark -> kubelet timestamp (see bench_elastic)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0..100), nearest rank; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[rank - 1]


def latency_ms(records: Iterable[Record]) -> dict[str, Any]:
    """Count, p50, p99 and max latency (ms) of the answered records."""
    values = [r.latency_s for r in records if r.answered and r.latency_s is not None]
    out: dict[str, Any] = {"answered": len(values)}
    for name, q in (("p50", 50.0), ("p99", 99.0), ("max", 100.0)):
        value = percentile(values, q)
        out[f"{name}_ms"] = None if value is None else round(value * 1000, 1)
    return out


def wake_windows(records: Sequence[Record], primary: str) -> list[tuple[float, float | None]]:
    """(first request answered `primary_idle`, first answer of the primary sent after it) for
    every wake-up; the end is None when the primary never answered again."""
    windows: list[tuple[float, float | None]] = []
    start: float | None = None
    for r in sorted(records, key=lambda r: r.t):
        if not r.answered:
            continue
        if start is None and r.fallback_reason == PRIMARY_IDLE:
            start = r.t
        elif start is not None and r.model_used == primary:
            windows.append((start, r.t))
            start = None
    if start is not None:
        windows.append((start, None))
    return windows


def within(
    records: Iterable[Record], windows: Iterable[tuple[float, float | None]]
) -> list[Record]:
    spans = [(lo, math.inf if hi is None else hi) for lo, hi in windows]
    return [r for r in records if any(lo <= r.t <= hi for lo, hi in spans)]


def replica_seconds(samples: Sequence[Sample], field: str, start: float, end: float) -> float:
    """The integral of a sampled count over [start, end): each sample holds until the next."""
    ordered = sorted((s for s in samples if getattr(s, field) is not None), key=lambda s: s.t)
    total = 0.0
    if not ordered:
        return total
    for here, after in zip(ordered, [*ordered[1:], None], strict=True):
        lo = max(here.t, start)
        hi = min(after.t if after is not None else end, end)
        if hi > lo:
            total += getattr(here, field) * (hi - lo)
    return total


def held_seconds(pods: Iterable[PodTimes], component: str, start: float, end: float) -> float:
    """Pod-seconds of `component` pods from creation to deletion (a GPU is held all along),
    within [start, end)."""
    total = 0.0
    for pod in pods:
        if pod.component != component:
            continue
        stop = pod.deleting if pod.deleting is not None else (pod.gone or end)
        total += max(0.0, min(stop, end) - max(pod.created, start))
    return total


def cold_starts(
    pods: Iterable[PodTimes], component: str, after: float = 0.0
) -> list[dict[str, Any]]:
    """Per pod created after `after` and seen Ready: seconds from creation to container running
    and to Ready, and the model server's own marks (log timestamps) relative to creation."""
    rows = []
    for pod in sorted(pods, key=lambda p: p.created):
        if pod.component != component or pod.created < after or pod.ready is None:
            continue
        row: dict[str, Any] = {
            "pod": pod.name,
            "to_running_s": None if pod.running is None else round(pod.running - pod.created, 2),
            "to_ready_s": round(pod.ready - pod.created, 2),
        }
        for mark, t in sorted((pod.log or {}).items(), key=lambda kv: kv[1]):
            row[f"log_{mark}_s"] = round(t - pod.created, 2)
        rows.append(row)
    return rows


def summarize(
    records: Sequence[Record],
    samples: Sequence[Sample],
    pods: Sequence[PodTimes],
    *,
    namespace: str,
    windows: Sequence[tuple[float, float | None]],
    start: float,
    end: float,
) -> dict[str, Any]:
    """The numbers of one resource over the trace [start, end)."""
    sent = [r for r in records if r.sent]
    mine = [p for p in pods if p.namespace == namespace]
    return {
        "requests_sent": len(sent),
        "skipped_at_cap": sum(1 for r in records if not r.sent),
        "client_errors": sum(1 for r in sent if not r.answered),
        "errors_by_status": dict(Counter(str(r.status) for r in sent if not r.answered)),
        "by_model": dict(Counter(r.model_used or "?" for r in sent if r.answered)),
        "by_fallback_reason": dict(
            Counter(r.fallback_reason for r in sent if r.answered and r.fallback_reason)
        ),
        "answered_primary_idle": sum(1 for r in sent if r.fallback_reason == PRIMARY_IDLE),
        "latency_overall": latency_ms(sent),
        "latency_during_wakeups": latency_ms(within(sent, windows)),
        "primary_ready_pod_seconds": round(
            replica_seconds(samples, "primary_ready", start, end), 1
        ),
        "primary_held_pod_seconds": round(held_seconds(mine, "primary", start, end), 1),
        "fallback_ready_pod_seconds": round(
            replica_seconds(samples, "fallback_ready", start, end), 1
        ),
        "fallback_pods_max": max((s.fallback_ready or 0 for s in samples), default=0),
    }
