"""The router's canary of a new primary revision, against real model servers on loopback.

Three real INT8 CNN model servers: the stable primary (`stable-cnn`) and the canary
(`canary-cnn`), each a controllable backend (ok, fail, slow, wrong), and the fallback
(`standard-cnn`). The model's name in each answer tells who answered. The routing table is set on
the plane the way the mode watch sets it (`set_canary`), and the watch's own handling of the
ConfigMap keys is tested at the end.
"""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pizza_inference.config import ModeWatchConfig, RouterConfig
from pizza_inference.model_server.app import create_model_app
from pizza_inference.model_server.plane import ModelDataPlane
from pizza_inference.router.app import create_router_app
from pizza_inference.router.canary import (
    AGREEMENT_MAX_IN_FLIGHT,
    NO_CANARY,
    CanaryTable,
    parse_canary,
)
from pizza_inference.router.modewatch import ModeWatcher
from pizza_inference.router.plane import RouterPlane
from prometheus_client import REGISTRY

from tests.inference.conftest import cnn_config
from tests.inference.faults import ControllableBackend
from tests.support.images import image_bytes
from tests.support.net import free_port
from tests.support.servers import ServerThread, serve, wait_ready
from tests.support.waiting import eventually

pytestmark = [pytest.mark.unit, pytest.mark.slow]

IMAGE = image_bytes("JPEG", (64, 64), seed=11)
Server = tuple[ServerThread, ControllableBackend]


def _model_server(checkpoint: Path, name: str) -> Iterator[Server]:
    backend = ControllableBackend(checkpoint)
    plane = ModelDataPlane(lambda: backend, model_name=name, backend_kind="cnn", source="test")
    server = ServerThread(create_model_app(cnn_config(checkpoint), plane=plane)).start()
    wait_ready(server.url)
    yield server, backend
    server.stop()


@pytest.fixture(scope="module")
def stable(cnn_checkpoint: Path) -> Iterator[Server]:
    yield from _model_server(cnn_checkpoint, "stable-cnn")


@pytest.fixture(scope="module")
def canary(cnn_checkpoint: Path) -> Iterator[Server]:
    yield from _model_server(cnn_checkpoint, "canary-cnn")


@pytest.fixture(autouse=True)
def healthy(stable: Server, canary: Server) -> Iterator[None]:
    yield
    for _, backend in (stable, canary):
        backend.mode, backend.delay_s = "ok", 0.0


@contextmanager
def router(
    stable_url: str, fallback_url: str, table: CanaryTable, seed: int = 0, **overrides: object
) -> Iterator[tuple[str, RouterPlane]]:
    values: dict[str, object] = {
        "primary_url": stable_url,
        "fallback_url": fallback_url,
        "rate_limit_per_minute": 0,
    }
    values.update(overrides)
    config = RouterConfig(**values)  # type: ignore[arg-type]
    plane = RouterPlane(config, rng=random.Random(seed))
    plane.set_canary(table, source="test")
    with serve(create_router_app(config, plane=plane)) as server:
        yield server.url, plane


def classify(url: str, data: bytes = IMAGE) -> httpx.Response:
    return httpx.post(f"{url}/classify", files={"file": ("p.jpg", data, "image/jpeg")}, timeout=30)


def answered_by(url: str, n: int) -> dict[str, int]:
    counts: dict[str, int] = {}
    for _ in range(n):
        body = classify(url).json()
        assert body["fallback_reason"] is None, body
        counts[body["model_used"]] = counts.get(body["model_used"], 0) + 1
    return counts


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def upstream(role: str, outcome: str) -> float:
    return sample("pizza_router_upstream_requests_total", upstream=role, outcome=outcome)


def agreement(result: str) -> float:
    return sample("pizza_router_canary_agreement_total", result=result)


def primary_client_totals() -> tuple[float, float]:
    groups = [str(g) for g in range(16)]
    requests = sum(
        sample("pizza_router_primary_client_requests_total", client_group=g) for g in groups
    )
    failures = sum(
        sample("pizza_router_primary_client_failures_total", client_group=g) for g in groups
    )
    return requests, failures


def router_status(url: str) -> dict[str, Any]:
    router: dict[str, Any] = httpx.get(f"{url}/status", timeout=10).json()["router"]
    return router


