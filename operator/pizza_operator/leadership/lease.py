"""What a replica may do with the Lease, decided from what it saw and when (pure).

Time here is the replica's own monotonic clock, never the holder's `renewTime`: a standby takes
the Lease when the record it reads has not changed for a whole lease duration by ITS clock (as
client-go's leader election does), so clocks that disagree between nodes cannot hand the Lease
over early. A stretch in which the API server could not be read restarts that count: after an
outage the holder gets a whole duration to renew before anyone takes over.
"""

from __future__ import annotations

import dataclasses
from typing import Any


@dataclasses.dataclass(frozen=True)
class Timing:
    """Seconds. The holder renews every `renew_every`; it stops acting when it has not renewed
    for `renew_deadline` (less than `duration`, so it has stopped before anyone may take over);
    a standby looks every `retry_every` and takes the Lease once unchanged for `duration`."""

    duration: float = 10.0
    renew_every: float = 2.0
    renew_deadline: float = 7.0
    retry_every: float = 1.0

    def __post_init__(self) -> None:
        if not 0 < self.renew_every < self.renew_deadline < self.duration:
            raise ValueError("need 0 < renew_every < renew_deadline < duration")
        if self.retry_every <= 0:
            raise ValueError("retry_every must be positive")


@dataclasses.dataclass(frozen=True)
class Seen:
    """The Lease record as last read, and since when (monotonic) it has been this record."""

    holder: str  # "" when released or never held
    version: str  # the object's resourceVersion
    duration: float  # its leaseDurationSeconds
    since: float


def record_of(lease: dict[str, Any] | None) -> tuple[str, str, float]:
    """(holder, resourceVersion, duration) of a Lease object; a missing one is free."""
    if lease is None:
        return "", "", 0.0
    spec = lease.get("spec") or {}
    holder = spec.get("holderIdentity") or ""
    duration = spec.get("leaseDurationSeconds") or 0
    version = (lease.get("metadata") or {}).get("resourceVersion") or ""
    return (
        holder if isinstance(holder, str) else "",
        str(version),
        float(duration) if isinstance(duration, int | float) else 0.0,
    )


def observe(previous: Seen | None, lease: dict[str, Any] | None, now: float, *, gap: bool) -> Seen:
    """The new observation: the same record keeps its `since` unless the API server could not be
    read in between (`gap`), a changed record starts from `now`."""
    holder, version, duration = record_of(lease)
    if previous is not None and previous.version == version and not gap:
        return previous
    return Seen(holder, version, duration, now)


def may_take(seen: Seen, me: str, now: float, timing: Timing) -> bool:
    """Free, ours already, or unchanged for a whole lease duration (the holder's, or ours when it
    wrote none)."""
    if seen.holder in ("", me):
        return True
    return now - seen.since >= (seen.duration or timing.duration)


def confirmed(last_renewed: float | None, now: float, timing: Timing) -> bool:
    """The holder may still act: it renewed within the renew deadline."""
    return last_renewed is not None and now - last_renewed < timing.renew_deadline


def lease_body(
    name: str,
    namespace: str,
    *,
    me: str,
    timing: Timing,
    now: str,
    previous: dict[str, Any] | None,
) -> dict[str, Any]:
    """The Lease as the holder writes it (taking or renewing); `previous` carries the
    resourceVersion (optimistic concurrency: two standbys cannot both take it) and counts."""
    spec_before = (previous or {}).get("spec") or {}
    taking = spec_before.get("holderIdentity") != me
    transitions = spec_before.get("leaseTransitions") or 0
    spec = {
        "holderIdentity": me,
        "leaseDurationSeconds": int(timing.duration),
        "acquireTime": now if taking else spec_before.get("acquireTime", now),
        "renewTime": now,
        "leaseTransitions": int(transitions) + (1 if taking and spec_before else 0),
    }
    metadata: dict[str, Any] = {"name": name, "namespace": namespace}
    if previous is not None:
        metadata["resourceVersion"] = previous["metadata"]["resourceVersion"]
    return {
        "apiVersion": "coordination.k8s.io/v1",
        "kind": "Lease",
        "metadata": metadata,
        "spec": spec,
    }


def released(lease: dict[str, Any], me: str) -> dict[str, Any] | None:
    """The Lease handed back by its holder on a clean stop (the next replica takes it at once);
    None when it is not ours to release."""
    spec = lease.get("spec") or {}
    if spec.get("holderIdentity") != me:
        return None
    body = {**lease, "spec": {**spec, "holderIdentity": "", "leaseDurationSeconds": 1}}
    return body
