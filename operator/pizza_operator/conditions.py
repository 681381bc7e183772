"""Conditions to the Kubernetes API conventions: made, found and merged here, once.

Pure: the reconcile (`status.py`) and the rollback's status patches build their conditions with
`new_condition`, and every status write merges them with `merge_conditions`, which keeps
`lastTransitionTime` where the status did not change and keeps conditions it was not given.
"""

from __future__ import annotations

from collections.abc import Sequence

from pizza_operator.api.v1alpha1 import Condition, ConditionStatus
from pizza_operator.contract import CONDITION_TYPES

MESSAGE_LIMIT = 1024
"""Longer messages are cut: a condition is a summary, the Event and log have the rest."""


def new_condition(
    type_: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    *,
    now: str = "",
) -> Condition:
    """A condition for `generation`; `now` empty until `merge_conditions` stamps it."""
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message[:MESSAGE_LIMIT],
        last_transition_time=now,
        observed_generation=generation,
    )


def find_condition(conditions: Sequence[Condition], type_: str) -> Condition | None:
    """The condition of this type, if any."""
    return next((c for c in conditions if c.type == type_), None)


def merge_conditions(
    previous: Sequence[Condition], desired: Sequence[Condition], now: str
) -> list[Condition]:
    """Keep lastTransitionTime where status did not change; keep conditions not recomputed."""
    before = {c.type: c for c in previous}
    merged: dict[str, Condition] = dict(before)
    for cond in desired:
        old = before.get(cond.type)
        when = old.last_transition_time if old is not None and old.status == cond.status else now
        merged[cond.type] = cond.model_copy(update={"last_transition_time": when or now})
    order: dict[str, int] = {t: i for i, t in enumerate(CONDITION_TYPES)}
    return sorted(merged.values(), key=lambda c: order.get(c.type, len(order)))
