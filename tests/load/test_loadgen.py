"""The load generator and the timeline drawer against a real router and real model servers (INT8
CNN primary and fallback on CPU, uvicorn in threads as tests/inference does)."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from PIL import Image
from pizza_inference.config import RouterConfig
from pizza_inference.model_server.app import create_model_app
from pizza_inference.model_server.plane import ModelDataPlane
from pizza_inference.router.app import create_router_app
from pizza_load.loadgen import (
    SKIPPED,
    LoadGenerator,
    Record,
    check_local_url,
    pizza_images,
    read_records,
    summary,
)
from pizza_load.timeline import MODEL_COLORS, Sample, draw_timeline, write_samples

from tests.inference.conftest import cnn_checkpoint, cnn_config, cnn_server  # noqa: F401
from tests.inference.faults import ControllableBackend
from tests.support.servers import ServerThread, serve, wait_ready

pytestmark = pytest.mark.unit

PRIMARY = "primary-cnn"
FALLBACK = "standard-cnn"  # the model name of tests.inference's cnn_server
RATE = 20.0
HEALTHY_S = 3.0
FAULT_S = 2.0


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return pizza_images(12)


class StatusSampler:
    """Polls the router's /status: the primary's failure rate over each interval (None when the
    router sent it nothing) and the router's mode."""

    def __init__(self, url: str, every_s: float = 0.2) -> None:
        self.url, self.every_s = url, every_s
        self.samples: list[Sample] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def __enter__(self) -> StatusSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def _loop(self) -> None:
        last: tuple[int, int] | None = None
        while not self._stop.wait(self.every_s):
            body = httpx.get(f"{self.url}/status", timeout=5).json()
            primary = body["models"]["primary"]
            now = (int(primary["requests"]), int(primary["errors"]))
            rate = None
            if last is not None and now[0] > last[0]:
                rate = (now[1] - last[1]) / (now[0] - last[0])
            last = now
            self.samples.append(Sample(time.time(), rate, body["router"]["mode"]))


@dataclass(frozen=True)
class Scenario:
    records: list[Record]
    samples: list[Sample]
    events: list[tuple[str, float]]
    started: float
    fault: float
    fault_visible: float
    ended: float
    records_path: Path


@pytest.fixture(scope="module")
def scenario(
    cnn_checkpoint: Path,  # noqa: F811
    cnn_server: ServerThread,  # noqa: F811
    images: list[bytes],
    tmp_path_factory: pytest.TempPathFactory,
) -> Scenario:
    """20 rps through the router: 3 s with a healthy primary, then the primary server stopped
    and 2 s more. The limit is raised for this one client (as spec.router.rateLimitPerMinute
    would): 100 a minute would answer most of these 100 requests with 429."""
    records_path = tmp_path_factory.mktemp("loadgen") / "records.jsonl"
    primary = ServerThread(create_model_app(cnn_config(cnn_checkpoint, model_name=PRIMARY))).start()
    wait_ready(primary.url)
    config = RouterConfig(
        primary_url=primary.url, fallback_url=cnn_server.url, rate_limit_per_minute=100_000
    )
    try:
        with serve(create_router_app(config)) as router, StatusSampler(router.url) as sampler:
            gen = LoadGenerator(
                router.url,
                rate=RATE,
                concurrency=8,
                images=images,
                timeout_s=15,
                records_path=records_path,
            ).start()
            time.sleep(HEALTHY_S)
            fault = time.time()
            primary.stop()
            fault_visible = time.time()
            time.sleep(FAULT_S)
            records = gen.stop()
            time.sleep(0.3)  # one more status sample after the load
    finally:
        primary.stop()
    assert gen.started_at is not None and gen.stopped_at is not None
    return Scenario(
        records=records,
        samples=sampler.samples,
        events=[("primary stopped", fault)],
        started=gen.started_at,
        fault=fault,
        fault_visible=fault_visible,
        ended=gen.stopped_at,
        records_path=records_path,
    )


@pytest.mark.slow
def test_healthy_primary_answers_at_the_asked_rate(scenario: Scenario) -> None:
    healthy = [r for r in scenario.records if r.t < scenario.fault]
    assert all(r.status in (200, SKIPPED) for r in healthy), summary(healthy)
    counts = summary(healthy, scenario.started, scenario.fault)
    assert counts.skipped <= 0.1 * counts.total, counts
    assert counts.by_model == {PRIMARY: counts.answered}, counts
    assert counts.by_fallback_reason == {} and counts.server_errors == 0, counts
    # open loop at 20/s: about 60 in 3 s (generous bounds, this is not a timing test)
    assert 0.6 * RATE * HEALTHY_S <= counts.total <= 1.3 * RATE * HEALTHY_S + 2, counts
    assert all(r.latency_s is not None and r.latency_s > 0 for r in healthy if r.sent)


@pytest.mark.slow
def test_stopped_primary_gives_fallback_answers(scenario: Scenario) -> None:
    after = [r for r in scenario.records if r.t >= scenario.fault_visible]
    counts = summary(after, scenario.fault_visible, scenario.ended + 1)
    assert counts.sent >= 0.5 * RATE * FAULT_S, counts
    assert counts.unanswered == 0 and counts.server_errors == 0, counts
    assert counts.by_model == {FALLBACK: counts.answered}, counts
    assert set(counts.by_fallback_reason) <= {"unavailable", "circuit_open", "error"}, counts
    assert sum(counts.by_fallback_reason.values()) == counts.answered, counts
    whole = summary(scenario.records)
    assert whole.by_model.keys() == {PRIMARY, FALLBACK}, whole