def test_weight_0_100_and_50(stable: Server, canary: Server, cnn_server: ServerThread) -> None:
    """0: never the canary; 100: always; 50: about half (seeded), counted per upstream."""
    table = CanaryTable(url=canary[0].url, weight=0)
    with router(stable[0].url, cnn_server.url, table, seed=5) as (url, plane):
        calls = canary[1].calls
        assert answered_by(url, 10) == {"stable-cnn": 10}
        assert canary[1].calls == calls, "weight 0 sends nothing to the canary"

        plane.set_canary(CanaryTable(url=canary[0].url, weight=100), source="test")
        ok = upstream("canary", "ok")
        assert answered_by(url, 10) == {"canary-cnn": 10}
        assert upstream("canary", "ok") == ok + 10

        plane.set_canary(CanaryTable(url=canary[0].url, weight=50), source="test")
        ok_canary, ok_stable = upstream("canary", "ok"), upstream("primary", "ok")
        stable_requests = primary_client_totals()[0]
        n = 200
        counts = answered_by(url, n)
        # binomial(200, 0.5): sd about 7; the bounds are over 4 sd from the mean
        assert 70 <= counts["canary-cnn"] <= 130, counts
        assert counts["canary-cnn"] + counts["stable-cnn"] == n
        assert upstream("canary", "ok") == ok_canary + counts["canary-cnn"]
        assert upstream("primary", "ok") == ok_stable + counts["stable-cnn"]
        # the stable primary's client groups count only what went to the stable primary
        assert primary_client_totals()[0] == stable_requests + counts["stable-cnn"]

        status = router_status(url)["canary"]
        assert (status["url"], status["weight"], status["sample"]) == (canary[0].url, 50, 0.0)
        plane.set_canary(NO_CANARY, source="test")
        assert router_status(url)["canary"]["url"] is None
        assert answered_by(url, 3) == {"stable-cnn": 3}


def test_a_failing_canary_is_answered_by_stable_and_opens_only_its_breaker(
    stable: Server, canary: Server, cnn_server: ServerThread
) -> None:
    canary[1].mode = "fail"
    table = CanaryTable(url=canary[0].url, weight=100)
    with router(
        stable[0].url,
        cnn_server.url,
        table,
        circuit_failure_threshold=2,
        circuit_reset_seconds=60,
    ) as (url, _):
        errors, skipped = upstream("canary", "error"), upstream("canary", "unavailable")
        primary_failures = primary_client_totals()[1]
        assert answered_by(url, 2) == {"stable-cnn": 2}  # no client saw the canary fail
        assert upstream("canary", "error") == errors + 2
        calls = canary[1].calls
        assert answered_by(url, 3) == {"stable-cnn": 3}
        assert canary[1].calls == calls, "the canary's open breaker skips it"
        assert upstream("canary", "unavailable") == skipped + 3
        assert primary_client_totals()[1] == primary_failures, "no failure of the stable primary"
        status = router_status(url)
        assert status["canary"]["circuit_breaker"]["state"] == "open"
        assert status["circuit_breaker"]["state"] == "closed"
        assert status["canary"]["upstream"]["errors_by_reason"] == {"error": 2}

        # canary and stable both failing: the fallback answers, the stable primary is blamed
        stable[1].mode = "fail"
        body = classify(url).json()
        assert body["model_used"] == "standard-cnn" and body["fallback_reason"] == "error"
        assert primary_client_totals()[1] == primary_failures + 1

        # a bad input: both refuse it, the client gets the 400, not a canary failure
        stable[1].mode = "ok"
        response = classify(url, b"definitely not a jpeg")
        assert response.status_code == 400 and response.json()["error"] == "not_an_image"


def test_an_unreachable_canary(stable: Server, cnn_server: ServerThread) -> None:
    table = CanaryTable(url=f"http://127.0.0.1:{free_port()}", weight=100)
    with router(stable[0].url, cnn_server.url, table) as (url, _):
        before = upstream("canary", "unavailable")
        assert answered_by(url, 2) == {"stable-cnn": 2}
        assert upstream("canary", "unavailable") == before + 2


def test_a_bad_input_at_the_canary_is_judged_by_the_stable_primary(
    stable: Server, canary: Server, cnn_server: ServerThread
) -> None:
    table = CanaryTable(url=canary[0].url, weight=100)
    with router(stable[0].url, cnn_server.url, table) as (url, _):
        ok, errors = upstream("canary", "ok"), upstream("canary", "error")
        response = classify(url, b"definitely not a jpeg")
        assert response.status_code == 400 and response.json()["error"] == "not_an_image"
        assert (upstream("canary", "ok"), upstream("canary", "error")) == (ok + 1, errors)


