"""The operator installed by Helm (two replicas) on the real nodes, meeting faults: the leader's
container frozen (SIGSTOP, as a stuck process or a cut-off node would be), and the operator gone
while a user deletes a resource and its namespace.

A "shell" resource with no replicas is enough: what is measured is the operator's own work (a
spec change applied to a child), not the pods."""

from __future__ import annotations

import copy
import json
import signal
import tempfile
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from pizza_devcluster.pytest_plugin import requires_real_nodes
from pizza_load.freeze import signal_container

from tests.e2e.product import ROOT, Kubectl, restricted_namespace
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
SYSTEM = "pizza-system"
TAKEOVER_LIMIT = 15.0


def _shell(name: str, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(SAMPLE.read_text()))
    body["metadata"] = {"name": name, "namespace": namespace}
    for component in ("primary", "fallback", "router"):
        body["spec"][component]["replicas"] = 0
    return body


def _apply(kubectl: Kubectl, body: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as manifest:  # Kubectl.run has no stdin
        manifest.write(json.dumps(body))
        manifest.flush()
        kubectl.run("apply", "-f", manifest.name)


def _rate_limit(kubectl: Kubectl, ns: str) -> str:
    dep = kubectl.json("-n", ns, "get", "deploy", "shell-router")
    env = {
        e["name"]: e.get("value") for e in dep["spec"]["template"]["spec"]["containers"][0]["env"]
    }
    return str(env["PIZZA_RATE_LIMIT_PER_MINUTE"])


def _leader_pod(kubectl: Kubectl) -> dict[str, Any]:
    holder = kubectl.json("-n", SYSTEM, "get", "lease", "pizza-operator")["spec"]["holderIdentity"]
    return kubectl.json("-n", SYSTEM, "get", "pod", holder.rsplit("-", 1)[0])


@pytest.fixture
def shell(kubectl: Kubectl, operator_release: str) -> Iterator[str]:
    ns = f"shell-{int(time.time())}"
    restricted_namespace(kubectl, ns)
    _apply(kubectl, _shell("shell", ns))
    eventually(
        lambda: _rate_limit(kubectl, ns), 60, "the shell's router Deployment", ignoring=Exception
    )
    yield ns
    kubectl.run("delete", "namespace", ns, "--wait=false", check=False)


def test_a_frozen_leader_is_replaced_within_15_s(kubectl: Kubectl, shell: str) -> None:
    ns = shell
    leader = _leader_pod(kubectl)
    restarts = leader["status"]["containerStatuses"][0]["restartCount"]
    patch = json.dumps({"spec": {"router": {"rateLimitPerMinute": 601}}})
    signal_container(leader, "operator", signal.SIGSTOP)
    try:
        start = time.monotonic()
        kubectl.run("-n", ns, "patch", "pmd", "shell", "--type=merge", "-p", patch)
        eventually(
            lambda: _rate_limit(kubectl, ns) == "601",
            TAKEOVER_LIMIT,
            "the standby applies the change",
            every=0.2,
            ignoring=Exception,
        )
        took = time.monotonic() - start
        print(f"takeover on the real nodes: spec change applied {took:.1f} s after the freeze")
        assert _leader_pod(kubectl)["metadata"]["name"] != leader["metadata"]["name"]
    finally:
        signal_container(leader, "operator", signal.SIGCONT)
    name = leader["metadata"]["name"]
    eventually(
        lambda: "lost the lease" in kubectl.run("-n", SYSTEM, "logs", name),
        30,
        "the woken leader finds the Lease taken",
        ignoring=Exception,
    )
    time.sleep(5)
    assert _rate_limit(kubectl, ns) == "601"
    after = kubectl.json("-n", SYSTEM, "get", "pod", name)
    assert after["status"]["containerStatuses"][0]["restartCount"] == restarts


def test_resource_and_namespace_delete_with_the_operator_down(
    kubectl: Kubectl, shell: str, operator_release: str
) -> None:
    ns = shell
    assert not kubectl.json("-n", ns, "get", "pmd", "shell")["metadata"].get("finalizers")
    kubectl.run("-n", SYSTEM, "scale", "deploy", operator_release, "--replicas=0")
    try:
        kubectl.run(
            "-n",
            SYSTEM,
            "wait",
            "--for=delete",
            "pod",
            "-l",
            "app.kubernetes.io/component=operator",
            "--timeout=60s",
        )
        start = time.monotonic()
        kubectl.run("-n", ns, "delete", "pmd", "shell", "--timeout=20s")
        kubectl.run("delete", "namespace", ns, "--timeout=60s")
        print(f"resource and namespace deleted in {time.monotonic() - start:.1f} s, operator down")
    finally:
        kubectl.run("-n", SYSTEM, "scale", "deploy", operator_release, "--replicas=2")
        kubectl.run(
            "-n", SYSTEM, "rollout", "status", f"deploy/{operator_release}", "--timeout=180s"
        )
