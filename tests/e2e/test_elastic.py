"""Elastic capacity on the real nodes, through the router's Service: an idle primary sleeps at
zero while the fallback answers at once, and wakes on the first request meant for it; a burst
scales the fallback out and back in; a component left to the user's own autoscaler keeps the
count it is given; in stable mode the fallback scales above its floor. Zero client errors
throughout; the times are printed (`-s`)."""

from __future__ import annotations

import copy
import json
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pizza_devcluster.pytest_plugin import requires_real_nodes

from tests.e2e.product import ROOT, Kubectl, generated_images, restricted_namespace
from tests.e2e.rollback import keep_logs
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
NAME = "elastic"
NS = "e2e-elastic"
ARTIFACTS = ROOT / ".cluster" / "e2e-elastic"
PRIMARY_MODEL = "pizza-convnext-tiny"
FALLBACK_MODEL = "micro-pizza-net"
STABLE_FLOOR = 2
"""rollback.stable.fallbackReplicas: the fallback's floor in stable mode."""
PLUGIN = Path(sys.executable).parent / "kubectl-pizza"


def _manifest() -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(SAMPLE.read_text()))
    body["metadata"] = {"name": NAME, "namespace": NS}
    spec = body["spec"]
    spec["primary"]["autoscaling"] = {
        "minReplicas": 0,
        "maxReplicas": 1,
        "idleAfter": "15s",
        "scaleDownWindow": "10s",
    }
    spec["fallback"]["replicas"] = 1
    spec["fallback"]["autoscaling"] = {
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetInFlight": 1,
        "scaleDownWindow": "15s",
    }
    spec["router"]["replicas"] = 1
    spec["rollback"]["stable"] = {"fallbackReplicas": STABLE_FLOOR}
    spec["router"]["rateLimitPerMinute"] = 100_000  # one host is one client here
    return body


def _apply(kubectl: Kubectl, body: dict[str, Any]) -> None:
    with tempfile.NamedTemporaryFile("w", suffix=".json") as manifest:
        manifest.write(json.dumps(body))
        manifest.flush()
        kubectl.run("apply", "-f", manifest.name)


@pytest.fixture(scope="module")
def elastic(kubectl: Kubectl, operator_release: str) -> Iterator[str]:
    restricted_namespace(kubectl, NS)
    _apply(kubectl, _manifest())
    kubectl.run("-n", NS, "wait", "--for=condition=Ready", f"pmd/{NAME}", "--timeout=300s")
    service = kubectl.json("-n", NS, "get", "service", NAME)
    yield f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    keep_logs(kubectl, NS, ARTIFACTS)
    kubectl.run("delete", "namespace", NS, "--wait=false", check=False)


def _image() -> Path:
    return generated_images(seed=5151)[0]


def _classify(url: str, path: str = "/classify") -> tuple[dict[str, Any], float]:
    image = _image()
    files = {"file": (image.name, image.read_bytes(), "image/png")}
    start = time.monotonic()
    response = httpx.post(f"{url}{path}", files=files, timeout=30)
    took = time.monotonic() - start
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body, took


def _status(kubectl: Kubectl) -> dict[str, Any]:
    status: dict[str, Any] = kubectl.json("-n", NS, "get", "pmd", NAME).get("status") or {}
    return status


def _replicas(kubectl: Kubectl, component: str) -> int:
    deployment = kubectl.json("-n", NS, "get", "deploy", f"{NAME}-{component}")
    replicas: int = deployment["spec"].get("replicas", 1)
    return replicas


def test_an_idle_primary_sleeps_and_wakes_with_no_client_error(
    kubectl: Kubectl, elastic: str
) -> None:
    url = elastic
    eventually(
        lambda: _classify(url)[0]["model_used"] == PRIMARY_MODEL,
        120,
        "the primary answers",
        every=1.0,
        ignoring=AssertionError,
    )
    asleep_at = time.monotonic()
    eventually(
        lambda: (_status(kubectl).get("autoscaling") or {}).get("primary", {}).get("asleep"),
        60,
        "the idle primary sleeps",
        every=0.5,
    )
    print(f"primary asleep {time.monotonic() - asleep_at:.1f} s after its last request")
    eventually(lambda: _replicas(kubectl, "primary") == 0, 30, "primary at zero", every=0.5)

    # the next requests: answered by the fallback at once, and they wake the primary
    first = time.monotonic()
    woken: list[float] = []  # the wake-up decision (a pod asked for)
    awake: list[float] = []  # the routers told to send to the primary again

    def watch_wake() -> None:
        while time.monotonic() - first < 90 and not awake:
            scaled = (_status(kubectl).get("autoscaling") or {}).get("primary") or {}
            if not woken and scaled.get("wanted", 0) >= 1:
                woken.append(time.monotonic() - first)
            if woken and not scaled.get("asleep"):
                awake.append(time.monotonic() - first)
            time.sleep(0.2)

    watcher = threading.Thread(target=watch_wake, daemon=True)
    watcher.start()
    answers: list[tuple[dict[str, Any], float]] = []
    while time.monotonic() - first < 90:
        answers.append(_classify(url))
        if answers[-1][0]["model_used"] == PRIMARY_MODEL:
            break
        time.sleep(0.25)
    cold_start = time.monotonic() - first
    watcher.join(5)
    by_fallback = [took for body, took in answers if body["model_used"] == FALLBACK_MODEL]
    reasons = {body.get("fallback_reason") for body, _ in answers[:-1]}
    print(
        f"wake: decided {woken[0] if woken else float('nan'):.1f} s after the first request, "
        f"primary ready and routed to {awake[0] if awake else float('nan'):.1f} s after it; "
        f"first primary answer {cold_start:.1f} s after it; {len(by_fallback)} requests answered "
        f"by the fallback meanwhile, p50 {statistics.median(by_fallback) * 1000:.0f} ms, "
        f"max {max(by_fallback) * 1000:.0f} ms"
    )
    assert answers[-1][0]["model_used"] == PRIMARY_MODEL, "the primary never came back"
    assert reasons <= {"primary_idle", "unavailable"}, reasons
    assert answers[0][0]["fallback_reason"] == "primary_idle"
    assert woken and woken[0] < 5.0, woken
    assert cold_start < 45.0
    assert max(by_fallback) < 5.0


