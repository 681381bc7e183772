"""`pizza-serve` with backend onnx, and the router, in processes where torch cannot be imported.

A `sitecustomize` shim on PYTHONPATH sets `sys.modules[name] = None` for torch, transformers,
the Hugging Face hub and the ONNX exporter packages, so any `import torch` in those processes
raises ImportError: what the light image (extra `cpu`) gives. Real generated pizzas go over
HTTP to the servers and through the router; the classes must be right and equal to what the
same ONNX model gives in this process.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.backends import create_backend
from pizza_inference.sources import resolve
from pizza_models.dataset import FRESH_SEED, render

from tests.support.servers import REPO, serve_subprocess, wait_ready

pytestmark = [pytest.mark.unit, pytest.mark.slow]

BLOCKED = ("torch", "torchvision", "transformers", "huggingface_hub", "onnx", "onnxscript")
SHIM = (
    "import sys\n"
    f"for _name in {BLOCKED!r}:\n"
    "    sys.modules[_name] = None  # `import _name` raises ImportError\n"
)
PER_CLASS = 3


@pytest.fixture(scope="module")
def torch_free_env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    shim = tmp_path_factory.mktemp("torch-free")
    (shim / "sitecustomize.py").write_text(SHIM, encoding="utf-8")
    return {"PYTHONPATH": os.pathsep.join([str(shim), str(REPO / "inference")])}


@pytest.fixture(scope="module")
def pizzas() -> tuple[list[Image.Image], np.ndarray, list[bytes]]:
    """Generated images of a stream no model saw, as PNG bytes (lossless: same pixels)."""
    images, labels = render(FRESH_SEED, PER_CLASS, workers=1)
    encoded = []
    for image in images:
        buffer = io.BytesIO()
        image.save(buffer, format="PNG")
        encoded.append(buffer.getvalue())
    return images, labels, encoded


def _model_env(source: str, precision: str, name: str) -> dict[str, str]:
    """The environment the operator sets on a model container (builders/pod.py)."""
    return {
        "PIZZA_BACKEND": "onnx",
        "PIZZA_SOURCE": source,
        "PIZZA_PRECISION": precision,
        "PIZZA_MODEL_NAME": name,
        "PIZZA_DEVICE": "cpu",
        "HF_HOME": "/tmp/hf",
    }


@pytest.fixture(scope="module")
def servers(torch_free_env: dict[str, str]) -> Iterator[dict[str, str]]:
    primary_env = {
        **torch_free_env,
        **_model_env("builtin://pizza-convnext-tiny", "float32", "pizza-convnext-tiny"),
    }
    fallback_env = {
        **torch_free_env,
        **_model_env("builtin://micro-pizza-net", "int8", "micro-pizza-net"),
    }
    with (
        serve_subprocess(["model"], env=primary_env) as primary,
        serve_subprocess(["model"], env=fallback_env) as fallback,
    ):
        wait_ready(primary)
        wait_ready(fallback)
        router_args = ["router", "--primary", primary, "--fallback", fallback]
        with serve_subprocess(router_args, env=torch_free_env) as router:
            wait_ready(router)
            yield {"primary": primary, "fallback": fallback, "router": router}


def test_the_shim_really_blocks_torch(torch_free_env: dict[str, str]) -> None:
    env = {**os.environ, **torch_free_env}
    for name in ("torch", "transformers", "onnx"):
        result = subprocess.run(
            [sys.executable, "-c", f"import {name}"],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode != 0, f"{name} was importable under the shim"
        assert "ImportError" in result.stderr or "ModuleNotFoundError" in result.stderr
    ok = subprocess.run(
        [
            sys.executable,
            "-c",
            "import onnxruntime, pizza_inference.cli, pizza_inference.model_server.app",
        ],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert ok.returncode == 0, ok.stderr


def _classify(url: str, data: bytes) -> dict[str, object]:
    response = httpx.post(
        f"{url}/classify", files={"file": ("pizza.png", data, "image/png")}, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


CASES = {
    "primary": ("builtin://pizza-convnext-tiny", "float32", "pizza-convnext-tiny"),
    "fallback": ("builtin://micro-pizza-net", "int8", "micro-pizza-net"),
    "router": ("builtin://pizza-convnext-tiny", "float32", "pizza-convnext-tiny"),
}
"""Server -> (source, precision, model_used) of the model that must answer it."""


@pytest.mark.parametrize("role", list(CASES))
def test_torch_free_servers_classify_real_pizzas(
    role: str,
    servers: dict[str, str],
    pizzas: tuple[list[Image.Image], np.ndarray, list[bytes]],
) -> None:
    images, labels, encoded = pizzas
    source, precision, model_name = CASES[role]
    local = create_backend("onnx", resolve(source), precision=precision, device="cpu")
    local.load()
    expected = local.predict(images)
    bodies = [_classify(servers[role], data) for data in encoded]
    predicted = np.array([CLASSES.index(str(body["predicted_class"])) for body in bodies])
    assert {body["model_used"] for body in bodies} == {model_name}
    assert (predicted == labels).mean() >= 5 / 6
    np.testing.assert_array_equal(predicted, expected.argmax(1))
    served = np.array(
        [[body["probabilities"][c] for c in CLASSES] for body in bodies]  # type: ignore[index]
    )
    np.testing.assert_allclose(served, expected, atol=1e-4)
    if role == "router":
        assert all(body.get("fallback_reason") is None for body in bodies)
