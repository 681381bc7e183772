"""Pure builders, without a cluster: one class per builder."""

from __future__ import annotations

from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import (
    build_children,
    build_fallback_deployment,
    build_fallback_service,
    build_pdbs,
    build_primary_deployment,
    build_primary_service,
    build_router_deployment,
    build_router_service,
)
from pizza_operator.builders.images import resolve_images
from pizza_operator.builders.memory import (
    BUDGET_ENV,
    MIB,
    MIN_BUDGET_BYTES,
    memory_budget_bytes,
    quantity_bytes,
)
from pizza_operator.builders.naming import Component, owned_selector, owner_of
from pizza_operator.builders.routing import build_router_rbac, build_routing_configmap
from pizza_operator.config import OperatorConfig

pytestmark = pytest.mark.unit
IMAGE = "registry.example/pizza:1"
IMAGES: dict[Component, str] = {"primary": IMAGE, "fallback": IMAGE, "router": IMAGE}
CONFIG = OperatorConfig(cpu_image="cpu:1", gpu_image="gpu:1")


def _env(deployment: dict[str, Any]) -> dict[str, str]:
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    return {e["name"]: e.get("value", "") for e in container["env"]}


def _container(deployment: dict[str, Any]) -> dict[str, Any]:
    container: dict[str, Any] = deployment["spec"]["template"]["spec"]["containers"][0]
    return container


