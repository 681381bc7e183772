"""Pure status computation: observed children -> conditions, following the API conventions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from pizza_operator.api.v1alpha1 import (
    ComponentStatus,
    Condition,
    ConditionStatus,
    Mode,
    PizzaModelDeployment,
    PizzaModelDeploymentStatus,
)
from pizza_operator.builders.naming import COMPONENTS, Component

CONDITION_TYPES = ("Ready", "PrimaryAvailable", "FallbackAvailable", "Progressing", "Degraded")


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one Deployment reports."""

    desired: int = 0
    ready: int = 0
    updated: int = 0
    total: int = 0
    current: bool = False  # the controller has seen the latest spec
    exists: bool = False

    @property
    def rolled_out(self) -> bool:
        """Every pod runs the latest template and is ready, and no old pod is left."""
        return (
            self.exists
            and self.current
            and self.updated >= self.desired
            and self.ready >= self.desired
            and self.total == self.desired
        )

    @property
    def serving(self) -> bool:
        return self.ready >= 1

    def summary(self) -> ComponentStatus:
        return ComponentStatus(
            ready_replicas=self.ready, replicas=self.desired, summary=f"{self.ready}/{self.desired}"
        )


def observe(deployment: Mapping[str, Any] | None) -> Observed:
    """Read a Deployment (as the API server returns it) into an Observed."""
    if deployment is None:
        return Observed()
    spec = deployment.get("spec") or {}
    status = deployment.get("status") or {}
    meta = deployment.get("metadata") or {}
    return Observed(
        desired=int(spec.get("replicas", 1)),
        ready=int(status.get("readyReplicas") or 0),
        updated=int(status.get("updatedReplicas") or 0),
        total=int(status.get("replicas") or 0),
        current=int(status.get("observedGeneration") or 0) >= int(meta.get("generation") or 0),
        exists=True,
    )


def _condition(
    type_: str, status: ConditionStatus, reason: str, message: str, generation: int
) -> Condition:
    return Condition(
        type=type_,
        status=status,
        reason=reason,
        message=message,
        last_transition_time="",
        observed_generation=generation,
    )


def _availability(name: str, observed: Observed, generation: int) -> Condition:
    if observed.desired == 0:
        return _condition(
            name, "False", "ScaledDown", "no replicas wanted in this mode", generation
        )
    if observed.serving:
        return _condition(
            name,
            "True",
            "MinimumReplicasAvailable",
            f"{observed.ready}/{observed.desired} pods ready",
            generation,
        )
    return _condition(
        name, "False", "ReplicasUnavailable", f"0/{observed.desired} pods ready", generation
    )


def _not_ready_message(observed: Mapping[Component, Observed]) -> str:
    parts = []
    for component in COMPONENTS:
        obs = observed[component]
        if not obs.exists:
            parts.append(f"{component} missing")
        elif obs.rolled_out:
            continue
        elif obs.total > obs.desired and obs.ready >= obs.desired:
            extra = obs.total - obs.desired
            parts.append(f"{component} {extra} pod(s) to terminate, {obs.desired} wanted")
        else:
            parts.append(f"{component} {obs.ready}/{obs.desired} ready")
    return "waiting for " + ", ".join(parts)


def desired_conditions(
    generation: int,
    observed: Mapping[Component, Observed],
    *,
    paused: bool = False,
) -> list[Condition]:
    """The five conditions for these observations (lastTransitionTime still empty)."""
    ready = all(observed[c].rolled_out for c in COMPONENTS)
    conditions = [
        _condition("Ready", "True", "AllComponentsReady", "every component is ready", generation)
        if ready
        else _condition(
            "Ready", "False", "ComponentsNotReady", _not_ready_message(observed), generation
        ),
        _availability("PrimaryAvailable", observed["primary"], generation),
        _availability("FallbackAvailable", observed["fallback"], generation),
    ]
    if paused:
        conditions.append(
            _condition("Progressing", "False", "Paused", "spec.paused is true", generation)
        )
    elif ready:
        conditions.append(
            _condition("Progressing", "False", "RolloutComplete", "all rollouts done", generation)
        )
    else:
        conditions.append(
            _condition(
                "Progressing", "True", "RolloutInProgress", _not_ready_message(observed), generation
            )
        )
    serving = observed["router"].serving and (
        observed["fallback"].serving or observed["primary"].serving
    )
    if ready:
        conditions.append(_condition("Degraded", "False", "AsExpected", "", generation))
    elif serving:
        conditions.append(
            _condition(
                "Degraded",
                "True",
                "PartiallyAvailable",
                "requests are served, not every component is ready",
                generation,
            )
        )
    else:
        conditions.append(
            _condition("Degraded", "True", "Unavailable", "the router cannot serve yet", generation)
        )
    return conditions


def invalid_conditions(generation: int, problems: list[str]) -> list[Condition]:
    """Ready=False/InvalidSpec; the other conditions say nothing was changed."""
    message = "; ".join(problems)
    return [
        _condition("Ready", "False", "InvalidSpec", message, generation),
        _condition(
            "Progressing", "False", "InvalidSpec", "nothing applied: " + message, generation
        ),
    ]


def merge_conditions(
    previous: list[Condition], desired: list[Condition], now: str
) -> list[Condition]:
    """Keep lastTransitionTime where status did not change; keep conditions not recomputed."""
    before = {c.type: c for c in previous}
    merged: dict[str, Condition] = {c.type: c for c in previous}
    for cond in desired:
        old = before.get(cond.type)
        when = old.last_transition_time if old is not None and old.status == cond.status else now
        merged[cond.type] = cond.model_copy(update={"last_transition_time": when or now})
    order = {t: i for i, t in enumerate(CONDITION_TYPES)}
    return sorted(merged.values(), key=lambda c: order.get(c.type, len(order)))


def build_status(
    pmd: PizzaModelDeployment,
    mode: Mode,
    observed: Mapping[Component, Observed] | None,
    now: str,
    problems: list[str] | None = None,
) -> PizzaModelDeploymentStatus:
    """The whole status subresource; fields owned by others (errorRate) are kept."""
    generation = pmd.metadata.generation
    previous = pmd.status
    if problems:
        conditions = merge_conditions(
            previous.conditions, invalid_conditions(generation, problems), now
        )
        return previous.model_copy(
            update={"observed_generation": generation, "mode": mode, "conditions": conditions}
        )
    assert observed is not None
    conditions = merge_conditions(
        previous.conditions,
        desired_conditions(generation, observed, paused=pmd.spec.paused),
        now,
    )
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "mode": mode,
            "conditions": conditions,
            "primary": observed["primary"].summary(),
            "fallback": observed["fallback"].summary(),
            "router": observed["router"].summary(),
        }
    )


def condition(status: PizzaModelDeploymentStatus, type_: str) -> Condition | None:
    """The condition of this type, if any."""
    return next((c for c in status.conditions if c.type == type_), None)