@contextmanager
def _load(url: str, path: str, clients: int = 8) -> Iterator[list[str]]:
    """`clients` closed-loop clients on `path` for the block; yields their errors."""
    stop = threading.Event()
    errors: list[str] = []

    def client() -> None:
        while not stop.is_set():
            try:
                _classify(url, path)
            except (AssertionError, httpx.HTTPError) as exc:
                errors.append(str(exc)[:200])

    with ThreadPoolExecutor(clients) as pool:
        for _ in range(clients):
            pool.submit(client)
        try:
            yield errors
        finally:
            stop.set()


def test_a_burst_scales_the_fallback_out_and_back_in(kubectl: Kubectl, elastic: str) -> None:
    peak = 1
    with _load(elastic, "/predict/standard") as errors:
        start = time.monotonic()
        # 120 s: the fallback's first scale-out came only once the primary (awake after the
        # wake test) went back to sleep, 45-58 s in (not understood yet; bench/elastic times it)
        while time.monotonic() - start < 120 and peak < 3:
            peak = max(peak, _replicas(kubectl, "fallback"))
            time.sleep(0.5)
        print(f"fallback scaled out to {peak} in {time.monotonic() - start:.1f} s")
    assert peak == 3
    start = time.monotonic()
    eventually(lambda: _replicas(kubectl, "fallback") == 1, 90, "back in", every=1.0)
    print(f"fallback back to 1 pod {time.monotonic() - start:.1f} s after the burst")
    assert errors == []


def _pizza(kubectl: Kubectl, *args: str) -> None:
    """`kubectl pizza ARGS` (the installed plugin) on the test's resource."""
    argv = [str(PLUGIN), *args, NAME, "-n", NS, "--kubeconfig", str(kubectl.kubeconfig)]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def test_stable_mode_under_load_scales_the_fallback_above_its_floor(
    kubectl: Kubectl, elastic: str
) -> None:
    _pizza(kubectl, "rollback", "--to", "stable")
    try:
        eventually(lambda: _status(kubectl).get("mode") == "stable", 60, "stable", every=1.0)
        eventually(
            lambda: _replicas(kubectl, "fallback") == STABLE_FLOOR, 30, "the floor", every=0.5
        )
        scaled: dict[str, Any] = {}
        # more than the floor's pods carry: the autoscaler samples the routers' in-flight gauge
        # every 2 s, and 8 clients through one router seldom had 3 in flight at that instant
        with _load(elastic, "/classify", clients=16) as errors:
            start = time.monotonic()
            while time.monotonic() - start < 90 and _replicas(kubectl, "fallback") <= STABLE_FLOOR:
                time.sleep(0.5)
            took = time.monotonic() - start
            scaled = (_status(kubectl).get("autoscaling") or {}).get("fallback") or {}
        print(f"stable mode: fallback above its floor {STABLE_FLOOR} in {took:.1f} s: {scaled}")
        if _replicas(kubectl, "fallback") <= STABLE_FLOOR:  # what the autoscaler said meanwhile
            logs = kubectl.run("-n", "pizza-system", "logs", "deploy/pizza-operator", check=False)
            print("\n".join(line for line in logs.splitlines() if "autoscal" in line)[-4000:])
        assert _replicas(kubectl, "fallback") > STABLE_FLOOR
        assert scaled.get("wanted", 0) > STABLE_FLOOR, scaled
        assert errors == []
    finally:
        _pizza(kubectl, "retry")
    eventually(lambda: _status(kubectl).get("mode") == "primary", 60, "primary", every=1.0)
    eventually(lambda: _replicas(kubectl, "fallback") == 1, 90, "back in", every=1.0)


def test_an_external_autoscaler_keeps_its_count(kubectl: Kubectl, elastic: str) -> None:
    body = _manifest()
    body["spec"]["fallback"]["autoscaling"] = {"managedBy": "External"}
    _apply(kubectl, body)
    time.sleep(3)
    kubectl.run("-n", NS, "scale", f"deploy/{NAME}-fallback", "--replicas=2")
    time.sleep(10)  # more than a few autoscaler looks and a reconcile
    assert _replicas(kubectl, "fallback") == 2
    kubectl.run("-n", NS, "annotate", "pmd", NAME, "e2e/touched=1", "--overwrite")
    time.sleep(5)
    assert _replicas(kubectl, "fallback") == 2
