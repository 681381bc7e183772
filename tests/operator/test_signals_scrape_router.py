"""The direct-scrape path against real processes: two routers, a primary and a fallback server.

Model servers are `pizza-serve model` on the shipped INT8 ONNX micro-pizza-net, the routers
`pizza-serve router`, each its own process on 127.0.0.1 (the metrics are per process, as in a
pod). Real images go through the routers; the faults are real: a primary that is not there,
a primary frozen with SIGSTOP, a router restarted between two scrapes.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass

import httpx
import pytest
from pizza_operator.analysis.scrape import scrape_pods
from pizza_operator.analysis.window import PRIMARY_FAILURE_REASONS, Scrape, router_window
from pizza_operator.rollback import KubeSignals, Thresholds, judge

from tests.support.images import image_bytes
from tests.support.net import free_port
from tests.support.servers import ServerProcess, server_process

pytestmark = [pytest.mark.unit, pytest.mark.slow]

PRIMARY, FALLBACK = "primary-cnn", "fallback-cnn"
IMAGE = image_bytes("JPEG", (64, 64), seed=3)
LIMITS = Thresholds(failure_rate=0.05, p95_latency_seconds=5.0, min_requests=20)
READY = KubeSignals(desired=1, ready=1, available=True)


def pizza_serve(*args: str, port: int | None = None) -> AbstractContextManager[ServerProcess]:
    """`pizza-serve ARGS` as its own process on 127.0.0.1; stopped (and thawed) afterwards."""
    argv = ["-m", "pizza_inference.cli", *args, "--host", "127.0.0.1", "--port", "{port}"]
    env = {"PIZZA_LOG_LEVEL": "warning"}
    return server_process(argv, "/v2/health/ready", every=0.05, env=env, port=port)


def model_server(name: str) -> list[str]:
    return [
        "model",
        "--backend",
        "onnx",
        "--source",
        "builtin://micro-pizza-net",
        "--precision",
        "int8",
        "--model-name",
        name,
        "--threads",
        "1",
    ]


def router_args(primary_url: str, fallback_url: str) -> list[str]:
    return [
        "router",
        "--primary",
        primary_url,
        "--fallback",
        fallback_url,
        "--rate-limit-per-minute",
        "0",
        "--primary-timeout-seconds",
        "0.5",
    ]


@dataclass
class Plane:
    primary: ServerProcess
    fallback: ServerProcess
    routers: list[ServerProcess]
    stack: ExitStack

    def metrics_urls(self) -> dict[str, str]:
        return {f"router-{i}": f"{r.url}/metrics" for i, r in enumerate(self.routers)}


@pytest.fixture(scope="module")
def plane() -> Iterator[Plane]:
    with ExitStack() as stack:
        primary = stack.enter_context(pizza_serve(*model_server(PRIMARY)))
        fallback = stack.enter_context(pizza_serve(*model_server(FALLBACK)))
        routers = [
            stack.enter_context(pizza_serve(*router_args(primary.url, fallback.url)))
            for _ in range(2)
        ]
        yield Plane(primary, fallback, routers, stack)


def scrape(urls: dict[str, str]) -> dict[str, Scrape | None]:
    return asyncio.run(scrape_pods(urls, timeout_seconds=3.0))


def send(router_url: str, count: int) -> list[dict[str, object]]:
    bodies = []
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            response = client.post(
                f"{router_url}/classify", files={"file": ("p.jpg", IMAGE, "image/jpeg")}
            )
            assert response.status_code == 200, response.text
            bodies.append(response.json())
    return bodies


def test_idle_window_is_inconclusive(plane: Plane) -> None:
    before = scrape(plane.metrics_urls())
    for router in plane.routers:  # probes only: the kubelet's traffic is not client traffic
        assert httpx.get(f"{router.url}/v2/health/ready", timeout=5).status_code == 200
    after = scrape(plane.metrics_urls())
    result = router_window(before, after, primary_model=PRIMARY, fallback_model=FALLBACK)
    assert result.pods_compared == 2
    assert result.primary.requests == 0 and result.client.requests == 0
    check = judge("primary", READY, result.primary, LIMITS)
    assert (check.verdict, check.reasons) == ("Inconclusive", ("TooFewRequests",))


def test_healthy_primary_summed_over_two_routers(plane: Plane) -> None:
    before = scrape(plane.metrics_urls())
    answers = send(plane.routers[0].url, 15) + send(plane.routers[1].url, 10)
    assert {a["model_used"] for a in answers} == {PRIMARY}
    after = scrape(plane.metrics_urls())
    result = router_window(before, after, primary_model=PRIMARY, fallback_model=FALLBACK)
    assert result.primary.requests == 25 and result.primary.failure_rate == 0.0
    assert result.primary.p95_latency_seconds is not None
    assert 0 < result.primary.p95_latency_seconds < 5
    assert result.client.requests == 25 and result.client.failure_rate == 0.0
    assert result.fallback.requests == 0 and result.fallback_reasons == {}
    assert judge("primary", READY, result.primary, LIMITS).verdict == "Healthy"


def test_primary_down_fails_with_the_router_reason(plane: Plane) -> None:
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens there
    with pizza_serve(*router_args(dead, plane.fallback.url)) as router:
        urls = {"router-dead-primary": f"{router.url}/metrics"}
        before = scrape(urls)
        answers = send(router.url, 22)
        after = scrape(urls)
    assert {a["model_used"] for a in answers} == {FALLBACK}
    result = router_window(before, after, primary_model=PRIMARY, fallback_model=FALLBACK)
    assert result.primary.requests == 22 and result.primary.failure_rate == 1.0
    assert set(result.fallback_reasons) <= PRIMARY_FAILURE_REASONS
    assert result.fallback_reasons.get("unavailable", 0) >= 1
    assert sum(result.fallback_reasons.values()) == 22
    assert result.client.failure_rate == 0.0  # the router answered every one with 200
    assert result.fallback.requests == 22 and result.fallback.failure_rate == 0.0
    check = judge("primary", READY, result.primary, LIMITS)
    assert (check.verdict, check.reasons) == ("Failed", ("FailureRate",))


def test_router_restart_between_scrapes_is_not_negative(plane: Plane) -> None:
    send(plane.routers[1].url, 5)  # counts the restart must not subtract
    before = scrape(plane.metrics_urls())
    old = plane.routers[1]
    port = int(old.url.rsplit(":", 1)[1])
    old.popen.terminate()
    old.popen.wait(timeout=10)
    args = router_args(plane.primary.url, plane.fallback.url)
    plane.routers[1] = plane.stack.enter_context(pizza_serve(*args, port=port))
    send(plane.routers[1].url, 3)
    send(plane.routers[0].url, 4)
    after = scrape(plane.metrics_urls())
    result = router_window(before, after, primary_model=PRIMARY, fallback_model=FALLBACK)
    assert result.primary.requests == 7 and result.primary.failure_rate == 0.0
    assert result.client.requests == 7


def test_frozen_primary_times_out_then_the_breaker_opens(plane: Plane) -> None:
    before = scrape(plane.metrics_urls())
    plane.primary.popen.send_signal(signal.SIGSTOP)
    try:
        answers = send(plane.routers[0].url, 20)
    finally:
        plane.primary.popen.send_signal(signal.SIGCONT)
    after = scrape(plane.metrics_urls())
    assert {a["model_used"] for a in answers} == {FALLBACK}
    result = router_window(before, after, primary_model=PRIMARY, fallback_model=FALLBACK)
    assert result.primary.requests == 20 and result.primary.failure_rate == 1.0
    assert result.fallback_reasons["timeout"] >= 1
    assert result.fallback_reasons.get("circuit_open", 0) >= 1  # 5 timeouts open it
    assert set(result.fallback_reasons) <= PRIMARY_FAILURE_REASONS
    assert result.client.failure_rate == 0.0


def test_unreachable_router_is_no_data() -> None:
    urls = {"router-gone": f"http://127.0.0.1:{free_port()}/metrics"}
    before = scrape(urls)
    assert before == {"router-gone": None}
    result = router_window(before, scrape(urls), primary_model=PRIMARY, fallback_model=FALLBACK)
    assert result.primary.requests is None
    assert judge("primary", READY, result.primary, LIMITS).verdict == "Inconclusive"