def test_agreement_is_counted(stable: Server, canary: Server, cnn_server: ServerThread) -> None:
    """The same weights agree; a canary answering wrongly disagrees; a failing stable primary
    is an error. The client always gets the canary's answer."""
    table = CanaryTable(url=canary[0].url, weight=100, sample=1.0)
    with router(stable[0].url, cnn_server.url, table) as (url, _):

        def settled(expected: dict[str, int]) -> None:
            def done() -> bool:
                counts = router_status(url)["canary"]["agreement"]
                return all(counts[k] == v for k, v in expected.items())

            eventually(done, 15, f"agreement counts {expected}", every=0.05)

        agree, disagree, error = agreement("agree"), agreement("disagree"), agreement("error")
        assert answered_by(url, 4) == {"canary-cnn": 4}
        settled({"agree": 4, "disagree": 0, "error": 0, "in_flight": 0})
        assert agreement("agree") == agree + 4

        canary[1].mode = "wrong"
        assert answered_by(url, 3) == {"canary-cnn": 3}  # wrong, but the canary's answer
        settled({"agree": 4, "disagree": 3, "error": 0, "in_flight": 0})
        assert agreement("disagree") == disagree + 3

        canary[1].mode, stable[1].mode = "ok", "fail"
        assert answered_by(url, 2) == {"canary-cnn": 2}
        settled({"agree": 4, "disagree": 3, "error": 2, "in_flight": 0})
        assert agreement("error") == error + 2
        # the comparison's failures are not the stable primary's breaker's business
        assert router_status(url)["circuit_breaker"]["consecutive_failures"] == 0


def test_a_lent_primary_is_never_tried_and_the_fallback_is_the_reference(
    stable: Server, canary: Server, cnn_server: ServerThread
) -> None:
    """The stable primary's pods lent to the canary (no GPU spare): drawn requests go to the
    canary, the others to the fallback at once (`primary_lent`, no failure of the primary's);
    a failing canary is answered by the fallback; agreement is judged against the fallback."""
    table = CanaryTable(url=canary[0].url, weight=50, sample=1.0)
    with router(stable[0].url, cnn_server.url, table, seed=3) as (url, plane):
        plane.set_primary_lent(True, source="test")
        stable_calls, stable_requests = stable[1].calls, primary_client_totals()[0]
        agree = agreement("agree")
        answers = [classify(url).json() for _ in range(40)]
        by = {(a["model_used"], a["fallback_reason"]) for a in answers}
        assert by == {("canary-cnn", None), ("standard-cnn", "primary_lent")}, by
        drawn = sum(a["model_used"] == "canary-cnn" for a in answers)
        assert stable[1].calls == stable_calls, "the lent stable primary is never called"
        assert primary_client_totals()[0] == stable_requests  # nothing counted against it
        eventually(lambda: agreement("agree") == agree + drawn, 15, "compared with the fallback")

        canary[1].mode = "fail"
        failed = [classify(url).json() for _ in range(10)]
        assert {(a["model_used"], a["fallback_reason"]) for a in failed} == {
            ("standard-cnn", "primary_lent")
        }
        assert stable[1].calls == stable_calls
        plane.set_primary_lent(False, source="test")
        canary[1].mode = "ok"
        assert set(answered_by(url, 20)) == {"canary-cnn", "stable-cnn"}


def test_the_comparison_never_delays_the_client(
    stable: Server, canary: Server, cnn_server: ServerThread
) -> None:
    """A stable primary taking 1 s: the clients get the canary's answer at once, comparisons
    beyond the bound are dropped, none is waited for."""
    stable[1].mode, stable[1].delay_s = "slow", 1.0
    table = CanaryTable(url=canary[0].url, weight=100, sample=1.0)
    with router(stable[0].url, cnn_server.url, table, primary_timeout_seconds=20) as (url, _):
        classify(url)  # a first request opens the connections
        eventually(
            lambda: router_status(url)["canary"]["agreement"]["in_flight"] == 0,
            20,
            "the first comparison",
            every=0.05,
        )
        n = AGREEMENT_MAX_IN_FLIGHT + 4
        latencies = []
        for _ in range(n):
            start = time.perf_counter()
            body = classify(url).json()
            latencies.append(time.perf_counter() - start)
            assert body["model_used"] == "canary-cnn"
        assert max(latencies) < 0.5, latencies  # the stable primary takes 1 s each
        counts = router_status(url)["canary"]["agreement"]
        assert counts["in_flight"] <= AGREEMENT_MAX_IN_FLIGHT
        assert counts["dropped"] >= n - AGREEMENT_MAX_IN_FLIGHT, counts
        eventually(
            lambda: router_status(url)["canary"]["agreement"]["in_flight"] == 0,
            30,
            "the comparisons to finish",
            every=0.1,
        )
        counts = router_status(url)["canary"]["agreement"]
        assert counts["agree"] + counts["dropped"] == n + 1, counts


