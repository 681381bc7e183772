"""The bake time after a promotion (pure): while a promoted revision bakes, it is not known-good
yet, and once it has served (a Healthy check after the promotion) one failed check of the primary
goes straight back to the stable revision it replaced (the ladder's `previous`, no canary); after
it, the analysis judges it as any revision."""

from __future__ import annotations

from datetime import datetime, timedelta

from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.contract import parse_time
from pizza_operator.rollback.durations import parse_duration

BAKING_THRESHOLD = 1
"""Failed checks in a row that step back while baking: the canary already judged the revision."""


def bake_ends(pmd: PizzaModelDeployment) -> datetime | None:
    """When the bake time of the current revision ends: a rollout promoted it, handed it over to
    the primary Deployment (it is the current revision, served in mode primary); None when no
    such revision bakes (whatever the clock says)."""
    rollout = pmd.status.rollout
    if rollout is None or rollout.phase != "Promoted" or not rollout.handed_over:
        return None
    if rollout.finished_at is None or rollout.revision != pmd.status.current_revision:
        return None
    if (pmd.status.mode or "primary") != "primary":
        return None
    return parse_time(rollout.finished_at) + timedelta(
        seconds=parse_duration(pmd.spec.rollout.bake_time)
    )


def in_bake_time(pmd: PizzaModelDeployment, now: datetime) -> bool:
    """The current revision bakes: it is not known-good yet."""
    ends = bake_ends(pmd)
    return ends is not None and now < ends


def baking(pmd: PizzaModelDeployment, now: datetime) -> bool:
    """In the bake time, and the primary's last check, after the promotion, was Healthy: the
    promoted revision has served. Until then its pods are still starting (a borrowed GPU freed
    by the canary, say) and the spec's threshold judges them, as for any new revision."""
    if not in_bake_time(pmd, now):
        return False
    last = pmd.status.analysis.primary if pmd.status.analysis is not None else None
    rollout = pmd.status.rollout
    if last is None or last.verdict != "Healthy" or rollout is None or not rollout.finished_at:
        return False
    return parse_time(last.time) >= parse_time(rollout.finished_at)


def failure_threshold(pmd: PizzaModelDeployment, now: datetime) -> int:
    """Failed checks in a row before the ladder steps: one while baking, else the spec's."""
    return BAKING_THRESHOLD if baking(pmd, now) else pmd.spec.analysis.failure_threshold
