"""The Helm chart and the plain manifests: lint, render, and apply to the real API server."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.support.waiting import eventually

from .helpers import (
    ROOT,
    OperatorProcess,
    account_kubeconfig,
    apply,
    events,
    kubectl,
    kubectl_json,
    leader_args,
    pmd_manifest,
)

HELM = ROOT / ".bin" / "helm"
CHART = ROOT / "helm" / "pizza-operator"
KUBE_VERSION = "v1.35.4"

needs_helm = pytest.mark.skipif(not HELM.exists(), reason=f"{HELM} not built (make binaries)")


def helm(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, timeout=120, check=False
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"helm {' '.join(args)} failed: {proc.stderr}")
    return proc


def _render(release: str, namespace: str, *extra: str) -> str:
    return helm(
        "template",
        release,
        str(CHART),
        "--namespace",
        namespace,
        "--kube-version",
        KUBE_VERSION,
        *extra,
    ).stdout


@needs_helm
@pytest.mark.unit
class TestChartOffline:
    def test_lint(self) -> None:
        helm("lint", str(CHART), "--strict", "--kube-version", KUBE_VERSION)

    def test_schema_refuses_bad_values(self) -> None:
        proc = helm("lint", str(CHART), "--set", "operator.logFormat=xml", check=False)
        assert proc.returncode != 0
        assert "logFormat" in proc.stdout + proc.stderr

    def test_renders_restricted_operator(self) -> None:
        docs = [d for d in yaml.safe_load_all(_render("rel", "pizza-system")) if d]
        kinds = sorted(d["kind"] for d in docs)
        assert kinds == [
            "ClusterRole",
            "ClusterRoleBinding",
            "ConfigMap",  # the Grafana dashboard
            "Deployment",
            "Pod",
            "PodDisruptionBudget",  # two replicas: one stays through a drain
            "Role",  # the leader-election Lease, in the release namespace
            "RoleBinding",
            "Service",
            "ServiceAccount",
        ]
        hook = next(d for d in docs if d["kind"] == "Pod")
        assert hook["metadata"]["annotations"]["helm.sh/hook"] == "test"
        deployment = next(d for d in docs if d["kind"] == "Deployment")
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        assert container["command"] == ["pizza-operator"]
        role = next(d for d in docs if d["kind"] == "ClusterRole")
        verbs = {v for rule in role["rules"] for v in rule["verbs"]}
        assert "*" not in verbs and "escalate" not in verbs and "bind" not in verbs
        assert all("*" not in rule["resources"] for rule in role["rules"])

    def test_chart_crds_match_generated(self) -> None:
        for crd in (ROOT / "crds").glob("*.yaml"):
            assert (CHART / "crds" / crd.name).read_text() == crd.read_text()


@needs_helm
@pytest.mark.cluster
def test_rendered_chart_applies_to_the_api_server(crds_installed: Any, test_namespace: str) -> None:
    release = f"r{uuid.uuid4().hex[:6]}"
    rendered = _render(release, test_namespace, "--include-crds")
    kubectl("apply", "--dry-run=server", "-f", "-", stdin=rendered)
    # For real (without CRDs, already installed): the operator pod is admitted under "restricted".
    rendered = _render(release, test_namespace, "--no-hooks")
    kubectl("apply", "-f", "-", stdin=rendered)
    try:

        def pod_admitted() -> bool:
            pods = kubectl_json(
                "get", "pods", "-n", test_namespace, "-l", f"app.kubernetes.io/instance={release}"
            )["items"]
            return len(pods) == 2

        eventually(
            pod_admitted,
            timeout=60,
            what="operator pods created under restricted PSA",
            ignoring=AssertionError,
        )
    finally:
        kubectl("delete", "-f", "-", "--wait=false", stdin=rendered, check=False)


@pytest.mark.cluster
@pytest.mark.slow
def test_plain_manifests_and_least_privilege_rbac(
    crds_installed: Any, test_namespace: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """manifests/ apply; the operator does its whole job with only the RBAC it ships."""
    kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        str(ROOT / "manifests" / "samples"),
        "--namespace",
        "default",
    )
    kubectl("apply", "-f", str(ROOT / "manifests" / "rbac.yaml"))
    kubectl("apply", "--dry-run=server", "-f", str(ROOT / "manifests" / "operator.yaml"))

    # a kubeconfig that authenticates as the operator's ServiceAccount, nothing more
    limited = account_kubeconfig("pizza-system", "pizza-operator", tmp_path / "operator-kubeconfig")
    # what it never needs: no secrets, no pods touched, no user ConfigMap deleted
    for verb, resource in (("get", "secrets"), ("delete", "pods"), ("delete", "configmaps")):
        answer = kubectl(
            "--kubeconfig", str(limited), "auth", "can-i", verb, resource, "-A", check=False
        ).stdout  # fmt: skip
        assert "no" in answer, (verb, resource)

    env: dict[str, str] = {}
    leader = leader_args("pizza-system", env)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    operator = OperatorProcess(
        tmp_path, f"test-{uuid.uuid4().hex[:8]}", *leader, kubeconfig=limited
    )
    operator.start()
    try:
        name = "least-privilege"
        apply(pmd_manifest(name, test_namespace))
        kubectl(
            "wait", "--for=condition=Ready", f"pmd/{name}", "-n", test_namespace, "--timeout=90s"
        )
        kubectl("delete", "svc", name, "-n", test_namespace, "--wait=false")
        eventually(
            lambda: kubectl_json("get", "svc", name, "-n", test_namespace),
            timeout=30,
            what="Service restored by the operator",
            ignoring=AssertionError,
        )
        reasons = {e["reason"] for e in events(test_namespace, name)}
        assert {"Created", "Ready", "Restored"} <= reasons
        log = operator.log()
        assert "Forbidden" not in log and " 403" not in log, log[-3000:]
    finally:
        operator.stop()
