"""A real CNN (INT8) model server on a free port, called with real HTTP clients."""

from __future__ import annotations

import base64
import json
import struct
import threading
from collections.abc import Sequence
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.backends.cnn import CNNBackend
from pizza_inference.cnn.quantize import quantized_module_names
from pizza_inference.images import decode_image
from pizza_inference.model_server.app import create_model_app
from pizza_inference.model_server.plane import ModelDataPlane

from tests.inference.conftest import cnn_config
from tests.support.images import image_bytes
from tests.support.servers import ServerThread, serve, wait_ready

pytestmark = [pytest.mark.unit, pytest.mark.slow]


def classify(
    url: str, data: bytes, *, path: str = "/classify", ctype: str = "image/jpeg", **form: str
) -> httpx.Response:
    return httpx.post(
        f"{url}{path}", files={"file": ("pizza.jpg", data, ctype)}, data=form, timeout=30
    )


def test_classify_returns_the_int8_models_own_probabilities(
    cnn_server: ServerThread, cnn_checkpoint: Path
) -> None:
    data = image_bytes("JPEG", (120, 90), seed=3)
    response = classify(cnn_server.url, data)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["model_used"] == "standard-cnn"
    assert list(body["probabilities"]) == list(CLASSES)
    assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
    assert body["confidence"] == max(body["probabilities"].values())
    assert body["predicted_class"] == max(body["probabilities"], key=body["probabilities"].get)
    assert body["inference_time"] > 0 and body["timestamp"]

    int8 = CNNBackend(cnn_checkpoint, precision="int8", device="cpu")
    int8.load()
    assert quantized_module_names(int8.checkpoint.model), (
        "the int8 backend must hold quantized modules"
    )
    expected = int8.predict([decode_image(data)])[0]
    np.testing.assert_allclose(list(body["probabilities"].values()), expected, atol=1e-6)
    float32 = CNNBackend(cnn_checkpoint, precision="float32", device="cpu")
    float32.load()
    assert not np.allclose(float32.predict([decode_image(data)])[0], expected, atol=1e-7)

    without = classify(cnn_server.url, data, return_probabilities="false").json()
    assert (
        without["probabilities"] is None and without["predicted_class"] == body["predicted_class"]
    )
    status = httpx.get(f"{cnn_server.url}/status").json()["models"]["standard-cnn"]
    assert status["precision"] == "int8" and status["available"] and status["inference_count"] >= 2


def test_prior_endpoints(cnn_server: ServerThread) -> None:
    data = image_bytes("PNG", (64, 64), seed=1)
    for path in ("/predict/spatial", "/predict/standard"):
        response = classify(cnn_server.url, data, path=path, ctype="image/png")
        assert response.status_code == 200 and response.json()["model_used"] == "standard-cnn"
    grouped = classify(cnn_server.url, data, ab_test_group="A").json()
    assert grouped["ab_test_group"] == "A"
    health = httpx.get(f"{cnn_server.url}/health")
    assert health.status_code == 200 and health.json()["status"] == "healthy"
    assert httpx.get(f"{cnn_server.url}/ab-test/status").json()["enabled"] is False
    compare = httpx.post(
        f"{cnn_server.url}/ab-test/compare", files={"file": ("a.png", data, "image/png")}
    ).json()
    assert len(compare["results"]) == 1 and compare["agreement"] is None


def test_open_inference_protocol(cnn_server: ServerThread) -> None:
    url = cnn_server.url
    live = httpx.get(f"{url}/v2/health/live")
    assert live.status_code == 200 and live.json()["live"] is True
    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
    meta = httpx.get(f"{url}/v2/models/standard-cnn").json()
    assert meta["inputs"][0]["datatype"] == "BYTES" and meta["outputs"][0]["shape"] == [-1, 6]
    assert httpx.get(f"{url}/v2/models/standard-cnn/ready").json()["ready"] is True
    assert httpx.get(f"{url}/v2/models/nope/ready").status_code == 404

    images = [image_bytes("JPEG", (50, 50), seed=s) for s in (1, 2, 3)]
    request = {
        "id": "r1",
        "inputs": [
            {
                "name": "image",
                "shape": [3],
                "datatype": "BYTES",
                "data": [base64.b64encode(i).decode() for i in images],
            }
        ],
    }
    response = httpx.post(f"{url}/v2/models/standard-cnn/infer", json=request, timeout=30)
    assert response.status_code == 200, response.text
    body = response.json()
    probs = next(o for o in body["outputs"] if o["name"] == "probabilities")
    assert probs["datatype"] == "FP32" and probs["shape"] == [3, 6]
    rows = np.array(probs["data"]).reshape(3, 6)
    np.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5)
    single = classify(url, images[1]).json()
    np.testing.assert_allclose(rows[1], list(single["probabilities"].values()), atol=1e-6)

    # binary tensor extension: JSON header, then length-prefixed raw bytes
    raw = b"".join(struct.pack("<I", len(i)) + i for i in images)
    header = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [3],
                    "datatype": "BYTES",
                    "parameters": {"binary_data_size": len(raw)},
                }
            ]
        }
    ).encode()
    response = httpx.post(
        f"{url}/v2/models/standard-cnn/infer",
        content=header + raw,
        headers={
            "Content-Type": "application/octet-stream",
            "Inference-Header-Content-Length": str(len(header)),
        },
        timeout=30,
    )
    assert response.status_code == 200, response.text
    binary_rows = np.array(response.json()["outputs"][0]["data"]).reshape(3, 6)
    np.testing.assert_allclose(binary_rows, rows, atol=1e-6)

    bad = {
        "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": ["%%%not-base64"]}]
    }
    response = httpx.post(f"{url}/v2/models/standard-cnn/infer", json=bad)
    assert response.status_code == 400 and response.json()["error"] == "invalid_tensor"


