"""The Helm chart and the plain manifests: lint, render, and apply to the real API server."""

from __future__ import annotations

import subprocess
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import ROOT, eventually, kubectl, kubectl_json

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
            "Deployment",
            "Pod",
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

        eventually(pod_admitted, timeout=60, what="operator pods created under restricted PSA")
    finally:
        kubectl("delete", "-f", "-", "--wait=false", stdin=rendered, check=False)


@pytest.mark.cluster
def test_plain_manifests_apply_to_the_api_server(crds_installed: Any, tmp_path: Path) -> None:
    kubectl(
        "apply",
        "--dry-run=server",
        "-f",
        str(ROOT / "manifests" / "samples"),
        "--namespace",
        "default",
    )
    created = kubectl("create", "namespace", "pizza-system", check=False).returncode == 0
    try:
        kubectl(
            "apply",
            "--dry-run=server",
            "-f",
            str(ROOT / "manifests" / "rbac.yaml"),
            "-f",
            str(ROOT / "manifests" / "operator.yaml"),
        )
    finally:
        if created:
            kubectl("delete", "namespace", "pizza-system", "--wait=false")