@pytest.mark.slow
def test_records_jsonl_streams_every_record(scenario: Scenario) -> None:
    written = read_records(scenario.records_path)
    key = lambda r: (r.t, str(r.status))  # noqa: E731
    assert sorted(written, key=key) == sorted(scenario.records, key=key)


@pytest.mark.slow
def test_rate_limit_of_one_client_shows_as_429(
    cnn_server: ServerThread,  # noqa: F811
    images: list[bytes],
) -> None:
    """The limiter keys on the peer address: one generator is one client."""
    config = RouterConfig(
        primary_url=cnn_server.url, fallback_url=cnn_server.url, rate_limit_per_minute=20
    )
    with serve(create_router_app(config)) as router:
        records = LoadGenerator(router.url, rate=10, images=images).run_for(3.0)
    counts = summary(records)
    assert counts.answered <= 20 + 3, counts  # the burst, plus 1/3 token a second
    assert counts.by_status.get("429", 0) >= 5, counts
    assert {r.error for r in records if r.status == 429} == {"rate_limited"}
    assert counts.unanswered == counts.by_status["429"] and counts.server_errors == 0


@pytest.mark.slow
def test_concurrency_cap_skips_instead_of_queueing(
    cnn_checkpoint: Path,  # noqa: F811
    images: list[bytes],
) -> None:
    backend = ControllableBackend(cnn_checkpoint)
    backend.mode, backend.delay_s = "slow", 0.8
    plane = ModelDataPlane(
        lambda: backend, model_name="slow-cnn", backend_kind="cnn", source="test"
    )
    with serve(create_model_app(cnn_config(cnn_checkpoint), plane=plane)) as slow:
        wait_ready(slow.url)
        records = LoadGenerator(slow.url, rate=20, concurrency=2, images=images).run_for(2.0)
    counts = summary(records)
    assert counts.total >= 0.6 * 20 * 2.0, counts  # the rate is kept although answers are slow
    assert counts.skipped >= counts.total / 2, counts
    assert counts.answered == counts.sent, counts
    # never more than 2 in flight
    edges = sorted(
        [(r.t, 1) for r in records if r.sent]
        + [(r.t + (r.latency_s or 0.0) - 1e-3, -1) for r in records if r.sent],
        key=lambda e: (e[0], e[1]),
    )
    level, peak = 0, 0
    for _, step in edges:
        level += step
        peak = max(peak, level)
    assert peak <= 2


@pytest.mark.parametrize(
    "url",
    [
        "http://8.8.8.8:8000",
        "http://192.168.1.10",
        "http://10.1.0.1:8000",  # 10.0.0.0/8 but outside the two /16s
        "https://1.1.1.1",
        "ftp://127.0.0.1/",
        "http://:8000",
        "http://no-such-host.invalid",
    ],
)
def test_non_local_urls_are_refused_before_sending(url: str, images: list[bytes]) -> None:
    with pytest.raises(ValueError):
        LoadGenerator(url, images=images)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:8000/",
        "http://localhost:8000",
        "http://[::1]:8000",
        "http://10.0.0.123:8000",
        "http://10.244.3.7:8080",
    ],
)
def test_local_urls_are_accepted(url: str) -> None:
    assert check_local_url(url) == url.rstrip("/")


def test_pizza_images_are_real_distinct_jpegs(images: list[bytes]) -> None:
    assert len(images) == 12 and len(set(images)) == 12
    for data in images[:6]:
        assert data.startswith(b"\xff\xd8\xff")
    pngs = pizza_images(2, fmt="PNG")
    assert all(p.startswith(b"\x89PNG") for p in pngs)


def _check_png(path: Path) -> Image.Image:
    assert path.stat().st_size > 10_000
    image = Image.open(path)
    image.verify()
    image = Image.open(path)
    assert image.format == "PNG" and image.width >= 1200 and 700 <= image.height <= 1400
    return image.convert("RGB")


@pytest.mark.slow
def test_timeline_png_from_real_records(scenario: Scenario, tmp_path: Path) -> None:
    assert any(s.mode == "primary" for s in scenario.samples)
    out = draw_timeline(
        scenario.records,
        scenario.samples,
        tmp_path / "timeline.png",
        "router: primary stopped under 20 rps",
        scenario.events,
        threshold=0.5,
    )
    image = _check_png(out)
    colors = {color for _, color in image.getcolors(maxcolors=1 << 20) or []}
    assert MODEL_COLORS[0] in colors and MODEL_COLORS[1] in colors  # both models' bars


@pytest.mark.slow
def test_timeline_cli(scenario: Scenario, tmp_path: Path) -> None:
    samples = write_samples(
        tmp_path / "samples.jsonl", scenario.samples, scenario.events, threshold=0.5
    )
    out = tmp_path / "cli.png"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pizza_load.timeline",
            str(scenario.records_path),
            str(samples),
            str(out),
            "--title",
            "from the CLI",
            "--event",
            f"load stopped={scenario.ended}",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    _check_png(out)