BAD_INPUTS = [
    ("not an image", b"hello, world", "image/jpeg", 400, "not_an_image"),
    ("truncated", image_bytes("PNG", (64, 64))[:-300], "image/png", 400, "truncated_image"),
    ("wrong content type", image_bytes("JPEG"), "text/plain", 415, "unsupported_media_type"),
    (
        "gif",
        image_bytes("GIF", (20, 20)),
        "application/octet-stream",
        415,
        "unsupported_image_format",
    ),
    ("empty", b"", "image/jpeg", 400, "empty_file"),
    ("too large", b"\xff\xd8" + b"\x00" * (10 * 1024 * 1024), "image/jpeg", 413, "file_too_large"),
]


@pytest.mark.parametrize(
    ("name", "data", "ctype", "status", "reason"), BAD_INPUTS, ids=[b[0] for b in BAD_INPUTS]
)
def test_bad_input_is_a_4xx_with_a_json_reason(  # noqa: PLR0917
    cnn_server: ServerThread, name: str, data: bytes, ctype: str, status: int, reason: str
) -> None:
    response = classify(cnn_server.url, data, ctype=ctype)
    assert response.status_code == status, response.text
    assert response.json()["error"] == reason
    assert classify(cnn_server.url, image_bytes()).status_code == 200  # still serving


def test_decompression_bomb_and_missing_field(cnn_server: ServerThread) -> None:
    from tests.inference.test_images import png_bomb  # noqa: PLC0415

    response = classify(cnn_server.url, png_bomb(), ctype="image/png")
    assert response.status_code == 400 and response.json()["error"] == "decompression_bomb"
    missing = httpx.post(f"{cnn_server.url}/classify", data={"use_spatial": "true"})
    assert missing.status_code == 422 and missing.json()["error"] == "invalid_request"
    assert "file" in missing.json()["detail"]
    not_multipart = httpx.post(f"{cnn_server.url}/classify", json={"file": "x"})
    assert not_multipart.status_code == 422
    bad_group = classify(cnn_server.url, image_bytes(), ab_test_group="Z")
    assert bad_group.status_code == 422
    assert classify(cnn_server.url, image_bytes()).status_code == 200


def test_concurrent_requests_are_batched(cnn_checkpoint: Path) -> None:
    config = cnn_config(cnn_checkpoint, batch_timeout_ms=20.0)
    plane = ModelDataPlane(
        lambda: CNNBackend(cnn_checkpoint, precision="int8", device="cpu"),
        model_name="standard-cnn",
        backend_kind="cnn",
        source=config.source,
        max_batch_size=8,
        batch_timeout_s=0.02,
    )
    sizes: list[int] = []
    original = plane._predict_batch

    def recording(images: list[Image.Image]) -> Sequence[np.ndarray]:
        sizes.append(len(images))
        return original(images)

    plane.batcher._fn = recording
    with serve(create_model_app(config, plane=plane)) as server:
        wait_ready(server.url)
        data = image_bytes()

        async def burst() -> list[int]:
            async with httpx.AsyncClient(timeout=30) as client:
                import asyncio  # noqa: PLC0415

                responses = await asyncio.gather(
                    *(
                        client.post(
                            f"{server.url}/classify", files={"file": ("a.jpg", data, "image/jpeg")}
                        )
                        for _ in range(16)
                    )
                )
                return [r.status_code for r in responses]

        import asyncio  # noqa: PLC0415

        assert asyncio.run(burst()) == [200] * 16
    assert sum(sizes) == 16 and max(sizes) > 1


def test_not_ready_until_loaded_and_warmed_up(cnn_checkpoint: Path) -> None:
    gate = threading.Event()

    def slow_loader() -> CNNBackend:
        gate.wait(30)
        return CNNBackend(cnn_checkpoint, precision="int8", device="cpu")

    plane = ModelDataPlane(
        slow_loader, model_name="standard-cnn", backend_kind="cnn", source="test"
    )
    with serve(create_model_app(cnn_config(cnn_checkpoint), plane=plane)) as server:
        assert httpx.get(f"{server.url}/v2/health/live").status_code == 200
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503 and health.json()["status"] == "loading"
        response = classify(server.url, image_bytes())
        assert response.status_code == 503 and response.json()["error"] == "model_not_ready"
        gate.set()
        wait_ready(server.url, timeout=30)
        assert classify(server.url, image_bytes()).status_code == 200


def test_a_model_that_fails_to_load_leaves_the_server_unready(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    config = cnn_config(tmp_path / "no-such-checkpoint")
    with serve(create_model_app(config)) as server:
        import time  # noqa: PLC0415

        deadline = time.monotonic() + 10
        while (
            httpx.get(f"{server.url}/health").json()["status"] == "loading"
            and time.monotonic() < deadline
        ):
            time.sleep(0.05)
        health = httpx.get(f"{server.url}/health")
        assert health.status_code == 503 and health.json()["status"] == "unhealthy"
        assert "does not exist" in health.json()["models"]["standard-cnn"]["error"]
        assert httpx.get(f"{server.url}/v2/health/ready").status_code == 503
        response = classify(server.url, image_bytes())
        assert response.status_code == 503 and "does not exist" in response.json()["detail"]
    assert any("model NOT ready" in r.getMessage() for r in caplog.records)


def test_int8_on_a_precision_the_cnn_does_not_have_fails_loudly(cnn_checkpoint: Path) -> None:
    plane = ModelDataPlane(
        lambda: CNNBackend(cnn_checkpoint, precision="bfloat16", device="cpu"),
        model_name="standard-cnn",
        backend_kind="cnn",
        source="test",
    )
    plane.load()
    assert plane.state == "failed" and "float32 or int8" in (plane.error or "")
