"""Ready means answering, on the real nodes: the instant `kubectl wait --for=condition=Ready`
returns, one request to the router's Service (its ClusterIP, from the host, through the host's
kube-proxy rules as every client's) is answered, every time: after the local sample is created
(each of its Services new), and after each of many scale-ups of the router from 0.

Each cycle also times what happened in between, from the host: when a watch saw the router
Service's EndpointSlices list a ready endpoint, when kube-proxy's rules first let a TCP connect to
the ClusterIP through (a probe every 5 ms), and when `kubectl wait` returned. The records go to
the test's output (`-s`) and to `.cluster/ready-answers.jsonl`. (Slices ready to rules open is
kube-proxy's own lag, up to its `minSyncPeriod` plus a sync; the operator gives it
`endpoints_settle_seconds` before Ready.)
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import urllib3
from kubernetes import client, config, watch
from pizza_devcluster.pytest_plugin import requires_real_nodes

from tests.e2e.product import ROOT, Kubectl, generated_images
from tests.e2e.rollback import Scenario, sample_manifest
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

NAME = "answers"
NAMESPACE = "e2e-ready-answers"
SCALE_CYCLES = 10
CREATE_CYCLES = 2
RECORDS = ROOT / ".cluster" / "ready-answers.jsonl"


@dataclass
class Cycle:
    """One wait for Ready and the request sent the instant it returned (seconds from `start`,
    the write that made Ready go False: a create or a scale-up)."""

    kind: str
    slices_ready: float | None = None  # a watch on the host saw a ready endpoint listed
    rules_open: float | None = None  # the first TCP connect to the ClusterIP went through
    ready: float = 0.0  # kubectl wait returned
    answered: float = 0.0  # the request's answer came
    status: int = 0
    error: str = ""
    model_used: str = ""


class SliceWatch:
    """Stamps the first moment the router Service's EndpointSlices list a ready endpoint."""

    def __init__(self, api: client.ApiClient, service: str) -> None:
        self.api, self.service = api, service
        self.first: float | None = None
        self._stop = threading.Event()
        self._watch = watch.Watch()  # type: ignore[no-untyped-call]
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> SliceWatch:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._watch.stop()  # type: ignore[no-untyped-call]
        self._thread.join(timeout=10)

    def _run(self) -> None:
        discovery = client.DiscoveryV1Api(self.api)
        selector = f"kubernetes.io/service-name={self.service}"
        while not self._stop.is_set() and self.first is None:
            stream = self._watch.stream(  # type: ignore[no-untyped-call]
                discovery.list_namespaced_endpoint_slice,
                NAMESPACE,
                label_selector=selector,
                timeout_seconds=30,
            )
            try:
                for event in stream:
                    endpoints = event["object"].endpoints or []
                    if any(
                        e.conditions is None or e.conditions.ready is not False for e in endpoints
                    ):
                        self.first = time.monotonic()
                        return
            except (urllib3.exceptions.HTTPError, OSError):
                if self._stop.is_set():  # stopping cuts the stream short
                    return


PROBE = """
import socket, sys, time
address = (sys.argv[1], int(sys.argv[2]))
while True:
    try:
        with socket.create_connection(address, timeout=0.5):
            print(time.monotonic(), flush=True)
            break
    except OSError:
        time.sleep(0.005)
"""


class ConnectProbe:
    """Stamps the first TCP connect to `host:port` that goes through (refused while kube-proxy's
    rules reject the Service for want of endpoints). A process of its own, so the test's other
    threads never delay it; CLOCK_MONOTONIC is the same in both processes."""

    def __init__(self, host: str, port: int) -> None:
        self.argv = [sys.executable, "-c", PROBE, host, str(port)]
        self.first: float | None = None
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> ConnectProbe:
        self._proc = subprocess.Popen(self.argv, stdout=subprocess.PIPE, text=True)
        return self

    def __exit__(self, *_: object) -> None:
        assert self._proc is not None
        try:
            out = self._proc.communicate(timeout=2)[0]  # it connects at once if it has not yet
        except subprocess.TimeoutExpired:
            self._proc.kill()
            out = self._proc.communicate()[0]
        self.first = float(out) if out.strip() else None


@pytest.fixture(scope="module")
def api(real_cluster: Any) -> Iterator[client.ApiClient]:
    kube_api = config.new_client_from_config(config_file=str(real_cluster.kubeconfig))  # type: ignore[no-untyped-call]
    try:
        yield kube_api
    finally:
        kube_api.close()


@pytest.fixture(scope="module")
def scenario(kubectl: Kubectl, operator_release: str) -> Iterator[Scenario]:
    scenario = Scenario(kubectl, NAMESPACE, NAME)
    yield scenario
    scenario.delete()


