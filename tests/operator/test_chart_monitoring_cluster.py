"""The chart with and without the prometheus-operator's API: `helm template` renders, and the real
API server accepts every object (`kubectl apply --dry-run=server --validate=strict`), the
ServiceMonitor, PodMonitor and PrometheusRule checked against the real CRDs' schemas (vendored in
hack/vendor/prometheus-operator-crds)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from tests.support.conditions import is_true
from tests.support.waiting import eventually

from .helpers import ROOT, kubectl, kubectl_json
from .test_alert_rules import KUBE_VERSION, _helm

pytestmark = pytest.mark.cluster

CHART = ROOT / "helm" / "pizza-operator"
CRDS = ROOT / "hack" / "vendor" / "prometheus-operator-crds"
MONITORING_KINDS = ("ServiceMonitor", "PodMonitor", "PrometheusRule")
API_VERSIONS = [f"monitoring.coreos.com/v1/{kind}" for kind in MONITORING_KINDS]


def _render(namespace: str, *args: str) -> tuple[str, list[dict[str, Any]]]:
    out = _helm(
        "template", "pizza-operator", str(CHART), "--namespace", namespace,
        "--kube-version", KUBE_VERSION, *args,
    )  # fmt: skip
    return out, [doc for doc in yaml.safe_load_all(out) if doc]


def _dry_run(manifest: str) -> str:
    proc = kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-", stdin=manifest, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


@pytest.fixture
def namespace(kube_cluster: Any) -> Iterator[str]:
    name = f"chart-monitoring-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", name)
    try:
        yield name
    finally:
        kubectl("delete", "namespace", name, "--wait=false", check=False)


@pytest.fixture(scope="module")
def monitoring_crds(kube_cluster: Any) -> Iterator[None]:
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(CRDS))
    names = [f"{kind.lower()}s.monitoring.coreos.com" for kind in MONITORING_KINDS]
    try:
        for crd in names:
            eventually(
                lambda crd=crd: is_true(kubectl_json("get", "crd", crd), "Established"),
                timeout=60,
                what=f"{crd} Established",
                ignoring=AssertionError,
            )
        yield
    finally:
        kubectl("delete", "crd", *names, "--timeout=60s", check=False)


def test_without_the_monitoring_api_the_chart_renders_and_applies(namespace: str) -> None:
    out, docs = _render(namespace)
    kinds = {doc["kind"] for doc in docs}
    assert kinds.isdisjoint(MONITORING_KINDS), kinds
    assert "ConfigMap" in kinds  # the Grafana dashboard needs no extra API
    operator = next(doc for doc in docs if doc["kind"] == "Deployment")
    annotations = operator["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "9090"
    applied = _dry_run(out)
    assert "(server dry run)" in applied


def test_with_the_monitoring_api_the_monitors_and_rules_apply(
    namespace: str, monitoring_crds: None
) -> None:
    args = [arg for api in API_VERSIONS for arg in ("--api-versions", api)]
    out, docs = _render(namespace, *args, "--set", "monitoring.podMonitor.labels.release=kps")
    by_kind = {doc["kind"]: doc for doc in docs}
    for kind in MONITORING_KINDS:
        assert kind in by_kind, f"no {kind} rendered with the API"
    pod_monitor = by_kind["PodMonitor"]["spec"]
    assert pod_monitor["namespaceSelector"] == {"any": True}
    targets = {r["targetLabel"] for r in pod_monitor["podMetricsEndpoints"][0]["relabelings"]}
    assert targets == {"namespace", "pod", "name", "component"}
    assert by_kind["ServiceMonitor"]["spec"]["endpoints"][0]["honorLabels"] is True
    applied = _dry_run(out)
    for kind in MONITORING_KINDS:
        assert f"{kind.lower()}.monitoring.coreos.com/" in applied, applied


def test_a_monitor_with_an_unknown_field_is_refused(namespace: str, monitoring_crds: None) -> None:
    """The dry run above can fail: a field the real CRD does not know is refused."""
    args = [arg for api in API_VERSIONS for arg in ("--api-versions", api)]
    _, docs = _render(namespace, *args)
    pod_monitor = next(doc for doc in docs if doc["kind"] == "PodMonitor")
    pod_monitor["spec"]["podMetricsEndpoint"] = pod_monitor["spec"]["podMetricsEndpoints"]
    proc = kubectl(
        "apply", "--dry-run=server", "--validate=strict", "-f", "-",
        stdin=yaml.safe_dump(pod_monitor), check=False,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "podMetricsEndpoint" in proc.stderr, proc.stderr
