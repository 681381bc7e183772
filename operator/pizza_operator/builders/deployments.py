"""The three Deployments: GPU primary, CPU fallback, router."""

from __future__ import annotations

from typing import Any

from pizza_operator.api.v1alpha1 import GPU_RESOURCE, Mode, PizzaModelDeployment
from pizza_operator.builders.memory import memory_budget_env
from pizza_operator.builders.modes import desired_replicas
from pizza_operator.builders.naming import (
    PORT,
    Component,
    child_name,
    labels,
    selector_labels,
    service_name,
)
from pizza_operator.builders.pod import (
    LIVE_PATH,
    model_env,
    pod_template,
    resources_dict,
    server_env,
    tolerations_list,
)
from pizza_operator.builders.routing import router_account, routing_name

REPLICASET_HISTORY = 2
"""Old ReplicaSets each Deployment keeps. The operator's own revision history, which rollback
uses, is bounded by spec.rollback.revisionHistoryLimit, not by this."""

ROUTER_STARTUP_SECONDS = 120
"""How long a router process may take to listen (35 s seen on a loaded 2-core node) before the
kubelet restarts it; its liveness probe only runs after that (it killed slow starters)."""

GPU_TOLERATION = {"key": GPU_RESOURCE, "operator": "Exists", "effect": "NoSchedule"}


def _deployment(
    pmd: PizzaModelDeployment,
    component: Component,
    replicas: int | None,
    strategy: dict[str, Any],
    template: dict[str, Any],
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "revisionHistoryLimit": REPLICASET_HISTORY,
        "selector": {"matchLabels": selector_labels(pmd, component)},
        "strategy": strategy,
        "template": template,
    }
    if replicas is not None:  # None: the user's own autoscaler owns the count
        spec = {"replicas": replicas, **spec}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {
            "name": child_name(pmd, component),
            "namespace": pmd.metadata.namespace,
            "labels": labels(pmd, component),
        },
        "spec": spec,
    }


def build_primary_deployment(pmd: PizzaModelDeployment, image: str, mode: Mode) -> dict[str, Any]:
    """GPU pods: GPU requests, the GPU toleration, a startup probe sized for slow model loads,
    and maxSurge 0 so a rollout never waits for a GPU the old pod still holds."""
    primary = pmd.spec.primary
    gpu = {GPU_RESOURCE: str(primary.gpu)} if primary.gpu > 0 else {}
    tolerations = tolerations_list(primary.tolerations)
    if primary.gpu > 0 and GPU_TOLERATION not in tolerations:
        tolerations = [GPU_TOLERATION, *tolerations]
    template = pod_template(
        labels=labels(pmd, "primary"),
        image=image,
        args=["model"],
        env=model_env(primary.model, _primary_device(pmd), primary.resources),
        resources=resources_dict(primary.resources, gpu),
        model=primary.model,
        startup_timeout_seconds=primary.startup_timeout_seconds,
        node_selector=primary.node_selector,
        tolerations=tolerations,
    )
    strategy = {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": 0, "maxUnavailable": 1}}
    return _deployment(pmd, "primary", desired_replicas(pmd, mode, "primary"), strategy, template)


def _primary_device(pmd: PizzaModelDeployment) -> str:
    """cuda for the torch backends on GPUs; onnx takes ONNX Runtime's CUDA provider where the
    image has one (auto), else runs on CPU; no GPU asked: cpu."""
    primary = pmd.spec.primary
    if primary.gpu == 0:
        return "cpu"
    return "auto" if primary.model.backend == "onnx" else "cuda"


def _zero_downtime() -> dict[str, Any]:
    return {"type": "RollingUpdate", "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}


def build_fallback_deployment(pmd: PizzaModelDeployment, image: str, mode: Mode) -> dict[str, Any]:
    """CPU pods of the INT8 CNN, spread over nodes, no GPU toleration (so never on GPU nodes).

    In emergency mode the same Deployment runs the emergency spec: a minimal server whose image,
    model and resources the user may override (default: the fallback's, sized 2 CPU / 4 GiB)."""
    fallback = pmd.spec.fallback
    model, resources = fallback.model, fallback.resources
    if mode == "emergency":
        emergency = pmd.spec.rollback.emergency
        model, resources = emergency.model or model, emergency.resources
        image = emergency.image or image
    template = pod_template(
        labels=labels(pmd, "fallback"),
        image=image,
        args=["model"],
        env=model_env(model, "cpu", resources),
        resources=resources_dict(resources),
        model=model,
        startup_timeout_seconds=300,
        node_selector=fallback.node_selector,
        tolerations=tolerations_list(fallback.tolerations),
    )
    template["spec"]["topologySpreadConstraints"] = [_spread(pmd, "fallback")]
    return _deployment(
        pmd, "fallback", desired_replicas(pmd, mode, "fallback"), _zero_downtime(), template
    )


def build_router_deployment(pmd: PizzaModelDeployment, image: str, mode: Mode) -> dict[str, Any]:
    """The entry point: forwards to the primary, falls back per request."""
    router = pmd.spec.router
    url = "http://{}:" + str(PORT)
    env: list[dict[str, Any]] = [
        {"name": "PIZZA_PRIMARY_URL", "value": url.format(service_name(pmd, "primary"))},
        {"name": "PIZZA_FALLBACK_URL", "value": url.format(service_name(pmd, "fallback"))},
        # the mode comes live from this ConfigMap (no rollout when it changes); see routing.py
        {"name": "PIZZA_ROUTER_MODE_CONFIGMAP", "value": routing_name(pmd)},
        {
            "name": "PIZZA_NAMESPACE",
            "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}},
        },
        {"name": "PIZZA_PRIMARY_TIMEOUT_SECONDS", "value": _number(router.primary_timeout_seconds)},
        {"name": "PIZZA_RATE_LIMIT_PER_MINUTE", "value": str(router.rate_limit_per_minute)},
        {"name": "PIZZA_AB_PRIMARY_PERCENT", "value": str(router.ab_test.primary_percent)},
        *memory_budget_env(router.resources, "router"),
        *server_env(),
    ]
    template = pod_template(
        labels=labels(pmd, "router"),
        image=image,
        args=["router"],
        env=env,
        resources=resources_dict(router.resources),
        startup_timeout_seconds=ROUTER_STARTUP_SECONDS,
        startup_path=LIVE_PATH,
        node_selector=router.node_selector,
        tolerations=tolerations_list(router.tolerations),
    )
    template["spec"]["topologySpreadConstraints"] = [_spread(pmd, "router")]
    template["spec"]["serviceAccountName"] = router_account(pmd)
    template["spec"]["automountServiceAccountToken"] = True  # to watch its routing ConfigMap
    return _deployment(
        pmd, "router", desired_replicas(pmd, mode, "router"), _zero_downtime(), template
    )


def _spread(pmd: PizzaModelDeployment, component: Component) -> dict[str, Any]:
    return {
        "maxSkew": 1,
        "topologyKey": "kubernetes.io/hostname",
        "whenUnsatisfiable": "ScheduleAnyway",
        "labelSelector": {"matchLabels": selector_labels(pmd, component)},
    }


def _number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)
