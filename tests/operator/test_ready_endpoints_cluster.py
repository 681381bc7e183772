"""Ready waits for the Services' EndpointSlices, against the real API server and its real
endpointslice controller (kube-controller-manager), with a real operator.

kwok's pods get IPs and turn ready, so the controller lists them as it would on real nodes; to
see Ready wait, the controller-manager is frozen (SIGSTOP) while the router Service's slices are
deleted: the Deployments still report every pod ready, and no slice lists one. (There is no
kube-proxy in this tier: tests/e2e/test_ready_answers_e2e.py sends the requests.)
"""

from __future__ import annotations

import os
import signal
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import KIND
from pizza_operator.config import OperatorConfig
from pizza_operator.kube import Kube
from pizza_operator.reconcile import Reconciler

from tests.support.conditions import condition, field, is_true
from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, events, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RESYNC = "600"  # seconds: beyond the test, so only child events and the recheck act


@pytest.fixture
def slow_resync_operator(crds_installed: Path, tmp_path: Path) -> Iterator[OperatorProcess]:
    proc = OperatorProcess(tmp_path, f"test-{uuid.uuid4().hex[:8]}", "--resync-seconds", RESYNC)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@contextmanager
def frozen(pid: int) -> Iterator[None]:
    os.kill(pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(pid, signal.SIGCONT)


def _ready(namespace: str, name: str) -> Any:
    return condition(kubectl_json("get", "pmd", name, "-n", namespace), "Ready")


def _ready_endpoints(namespace: str, service: str) -> int:
    slices = kubectl_json(
        "get", "endpointslices", "-n", namespace, "-l", f"kubernetes.io/service-name={service}"
    )["items"]
    return sum(
        1
        for piece in slices
        for endpoint in piece.get("endpoints") or []
        if (endpoint.get("conditions") or {}).get("ready") is not False
    )


def test_ready_waits_for_endpoints_and_the_operator_looks_again_by_itself(
    kube_cluster: Any, test_namespace: str, slow_resync_operator: OperatorProcess
) -> None:  # the operator stops before its namespace goes (no write into a terminating one)
    if kube_cluster.local is None:
        pytest.skip("freezes the session's own controller-manager (not with an existing cluster)")
    controller_manager = kube_cluster.local.pids["kube-controller-manager"]
    ns, name = test_namespace, "endpoints"
    apply(pmd_manifest(name, ns))
    kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
    for service in (name, f"{name}-primary", f"{name}-fallback"):
        assert _ready_endpoints(ns, service) >= 1, service  # Ready came after the slices

    with frozen(controller_manager):  # no endpointslice controller, no deployment controller
        kubectl("delete", "endpointslices", "-n", ns, "-l", f"kubernetes.io/service-name={name}")
        assert _ready_endpoints(ns, name) == 0
        # a Deployment event (a label: not a drift, and unlike an annotation no new generation)
        # makes the operator look; the Deployments still report every pod ready
        kubectl("label", "deployment", f"{name}-router", "-n", ns, "test.pizza.ai/poke=1")

        def not_ready() -> Any:
            ready = _ready(ns, name)
            assert field(ready, "status") == "False", ready
            return ready

        ready = eventually(not_ready, 30, "Ready=False", ignoring=AssertionError)
        assert field(ready, "reason") == "EndpointsNotReady", ready
        assert field(ready, "message").endswith("EndpointSlices of the router Service")
        body = kubectl_json("get", "pmd", name, "-n", ns)
        assert field(condition(body, "Progressing"), "reason") == "RolloutComplete"
        assert body["status"]["router"]["summary"] == "2/2"
        time.sleep(3)  # the operator's looks grow apart while nothing changes
        assert field(_ready(ns, name), "reason") == "EndpointsNotReady"
        thawed = time.monotonic()

    # the controller lists the router pods again; nothing tells the operator (no slice watch,
    # the resync is 10 minutes away): its own recheck turns Ready back
    eventually(lambda: _ready_endpoints(ns, name) >= 1, 30, "router slices back")
    eventually(lambda: field(_ready(ns, name), "status") == "True", 15, "Ready again", every=0.2)
    took = time.monotonic() - thawed
    assert took < 15, took
    reasons = [(e["reason"], e["message"]) for e in events(ns, name)]
    assert any(r == "NotReady" and "EndpointSlices" in m for r, m in reasons), reasons
    assert [r for r, _ in reasons].count("Ready") == 2, reasons
    log = slow_resync_operator.log()
    assert "Forbidden" not in log and " 403" not in log, log[-3000:]


def test_a_refresh_never_speaks_for_a_generation_not_applied_yet(
    crds_installed: Path, kube_api: Any, test_namespace: str
) -> None:
    kube = Kube(kube_api)
    reconciler = Reconciler(kube, OperatorConfig(default_image="pizza-operator:test"))
    ns, name = test_namespace, "generations"
    apply(pmd_manifest(name, ns))
    reconciler.reconcile(kube.get(KIND, ns, name) or {})

    def ready_at(generation: int) -> bool:
        reconciler.refresh_status(ns, name)  # what a Deployment event does
        body = kubectl_json("get", "pmd", name, "-n", ns)
        ready = condition(body, "Ready")
        return is_true(body, "Ready") and field(ready, "observedGeneration") == generation

    eventually(lambda: ready_at(1), 60, "Ready at generation 1")
    patch = '{"spec": {"router": {"replicas": 0}}}'
    kubectl("patch", "pmd", name, "-n", ns, "--type=merge", "-p", patch)
    # a Deployment event's refresh before the reconcile of generation 2: the Deployments are
    # generation 1's (2 routers, all ready), so it must not write Ready for generation 2
    reconciler.refresh_status(ns, name)
    body = kubectl_json("get", "pmd", name, "-n", ns)
    assert body["metadata"]["generation"] == 2
    assert body["status"]["observedGeneration"] == 1
    assert field(condition(body, "Ready"), "observedGeneration") == 1
    reconciler.reconcile(kube.get(KIND, ns, name) or {})
    eventually(lambda: ready_at(2), 60, "Ready at generation 2")
    assert kubectl_json("get", "pmd", name, "-n", ns)["status"]["router"]["summary"] == "0/0"
    # a refresh still due finds nothing once the resource is gone (no Event into a terminating
    # namespace when the test's namespace goes)
    reconciler.forget(ns, name)
    kubectl("delete", "pmd", name, "-n", ns, "--wait=true")
    time.sleep(1.0)
