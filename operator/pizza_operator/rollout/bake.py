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


def _window(pmd: PizzaModelDeployment) -> tuple[datetime, datetime] | None:
    """(promoted, bake time over) when a rollout promoted the current revision and handed it
    over to the primary Deployment (it is the current revision), served in mode primary."""
    rollout = pmd.status.rollout
    if rollout is None or rollout.phase != "Promoted" or not rollout.handed_over:
        return None
    if rollout.finished_at is None or rollout.revision != pmd.status.current_revision:
        return None
    if (pmd.status.mode or "primary") != "primary":
        return None
    promoted = parse_time(rollout.finished_at)
    return promoted, promoted + timedelta(seconds=parse_duration(pmd.spec.rollout.bake_time))


def bake_ends(pmd: PizzaModelDeployment) -> datetime | None:
    """When the bake time of the current revision ends; None when no promoted revision bakes
    (whatever the clock says)."""
    window = _window(pmd)
    return window[1] if window is not None else None


def in_bake_time(pmd: PizzaModelDeployment, now: datetime) -> bool:
    """The current revision bakes: it is not known-good yet."""
    window = _window(pmd)
    return window is not None and now < window[1]


def baking(pmd: PizzaModelDeployment, now: datetime) -> bool:
    """In the bake time, and the primary's last check, after the promotion, was Healthy: the
    promoted revision has served. Until then its pods are still starting (a borrowed GPU freed
    by the canary, say) and the spec's threshold judges them, as for any new revision."""
    window = _window(pmd)
    if window is None or now >= window[1]:
        return False
    last = pmd.status.analysis.primary if pmd.status.analysis is not None else None
    return last is not None and last.verdict == "Healthy" and parse_time(last.time) >= window[0]


def failure_threshold(pmd: PizzaModelDeployment, now: datetime) -> int:
    """Failed checks in a row before the ladder steps: one while baking, else the spec's."""
    return BAKING_THRESHOLD if baking(pmd, now) else pmd.spec.analysis.failure_threshold
