"""Helpers of the operator's cluster tests: real kubectl, a real operator subprocess."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import yaml

from tests.support.net import free_port, http_get
from tests.support.waiting import eventually

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier.yaml"
KUBECTL = os.environ.get("KUBECTL", "/usr/bin/kubectl")


def kubectl(
    *args: str, check: bool = True, stdin: str | None = None
) -> subprocess.CompletedProcess[str]:
    """Run the real kubectl against $KUBECONFIG (set by the kube_cluster fixture)."""
    proc = subprocess.run(
        [KUBECTL, *args], input=stdin, capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {proc.stderr.strip()}")
    return proc


def kubectl_json(*args: str) -> Any:
    return json.loads(kubectl(*args, "-o", "json").stdout)


def apply(obj: dict[str, Any]) -> subprocess.CompletedProcess[str]:
    return kubectl("apply", "-f", "-", stdin=yaml.safe_dump(obj))


class OperatorProcess:
    """`python -m pizza_operator` as a subprocess, with its own metrics and liveness ports."""

    def __init__(
        self,
        log_dir: Path,
        lease: str,
        *extra: str,
        name: str = "op",
        kubeconfig: Path | None = None,
    ) -> None:
        self.kubeconfig = kubeconfig
        self.metrics_port = free_port()
        self.liveness_port = free_port()
        self.log_path = log_dir / f"{name}-{uuid.uuid4().hex[:6]}.log"
        self.argv = [
            sys.executable,
            "-m",
            "pizza_operator",
            "--lease",
            lease,
            "--lease-namespace",
            "default",
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
            "--resync-seconds",
            "5",
            "--default-image",
            "pizza-operator:test",
            *extra,
        ]
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, wait: bool = True) -> OperatorProcess:
        env = {**os.environ, "PYTHONUNBUFFERED": "1"}
        if self.kubeconfig is not None:
            env["KUBECONFIG"] = str(self.kubeconfig)
        self._log = self.log_path.open("ab")
        self.proc = subprocess.Popen(
            self.argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, cwd=ROOT
        )
        if wait:
            eventually(
                self.alive, 60, f"operator liveness ({self.log_path})", ignoring=AssertionError
            )
        return self

    def alive(self) -> bool:
        assert self.proc is not None
        if self.proc.poll() is not None:
            raise RuntimeError(f"operator exited {self.proc.returncode}: {self.log()[-3000:]}")
        try:
            return http_get(f"http://127.0.0.1:{self.liveness_port}/healthz")[0] == 200
        except OSError:
            return False

    def health(self) -> tuple[int, dict[str, Any]]:
        code, text = http_get(f"http://127.0.0.1:{self.liveness_port}/healthz")
        return code, json.loads(text)

    def leading(self) -> bool:
        return self.metric("pizza_operator_leading") == 1

    def metrics(self) -> str:
        return http_get(f"http://127.0.0.1:{self.metrics_port}/metrics")[1]

    def metric(self, metric: str, /, **labels: str) -> float:
        """Sum of the samples of `metric` whose labels include `labels` (0 when absent)."""
        total = 0.0
        for line in self.metrics().splitlines():
            if not line.startswith((metric + "{", metric + " ")):
                continue
            if all(f'{k}="{v}"' in line for k, v in labels.items()):
                total += float(line.rsplit(" ", 1)[1])
        return total

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self._log.close()


def pmd_manifest(name: str, namespace: str, **spec_overrides: Any) -> dict[str, Any]:
    """The sample resource, with small CPU/memory so many fit on the fake nodes."""
    body: dict[str, Any] = yaml.safe_load(
        (ROOT / "manifests/samples/pizza-classifier.yaml").read_text()
    )
    body["metadata"] = {"name": name, "namespace": namespace}
    spec = body["spec"]
    spec["primary"]["resources"] = {
        "requests": {"cpu": "100m", "memory": "256Mi"},
        "limits": {"memory": "256Mi"},
    }
    spec["fallback"]["resources"] = {
        "requests": {"cpu": "50m", "memory": "64Mi"},
        "limits": {"memory": "128Mi"},
    }
    spec.update(spec_overrides)
    return body


def children(namespace: str, name: str) -> dict[str, dict[str, Any]]:
    """Every Deployment, Service and PDB labelled for the resource, by kind/name."""
    out: dict[str, dict[str, Any]] = {}
    selector = f"app.kubernetes.io/instance={name}"
    data = kubectl_json(
        "get", "deploy,svc,pdb", "-n", namespace, "-l", selector, "--show-managed-fields"
    )
    for item in data["items"]:
        out[f"{item['kind']}/{item['metadata']['name']}"] = item
    return out


def events(namespace: str, name: str) -> list[dict[str, Any]]:
    data = kubectl_json(
        "get", "events", "-n", namespace, "--field-selector", f"involvedObject.name={name}"
    )
    items: list[dict[str, Any]] = data["items"]
    return items


def account_kubeconfig(namespace: str, account: str, path: Path) -> Path:
    """A kubeconfig at `path` that authenticates as ServiceAccount `namespace/account` (a token
    good for an hour) against $KUBECONFIG's cluster, nothing more."""
    token = kubectl("create", "token", account, "-n", namespace, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    admin["users"] = [{"name": account, "user": {"token": token}}]
    context["context"]["user"] = account
    admin["contexts"] = [context]
    path.write_text(yaml.safe_dump(admin))
    return path


LEASE = "pizza-operator"
"""The leader-election Lease of the chart and manifests/ (values: operator.leaseName)."""


def leader_args(namespace: str, env: MutableMapping[str, str]) -> list[str]:
    """Operator arguments for leader election as the shipped manifests set it up: the Lease in
    `namespace` (POD_NAMESPACE, from the downward API in a pod, set in `env`)."""
    env["POD_NAMESPACE"] = namespace
    return ["--lease", LEASE, "--lease-namespace", namespace]