def _router_address(kubectl: Kubectl) -> tuple[str, int]:
    """The router Service's ClusterIP and port (waiting for the operator to create it)."""

    def service() -> dict[str, Any]:
        return kubectl.json("-n", NAMESPACE, "get", "service", NAME)

    found = eventually(service, 60, f"Service {NAME}", every=0.2, ignoring=AssertionError)
    return found["spec"]["clusterIP"], int(found["spec"]["ports"][0]["port"])


def _ask(url: str, image: Path, cycle: Cycle, start: float) -> None:
    """One request, no retry: what a client does once `kubectl wait` returned."""
    files = {"file": (image.name, image.read_bytes(), "image/png")}
    try:
        response = httpx.post(f"{url}/classify", files=files, timeout=30.0)
        cycle.status = response.status_code
        cycle.model_used = str(response.json().get("model_used", ""))
    except (httpx.HTTPError, ValueError) as exc:
        cycle.error = f"{type(exc).__name__}: {exc}"
    cycle.answered = time.monotonic() - start


def _cycle(scenario: Scenario, api: client.ApiClient, kind: str, change: Any, image: Path) -> Cycle:
    """`change()` makes Ready go False (it returns the moment it wrote); wait for Ready, ask."""
    cycle = Cycle(kind)
    with SliceWatch(api, NAME) as slices:
        start = change()
        address = _router_address(scenario.kubectl)
        with ConnectProbe(*address) as probe:
            scenario.wait_ready(timeout=300)
            cycle.ready = time.monotonic() - start
            _ask(f"http://{address[0]}:{address[1]}", image, cycle, start)
    cycle.slices_ready = slices.first - start if slices.first else None
    cycle.rules_open = probe.first - start if probe.first else None
    return cycle


def _scale_router(scenario: Scenario, replicas: int) -> float:
    patch = json.dumps({"spec": {"router": {"replicas": replicas}}})
    scenario.kubectl.run("-n", NAMESPACE, "patch", "pmd", NAME, "--type=merge", "-p", patch)
    return time.monotonic()


def _create(scenario: Scenario) -> float:
    scenario.apply(sample_manifest(NAME))
    return time.monotonic()


def _delete(scenario: Scenario) -> None:
    scenario.kubectl.run("-n", NAMESPACE, "delete", "pmd", NAME, "--wait=true", "--timeout=120s")
    for kind in ("service", "deployment"):  # gone with the resource (garbage collection)
        deadline = time.monotonic() + 120
        while scenario.kubectl.run("-n", NAMESPACE, "get", kind, "-o", "name").strip():
            assert time.monotonic() < deadline, f"{kind}s left after the delete"
            time.sleep(1)


def _summary(cycles: list[Cycle]) -> str:
    lines = [json.dumps(asdict(c)) for c in cycles]
    # a probe that connected before the new slices (a router pod of the scale-down still
    # terminating, no longer counted by its Deployment) measured nothing: left out
    gaps = [
        c.rules_open - c.slices_ready
        for c in cycles
        if c.rules_open is not None
        and c.slices_ready is not None
        and c.rules_open >= c.slices_ready
    ]
    margins = [c.ready - c.slices_ready for c in cycles if c.slices_ready is not None]
    if gaps and margins:
        lines.append(
            f"slices ready -> rules open: median {statistics.median(gaps):.3f} s, "
            f"max {max(gaps):.3f} s; slices ready -> Ready returned: median "
            f"{statistics.median(margins):.3f} s, min {min(margins):.3f} s ({len(gaps)} and "
            f"{len(margins)} of {len(cycles)} cycles)"
        )
    return "\n".join(lines)


def test_every_request_sent_when_ready_returns_is_answered(
    scenario: Scenario, api: client.ApiClient
) -> None:
    images = generated_images(seed=5151)
    cycles: list[Cycle] = []
    try:
        for n in range(CREATE_CYCLES):
            if n:
                _delete(scenario)
            cycles.append(_cycle(scenario, api, "create", lambda: _create(scenario), images[0]))
        for n in range(SCALE_CYCLES):
            _scale_router(scenario, 0)
            scenario.wait_ready(timeout=180)  # no router pods left: Ready with nothing to reach
            image = images[n % len(images)]
            cycles.append(
                _cycle(scenario, api, "scale-up", lambda: _scale_router(scenario, 2), image)
            )
    finally:
        summary = _summary(cycles)
        print(summary)
        RECORDS.parent.mkdir(exist_ok=True)
        RECORDS.write_text(summary + "\n")
    unanswered = [asdict(c) for c in cycles if c.status != 200]
    assert not unanswered, unanswered
    assert len(cycles) == CREATE_CYCLES + SCALE_CYCLES