def test_metrics_series_from_zero(cnn_server: ServerThread) -> None:
    with router(cnn_server.url, cnn_server.url, NO_CANARY) as (url, _):
        text = httpx.get(f"{url}/metrics").text
    for role in ("primary", "canary", "fallback"):
        for outcome in ("ok", "error", "timeout", "unavailable"):
            assert (
                f'pizza_router_upstream_requests_total{{outcome="{outcome}",upstream="{role}"}}'
                in text
            )
        assert f'pizza_router_upstream_duration_seconds_count{{upstream="{role}"}}' in text
    for result in ("agree", "disagree", "error"):
        assert f'pizza_router_canary_agreement_total{{result="{result}"}}' in text


# ---- the routing table keys (pure) and the mode watch applying them ----------------------------
class TestParse:
    def test_absent_or_empty_url_is_no_canary(self) -> None:
        assert parse_canary({}) == NO_CANARY
        assert parse_canary({"canaryUrl": " ", "canaryWeight": "50"}) == NO_CANARY
        assert not parse_canary({"canaryUrl": "http://c:8000"}).active  # weight 0

    def test_a_full_entry(self) -> None:
        table = parse_canary(
            {
                "canaryUrl": " http://pmd-primary-canary:8000/ ",
                "canaryWeight": "25\n",
                "agreementSample": "0.5",
            }
        )
        assert table == CanaryTable("http://pmd-primary-canary:8000", 25, 0.5)
        assert table.active

    @pytest.mark.parametrize(
        ("key", "value"),
        [
            ("canaryUrl", "ftp://c"),
            ("canaryUrl", "http://"),
            ("canaryUrl", "http://c:99999"),
            ("canaryUrl", "http://c/?x=1"),
            ("canaryUrl", "http://c/" + "a" * 3000),
            ("canaryWeight", "101"),
            ("canaryWeight", "-1"),
            ("canaryWeight", "12.5"),
            ("canaryWeight", "²"),
            ("canaryWeight", "ten"),
            ("agreementSample", "1.5"),
            ("agreementSample", "nan"),
            ("agreementSample", "-0.1"),
            ("agreementSample", "lots"),
        ],
    )
    def test_malformed_values_are_refused_by_name(self, key: str, value: str) -> None:
        data = {"canaryUrl": "http://c:8000", "canaryWeight": "10", key: value}
        with pytest.raises(ValueError, match=key):
            parse_canary(data)


def test_the_mode_watch_applies_and_ignores_the_canary_keys() -> None:
    plane = RouterPlane(RouterConfig("http://p", "http://f", mode="primary"))
    config = ModeWatchConfig(configmap="cm", namespace="ns", api_url="https://127.0.0.1:1")
    watcher = ModeWatcher(config, plane)

    def modified(version: str, data: dict[str, str]) -> None:
        obj = {"metadata": {"name": "cm", "resourceVersion": version}, "data": data}
        watcher._event({"type": "MODIFIED", "object": obj})

    assert plane.canary is None
    entry = {"canaryUrl": "http://c:8000", "canaryWeight": "10", "agreementSample": "0.2"}
    modified("2", {"mode": "primary", **entry})
    assert plane.canary is not None
    assert plane.canary.table == CanaryTable("http://c:8000", 10, 0.2)
    first = plane.canary
    modified("3", {"mode": "primary", **entry, "canaryWeight": "50"})
    assert plane.canary.table.weight == 50
    assert plane.canary.breaker is first.breaker, "a new weight keeps the canary's breaker"
    modified("4", {"mode": "stable", **entry, "canaryWeight": "500"})  # malformed: ignored
    assert plane.canary.table.weight == 50 and plane.mode == "stable"
    modified("5", {**entry, "canaryWeight": "20"})  # no `mode` key: the canary still applies
    assert plane.canary.table.weight == 20
    modified("6", {"mode": "primary", **entry, "canaryUrl": "http://other:8000"})
    assert plane.canary.upstream.url == "http://other:8000"
    assert plane.canary.breaker is not first.breaker, "a new URL is a new canary"
    modified("7", {"mode": "primary"})
    assert plane.canary is None
