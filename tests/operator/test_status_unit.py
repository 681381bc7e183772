"""Pure status computation and operator-only validation."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.naming import Component
from pizza_operator.config import OperatorConfig
from pizza_operator.status import Observed, build_status, condition, observe
from pizza_operator.validation import find_problems, resolve_images

pytestmark = pytest.mark.unit

READY = Observed(desired=2, ready=2, updated=2, total=2, current=True, exists=True)

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


class TestBuildStatus:
    def test_all_ready(self, pmd: PizzaModelDeployment) -> None:
        status = build_status(pmd, "primary", _observed(), "2026-01-01T00:00:00Z")
        ready = condition(status, "Ready")
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
        assert condition(status, "Ready").status == "False"  # type: ignore[union-attr]
        assert condition(status, "PrimaryAvailable").status == "False"  # type: ignore[union-attr]
        degraded = condition(status, "Degraded")
        assert degraded is not None and degraded.reason == "PartiallyAvailable"
        assert "primary 0/1" in condition(status, "Ready").message  # type: ignore[union-attr]

    def test_pods_still_terminating_after_a_scale_down_are_named_as_such(
        self, pmd: PizzaModelDeployment
    ) -> None:
        draining = Observed(desired=0, ready=1, updated=0, total=1, current=True, exists=True)
        status = build_status(pmd, "stable", _observed(primary=draining), "t")
        message = condition(status, "Ready").message  # type: ignore[union-attr]
        assert message == "waiting for primary 1 pod(s) to terminate, 0 wanted"

    def test_transition_time_kept_while_status_unchanged(self, body: dict[str, Any]) -> None:
        pmd = PizzaModelDeployment.from_body(body)
        first = build_status(pmd, "primary", _observed(), "2026-01-01T00:00:00Z")
        body["status"] = first.to_wire()
        again = build_status(PizzaModelDeployment.from_body(body), "primary", _observed(), "later")
        assert again.to_wire() == first.to_wire()

    def test_invalid_spec(self, pmd: PizzaModelDeployment) -> None:
        status = build_status(pmd, "primary", None, "t", ["spec.image: empty"])
        ready = condition(status, "Ready")
        assert ready is not None and ready.reason == "InvalidSpec"
        assert ready.message == "spec.image: empty"

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


class TestResolveImages:
    def test_light_image_for_router_and_onnx_models(self, body: dict[str, Any]) -> None:
        body["spec"]["fallback"]["model"]["backend"] = "onnx"
        images = resolve_images(PizzaModelDeployment.from_body(body), CONFIG)
        assert images == {"primary": "gpu:1", "fallback": "cpu:1", "router": "cpu:1"}

    def test_torch_image_for_torch_backends(self, body: dict[str, Any]) -> None:
        body["spec"]["primary"]["model"]["backend"] = "image-classifier"
        body["spec"]["fallback"]["model"]["backend"] = "cnn"
        images = resolve_images(PizzaModelDeployment.from_body(body), CONFIG)
        assert images["primary"] == images["fallback"] == "gpu:1"

    def test_operator_default_image_overrides_both(self, pmd: PizzaModelDeployment) -> None:
        config = OperatorConfig(cpu_image="cpu:1", gpu_image="gpu:1", default_image="one:1")
        assert set(resolve_images(pmd, config).values()) == {"one:1"}

    def test_spec_image_overrides_everything(self, body: dict[str, Any]) -> None:
        body["spec"]["image"] = "mine:2"
        config = OperatorConfig(default_image="one:1")
        images = resolve_images(PizzaModelDeployment.from_body(body), config)
        assert set(images.values()) == {"mine:2"}

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
