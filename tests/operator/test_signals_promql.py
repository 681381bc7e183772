"""The Prometheus path against a real Prometheus (Debian package) scraping real routers.

Three `pizza-serve router` processes on 127.0.0.1: one with a healthy primary, one whose
primary is not there (every request answered by the fallback), one idle. Prometheus scrapes
them every second; the analysis' PromQL is asked through the HTTP API.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import httpx
import pytest
from pizza_operator.analysis.promql import (
    DEFAULT_QUERIES,
    QueryContext,
    render_queries,
    router_window_from_prometheus,
)
from pizza_operator.analysis.window import PRIMARY_FAILURE_REASONS, RouterWindow
from pizza_operator.rollback import KubeSignals, Thresholds, judge

from tests.operator.test_signals_scrape_router import (
    FALLBACK,
    IMAGE,
    PRIMARY,
    model_server,
    pizza_serve,
    router_args,
)
from tests.support.net import free_port
from tests.support.prometheus import prometheus, wait_for_value

pytestmark = [pytest.mark.unit, pytest.mark.slow]
LIMITS = Thresholds(failure_rate=0.05, p95_latency_seconds=5.0, min_requests=10)
READY = KubeSignals(desired=1, ready=1, available=True)


@dataclass
class Setup:
    prometheus: str
    healthy: str  # router instances as Prometheus labels them (host:port)
    broken: str
    idle: str
    urls: dict[str, str]


def instance(url: str) -> str:
    return url.removeprefix("http://")


def paced(router_url: str, count: int, every: float = 0.1) -> None:
    """Requests spread over several scrapes (a counter's first sample is its baseline)."""
    with httpx.Client(timeout=30) as client:
        for _ in range(count):
            files = {"file": ("p.jpg", IMAGE, "image/jpeg")}
            assert client.post(f"{router_url}/classify", files=files).status_code == 200
            time.sleep(every)


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    with ExitStack() as stack:
        primary = stack.enter_context(pizza_serve(*model_server(PRIMARY)))
        fallback = stack.enter_context(pizza_serve(*model_server(FALLBACK)))
        dead = f"http://127.0.0.1:{free_port()}"
        routers = {
            "healthy": stack.enter_context(pizza_serve(*router_args(primary.url, fallback.url))),
            "broken": stack.enter_context(pizza_serve(*router_args(dead, fallback.url))),
            "idle": stack.enter_context(pizza_serve(*router_args(primary.url, fallback.url))),
        }
        targets = [instance(r.url) for r in routers.values()]
        workdir = tmp_path_factory.mktemp("prometheus")
        prom = stack.enter_context(prometheus(targets, workdir, job="routers"))
        wait_for_value(prom, 'count(up{job="routers"} == 1)', 3)
        for name in ("healthy", "broken"):
            paced(routers[name].url, 30)
        for name in ("healthy", "broken"):
            expr = (
                f'sum(pizza_api_requests_total{{instance="{instance(routers[name].url)}",'
                'endpoint="/classify"})'
            )
            wait_for_value(prom, expr, 30)
        yield Setup(
            prom,
            instance(routers["healthy"].url),
            instance(routers["broken"].url),
            instance(routers["idle"].url),
            {n: r.url for n, r in routers.items()},
        )


def window(setup: Setup, router: str, overrides: dict[str, str] | None = None) -> RouterWindow:
    context = QueryContext(f'job="routers",instance="{router}"', "1m", PRIMARY, FALLBACK)
    coro = router_window_from_prometheus(setup.prometheus, context, overrides=overrides)
    return asyncio.run(coro)


def test_healthy_primary(setup: Setup) -> None:
    result = window(setup, setup.healthy)
    assert result.primary.requests is not None and 10 <= result.primary.requests <= 60
    assert result.primary.failure_rate == 0.0
    p95 = result.primary.p95_latency_seconds
    assert p95 is not None and 0 < p95 < 5
    assert result.client.failure_rate == 0.0 and result.fallback_reasons == {}
    assert judge("primary", READY, result.primary, LIMITS).verdict == "Healthy"


def test_primary_down_is_a_failure_rate_of_one(setup: Setup) -> None:
    result = window(setup, setup.broken)
    assert result.primary.requests is not None and result.primary.requests >= 10
    assert result.primary.failure_rate == 1.0
    assert result.fallback_reasons and set(result.fallback_reasons) <= PRIMARY_FAILURE_REASONS
    assert result.client.failure_rate == 0.0  # every client got a 200 from the fallback
    assert result.fallback.failure_rate == 0.0
    check = judge("primary", READY, result.primary, LIMITS)
    assert (check.verdict, check.reasons) == ("Failed", ("FailureRate",))


def test_idle_router_is_inconclusive(setup: Setup) -> None:
    httpx.get(f"{setup.urls['idle']}/v2/health/ready", timeout=5)  # probes are not clients
    result = window(setup, setup.idle)
    assert result.primary.requests == 0 and result.primary.failure_rate is None
    assert result.client.requests == 0
    check = judge("primary", READY, result.primary, LIMITS)
    assert (check.verdict, check.reasons) == ("Inconclusive", ("TooFewRequests",))


def test_no_router_target_or_no_prometheus_is_no_data(setup: Setup) -> None:
    assert window(setup, "127.0.0.1:1").primary.requests is None
    context = QueryContext('job="routers"', "1m", PRIMARY, FALLBACK)
    gone = f"http://127.0.0.1:{free_port()}"
    result = asyncio.run(router_window_from_prometheus(gone, context, timeout_seconds=2))
    assert result.primary.requests is None and result.client.requests is None


def test_a_query_can_be_overridden(setup: Setup) -> None:
    result = window(setup, setup.healthy, overrides={"primary_p95": "vector(7)"})
    assert result.primary.p95_latency_seconds == 7.0
    assert judge("primary", READY, result.primary, LIMITS).reasons == ("LatencyP95",)
    bad = window(setup, setup.healthy, overrides={"primary_p95": "sum(("})
    assert bad.primary.requests is None  # Prometheus rejected the query: no data


def test_render_fills_every_placeholder() -> None:
    context = QueryContext('namespace="pizzas",pod=~"pmd-router-.+"', "2m", "vit", "cnn")
    rendered = render_queries(context)
    assert set(rendered) == set(DEFAULT_QUERIES)
    assert all("$" not in q for q in rendered.values())
    assert 'model="vit"' in rendered["primary_answered"] and "[2m]" in rendered["primary_p95"]
    with pytest.raises(ValueError, match="unknown"):
        render_queries(context, {"error_rate": "vector(1)"})


@pytest.mark.parametrize(
    "model",
    ['x"} or vector(1) #', "back\\slash", "dots.and|pipes(.*)", "new\nline"],
)
def test_hostile_model_names_are_label_values_not_promql(setup: Setup, model: str) -> None:
    """Escaped, every query still parses in the real Prometheus and selects nothing of theirs."""
    context = QueryContext(f'job="routers",instance="{setup.healthy}"', "1m", model, model)
    got = asyncio.run(router_window_from_prometheus(setup.prometheus, context))
    assert got.error is None, got.error
    assert got.fallback.requests == 0
