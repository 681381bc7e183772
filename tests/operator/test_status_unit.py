"""Pure status computation and operator-only validation."""

from __future__ import annotations

import dataclasses
from typing import Any, cast

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.images import resolve_images
from pizza_operator.builders.naming import Component
from pizza_operator.conditions import find_condition
from pizza_operator.config import OperatorConfig
from pizza_operator.status import Blocked, Observed, build_status, observe, observe_components
from pizza_operator.validation import find_problems

pytestmark = pytest.mark.unit

READY = Observed(desired=2, ready=2, updated=2, total=2, current=True, exists=True, endpoints=2)

CONFIG = OperatorConfig(cpu_image="cpu:1", gpu_image="gpu:1")


def _observed(**overrides: Observed) -> dict[Component, Observed]:
    base: dict[Component, Observed] = {"primary": READY, "fallback": READY, "router": READY}
    for key, value in overrides.items():
        base[cast(Component, key)] = value
    return base


class TestObserve:
    def test_reads_a_deployment(self) -> None:
        dep = {
            "metadata": {"generation": 3},
            "spec": {"replicas": 2},
            "status": {
                "observedGeneration": 3,
                "readyReplicas": 2,
                "updatedReplicas": 2,
                "replicas": 2,
            },
        }
        assert observe(dep).rolled_out

    def test_old_generation_is_not_rolled_out(self) -> None:
        dep = {
            "metadata": {"generation": 4},
            "spec": {"replicas": 1},
            "status": {
                "observedGeneration": 3,
                "readyReplicas": 1,
                "updatedReplicas": 1,
                "replicas": 1,
            },
        }
        assert not observe(dep).rolled_out

    def test_missing(self) -> None:
        assert not observe(None).exists


def _deployment(component: str, ready: int, **meta: Any) -> dict[str, Any]:
    labels = {"app.kubernetes.io/component": component}
    return {
        "metadata": {"generation": 1, "labels": labels, **meta},
        "spec": {"replicas": 2},
        "status": {"observedGeneration": 1, "readyReplicas": ready},
    }


class TestObserveComponents:
    def test_each_component_from_its_deployment(self) -> None:
        observed = observe_components(
            [_deployment("router", 2), _deployment("primary", 1)], {"router": 2}
        )
        assert observed["router"].ready == 2 and observed["router"].exists
        assert observed["router"].endpoints == 2
        assert observed["primary"].ready == 1 and observed["primary"].endpoints == 0
        assert observed["fallback"] == Observed()  # none: missing

    def test_deployments_of_no_component_are_ignored(self) -> None:
        stray = _deployment("sidecar", 2)
        unlabelled = {"metadata": {}, "spec": {"replicas": 3}}
        observed = observe_components([stray, unlabelled], {})
        assert observed == {c: Observed() for c in ("primary", "fallback", "router")}

    def test_nothing_is_all_missing(self) -> None:
        assert not any(o.exists for o in observe_components([], {}).values())


