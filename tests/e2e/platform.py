"""Helpers of the platform e2e tests: kubectl of .bin/ against the real cluster, pod manifests
for the busybox test image."""

from __future__ import annotations

import json
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.e2e.testimages import WEB_IMAGE
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
KUBECTL = ROOT / ".bin" / "kubectl"
RESTRICTED_POD_SECURITY = {
    "runAsNonRoot": True,
    "runAsUser": 65532,
    "runAsGroup": 65532,
    "seccompProfile": {"type": "RuntimeDefault"},
}
RESTRICTED_CONTAINER_SECURITY = {
    "allowPrivilegeEscalation": False,
    "readOnlyRootFilesystem": True,
    "capabilities": {"drop": ["ALL"]},
}


@dataclass(frozen=True)
class Kube:
    kubeconfig: Path

    def run(
        self, *args: str, check: bool = True, stdin: str | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(KUBECTL), f"--kubeconfig={self.kubeconfig}", *args],
            input=stdin,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} exited {proc.returncode}: {proc.stderr}"
            )
        return proc

    def out(self, *args: str) -> str:
        return self.run(*args).stdout

    def json(self, *args: str) -> dict[str, Any]:
        data: dict[str, Any] = json.loads(self.out(*args, "-o", "json"))
        return data

    def apply(self, *objects: dict[str, Any]) -> None:
        self.run(
            "apply",
            "-f",
            "-",
            stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": list(objects)}),
        )

    def exec(
        self, namespace: str, pod: str, *command: str, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        return self.run("-n", namespace, "exec", pod, "--", *command, check=check, timeout=30)

    def namespace(self, prefix: str, restricted: bool = True) -> str:
        name = f"{prefix}-{uuid.uuid4().hex[:6]}"
        labels = (
            {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            }
            if restricted
            else {}
        )
        self.apply(
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name, "labels": labels}}
        )
        eventually(
            lambda: bool(self.run("-n", name, "get", "sa", "default", check=False).returncode == 0),
            60,
            f"default ServiceAccount in {name}",
        )
        return name

    def pod(self, namespace: str, name: str) -> dict[str, Any]:
        return self.json("-n", namespace, "get", "pod", name)

    def wait_ready(self, namespace: str, *selector: str, timeout: float = 90) -> None:
        self.run(
            "-n",
            namespace,
            "wait",
            "--for=condition=Ready",
            "pod",
            *selector,
            f"--timeout={timeout:.0f}s",
            timeout=timeout + 10,
        )


def web_pod(
    name: str,
    namespace: str,
    *,
    command: list[str] | None = None,
    readiness: str | None = None,
    liveness: str | None = None,
    labels: dict[str, str] | None = None,
    node: str | None = None,
    resources: dict[str, Any] | None = None,
    tolerations: list[dict[str, str]] | None = None,
    restart: str = "Always",
) -> dict[str, Any]:
    """A pod of the busybox test image that passes Pod Security `restricted`."""
    container: dict[str, Any] = {
        "name": "web",
        "image": WEB_IMAGE,
        "imagePullPolicy": "Never",
        "ports": [{"containerPort": 8080, "name": "http"}],
        "securityContext": RESTRICTED_CONTAINER_SECURITY,
        "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
    }
    if command is not None:
        container["command"] = command
    for kind, path in (("readinessProbe", readiness), ("livenessProbe", liveness)):
        if path is not None:
            container[kind] = {
                "httpGet": {"path": path, "port": 8080},
                "periodSeconds": 1,
                "failureThreshold": 1,
            }
    if resources is not None:
        container["resources"] = resources
    spec: dict[str, Any] = {
        "terminationGracePeriodSeconds": 1,
        "restartPolicy": restart,
        "securityContext": RESTRICTED_POD_SECURITY,
        "containers": [container],
        "volumes": [{"name": "tmp", "emptyDir": {}}],
    }
    if node is not None:
        spec["nodeSelector"] = {"kubernetes.io/hostname": node}
    if tolerations is not None:
        spec["tolerations"] = tolerations
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {}},
        "spec": spec,
    }
