"""Helpers of the product e2e tests: the pinned kubectl and helm of .bin/, restricted namespaces,
the chart installed as a user would, fresh images from the project's generator."""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from pizza_models.cli import generate

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".bin"
CHART = ROOT / "helm" / "pizza-operator"


@dataclass(frozen=True)
class Kubectl:
    """kubectl and helm of .bin/ against one kubeconfig."""

    kubeconfig: Path

    def _exec(self, argv: list[str], check: bool, timeout: float) -> str:
        env = {"KUBECONFIG": str(self.kubeconfig), "PATH": f"{BIN}:/usr/bin:/bin", "HOME": "/tmp"}
        proc = subprocess.run(
            argv, capture_output=True, text=True, env=env, timeout=timeout, check=False
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"{' '.join(argv)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout

    def run(self, *args: str, check: bool = True, timeout: float = 330) -> str:
        return self._exec([str(BIN / "kubectl"), *args], check, timeout)

    def json(self, *args: str) -> dict[str, Any]:
        out: dict[str, Any] = json.loads(self.run(*args, "-o", "json"))
        return out

    def helm(self, *args: str, check: bool = True, timeout: float = 330) -> str:
        return self._exec([str(BIN / "helm"), *args], check, timeout)


def restricted_namespace(kubectl: Kubectl, name: str) -> None:
    """A namespace enforcing Pod Security "restricted" (created or relabelled)."""
    manifest = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {
            "name": name,
            "labels": {
                "pod-security.kubernetes.io/enforce": "restricted",
                "pod-security.kubernetes.io/enforce-version": "latest",
            },
        },
    }
    proc = subprocess.run(
        [str(BIN / "kubectl"), "apply", "-f", "-"],
        input=json.dumps(manifest),
        capture_output=True,
        text=True,
        env={"KUBECONFIG": str(kubectl.kubeconfig), "PATH": f"{BIN}:/usr/bin:/bin"},
        check=False,
    )
    assert proc.returncode == 0, proc.stderr


def helm_install_operator(kubectl: Kubectl, namespace: str) -> str:
    """`helm install pizza-operator helm/pizza-operator` with default values; the release name
    (which is also the operator's ServiceAccount)."""
    release = "pizza-operator"
    kubectl.helm(
        "upgrade", "--install", release, str(CHART), "-n", namespace, "--wait", "--timeout", "240s"
    )
    return release


@cache
def _generated(seed: int) -> tuple[Path, ...]:
    out = Path(f"/tmp/pizza-e2e-images-{seed}")
    if not out.is_dir():
        generate(seed, 1, out)
    return tuple(sorted(out.glob("*/*.png")))


def generated_images(seed: int) -> list[Path]:
    """One fresh image a class (never seen in training: its own seed), as class/NAME.png."""
    return list(_generated(seed))
