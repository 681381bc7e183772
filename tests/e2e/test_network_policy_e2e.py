"""NetworkPolicy enforced on the real nodes: the operator installed by Helm keeps the local
sample's policies, kube-router's network policy controller (the devcluster's `netpol` piece)
enforces them. A pod in the namespace is refused by the primary and the fallback (pod IPs and
Services) and served by the router; the router still reaches the model servers; with routerFrom
set, a pod outside it is refused by the router too, while the operator's pod (pizza-system)
still scrapes the routers for the analysis. Disabling the policies lets the pod in again, so the
refusals were the policies' doing."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from pizza_devcluster.pytest_plugin import requires_real_nodes

from tests.e2e.platform import Kube, web_pod
from tests.e2e.product import ROOT, Kubectl, generated_images, restricted_namespace
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
NAME = "pizza-classifier"
NAMESPACE = "e2e-netpol"
PORT = 8001
HEALTH = "/v2/health/ready"


@pytest.fixture(scope="module")
def sample(kubectl: Kubectl, operator_release: str, test_image: str) -> Iterator[str]:
    restricted_namespace(kubectl, NAMESPACE)
    kubectl.run("-n", NAMESPACE, "apply", "-f", str(SAMPLE))
    kubectl.run("-n", NAMESPACE, "wait", "--for=condition=Ready", f"pmd/{NAME}", "--timeout=300s")
    yield NAMESPACE
    kubectl.run("-n", NAMESPACE, "delete", "pmd", NAME, "--wait=true", "--timeout=60s", check=False)
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)


@pytest.fixture(scope="module")
def clients(kube: Kube, sample: str) -> tuple[str, str]:
    """Two busybox pods in the sample's namespace: `client` (label role=client) and `stranger`."""
    kube.apply(
        web_pod("client", sample, command=["/bin/sleep", "3600"], labels={"role": "client"}),
        web_pod("stranger", sample, command=["/bin/sleep", "3600"]),
    )
    kube.wait_ready(sample, "client", "stranger")
    return "client", "stranger"


def _get(kube: Kube, namespace: str, pod: str, url: str) -> tuple[bool, str]:
    """GET `url` from inside `pod` (busybox wget): (answered 2xx, what wget said)."""
    proc = kube.exec(namespace, pod, "timeout", "5", "wget", "-qO-", url, check=False)
    return proc.returncode == 0, f"exit {proc.returncode}: {(proc.stdout + proc.stderr)[:200]}"


def _refused(kube: Kube, namespace: str, pod: str, url: str) -> bool:
    """Whether the connection itself is refused (the policy's REJECT), not any other failure."""
    ok, said = _get(kube, namespace, pod, url)
    return not ok and "can't connect" in said


def _url(ip: str) -> str:
    return f"http://{ip}:{PORT}{HEALTH}"


def _targets(kube: Kube, namespace: str) -> dict[str, str]:
    """Health URLs of each model server pod and Service, by IP (no DNS in the way)."""
    targets = {}
    for component in ("primary", "fallback"):
        pods = kube.json(
            "-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/component={component}"
        )["items"]
        for pod in pods:
            targets[f"{component} pod {pod['metadata']['name']}"] = _url(pod["status"]["podIP"])
        service = kube.json("-n", namespace, "get", "service", f"{NAME}-{component}")
        targets[f"{component} Service"] = _url(service["spec"]["clusterIP"])
    return targets


def _router(kube: Kube, namespace: str) -> str:
    return _url(kube.json("-n", namespace, "get", "service", NAME)["spec"]["clusterIP"])


def _patch_policy(kubectl: Kubectl, namespace: str, policy: dict[str, Any]) -> None:
    patch = json.dumps({"spec": {"networkPolicy": policy}})
    kubectl.run("-n", namespace, "patch", "pmd", NAME, "--type=merge", "-p", patch)


def _analysis(kubectl: Kubectl, namespace: str) -> dict[str, Any]:
    status = kubectl.json("-n", namespace, "get", "pmd", NAME).get("status", {})
    analysis: dict[str, Any] = status.get("analysis") or {}
    return analysis