def _assert_restricted(deployment: dict[str, Any]) -> None:
    pod = deployment["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["runAsUser"] == 65532
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        sc = container["securityContext"]
        assert sc["allowPrivilegeEscalation"] is False
        assert sc["readOnlyRootFilesystem"] is True
        assert sc["capabilities"] == {"drop": ["ALL"]}
    assert {"name": "tmp", "mountPath": "/tmp"} in pod["containers"][0]["volumeMounts"]
    router = deployment["metadata"]["labels"]["app.kubernetes.io/component"] == "router"
    assert pod["automountServiceAccountToken"] is router  # only the router talks to the API


def _with(pmd_body: dict[str, Any], path: str, value: Any) -> PizzaModelDeployment:
    node = pmd_body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return PizzaModelDeployment.from_body(pmd_body)


class TestBuildPrimaryDeployment:
    def test_gpu_requests_limits_and_toleration(self, pmd: PizzaModelDeployment) -> None:
        dep = build_primary_deployment(pmd, IMAGE, "primary")
        res = _container(dep)["resources"]
        assert res["limits"]["nvidia.com/gpu"] == "1"
        assert res["requests"]["nvidia.com/gpu"] == "1"
        assert res["requests"]["cpu"] == "4"
        tolerations = dep["spec"]["template"]["spec"]["tolerations"]
        assert {
            "key": "nvidia.com/gpu",
            "operator": "Exists",
            "effect": "NoSchedule",
        } in tolerations

    def test_rollout_cannot_deadlock_on_gpus(self, pmd: PizzaModelDeployment) -> None:
        strategy = build_primary_deployment(pmd, IMAGE, "primary")["spec"]["strategy"]
        assert strategy["type"] == "Recreate" or strategy["rollingUpdate"]["maxSurge"] == 0

    def test_startup_probe_sized_by_timeout(self, body: dict[str, Any]) -> None:
        pmd = _with(body, "spec.primary.startupTimeoutSeconds", 1200)
        probe = _container(build_primary_deployment(pmd, IMAGE, "primary"))["startupProbe"]
        assert probe["periodSeconds"] * probe["failureThreshold"] >= 1200
        assert probe["httpGet"] == {"path": "/v2/health/ready", "port": "http"}

    def test_probes_and_port(self, pmd: PizzaModelDeployment) -> None:
        container = _container(build_primary_deployment(pmd, IMAGE, "primary"))
        assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
        assert container["readinessProbe"]["httpGet"]["path"] == "/v2/health/ready"
        assert container["ports"] == [{"name": "http", "containerPort": 8001, "protocol": "TCP"}]

    def test_environment_follows_the_contract(self, pmd: PizzaModelDeployment) -> None:
        dep = build_primary_deployment(pmd, IMAGE, "primary")
        env = _env(dep)
        assert env["PIZZA_BACKEND"] == "vlm"
        assert env["PIZZA_SOURCE"] == "hf://Diankun/Spatial-MLLM-subset-sft"
        assert env["PIZZA_PRECISION"] == "float16"
        assert env["PIZZA_MODEL_NAME"] == "spatial-mllm"
        assert env["PIZZA_PORT"] == "8001"
        assert _container(dep)["args"] == ["model"]
        assert _container(dep)["image"] == IMAGE

    def test_user_placement_is_kept(self, body: dict[str, Any]) -> None:
        body["spec"]["primary"]["nodeSelector"] = {"pool": "a100"}
        body["spec"]["primary"]["tolerations"] = [{"key": "dedicated", "operator": "Exists"}]
        pod = build_primary_deployment(PizzaModelDeployment.from_body(body), IMAGE, "primary")
        spec = pod["spec"]["template"]["spec"]
        assert spec["nodeSelector"] == {"pool": "a100"}
        assert {"key": "dedicated", "operator": "Exists"} in spec["tolerations"]

    def test_pvc_source_is_mounted_read_only(self, body: dict[str, Any]) -> None:
        pmd = _with(body, "spec.primary.model.source", "pvc://weights/spatial")
        pod = build_primary_deployment(pmd, IMAGE, "primary")["spec"]["template"]["spec"]
        assert {
            "name": "weights",
            "persistentVolumeClaim": {"claimName": "weights", "readOnly": True},
        } in pod["volumes"]
        assert {"name": "weights", "mountPath": "/models/weights", "readOnly": True} in pod[
            "containers"
        ][0]["volumeMounts"]

    def test_restricted_and_labelled(self, pmd: PizzaModelDeployment) -> None:
        dep = build_primary_deployment(pmd, IMAGE, "primary")
        _assert_restricted(dep)
        labels = dep["metadata"]["labels"]
        assert labels["app.kubernetes.io/instance"] == "pizza-classifier"
        assert labels["app.kubernetes.io/component"] == "primary"
        assert labels["app.kubernetes.io/managed-by"] == "pizza-operator"
        assert labels["app.kubernetes.io/name"]
        assert dep["metadata"]["name"] == "pizza-classifier-primary"

    def test_scaled_to_zero_outside_primary_mode(self, pmd: PizzaModelDeployment) -> None:
        assert build_primary_deployment(pmd, IMAGE, "primary")["spec"]["replicas"] == 1
        assert build_primary_deployment(pmd, IMAGE, "stable")["spec"]["replicas"] == 0
        assert build_primary_deployment(pmd, IMAGE, "emergency")["spec"]["replicas"] == 0

    def test_model_change_changes_pod_template(self, body: dict[str, Any]) -> None:
        before = build_primary_deployment(PizzaModelDeployment.from_body(body), IMAGE, "primary")
        after = build_primary_deployment(
            _with(body, "spec.primary.model.name", "spatial-mllm-v2"), IMAGE, "primary"
        )
        assert before["spec"]["template"] != after["spec"]["template"]


class TestBuildFallbackDeployment:
    def test_cpu_only(self, pmd: PizzaModelDeployment) -> None:
        dep = build_fallback_deployment(pmd, IMAGE, "primary")
        pod = dep["spec"]["template"]["spec"]
        assert "nvidia.com/gpu" not in str(pod)
        assert _env(dep)["PIZZA_DEVICE"] == "cpu"
        assert _env(dep)["PIZZA_PRECISION"] == "int8"
        assert dep["spec"]["replicas"] == 2

    def test_restricted(self, pmd: PizzaModelDeployment) -> None:
        _assert_restricted(build_fallback_deployment(pmd, IMAGE, "primary"))

    def test_modes(self, body: dict[str, Any]) -> None:
        body["spec"]["rollback"] = {"emergency": {"replicas": 1}, "stable": {"fallbackReplicas": 4}}
        pmd = PizzaModelDeployment.from_body(body)
        assert build_fallback_deployment(pmd, IMAGE, "stable")["spec"]["replicas"] == 4
        assert build_fallback_deployment(pmd, IMAGE, "emergency")["spec"]["replicas"] == 1

    def test_emergency_runs_the_emergency_spec(self, body: dict[str, Any]) -> None:
        pmd = PizzaModelDeployment.from_body(body)
        dep = build_fallback_deployment(pmd, IMAGE, "emergency")
        assert _container(dep)["resources"]["requests"] == {"cpu": "2", "memory": "4Gi"}
        assert _env(dep)["PIZZA_MODEL_NAME"] == pmd.spec.fallback.model.name
        body["spec"]["rollback"] = {
            "emergency": {
                "image": "registry.example/minimal:1",
                "model": {"name": "tiny", "backend": "onnx", "source": "builtin://tiny"},
                "resources": {"requests": {"cpu": "250m"}},
                "replicas": 3,
            }
        }
        pmd = PizzaModelDeployment.from_body(body)
        dep = build_fallback_deployment(pmd, IMAGE, "emergency")
        assert _container(dep)["image"] == "registry.example/minimal:1"
        assert _env(dep)["PIZZA_MODEL_NAME"] == "tiny"
        assert _container(dep)["resources"] == {"requests": {"cpu": "250m"}}
        assert dep["spec"]["replicas"] == 3
        assert _container(build_fallback_deployment(pmd, IMAGE, "stable"))["image"] == IMAGE

    def test_stable_keeps_one_primary_pod_when_asked(self, body: dict[str, Any]) -> None:
        body["spec"]["primary"]["replicas"] = 3
        pmd = PizzaModelDeployment.from_body(body)
        assert build_primary_deployment(pmd, IMAGE, "stable")["spec"]["replicas"] == 0
        assert build_primary_deployment(pmd, IMAGE, "previous")["spec"]["replicas"] == 3
        body["spec"]["rollback"] = {"stable": {"keepPrimaryPods": True}}
        pmd = PizzaModelDeployment.from_body(body)
        assert build_primary_deployment(pmd, IMAGE, "stable")["spec"]["replicas"] == 1
        assert build_primary_deployment(pmd, IMAGE, "emergency")["spec"]["replicas"] == 0


class TestBuildRouterDeployment:
    def test_environment(self, pmd: PizzaModelDeployment) -> None:
        dep = build_router_deployment(pmd, IMAGE, "primary")
        env = _env(dep)
        assert env["PIZZA_PRIMARY_URL"] == "http://pizza-classifier-primary:8001"
        assert env["PIZZA_FALLBACK_URL"] == "http://pizza-classifier-fallback:8001"
        assert env["PIZZA_ROUTER_MODE_CONFIGMAP"] == "pizza-classifier-routing"
        assert "PIZZA_ROUTER_MODE" not in env
        assert env["PIZZA_PRIMARY_TIMEOUT_SECONDS"] == "5"
        assert env["PIZZA_RATE_LIMIT_PER_MINUTE"] == "100"
        assert env["PIZZA_AB_PRIMARY_PERCENT"] == "100"
        assert _container(dep)["args"] == ["router"]

    def test_a_mode_change_is_no_router_rollout(self, pmd: PizzaModelDeployment) -> None:
        templates = [
            build_router_deployment(pmd, IMAGE, mode)["spec"]["template"]
            for mode in ("primary", "previous", "stable", "emergency")
        ]
        assert all(t == templates[0] for t in templates)

    def test_mode_reaches_router_through_its_configmap(self, pmd: PizzaModelDeployment) -> None:
        stable = build_routing_configmap(pmd, "stable")["data"]
        assert stable == {"mode": "stable", "primary": "awake"}
        previous = build_routing_configmap(pmd, "previous")["data"]
        assert previous == {"mode": "primary", "primary": "awake"}
        assert build_routing_configmap(pmd, "emergency")["metadata"]["name"] == (
            "pizza-classifier-routing"
        )

    def test_router_may_read_only_its_configmap(self, pmd: PizzaModelDeployment) -> None:
        account, role, binding = build_router_rbac(pmd)
        assert role["rules"] == [
            {
                "apiGroups": [""],
                "resources": ["configmaps"],
                "resourceNames": ["pizza-classifier-routing"],
                "verbs": ["get", "list", "watch"],
            }
        ]
        assert binding["subjects"][0]["name"] == account["metadata"]["name"]
        pod = build_router_deployment(pmd, IMAGE, "primary")["spec"]["template"]["spec"]
        assert pod["serviceAccountName"] == account["metadata"]["name"]
        assert pod["automountServiceAccountToken"] is True
        other = build_fallback_deployment(pmd, IMAGE, "primary")["spec"]["template"]["spec"]
        assert other["automountServiceAccountToken"] is False

    def test_restricted(self, pmd: PizzaModelDeployment) -> None:
        _assert_restricted(build_router_deployment(pmd, IMAGE, "primary"))


class TestMemoryBudget:
    """Each server's memory budget: half of what its memory limit leaves after its baseline."""

    def test_derived_from_each_components_memory_limit(self, pmd: PizzaModelDeployment) -> None:
        router = _env(build_router_deployment(pmd, IMAGE, "primary"))
        fallback = _env(build_fallback_deployment(pmd, IMAGE, "primary"))
        primary = _env(build_primary_deployment(pmd, IMAGE, "primary"))
        emergency = _env(build_fallback_deployment(pmd, IMAGE, "emergency"))
        assert router[BUDGET_ENV] == str((256 - 96) // 2 * MIB)  # 256Mi router: 80 MiB
        assert fallback[BUDGET_ENV] == str((1024 - 640) // 2 * MIB)  # 1Gi cnn: 192 MiB
        assert primary[BUDGET_ENV] == str((16384 - 4096) // 2 * MIB)  # 16Gi vlm: 6 GiB
        assert emergency[BUDGET_ENV] == str((4096 - 640) // 2 * MIB)  # 4Gi cnn: 1728 MiB

    def test_follows_the_backend_and_the_limit(self, body: dict[str, Any]) -> None:
        body["spec"]["fallback"]["model"]["backend"] = "onnx"
        body["spec"]["fallback"]["resources"]["limits"] = {"memory": "2G"}
        env = _env(
            build_fallback_deployment(PizzaModelDeployment.from_body(body), IMAGE, "primary")
        )
        assert env[BUDGET_ENV] == str((2 * 10**9 - 128 * MIB) // 2)

    def test_no_memory_limit_keeps_the_servers_default(self, body: dict[str, Any]) -> None:
        body["spec"]["router"]["resources"] = {"requests": {"memory": "128Mi"}}
        env = _env(build_router_deployment(PizzaModelDeployment.from_body(body), IMAGE, "primary"))
        assert BUDGET_ENV not in env

    def test_a_limit_under_the_baseline_gets_the_minimum(self) -> None:
        assert memory_budget_bytes(64 * MIB, "router") == MIN_BUDGET_BYTES
        assert memory_budget_bytes(0, "cnn") == MIN_BUDGET_BYTES

    @pytest.mark.parametrize(
        ("quantity", "expected"),
        [
            ("256Mi", 256 * MIB),
            ("1Gi", 1024 * MIB),
            ("1.5Gi", 1536 * MIB),
            ("2G", 2 * 10**9),
            ("500M", 500 * 10**6),
            ("1e9", 10**9),
            ("128974848", 128974848),
            (1073741824, 1073741824),
            ("1500m", 1),
        ],
    )
    def test_quantities(self, quantity: int | str, expected: int) -> None:
        assert quantity_bytes(quantity) == expected

    def test_not_a_quantity(self) -> None:
        with pytest.raises(ValueError, match="not a quantity"):
            quantity_bytes("lots")


class TestBuildServices:
    def test_router_service_is_named_like_the_resource(self, pmd: PizzaModelDeployment) -> None:
        svc = build_router_service(pmd)
        assert svc["metadata"]["name"] == "pizza-classifier"
        assert svc["spec"]["selector"]["app.kubernetes.io/component"] == "router"
        assert svc["spec"]["ports"][0]["port"] == 8001
        assert svc["spec"]["ports"][0]["targetPort"] == "http"

    def test_primary_and_fallback(self, pmd: PizzaModelDeployment) -> None:
        assert build_primary_service(pmd)["metadata"]["name"] == "pizza-classifier-primary"
        assert build_fallback_service(pmd)["metadata"]["name"] == "pizza-classifier-fallback"

    def test_selector_matches_pods(self, pmd: PizzaModelDeployment) -> None:
        svc = build_fallback_service(pmd)
        pod_labels = build_fallback_deployment(pmd, IMAGE, "primary")["spec"]["template"][
            "metadata"
        ]["labels"]
        assert svc["spec"]["selector"].items() <= pod_labels.items()


class TestBuildPdbs:
    def test_only_where_more_than_one_replica(self, pmd: PizzaModelDeployment) -> None:
        names = [p["metadata"]["name"] for p in build_pdbs(pmd, "primary")]
        assert names == ["pizza-classifier-fallback", "pizza-classifier-router"]

    def test_primary_with_two_replicas(self, body: dict[str, Any]) -> None:
        pmd = _with(body, "spec.primary.replicas", 2)
        pdbs = build_pdbs(pmd, "primary")
        assert pdbs[0]["metadata"]["name"] == "pizza-classifier-primary"
        assert pdbs[0]["spec"]["maxUnavailable"] == 1

    def test_emergency_has_no_fallback_pdb(self, pmd: PizzaModelDeployment) -> None:
        names = [p["metadata"]["name"] for p in build_pdbs(pmd, "emergency")]
        assert names == ["pizza-classifier-router"]


class TestBuildChildren:
    def test_every_child_is_namespaced_and_labelled(self, pmd: PizzaModelDeployment) -> None:
        children = build_children(pmd, IMAGES, "primary")
        kinds = [c["kind"] for c in children]
        assert kinds[:4] == ["ServiceAccount", "Role", "RoleBinding", "ConfigMap"]
        assert len(children) == 15
        for child in children:
            assert child["metadata"]["namespace"] == "pizzas"
            assert child["metadata"]["labels"]["app.kubernetes.io/managed-by"] == "pizza-operator"

    def test_pure(self, pmd: PizzaModelDeployment) -> None:
        assert build_children(pmd, IMAGES, "primary") == build_children(pmd, IMAGES, "primary")


class TestPrimaryDevice:
    @pytest.mark.parametrize(
        ("backend", "gpu", "device"),
        [
            ("vlm", 1, "cuda"),
            ("onnx", 1, "auto"),
            ("onnx", 0, "cpu"),
            ("image-classifier", 0, "cpu"),
        ],
    )
    def test_device_env(self, body: dict[str, Any], backend: str, gpu: int, device: str) -> None:
        body["spec"]["primary"]["model"]["backend"] = backend
        body["spec"]["primary"]["model"]["precision"] = "float32"
        body["spec"]["primary"]["gpu"] = gpu
        env = _container(
            build_primary_deployment(PizzaModelDeployment.from_body(body), IMAGE, "primary")
        )["env"]
        assert {"name": "PIZZA_DEVICE", "value": device} in env


def test_replicaset_history_is_not_the_rollback_history(body: dict[str, Any]) -> None:
    body["spec"]["rollback"] = {"revisionHistoryLimit": 25}
    dep = build_fallback_deployment(PizzaModelDeployment.from_body(body), IMAGE, "primary")
    assert dep["spec"]["revisionHistoryLimit"] == 2


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

    def test_no_image_anywhere_is_empty(self, pmd: PizzaModelDeployment) -> None:
        config = OperatorConfig(cpu_image=" ", gpu_image="")
        assert resolve_images(pmd, config) == {"primary": "", "fallback": "", "router": ""}


class TestOwnership:
    def test_owned_selector_matches_every_child(self, pmd: PizzaModelDeployment) -> None:
        selector = owned_selector(pmd.metadata.name)
        assert selector == {
            "app.kubernetes.io/instance": "pizza-classifier",
            "app.kubernetes.io/managed-by": "pizza-operator",
        }
        for child in build_children(pmd, IMAGES, "primary"):
            assert selector.items() <= child["metadata"]["labels"].items()

    def test_owner_of_names_the_resource(self, pmd: PizzaModelDeployment) -> None:
        assert owner_of(pmd) == {
            "apiVersion": "pizza.ai/v1alpha1",
            "kind": "PizzaModelDeployment",
            "metadata": {"name": "pizza-classifier", "namespace": "pizzas", "uid": "uid-1"},
        }
