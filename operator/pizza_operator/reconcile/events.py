"""Which Events a reconcile posts: a pure function of the Ready condition before and after the
status write, and of the children it created. Events are few: a change of readiness, a new or
changed reason to apply nothing (a spec problem, a name conflict), children created or
restored."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from pizza_operator.api.v1alpha1 import Condition, PizzaModelDeploymentStatus
from pizza_operator.builders.naming import COMPONENTS
from pizza_operator.contract import BLOCKED_REASONS, EventReason

EventType = Literal["Normal", "Warning"]


@dataclass(frozen=True)
class EventSpec:
    """One core/v1 Event to post on the resource."""

    type: EventType
    reason: EventReason
    message: str


def ready_summary(status: PizzaModelDeploymentStatus) -> str:
    """The message of the Ready Event: each component's ready/desired count."""
    parts = [
        f"{c} {summary.summary}" for c in COMPONENTS if (summary := getattr(status, c)) is not None
    ]
    return "every component is ready: " + ", ".join(parts)


def events_for(
    old_ready: Condition | None,
    new_ready: Condition,
    summary: str,
    created: Sequence[str],
    total: int,
) -> list[EventSpec]:
    """The Events for a status write that moved Ready from `old_ready` (None: it had none) to
    `new_ready`, in the order to post them. `summary` is the Ready Event's message, `created`
    the children (`Kind/name`) the reconcile created, `total` how many children it wants: all of
    them created is the first creation, fewer is a restore of children someone deleted."""
    events = [*_readiness(old_ready, new_ready, summary)]
    if created:
        first = len(created) == total
        events.append(
            EventSpec(
                "Normal" if first else "Warning",
                "Created" if first else "Restored",
                ("created " if first else "recreated missing ") + ", ".join(created),
            )
        )
    return events


def _readiness(old: Condition | None, new: Condition, summary: str) -> list[EventSpec]:
    was_ready = old is not None and old.status == "True"
    if new.status == "True" and not was_ready:
        return [EventSpec("Normal", "Ready", summary)]
    blocked = next((r for r in BLOCKED_REASONS if r == new.reason), None)
    if blocked is not None:  # InvalidSpec, NameConflict: once while the message stays the same
        told = old is not None and (old.reason, old.message) == (new.reason, new.message)
        return [] if told else [EventSpec("Warning", blocked, new.message)]
    if new.status != "True" and was_ready:
        return [EventSpec("Warning", "NotReady", new.message)]
    return []
