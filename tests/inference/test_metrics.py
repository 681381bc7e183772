"""Metrics: every name present and set, promtool accepts the output, a real Prometheus scrapes it
and the documented error-rate expression matches the traffic we sent."""

from __future__ import annotations

import shutil
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from tests.support.images import image_bytes
from tests.support.net import free_port
from tests.support.prometheus import prometheus, query, wait_for_value
from tests.support.servers import ServerThread, serve_subprocess

pytestmark = pytest.mark.unit

ERROR_RATE = (
    'sum(rate(pizza_api_requests_total{status=~"5.."}[1m]))'
    " / sum(rate(pizza_api_requests_total[1m]))"
)
"""The expression documented in inference/README.md and docs/CONTRACTS.md."""

MEASURED = 'sum(pizza_api_requests_total{endpoint=~"/status|/classify"})'
"""The requests this test sends (the start-up liveness polls are counted too, before the window)."""

METRIC_NAMES = (
    "pizza_api_requests_total",
    "pizza_api_request_duration_seconds",
    "pizza_api_inference_total",
    "pizza_api_inference_duration_seconds",
    "pizza_api_model_errors_total",
    "pizza_api_active_connections",
    "pizza_api_memory_usage_bytes",
    "pizza_api_gpu_memory_usage_bytes",
    "pizza_api_fallback_total",
)


@pytest.mark.slow
def test_metrics_text_json_and_promtool(cnn_server: ServerThread) -> None:
    httpx.post(f"{cnn_server.url}/classify", files={"file": ("a.jpg", image_bytes(), "image/jpeg")})
    httpx.post(f"{cnn_server.url}/classify", files={"file": ("a.jpg", b"junk", "image/jpeg")})
    response = httpx.get(f"{cnn_server.url}/metrics")
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    for name in METRIC_NAMES:
        assert f"# TYPE {name.removesuffix('_total')}" in text, name
    assert 'pizza_api_requests_total{endpoint="/classify",method="POST",status="400"}' in text
    assert 'pizza_api_inference_total{model="standard-cnn"}' in text
    assert 'le="0.001"' in text and 'le="10.0"' in text
    memory = next(
        line for line in text.splitlines() if line.startswith("pizza_api_memory_usage_bytes ")
    )
    assert float(memory.split()[1]) > 10_000_000
    assert "/metrics" not in {
        line.split('endpoint="')[1].split('"')[0]
        for line in text.splitlines()
        if 'endpoint="' in line
    }
    alias = httpx.get(f"{cnn_server.url}/prometheus-metrics")
    assert alias.status_code == 200 and "pizza_api_requests_total" in alias.text
    summary = httpx.get(f"{cnn_server.url}/metrics", headers={"Accept": "application/json"}).json()
    assert summary["models"]["standard-cnn"]["inference_count"] >= 1

    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool not installed (Debian package prometheus; hack/install-system-deps.sh)"
        )
    check = subprocess.run(
        [promtool, "check", "metrics"], input=text, capture_output=True, text=True, check=False
    )
    assert check.returncode == 0, check.stdout + check.stderr


@pytest.mark.slow
def test_error_rate_expression_on_a_real_prometheus(tmp_path: Path, cnn_checkpoint: Path) -> None:
    """A router in its own process with no model reachable: GET /status answers 200, POST /classify
    503. Prometheus' error rate over the measured traffic must equal the share of 5xx we sent."""
    fallback_port = free_port()
    args = [
        "router",
        "--primary",
        f"http://127.0.0.1:{free_port()}",
        "--fallback",
        f"http://127.0.0.1:{fallback_port}",
        "--rate-limit-per-minute",
        "0",
    ]
    with serve_subprocess(args) as url:
        files = {"file": ("a.jpg", image_bytes(), "image/jpeg")}

        def send(good: int, failing: int) -> None:
            for _ in range(good):
                assert httpx.get(f"{url}/status").status_code == 200
            for _ in range(failing):
                assert httpx.post(f"{url}/classify", files=files).status_code == 503

        # Before the first scrape, so every series has samples at the same instants; in the same
        # 3:1 proportion as the measured traffic, so Prometheus extrapolates both series alike.
        send(3, 1)
        with prometheus([url.removeprefix("http://")], tmp_path) as prom:
            wait_for_value(prom, MEASURED, 4)
            time.sleep(2.5)
            send(12, 4)
            wait_for_value(prom, MEASURED, 20)
            time.sleep(2.5)  # more scrapes with the final values
            result = query(prom, ERROR_RATE)
            assert len(result) == 1
            assert float(result[0]["value"][1]) == pytest.approx(4 / 16, abs=1e-9)  # type: ignore[index]
            fallbacks = query(prom, 'pizza_api_fallback_total{reason="unavailable"}')
            assert float(fallbacks[0]["value"][1]) == 5  # type: ignore[index]
