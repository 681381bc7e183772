"""`pizza-serve`: flags and environment variables (docs/CONTRACTS.md), and a real process."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from pizza_inference.cli import parse_config
from pizza_inference.config import ModelServerConfig, RouterConfig

from tests.support.images import image_bytes
from tests.support.servers import serve_subprocess, wait_ready

pytestmark = pytest.mark.unit


def test_model_flags_and_defaults() -> None:
    config = parse_config(
        [
            "model",
            "--backend",
            "cnn",
            "--source",
            "builtin://micro-pizza-net",
            "--precision",
            "int8",
        ]
    )
    assert config == ModelServerConfig(
        backend="cnn",
        source="builtin://micro-pizza-net",
        precision="int8",
        model_name="standard-cnn",
    )
    vlm = parse_config(
        [
            "model",
            "--backend",
            "vlm",
            "--source",
            "hf://Qwen/Qwen2.5-VL-3B-Instruct",
            "--precision",
            "bfloat16",
            "--model-name",
            "qwen",
            "--port",
            "9000",
            "--max-batch-size",
            "8",
            "--batch-timeout-ms",
            "5",
            "--device",
            "cuda",
        ]
    )
    assert isinstance(vlm, ModelServerConfig)
    assert (vlm.model_name, vlm.port, vlm.max_batch_size, vlm.batch_timeout_ms, vlm.device) == (
        "qwen",
        9000,
        8,
        5.0,
        "cuda",
    )
    assert isinstance(
        parse_config(["model", "--backend", "vlm", "--source", "file:///m"]), ModelServerConfig
    )


def test_every_flag_reads_its_environment_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    env = {
        "PIZZA_BACKEND": "image-classifier",
        "PIZZA_SOURCE": "pvc://claim/vit",
        "PIZZA_PRECISION": "float16",
        "PIZZA_MODEL_NAME": "vit",
        "PIZZA_DEVICE": "cuda",
        "PIZZA_PORT": "8100",
        "PIZZA_HOST": "127.0.0.1",
        "PIZZA_MAX_BATCH_SIZE": "4",
        "PIZZA_BATCH_TIMEOUT_MS": "1.5",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert parse_config(["model"]) == ModelServerConfig(
        backend="image-classifier",
        source="pvc://claim/vit",
        precision="float16",
        model_name="vit",
        device="cuda",
        host="127.0.0.1",
        port=8100,
        max_batch_size=4,
        batch_timeout_ms=1.5,
    )
    router_env = {
        "PIZZA_PRIMARY_URL": "http://primary:8001",
        "PIZZA_FALLBACK_URL": "http://fallback:8001",
        "PIZZA_ROUTER_MODE": "stable",
        "PIZZA_PRIMARY_TIMEOUT_SECONDS": "2.5",
        "PIZZA_RATE_LIMIT_PER_MINUTE": "50",
        "PIZZA_AB_PRIMARY_PERCENT": "20",
    }
    for key, value in router_env.items():
        monkeypatch.setenv(key, value)
    assert parse_config(["router"]) == RouterConfig(
        primary_url="http://primary:8001",
        fallback_url="http://fallback:8001",
        mode="stable",
        primary_timeout_seconds=2.5,
        rate_limit_per_minute=50,
        ab_primary_percent=20.0,
        host="127.0.0.1",
        port=8100,
    )
    monkeypatch.setenv("PIZZA_PRECISION", "int4")
    with pytest.raises(SystemExit):
        parse_config(["model"])


@pytest.mark.parametrize(
    "argv",
    [
        ["model", "--source", "builtin://x"],
        ["router", "--primary", "http://p"],
        ["router", "--primary", "http://p", "--fallback", "http://f", "--mode", "fast"],
        [
            "router",
            "--primary",
            "http://p",
            "--fallback",
            "http://f",
            "--ab-primary-percent",
            "150",
        ],
    ],
)
def test_rejects_incomplete_or_invalid(argv: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    for key in (
        "PIZZA_BACKEND",
        "PIZZA_FALLBACK_URL",
        "PIZZA_ROUTER_MODE",
        "PIZZA_AB_PRIMARY_PERCENT",
    ):
        monkeypatch.delenv(key, raising=False)
    with pytest.raises(SystemExit):
        parse_config(argv)


@pytest.mark.slow
def test_a_model_server_process_configured_by_environment_only(cnn_checkpoint: Path) -> None:
    env = {
        "PIZZA_BACKEND": "cnn",
        "PIZZA_SOURCE": f"file://{cnn_checkpoint}",
        "PIZZA_PRECISION": "int8",
    }
    with serve_subprocess(["model"], env=env) as url:
        wait_ready(url, timeout=60)
        body = httpx.post(
            f"{url}/classify", files={"file": ("a.jpg", image_bytes(), "image/jpeg")}
        ).json()
        assert body["model_used"] == "standard-cnn"
        assert httpx.get(f"{url}/status").json()["models"]["standard-cnn"]["precision"] == "int8"
