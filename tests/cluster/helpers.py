"""Pod specs for the control-plane tests that Pod Security "restricted" admits."""

from __future__ import annotations

from typing import Any

IMAGE = "registry.invalid/pizza/test:1"  # kwok runs no containers: the image is never pulled


def restricted_container(name: str = "app", **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "image": IMAGE,
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
        },
        "resources": {"requests": {"cpu": "100m", "memory": "64Mi"}},
        **extra,
    }


def restricted_pod_spec(*containers: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """A pod spec that Pod Security "restricted" admits (non-root, no privilege escalation...)."""
    return {
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 65532,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": list(containers) or [restricted_container()],
        "automountServiceAccountToken": False,
        **extra,
    }


def pod(name: str, spec: dict[str, Any], labels: dict[str, str] | None = None) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "labels": labels or {"app": name}},
        "spec": spec,
    }


def deployment(name: str, replicas: int) -> dict[str, Any]:
    """A Deployment of `replicas` restricted pods labelled app=`name`."""
    labels = {"app": name}
    return {
        "metadata": {"name": name},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": labels},
            "template": {"metadata": {"labels": labels}, "spec": restricted_pod_spec()},
        },
    }