class TestBuildStatus:
    def test_all_ready(self, pmd: PizzaModelDeployment) -> None:
        status = build_status(pmd, "primary", _observed(), "2026-01-01T00:00:00Z")
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None and ready.status == "True"
        assert ready.observed_generation == 1
        assert status.observed_generation == 1
        assert status.primary is not None and status.primary.summary == "2/2"
        types = [c.type for c in status.conditions]
        assert types == [
            "Ready",
            "PrimaryAvailable",
            "FallbackAvailable",
            "Progressing",
            "Degraded",
        ]

    def test_primary_loading_is_degraded_not_ready(self, pmd: PizzaModelDeployment) -> None:
        loading = Observed(desired=1, ready=0, updated=1, total=1, current=True, exists=True)
        status = build_status(pmd, "primary", _observed(primary=loading), "t")
        assert find_condition(status.conditions, "Ready").status == "False"  # type: ignore[union-attr]
        assert find_condition(status.conditions, "PrimaryAvailable").status == "False"  # type: ignore[union-attr]
        degraded = find_condition(status.conditions, "Degraded")
        assert degraded is not None and degraded.reason == "PartiallyAvailable"
        assert "primary 0/1" in find_condition(status.conditions, "Ready").message  # type: ignore[union-attr]

    def test_pods_still_terminating_after_a_scale_down_are_named_as_such(
        self, pmd: PizzaModelDeployment
    ) -> None:
        draining = Observed(desired=0, ready=1, updated=0, total=1, current=True, exists=True)
        status = build_status(pmd, "stable", _observed(primary=draining), "t")
        message = find_condition(status.conditions, "Ready").message  # type: ignore[union-attr]
        assert message == "waiting for primary 1 pod(s) to terminate, 0 wanted"

    def test_rolled_out_but_no_router_endpoint_is_not_ready(
        self, pmd: PizzaModelDeployment
    ) -> None:
        unlisted = dataclasses.replace(READY, endpoints=0)
        status = build_status(pmd, "primary", _observed(router=unlisted), "t")
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None
        assert (ready.status, ready.reason) == ("False", "EndpointsNotReady")
        assert ready.message.endswith("EndpointSlices of the router Service")
        progressing = find_condition(status.conditions, "Progressing")
        assert progressing is not None and progressing.reason == "RolloutComplete"
        degraded = find_condition(status.conditions, "Degraded")  # nothing reaches the router
        assert degraded is not None and degraded.reason == "Unavailable"

    def test_every_component_with_pods_needs_an_endpoint(self, pmd: PizzaModelDeployment) -> None:
        unlisted = dataclasses.replace(READY, endpoints=0)
        status = build_status(pmd, "primary", _observed(primary=unlisted, fallback=unlisted), "t")
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None and ready.reason == "EndpointsNotReady"
        assert ready.message.endswith("of the primary, fallback Services")
        degraded = find_condition(status.conditions, "Degraded")
        assert degraded is not None and degraded.reason == "Unavailable"

    def test_one_model_listed_serves_partially(self, pmd: PizzaModelDeployment) -> None:
        unlisted = dataclasses.replace(READY, endpoints=0)
        status = build_status(pmd, "primary", _observed(primary=unlisted), "t")
        degraded = find_condition(status.conditions, "Degraded")
        assert degraded is not None and degraded.reason == "PartiallyAvailable"

    def test_a_component_scaled_to_zero_needs_no_endpoint(self, pmd: PizzaModelDeployment) -> None:
        gone = Observed(current=True, exists=True)  # 0 wanted, 0 left, none listed
        status = build_status(pmd, "stable", _observed(primary=gone), "t")
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None and (ready.status, ready.reason) == ("True", "AllComponentsReady")

    def test_just_listed_endpoints_wait_for_kube_proxy(self, body: dict[str, Any]) -> None:
        pmd = PizzaModelDeployment.from_body(body)
        status = build_status(pmd, "primary", _observed(), "t", settling=True)
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None and (ready.status, ready.reason) == ("False", "EndpointsNotReady")
        assert "kube-proxy" in ready.message
        degraded = find_condition(status.conditions, "Degraded")
        assert degraded is not None and degraded.reason == "AsExpected"
        # a resource Ready already stays Ready (a new leader settles again: no flapping)
        body["status"] = build_status(pmd, "primary", _observed(), "t").to_wire()
        again = build_status(PizzaModelDeployment.from_body(body), "primary", _observed(), "u",
                             settling=True)  # fmt: skip
        ready = find_condition(again.conditions, "Ready")
        assert ready is not None and (ready.status, ready.last_transition_time) == ("True", "t")

    def test_endpoints_without_a_rollout_are_not_ready(self, pmd: PizzaModelDeployment) -> None:
        old = Observed(
            desired=2, ready=2, updated=1, total=3, current=True, exists=True, endpoints=2
        )
        status = build_status(pmd, "primary", _observed(router=old), "t")
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None and ready.reason == "ComponentsNotReady"

    def test_transition_time_kept_while_status_unchanged(self, body: dict[str, Any]) -> None:
        pmd = PizzaModelDeployment.from_body(body)
        first = build_status(pmd, "primary", _observed(), "2026-01-01T00:00:00Z")
        body["status"] = first.to_wire()
        again = build_status(PizzaModelDeployment.from_body(body), "primary", _observed(), "later")
        assert again.to_wire() == first.to_wire()

    def test_invalid_spec(self, pmd: PizzaModelDeployment) -> None:
        status = build_status(
            pmd, "primary", None, "t", Blocked("InvalidSpec", ("spec.image: empty",))
        )
        ready = find_condition(status.conditions, "Ready")
        assert ready is not None and ready.reason == "InvalidSpec"
        assert ready.message == "spec.image: empty"

    def test_name_conflict_says_nothing_was_applied(self, body: dict[str, Any]) -> None:
        body["status"] = {"primary": {"readyReplicas": 1, "replicas": 1, "summary": "1/1"}}
        held = ("ConfigMap a-routing exists and is not controlled by this resource", "Service a x")
        pmd = PizzaModelDeployment.from_body(body)
        status = build_status(pmd, "primary", None, "t", Blocked("NameConflict", held))
        ready = find_condition(status.conditions, "Ready")
        progressing = find_condition(status.conditions, "Progressing")
        assert ready is not None and progressing is not None
        assert (ready.status, ready.reason) == ("False", "NameConflict")
        assert ready.message == "; ".join(held)
        assert (progressing.status, progressing.reason) == ("False", "NameConflict")
        assert progressing.message == "nothing applied: " + "; ".join(held)
        assert status.primary is not None and status.primary.summary == "1/1"  # kept
        assert status.observed_generation == 1

    def test_other_fields_are_kept(self, body: dict[str, Any]) -> None:
        body["status"] = {"errorRate": 0.25}
        status = build_status(PizzaModelDeployment.from_body(body), "primary", _observed(), "t")
        assert status.error_rate == 0.25


class TestFindProblems:
    def test_sample_is_fine(self, pmd: PizzaModelDeployment) -> None:
        assert find_problems(pmd, CONFIG) == []

    def test_no_image_anywhere(self, pmd: PizzaModelDeployment) -> None:
        config = OperatorConfig(cpu_image="", gpu_image="")
        assert set(resolve_images(pmd, config).values()) == {""}
        problems = find_problems(pmd, config)
        assert len(problems) == 3
        assert all(p.startswith("spec.image") for p in problems)

    def test_request_above_limit(self, body: dict[str, Any]) -> None:
        body["spec"]["fallback"]["resources"] = {
            "requests": {"memory": "2Gi"},
            "limits": {"memory": "1Gi"},
        }
        problems = find_problems(PizzaModelDeployment.from_body(body), CONFIG)
        assert problems == [
            "spec.fallback.resources.requests.memory: request '2Gi' exceeds limit '1Gi'"
        ]

    def test_gpu_in_primary_resources(self, body: dict[str, Any]) -> None:
        body["spec"]["primary"]["resources"]["limits"]["nvidia.com/gpu"] = 1
        problems = find_problems(PizzaModelDeployment.from_body(body), CONFIG)
        assert problems == ["spec.primary.resources: set nvidia.com/gpu with spec.primary.gpu"]
