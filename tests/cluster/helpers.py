"""Small helpers for the control-plane tests: waiting and Pod Security "restricted" pod specs."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

IMAGE = "registry.invalid/pizza/test:1"  # kwok runs no containers: the image is never pulled


def wait_for(check: Callable[[], T | None], timeout: float, what: str) -> T:
    """Poll `check` every 0.1 s until it returns something truthy; fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = check()
        if last:
            return last
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout} s waiting for {what} (last: {last!r})")


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


def condition(obj: Any, kind: str) -> Any:
    """The status condition of `kind` of a kubernetes-client object, or None."""
    for cond in obj.status.conditions or []:
        if cond.type == kind:
            return cond
    return None