def _scraping(
    kubectl: Kubectl, namespace: str, *, after: int, settled: bool = False
) -> dict[str, Any] | None:
    """The analysis once it has run more than `after` checks, the last one with router
    metrics (source scrape, no metricsError); None before that. `settled`: the checks count
    must have passed `after` (otherwise a check without data raises)."""
    analysis = _analysis(kubectl, namespace)
    if int(analysis.get("checks", 0)) < max(after, 2):
        return None
    if analysis.get("metricsError"):
        if settled:
            raise AssertionError(f"metrics unavailable: {analysis['metricsError']}")
        return None
    assert analysis["source"] == "scrape", analysis
    return analysis


def _policy(kubectl: Kubectl, namespace: str, component: str) -> str:
    policy = kubectl.json("-n", namespace, "get", "networkpolicy", f"{NAME}-{component}")
    return json.dumps(policy["spec"])


class TestNetworkPolicyEnforced:
    def test_model_servers_refuse_a_pod_the_router_serves_it(
        self, kube: Kube, kubectl: Kubectl, sample: str, clients: tuple[str, str]
    ) -> None:
        policies = kubectl.json("-n", sample, "get", "networkpolicies")["items"]
        assert sorted(p["metadata"]["name"] for p in policies) == [
            f"{NAME}-fallback",
            f"{NAME}-primary",
            f"{NAME}-router",
        ]
        client, _ = clients
        targets = _targets(kube, sample)
        assert len(targets) == 5  # 1 primary pod, 2 fallback pods, 2 Services
        answered = {what: _get(kube, sample, client, url) for what, url in targets.items()}
        not_refused = {w: said for w, (_, said) in answered.items() if "can't connect" not in said}
        assert not not_refused, not_refused
        ok, said = _get(kube, sample, client, _router(kube, sample))
        assert ok, said

    def test_the_router_still_reaches_the_primary(
        self, kubectl: Kubectl, sample: str, clients: tuple[str, str]
    ) -> None:
        service = kubectl.json("-n", sample, "get", "service", NAME)
        url = f"http://{service['spec']['clusterIP']}:{PORT}/classify"
        image = generated_images(seed=4545)[0]
        files = {"file": (image.name, image.read_bytes(), "image/png")}
        answer = httpx.post(url, files=files, timeout=30).json()
        assert answer["model_used"] == "pizza-convnext-tiny", answer
        assert not answer.get("fallback_reason"), answer

    def test_router_from_refuses_others_and_the_analysis_still_scrapes(
        self, kube: Kube, kubectl: Kubectl, sample: str, clients: tuple[str, str]
    ) -> None:
        client, stranger = clients
        eventually(
            lambda: _scraping(kubectl, sample, after=0),
            timeout=120,
            what="the analysis scraping the routers (before routerFrom)",
        )
        _patch_policy(
            kubectl, sample, {"routerFrom": [{"podSelector": {"matchLabels": {"role": "client"}}}]}
        )
        router = _router(kube, sample)
        eventually(
            lambda: _refused(kube, sample, stranger, router),
            timeout=30,
            what="the router refuses a pod outside routerFrom",
        )
        ok, said = _get(kube, sample, client, router)
        assert ok, said
        checks = int(_analysis(kubectl, sample).get("checks", 0))
        # two checks whose scrapes both came after the router's policy was narrowed
        analysis = eventually(
            lambda: _scraping(kubectl, sample, after=checks + 2, settled=True),
            timeout=90,
            what="the analysis scraping the routers through routerFrom "
            f"(router policy {_policy(kubectl, sample, 'router')})",
        )
        assert "MetricsUnavailable" not in analysis["primary"]["reasons"], analysis
        assert analysis.get("clientRequests") is not None, analysis  # a window was measured

    def test_disabled_policies_let_the_pod_in(
        self, kube: Kube, kubectl: Kubectl, sample: str, clients: tuple[str, str]
    ) -> None:
        _, stranger = clients
        _patch_policy(kubectl, sample, {"enabled": False})
        eventually(
            lambda: kubectl.json("-n", sample, "get", "networkpolicies")["items"] == [],
            timeout=30,
            what="policies pruned",
        )
        targets = _targets(kube, sample)
        eventually(
            lambda: all(_get(kube, sample, stranger, url)[0] for url in targets.values()),
            timeout=30,
            what="every model server answers the pod once the policies are gone",
        )
