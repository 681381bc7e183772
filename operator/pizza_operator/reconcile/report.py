"""The reconcile's last step: write its part of the status, post the Events that change calls for,
and say what happened (`ReconcileResult`).

The status is computed from the live resource at write time (`StatusWriter`), so the fields the
analysis owns (the mode once set, RolledBack, analysis...) are kept; which Events to post is
`events.events_for` of the Ready condition before and after that write.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from pizza_operator.api.v1alpha1 import (
    Condition,
    Mode,
    PizzaModelDeployment,
    PizzaModelDeploymentStatus,
)
from pizza_operator.builders.naming import Component, owner_of
from pizza_operator.conditions import find_condition
from pizza_operator.contract import BLOCKED_REASONS, BlockedReason
from pizza_operator.kube import Kube, now_rfc3339
from pizza_operator.reconcile.events import events_for, ready_summary
from pizza_operator.status import Blocked, Observed, build_status
from pizza_operator.status_writer import StatusWriter


@dataclass(frozen=True)
class ReconcileResult:
    """What a reconcile did; handlers turn a blocked reconcile (an invalid spec, a name
    conflict) into kopf.PermanentError and an API error into kopf.TemporaryError."""

    blocked: BlockedReason | None = None  # nothing applied, and why
    retry: bool = False  # an API error: try again after a backoff
    message: str = ""
    ready: bool = False
    reason: str = ""  # of the Ready condition written


@dataclass(frozen=True)
class _Written:
    old_ready: Condition | None
    status: PizzaModelDeploymentStatus


class StatusReporter:
    """Writes the reconcile's status fields and posts its Events."""

    def __init__(self, kube: Kube, writer: StatusWriter) -> None:
        self.kube = kube
        self.writer = writer

    def report(
        self,
        pmd: PizzaModelDeployment,
        mode: Mode,
        observed: Mapping[Component, Observed] | None,
        *,
        blocked: Blocked | None = None,
        revision: str | None = None,
        created: Sequence[str] = (),
        total: int = 0,
        settling: bool = False,
    ) -> ReconcileResult:
        """Status of what was built from `pmd` (its generation): from `observed`, or `blocked`
        (InvalidSpec, NameConflict); `revision` becomes currentRevision; `settling`: see
        `build_status`. Then the Events (`events_for`)."""
        written = self._write(pmd, mode, observed, blocked, revision=revision, settling=settling)
        new_ready = find_condition(written.status.conditions, "Ready")
        assert new_ready is not None
        summary = ready_summary(written.status)
        for event in events_for(written.old_ready, new_ready, summary, created, total):
            self.kube.post_event(owner_of(pmd), event.type, event.reason, event.message)
        reason = next((r for r in BLOCKED_REASONS if r == new_ready.reason), None)
        return ReconcileResult(
            blocked=reason,
            message=new_ready.message,
            ready=new_ready.status == "True",
            reason=new_ready.reason,
        )

    def _write(
        self,
        pmd: PizzaModelDeployment,
        mode: Mode,
        observed: Mapping[Component, Observed] | None,
        blocked: Blocked | None,
        *,
        revision: str | None,
        settling: bool,
    ) -> _Written:
        """Over the live status (read again on a conflict); what it was and what it became."""
        now = now_rfc3339()
        seen: list[_Written] = []

        def change(fresh: PizzaModelDeployment) -> dict[str, Any]:
            view = pmd.model_copy(update={"status": fresh.status})
            status = build_status(
                view, fresh.status.mode or mode, observed, now, blocked, settling=settling
            )
            if revision is not None and blocked is None:
                status = status.model_copy(update={"current_revision": revision})
            wire = status.to_wire()
            if fresh.status.mode is not None:
                wire.pop("mode", None)  # the analysis owns the mode once it is set
            before = fresh.status.to_wire()
            seen.append(_Written(find_condition(fresh.status.conditions, "Ready"), status))
            return {k: v for k, v in wire.items() if before.get(k) != v}

        self.writer.update(pmd.metadata.namespace, pmd.metadata.name, change, current=pmd)
        return seen[-1]  # `current` is tried first, so `change` ran at least once
