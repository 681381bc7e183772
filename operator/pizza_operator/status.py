"""Pure status computation: the live Deployments -> observations -> conditions, following the
API conventions (the conditions themselves are made and merged by `conditions`)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from typing import Any

from pizza_operator.api.v1alpha1 import (
    ComponentStatus,
    Condition,
    Mode,
    PizzaModelDeployment,
    PizzaModelDeploymentStatus,
)
from pizza_operator.builders.naming import COMPONENTS, Component
from pizza_operator.conditions import merge_conditions, new_condition
from pizza_operator.contract import COMPONENT_LABEL, ENDPOINTS_NOT_READY, BlockedReason


@dataclasses.dataclass(frozen=True)
class Blocked:
    """Why a reconcile applied nothing: the reason (`InvalidSpec`, `NameConflict`) and the
    problems, each naming a field or a child."""

    reason: BlockedReason
    problems: tuple[str, ...]

    @property
    def message(self) -> str:
        return "; ".join(self.problems)


@dataclasses.dataclass(frozen=True)
class Observed:
    """What one Deployment reports."""

    desired: int = 0
    ready: int = 0
    updated: int = 0
    total: int = 0
    current: bool = False  # the controller has seen the latest spec
    exists: bool = False
    endpoints: int = 0  # ready endpoints the component's Service lists (`endpoints.py`)

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

    @property
    def reachable(self) -> bool:
        """No pods wanted, or its Service lists a ready endpoint, so kube-proxy has somewhere to
        send a client (a Service without one refuses the connection)."""
        return self.desired == 0 or self.endpoints >= 1

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


def component_of(obj: Mapping[str, Any]) -> Component | None:
    """The component a child serves, by its component label (None: not one of the three)."""
    value = obj.get("metadata", {}).get("labels", {}).get(COMPONENT_LABEL, "")
    return next((c for c in COMPONENTS if c == value), None)


def observe_components(
    deployments: Iterable[Mapping[str, Any]], endpoints: Mapping[Component, int]
) -> dict[Component, Observed]:
    """What each component's Deployment reports, from the live Deployments (as the API server
    returns them, by their component label), with the ready endpoints of its Service
    (`endpoints.endpoints_by_component`); a component without a Deployment is missing. The one
    way the reconcile observes its children: paused, after applying, and on refresh."""
    observed: dict[Component, Observed] = {c: Observed() for c in COMPONENTS}
    for deployment in deployments:
        component = component_of(deployment)
        if component is not None:
            observed[component] = observe(deployment)
    return {c: dataclasses.replace(o, endpoints=endpoints.get(c, 0)) for c, o in observed.items()}


def _availability(name: str, observed: Observed, generation: int) -> Condition:
    if observed.desired == 0:
        return new_condition(
            name, "False", "ScaledDown", "no replicas wanted in this mode", generation
        )
    if observed.serving:
        return new_condition(
            name,
            "True",
            "MinimumReplicasAvailable",
            f"{observed.ready}/{observed.desired} pods ready",
            generation,
        )
    return new_condition(
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


def _serves(observed: Observed) -> bool:
    """A pod is ready and its Service lists it."""
    return observed.serving and observed.endpoints >= 1


def _ready(
    generation: int,
    observed: Mapping[Component, Observed],
    *,
    rolled_out: bool,
    ready: bool,
    settling: bool,
) -> Condition:
    if ready and settling:
        message = "every Service lists a ready endpoint; waiting for kube-proxy to program them"
        return new_condition("Ready", "False", ENDPOINTS_NOT_READY, message, generation)
    if ready:
        return new_condition(
            "Ready", "True", "AllComponentsReady", "every component is ready", generation
        )
    if rolled_out:
        waiting = [c for c in COMPONENTS if not observed[c].reachable]
        services = ", ".join(waiting) + (" Services" if len(waiting) > 1 else " Service")
        message = (
            f"rolled out; waiting for a ready endpoint in the EndpointSlices of the {services}"
        )
        return new_condition("Ready", "False", ENDPOINTS_NOT_READY, message, generation)
    return new_condition(
        "Ready", "False", "ComponentsNotReady", _not_ready_message(observed), generation
    )


def desired_conditions(
    generation: int,
    observed: Mapping[Component, Observed],
    *,
    paused: bool = False,
    settling: bool = False,
) -> list[Condition]:
    """The five conditions for these observations (lastTransitionTime still empty). Ready:
    every component rolled out and the Service of each that runs pods lists a ready endpoint,
    and (`settling` False) kube-proxy had its time to program them; Progressing: the rollouts
    alone."""
    rolled_out = all(observed[c].rolled_out for c in COMPONENTS)
    ready = rolled_out and all(observed[c].reachable for c in COMPONENTS)
    conditions = [
        _ready(generation, observed, rolled_out=rolled_out, ready=ready, settling=settling),
        _availability("PrimaryAvailable", observed["primary"], generation),
        _availability("FallbackAvailable", observed["fallback"], generation),
    ]
    if paused:
        conditions.append(
            new_condition("Progressing", "False", "Paused", "spec.paused is true", generation)
        )
    elif rolled_out:
        conditions.append(
            new_condition(
                "Progressing", "False", "RolloutComplete", "all rollouts done", generation
            )
        )
    else:
        conditions.append(
            new_condition(
                "Progressing", "True", "RolloutInProgress", _not_ready_message(observed), generation
            )
        )
    serving = _serves(observed["router"]) and (
        _serves(observed["fallback"]) or _serves(observed["primary"])
    )
    if ready:  # settling or not: every part serves
        conditions.append(new_condition("Degraded", "False", "AsExpected", "", generation))
    elif serving:
        conditions.append(
            new_condition(
                "Degraded",
                "True",
                "PartiallyAvailable",
                "requests are served, not every component is ready",
                generation,
            )
        )
    else:
        conditions.append(
            new_condition(
                "Degraded", "True", "Unavailable", "the router cannot serve yet", generation
            )
        )
    return conditions


def blocked_conditions(generation: int, blocked: Blocked) -> list[Condition]:
    """Ready=False and Progressing=False with the blocked reason (InvalidSpec, NameConflict);
    the other conditions say nothing was changed."""
    message = blocked.message
    return [
        new_condition("Ready", "False", blocked.reason, message, generation),
        new_condition(
            "Progressing", "False", blocked.reason, "nothing applied: " + message, generation
        ),
    ]


def build_status(
    pmd: PizzaModelDeployment,
    mode: Mode,
    observed: Mapping[Component, Observed] | None,
    now: str,
    blocked: Blocked | None = None,
    *,
    settling: bool = False,
) -> PizzaModelDeploymentStatus:
    """The whole status subresource; fields owned by others (errorRate) are kept. `blocked`:
    nothing was applied, the component summaries stay as they were. `settling`: the Services
    listed their endpoints only just now (`refresher.Settling`); a resource Ready already stays
    so."""
    generation = pmd.metadata.generation
    previous = pmd.status
    if blocked is not None:
        conditions = merge_conditions(
            previous.conditions, blocked_conditions(generation, blocked), now
        )
        return previous.model_copy(
            update={"observed_generation": generation, "mode": mode, "conditions": conditions}
        )
    assert observed is not None
    was_ready = any(c.type == "Ready" and c.status == "True" for c in previous.conditions)
    desired = desired_conditions(
        generation, observed, paused=pmd.spec.paused, settling=settling and not was_ready
    )
    conditions = merge_conditions(previous.conditions, desired, now)
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
