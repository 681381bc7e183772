"""Pod templates: the restricted security profile, probes, volumes and environment."""

from __future__ import annotations

import math
from typing import Any

from pizza_operator.api.v1alpha1 import ModelRef, Resources, Toleration
from pizza_operator.builders.memory import memory_budget_env
from pizza_operator.builders.naming import PORT, PORT_NAME

RUN_AS = 65532
LIVE_PATH = "/v2/health/live"
READY_PATH = "/v2/health/ready"
STARTUP_PERIOD_SECONDS = 1
"""The startup probe looks every second: a pod counts as started within a second of its model
being loaded (was 10 s: a fallback pod ran within 1 s and waited 9 more)."""
READY_PERIOD_SECONDS = 1
"""Readiness every second too (a GET of a cached flag): a woken primary or a new fallback pod
gets traffic within a second of being ready, and leaves it within 3 s of failing."""
METRICS_PATH = "/metrics"


def scrape_annotations() -> dict[str, str]:
    """The `prometheus.io/*` annotations a stock Prometheus `kubernetes_sd` job (and the chart's
    PodMonitor's absence) scrapes pods by; every server role serves /metrics on its port."""
    return {
        "prometheus.io/scrape": "true",
        "prometheus.io/port": str(PORT),
        "prometheus.io/path": METRICS_PATH,
    }


def pod_security_context() -> dict[str, Any]:
    """Pod Security "restricted": non-root, seccomp RuntimeDefault."""
    return {
        "runAsNonRoot": True,
        "runAsUser": RUN_AS,
        "runAsGroup": RUN_AS,
        "fsGroup": RUN_AS,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    """Pod Security "restricted" for the container, plus a read-only root filesystem."""
    return {
        "allowPrivilegeEscalation": False,
        "readOnlyRootFilesystem": True,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def probes(startup_timeout_seconds: int | None, startup_path: str = READY_PATH) -> dict[str, Any]:
    """Liveness (cheap), readiness (model loaded) and a startup probe (`startup_path`: the
    model servers wait for their model, the router only for its process to listen): until it
    passes, the liveness probe does not run, so a slow start is never killed as a hang."""
    out: dict[str, Any] = {
        "livenessProbe": {
            "httpGet": {"path": LIVE_PATH, "port": PORT_NAME},
            "periodSeconds": 10,
            "timeoutSeconds": 3,
            "failureThreshold": 3,
        },
        "readinessProbe": {
            "httpGet": {"path": READY_PATH, "port": PORT_NAME},
            "periodSeconds": READY_PERIOD_SECONDS,
            "timeoutSeconds": 3,  # a busy server is slow, not unready
            "failureThreshold": 3,
        },
    }
    if startup_timeout_seconds is not None:
        out["startupProbe"] = {
            "httpGet": {"path": startup_path, "port": PORT_NAME},
            "periodSeconds": STARTUP_PERIOD_SECONDS,
            "timeoutSeconds": 2,
            "failureThreshold": max(1, math.ceil(startup_timeout_seconds / STARTUP_PERIOD_SECONDS)),
        }
    return out


def model_env(model: ModelRef, device: str, resources: Resources) -> list[dict[str, str]]:
    """The inference server is configured through the environment only (docs/CONTRACTS.md);
    its memory budget comes from the container's memory limit (`builders.memory`)."""
    return [
        {"name": "PIZZA_BACKEND", "value": model.backend},
        {"name": "PIZZA_SOURCE", "value": model.source},
        {"name": "PIZZA_PRECISION", "value": model.precision},
        {"name": "PIZZA_MODEL_NAME", "value": model.name},
        {"name": "PIZZA_DEVICE", "value": device},
        *memory_budget_env(resources, model.backend),
        *server_env(),
    ]


def server_env() -> list[dict[str, str]]:
    """Settings every server role shares."""
    return [
        {"name": "PIZZA_PORT", "value": str(PORT)},
        {"name": "PIZZA_HOST", "value": "0.0.0.0"},
        {"name": "HF_HOME", "value": "/tmp/hf"},
    ]


def pvc_claim(source: str) -> str | None:
    """The claim of a pvc://CLAIM/PATH source, else None."""
    if not source.startswith("pvc://"):
        return None
    return source.removeprefix("pvc://").split("/", 1)[0]


def volumes_and_mounts(model: ModelRef | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A /tmp emptyDir always; a read-only /models/CLAIM mount for pvc:// sources."""
    volumes: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {"sizeLimit": "2Gi"}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": "/tmp"}]
    claim = pvc_claim(model.source) if model is not None else None
    if claim is not None:
        volumes.append(
            {"name": "weights", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}
        )
        mounts.append({"name": "weights", "mountPath": f"/models/{claim}", "readOnly": True})
    return volumes, mounts


def resources_dict(resources: Resources, extra: dict[str, str] | None = None) -> dict[str, Any]:
    """core/v1 ResourceRequirements, with extended resources (GPUs) in requests and limits."""
    requests = {k: str(v) for k, v in (resources.requests or {}).items()}
    limits = {k: str(v) for k, v in (resources.limits or {}).items()}
    for key, value in (extra or {}).items():
        requests[key] = value
        limits[key] = value
    out: dict[str, Any] = {}
    if requests:
        out["requests"] = requests
    if limits:
        out["limits"] = limits
    return out


def tolerations_list(tolerations: list[Toleration]) -> list[dict[str, Any]]:
    return [t.to_wire() for t in tolerations]


def pod_template(
    *,
    labels: dict[str, str],
    image: str,
    args: list[str],
    env: list[dict[str, Any]],
    resources: dict[str, Any],
    model: ModelRef | None = None,
    startup_timeout_seconds: int | None = None,
    startup_path: str = READY_PATH,
    node_selector: dict[str, str] | None = None,
    tolerations: list[dict[str, Any]] | None = None,
    annotations: dict[str, str] | None = None,
) -> dict[str, Any]:
    """A pod template that Pod Security "restricted" admits."""
    volumes, mounts = volumes_and_mounts(model)
    container: dict[str, Any] = {
        "name": "server",
        "image": image,
        "imagePullPolicy": "IfNotPresent",
        "args": args,
        "env": env,
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        "resources": resources,
        "securityContext": container_security_context(),
        "volumeMounts": mounts,
        **probes(startup_timeout_seconds, startup_path),
    }
    spec: dict[str, Any] = {
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_security_context(),
        "terminationGracePeriodSeconds": 30,
        "containers": [container],
        "volumes": volumes,
    }
    if node_selector:
        spec["nodeSelector"] = dict(node_selector)
    if tolerations:
        spec["tolerations"] = tolerations
    metadata: dict[str, Any] = {
        "labels": dict(labels),
        "annotations": {**scrape_annotations(), **(annotations or {})},
    }
    return {"metadata": metadata, "spec": spec}
