"""The names the operator and its clients rely on, each written once.

Every label, annotation, condition type and reason the operator writes, the format of the SRE
request annotation (`TO[:REVISION]@TOKEN`), the rule that picks the known-good revision and the
API's time format live here. The operator and `kubectl pizza` both import this module (it needs
only the standard library and the typed API), so the plugin can only show reasons the operator
really writes, and a rename is one edit.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final, Literal, get_args

from pizza_operator.api import v1alpha1
from pizza_operator.api.v1alpha1 import GROUP, KIND, VERSION

API_VERSION: Final = f"{GROUP}/{VERSION}"

# ---- labels ----------------------------------------------------------------------------------

NAME_LABEL: Final = "app.kubernetes.io/name"
INSTANCE_LABEL: Final = "app.kubernetes.io/instance"
COMPONENT_LABEL: Final = "app.kubernetes.io/component"
MANAGED_BY_LABEL: Final = "app.kubernetes.io/managed-by"
PART_OF_LABEL: Final = "app.kubernetes.io/part-of"
MANAGER: Final = "pizza-operator"
"""`app.kubernetes.io/managed-by` of every child, and the server-side apply field manager."""
APP_NAME: Final = "pizza-serve"
PART_OF: Final = "pizza-operator"
REVISION_HASH_LABEL: Final = f"{GROUP}/revision-hash"
"""On each ControllerRevision: the hash of the shaping spec it holds."""
SERVICE_NAME_LABEL: Final = "kubernetes.io/service-name"
"""Kubernetes' own: on each EndpointSlice, the Service it lists endpoints for (what kube-proxy
reads; the operator reads it to know when a Service can be reached)."""

# ---- annotations -----------------------------------------------------------------------------

RETRY_ANNOTATION: Final = f"{GROUP}/retry"
"""Set it to any new value to send a rolled-back resource back to the primary."""
ROLLBACK_ANNOTATION: Final = f"{GROUP}/rollback"
"""`TO[:REVISION]@TOKEN`: an SRE asks for one ladder step (kubectl pizza rollback); taken once."""
PROMOTE_ANNOTATION: Final = f"{GROUP}/promote"
"""Set it to any new value to promote the running canary at once (kubectl pizza promote)."""
ABORT_ANNOTATION: Final = f"{GROUP}/abort"
"""Set it to any new value to abort the running canary (kubectl pizza abort)."""
DESIRED_HASH_ANNOTATION: Final = f"{GROUP}/desired-hash"
"""On each child: the hash of the object the operator applied (drift detection)."""
APPLIED_AT_ANNOTATION: Final = f"{GROUP}/applied-at"
"""On each ControllerRevision: when its shape was first applied."""

# ---- condition types and their reasons -------------------------------------------------------

ConditionType = Literal[
    "Ready", "PrimaryAvailable", "FallbackAvailable", "Progressing", "Degraded", "RolledBack"
]
CONDITION_TYPES: Final[tuple[ConditionType, ...]] = get_args(ConditionType)
"""In the order status shows them."""

BlockedReason = Literal["InvalidSpec", "NameConflict"]
"""Why a reconcile applied nothing (the reason of Ready, Progressing and the Warning Event):
a spec that cannot be built (`InvalidSpec`), or a child's name held by an object the resource
does not control (`NameConflict`). The children stay the last good ones, so the status refresh
and the analysis leave such a resource alone."""
BLOCKED_REASONS: Final[tuple[BlockedReason, ...]] = get_args(BlockedReason)
ReadyReason = Literal[
    "AllComponentsReady", "ComponentsNotReady", "EndpointsNotReady", BlockedReason
]
ENDPOINTS_NOT_READY: Final[ReadyReason] = "EndpointsNotReady"
"""Every component rolled out, but the Service of one that runs pods lists no ready endpoint in
its EndpointSlices yet (kube-proxy would refuse a client); the operator looks again soon."""
AvailableReason = Literal["MinimumReplicasAvailable", "ReplicasUnavailable", "ScaledDown"]
ProgressingReason = Literal["Paused", "RolloutComplete", "RolloutInProgress", BlockedReason]
DegradedReason = Literal["AsExpected", "PartiallyAvailable", "Unavailable"]
StepReason = Literal[
    "PrimaryFailed", "PrimaryFailedNewRevision", "KnownGoodRevisionFailed", "FallbackFailed"
]
"""Why the ladder took a step on its own (`RolledBack=True`, `lastRollback.reason`)."""
ReturnReason = Literal["NewGeneration", "Retry", "AutoRecover"]
"""Why a rolled-back resource went back to the primary (`RolledBack=False`)."""
LAST_ROLLBACK_REASONS: Final[tuple[str, ...]] = (*get_args(StepReason), "Requested")
"""`status.lastRollback.reason`: why the last step was taken (`Requested`: an SRE asked)."""

REASONS: Final[dict[ConditionType, tuple[str, ...]]] = {
    "Ready": get_args(ReadyReason),
    "PrimaryAvailable": get_args(AvailableReason),
    "FallbackAvailable": get_args(AvailableReason),
    "Progressing": get_args(ProgressingReason),
    "Degraded": get_args(DegradedReason),
    "RolledBack": (
        *LAST_ROLLBACK_REASONS,
        *get_args(ReturnReason),
        "RequestRefused",
        "RollbackSuppressed",
    ),
}
"""Every reason the operator writes, by condition type."""

EventReason = Literal[
    "Created",
    "Restored",
    "Ready",
    "NotReady",
    "InvalidSpec",
    "NameConflict",
    "RolledBack",
    "RollbackRefused",
    "RollbackSuppressed",
    "ReturnedToPrimary",
    "RolloutStarted",
    "RolloutStep",
    "RolloutPaused",
    "RolloutPromoted",
    "RolloutAborted",
]
EVENT_REASONS: Final[tuple[EventReason, ...]] = get_args(EventReason)

CheckReason = Literal[
    # Kubernetes signals (fail a component)
    "Unschedulable",
    "CrashLoopBackOff",
    "StartupProbeNeverPassed",
    "ProgressDeadlineExceeded",
    "Restarts",
    "NoReadyPods",
    # metric signals
    "FailureRate",
    "LatencyP95",
    # no verdict
    "TooFewRequests",
    "MetricsUnavailable",
    "NotServingYet",
    "WarmingUp",
    "ScaledDown",
    "DeploymentMissing",
    "PrimaryAsleep",  # the autoscaler keeps it at zero for idleness
    "PrimaryScalingUp",  # the autoscaler raised its count; new pods are loading
]
"""Why an analysis check gave its verdict (`status.analysis.<component>.reasons`)."""
CHECK_REASONS: Final[tuple[CheckReason, ...]] = get_args(CheckReason)

# ---- analysis signals and their limits ---------------------------------------------------------

SIGNAL_LIMITS: Final[dict[str, tuple[str, str]]] = {
    "failureRate": ("failureRate", "<="),
    "latencyP95Seconds": ("latencyP95Seconds", "<="),
    "requests": ("minRequests", ">="),
    "restarts": ("maxRestarts", "<="),
}
"""Signal in `status.analysis.<component>.values` -> (its key in `.thresholds`, how the value
must compare to pass). `ready` and `desired` are shown but judged by the Kubernetes signals."""
SIGNALS: Final[tuple[str, ...]] = (
    *SIGNAL_LIMITS,
    "ready",
    "desired",
    "failureRateAllClients",
    "failingClientGroups",
)
"""Every signal a check may show, in the order shown. `failureRate` is the primary's failure rate
judged across clients (its noisiest client group set aside when the other groups sent at least
`minRequests`: docs/rollback.md); `failureRateAllClients` the rate of all its requests and
`failingClientGroups` the client groups that saw it fail (both shown only, never judged)."""

# ---- the SRE request annotation --------------------------------------------------------------

Target = Literal["previous", "stable", "emergency"]
TARGETS: Final[tuple[Target, ...]] = get_args(Target)


@dataclass(frozen=True)
class RollbackRequest:
    """`pizza.ai/rollback: TO[:REVISION]@TOKEN`: one step to `to` (a named revision with
    `previous`), asked once; a new token asks again."""

    to: str
    revision: str | None
    token: str

    def encode(self) -> str:
        target = f"{self.to}:{self.revision}" if self.revision else self.to
        return f"{target}@{self.token}"

    @classmethod
    def decode(cls, value: str) -> RollbackRequest:
        target, _, token = value.partition("@")
        to, _, revision = target.partition(":")
        return cls(to=to, revision=revision or None, token=token)

    def problem(self) -> str | None:
        """Why this request can never be taken (None: its target is one of the ladder's; a
        revision is read with `previous` only)."""
        if self.to not in TARGETS:
            return f"unknown target {self.to!r}: {', '.join(TARGETS[:-1])} or {TARGETS[-1]}"
        return None


# ---- the known-good revision -----------------------------------------------------------------

RevisionOutcome = v1alpha1.RevisionOutcome
"""A revision's outcome in `status.revisionOutcomes`: Pending, Good or Failed."""


@dataclass(frozen=True)
class RevisionRef:
    """A ControllerRevision as the rollback rules see it: its name, number and outcome."""

    name: str
    number: int
    outcome: RevisionOutcome = "Pending"


def known_good(revisions: Iterable[RevisionRef], current: str | None) -> RevisionRef | None:
    """The revision `previous` goes back to: the newest one marked Good that is not `current`
    (the revision of the spec as it is now)."""
    good = [r for r in revisions if r.outcome == "Good" and r.name != current]
    return max(good, key=lambda r: r.number, default=None)


# ---- owner and time --------------------------------------------------------------------------


def owner_reference(name: str, uid: str) -> dict[str, object]:
    """The controller ownerReference every child and revision of resource `name` carries."""
    return {
        "apiVersion": API_VERSION,
        "kind": KIND,
        "name": name,
        "uid": uid,
        "controller": True,
        "blockOwnerDeletion": True,
    }


def parse_time(text: str) -> datetime:
    """An API timestamp (`2026-12-02T14:03:11Z`) as an aware datetime (UTC when it has no zone).
    Raises ValueError when it is not one."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def format_time(moment: datetime) -> str:
    """The API's timestamp format, to the second."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
