"""Kubernetes signals of one component, from its Deployment and pods as the API returns them.

Pure: plain dicts in (`kubectl get -o json` shapes), `KubeSignals` out. Restarts within the
window need memory across checks; it is passed in and handed back (`RestartLedger`, JSON that
the analysis keeps in the resource's status), so a new leader carries on where the old one left.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, TypedDict

from pizza_operator.contract import format_time, parse_time
from pizza_operator.rollback.verdicts import KubeSignals

# The kubelet's probe defaults (core/v1 Probe).
_PROBE_DEFAULTS = {"initialDelaySeconds": 0, "periodSeconds": 10, "failureThreshold": 3}
_PROBE_TIMEOUT_DEFAULT = 1


class ContainerRestarts(TypedDict):
    """One container's last seen `restartCount` and the restarts seen within the window."""

    count: int
    times: list[str]


RestartLedger = dict[str, ContainerRestarts]
"""`"<pod uid>/<container>"` -> restarts; only containers of live pods are kept."""


def _condition(obj: Mapping[str, Any], kind: str) -> Mapping[str, Any] | None:
    for condition in obj.get("status", {}).get("conditions") or []:
        if condition.get("type") == kind:
            return condition  # type: ignore[no-any-return]
    return None


def _live(pods: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """Pods that count: not being deleted, not finished (Succeeded/Failed, e.g. evicted)."""
    return [
        p
        for p in pods
        if not p.get("metadata", {}).get("deletionTimestamp")
        and p.get("status", {}).get("phase") not in ("Succeeded", "Failed")
    ]


def _statuses(pod: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    status = pod.get("status", {})
    yield from status.get("initContainerStatuses") or []
    yield from status.get("containerStatuses") or []


def rolling_out(
    deployment: Mapping[str, Any], pods: Sequence[Mapping[str, Any]] | None = None
) -> bool:
    """What `kubectl rollout status` waits for; False once the progress deadline passed.

    Updated pods that are not available count as a rollout only while the Deployment has not
    completed one (`Progressing` reason `NewReplicaSetAvailable`) or while one of `pods` is
    still starting (its startup probe has not passed): a pod that served and stopped being
    ready after the rollout finished (a hung server) is a failure, not a rollout."""
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    if progress_deadline_exceeded(deployment):
        return False
    if deployment.get("metadata", {}).get("generation", 0) > status.get("observedGeneration", 0):
        return True
    desired = spec.get("replicas", 1)
    updated = status.get("updatedReplicas", 0)
    if updated < desired or status.get("replicas", 0) > updated:
        return True
    if status.get("availableReplicas", 0) >= updated:
        return False
    progressing = _condition(deployment, "Progressing")
    completed = bool(
        progressing
        and progressing.get("status") == "True"
        and progressing.get("reason") == "NewReplicaSetAvailable"
    )
    return not completed or pods is None or starting(pods)


def starting(pods: Sequence[Mapping[str, Any]]) -> bool:
    """A live pod that has not started yet: Pending, or a container whose startup probe (or,
    without one, readiness) has not passed since the container (re)started."""
    for pod in _live(pods):
        if pod.get("status", {}).get("phase") == "Pending":
            return True
        for status in pod.get("status", {}).get("containerStatuses") or []:
            if status.get("started") is False or not status.get("state", {}).get("running"):
                return True
    return False


def progress_deadline_exceeded(deployment: Mapping[str, Any]) -> bool:
    progressing = _condition(deployment, "Progressing")
    return bool(
        progressing
        and progressing.get("status") == "False"
        and progressing.get("reason") == "ProgressDeadlineExceeded"
    )


def crash_looping(pods: Sequence[Mapping[str, Any]]) -> bool:
    return any(
        (s.get("state", {}).get("waiting") or {}).get("reason") == "CrashLoopBackOff"
        for pod in _live(pods)
        for s in _statuses(pod)
    )


def unschedulable(pods: Sequence[Mapping[str, Any]]) -> bool:
    """A pod Pending because the scheduler found no node (no GPU left, say)."""
    for pod in _live(pods):
        if pod.get("status", {}).get("phase") != "Pending":
            continue
        scheduled = _condition(pod, "PodScheduled")
        if scheduled and (scheduled.get("status"), scheduled.get("reason")) == (
            "False",
            "Unschedulable",
        ):
            return True
    return False


def startup_budget_seconds(probe: Mapping[str, Any]) -> float:
    """How long the kubelet gives a startup probe before it gives up on the container."""
    values = {k: probe.get(k, v) for k, v in _PROBE_DEFAULTS.items()}
    timeout = probe.get("timeoutSeconds", _PROBE_TIMEOUT_DEFAULT)
    return float(
        values["initialDelaySeconds"]
        + values["failureThreshold"] * values["periodSeconds"]
        + timeout
    )


def startup_never_passed(
    pods: Sequence[Mapping[str, Any]], *, now: datetime, budget_seconds: float | None = None
) -> bool:
    """A container with a startup probe that has not passed, longer than the startup budget.

    Measured from when the pod started or last lost readiness (its `Ready` condition's
    `lastTransitionTime`), not from the container's start: the kubelet restarts a container
    whose startup probe failed, and each restart resets the container's own clock. The budget
    is the probe's own (`startup_budget_seconds`) unless given.
    """
    for pod in _live(pods):
        started_at = pod.get("status", {}).get("startTime")
        if not started_at:
            continue
        since = parse_time(started_at)
        ready = _condition(pod, "Ready")
        if ready and ready.get("status") == "False" and ready.get("lastTransitionTime"):
            since = max(since, parse_time(ready["lastTransitionTime"]))
        age = (now - since).total_seconds()
        probes = {
            c["name"]: c["startupProbe"]
            for c in pod.get("spec", {}).get("containers", [])
            if c.get("startupProbe")
        }
        for status in pod.get("status", {}).get("containerStatuses") or []:
            probe = probes.get(status.get("name", ""))
            if probe is None or status.get("started") or _passed_startup(status):
                continue
            budget = budget_seconds if budget_seconds is not None else startup_budget_seconds(probe)
            if age > budget:
                return True
    return False


def _passed_startup(status: Mapping[str, Any]) -> bool:
    """`started` is optional in the API: without it, a ready container has passed its startup
    probe (the kubelet runs the readiness probe only after it). kwok's pods say only `ready`."""
    return "started" not in status and bool(status.get("ready"))


def count_restarts(
    pods: Sequence[Mapping[str, Any]],
    previous: Mapping[str, ContainerRestarts],
    *,
    now: datetime,
    window_seconds: float,
) -> tuple[int, RestartLedger]:
    """Restarts within the window, and the ledger for the next check.

    A container already in the ledger adds `restartCount - count` restarts, dated by its
    `lastState.terminated.finishedAt` (else now). A container seen the first time can only tell
    of its last restart: one, if that finished within the window.
    """
    since = now - timedelta(seconds=window_seconds)
    ledger: RestartLedger = {}
    for pod in _live(pods):
        uid = pod.get("metadata", {}).get("uid", pod.get("metadata", {}).get("name", ""))
        for status in _statuses(pod):
            key = f"{uid}/{status.get('name', '')}"
            count = int(status.get("restartCount", 0))
            finished = ((status.get("lastState") or {}).get("terminated") or {}).get("finishedAt")
            last = parse_time(finished) if finished else None
            known = previous.get(key)
            times = list(known["times"]) if known else []
            if known is None:
                new = 1 if count > 0 and last is not None and last >= since else 0
            else:
                new = max(0, count - known["count"])
            times += [format_time(last or now)] * new
            ledger[key] = {
                "count": count,
                "times": [t for t in times if parse_time(t) >= since],
            }
    return sum(len(c["times"]) for c in ledger.values()), ledger


def kube_signals(
    deployment: Mapping[str, Any],
    pods: Sequence[Mapping[str, Any]],
    *,
    now: datetime,
    window_seconds: float,
    restarts: Mapping[str, ContainerRestarts] | None = None,
    startup_budget: float | None = None,
) -> tuple[KubeSignals, RestartLedger]:
    """The component's `KubeSignals` and the restart ledger to keep for the next check.

    `pods` are the component's pods (its label selector); `now` must be timezone-aware.
    """
    spec, status = deployment.get("spec", {}), deployment.get("status", {})
    available = _condition(deployment, "Available")
    in_window, ledger = count_restarts(pods, restarts or {}, now=now, window_seconds=window_seconds)
    signals = KubeSignals(
        desired=int(spec.get("replicas", 1)),
        ready=int(status.get("readyReplicas", 0)),
        available=bool(available and available.get("status") == "True"),
        rolling_out=rolling_out(deployment, pods),
        progress_deadline_exceeded=progress_deadline_exceeded(deployment),
        restarts_in_window=in_window,
        crash_looping=crash_looping(pods),
        unschedulable=unschedulable(pods),
        startup_never_passed=startup_never_passed(pods, now=now, budget_seconds=startup_budget),
        served_window=_served_window(pods, now, window_seconds),
    )
    return signals, ledger


def _served_window(pods: Sequence[Mapping[str, Any]], now: datetime, window: float) -> bool:
    """A pod has been Ready for the whole window (none is ready: nothing to warm up)."""
    served = ready_for(pods, now.timestamp())
    return served is None or served >= window


def ready_for(pods: Sequence[Mapping[str, Any]], now: float) -> float | None:
    """Seconds the longest-Ready pod has been Ready (from its Ready condition's transition time;
    epoch seconds `now`), None when none is."""
    since: list[float] = []
    for pod in pods:
        status = pod.get("status")
        conditions = status.get("conditions") if isinstance(status, dict) else None
        for condition in conditions if isinstance(conditions, list) else []:
            if (
                isinstance(condition, dict)
                and condition.get("type") == "Ready"
                and condition.get("status") == "True"
            ):
                try:
                    since.append(parse_time(str(condition.get("lastTransitionTime"))).timestamp())
                except ValueError:
                    continue
    return now - min(since) if since else None
