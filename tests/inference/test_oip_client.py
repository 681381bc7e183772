"""A standard Open Inference Protocol client (tritonclient.http) against the real model server
and the real router: health, server and model metadata (with and without the version), infer
with real image files (inputs and outputs in binary and in JSON) and the error statuses."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import httpx
import numpy as np
import pytest
import tritonclient.http as triton
from pizza_inference import CLASSES
from pizza_inference.config import RouterConfig
from pizza_inference.router.app import create_router_app
from pizza_inference.router.plane import ROUTER_MODEL_NAME
from tritonclient.utils import InferenceServerException

from tests.support.images import image_bytes
from tests.support.servers import REPO, ServerThread, serve, wait_ready

pytestmark = [pytest.mark.unit, pytest.mark.slow]

PHOTO = (REPO / "docs" / "pizza-classes-examples.jpg").read_bytes()
IMAGES = [PHOTO, image_bytes("PNG", (64, 48), seed=5), image_bytes("JPEG", (90, 70), seed=6)]


@dataclass
class Target:
    url: str
    model: str
    server_name: str

    def client(self) -> triton.InferenceServerClient:
        return triton.InferenceServerClient(url=self.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def router_url(cnn_server: ServerThread) -> Iterator[str]:
    config = RouterConfig(
        primary_url=cnn_server.url, fallback_url=cnn_server.url, rate_limit_per_minute=0
    )
    with serve(create_router_app(config)) as server:
        wait_ready(server.url)
        yield server.url


@pytest.fixture(params=["model-server", "router"])
def target(request: pytest.FixtureRequest, cnn_server: ServerThread) -> Target:
    if request.param == "model-server":
        return Target(cnn_server.url, "standard-cnn", "pizza-model-server")
    url: str = request.getfixturevalue("router_url")
    return Target(url, ROUTER_MODEL_NAME, "pizza-router")


def images_input(images: list[bytes], *, binary: bool) -> triton.InferInput:
    """The images as one BYTES input: raw files in binary, base64 strings in JSON."""
    tensor = triton.InferInput("image", [len(images)], "BYTES")
    if binary:
        tensor.set_data_from_numpy(np.array(images, dtype=np.object_), binary_data=True)
    else:
        encoded = [base64.b64encode(i).decode() for i in images]
        tensor.set_data_from_numpy(np.array(encoded, dtype=np.object_), binary_data=False)
    return tensor


def reference(url: str, data: bytes) -> dict[str, object]:
    """The same image through the prior /classify endpoint of the same server."""
    response = httpx.post(
        f"{url}/classify", files={"file": ("p.jpg", data, "image/jpeg")}, timeout=30
    )
    assert response.status_code == 200, response.text
    body: dict[str, object] = response.json()
    return body


def status_of(call: Callable[[], object]) -> tuple[str | None, str]:
    """The HTTP status and message of the InferenceServerException that `call` raises."""
    with pytest.raises(InferenceServerException) as info:
        call()
    return info.value.status(), info.value.message()


def test_health_and_metadata(target: Target) -> None:
    client = target.client()
    try:
        assert client.is_server_live() and client.is_server_ready()
        server = client.get_server_metadata()
        assert server["name"] == target.server_name
        assert server["version"] and "binary_tensor_data" in server["extensions"]

        for version in ("", "1"):
            meta = client.get_model_metadata(target.model, model_version=version)
            assert meta["name"] == target.model and meta["versions"] == ["1"]
            assert meta["inputs"] == [{"name": "image", "datatype": "BYTES", "shape": [-1]}]
            outputs = {o["name"]: o for o in meta["outputs"]}
            assert outputs["probabilities"]["datatype"] == "FP32"
            assert outputs["probabilities"]["shape"] == [-1, len(CLASSES)]
            assert outputs["predicted_class"]["datatype"] == "BYTES"
            assert meta["parameters"]["classes"] == list(CLASSES)
            assert client.is_model_ready(target.model, model_version=version)

        assert not client.is_model_ready(target.model, model_version="2")
        assert not client.is_model_ready("no-such-model")
        assert status_of(lambda: client.get_model_metadata("no-such-model")) == (
            "404",
            "model_not_found",
        )
        assert status_of(lambda: client.get_model_metadata(target.model, model_version="2")) == (
            "404",
            "model_version_not_found",
        )
    finally:
        client.close()


def test_infer_binary_and_json(target: Target) -> None:
    expected = [reference(target.url, i) for i in IMAGES]
    expected_probs = np.array(
        [[e["probabilities"][c] for c in CLASSES] for e in expected],  # type: ignore[index]
        dtype=np.float32,
    )
    expected_labels = [e["predicted_class"] for e in expected]
    client = target.client()
    try:
        # binary input, no outputs named: tritonclient asks for every output in binary
        result = client.infer(target.model, [images_input(IMAGES, binary=True)], request_id="req-1")
        response = result.get_response()
        assert response["id"] == "req-1" and response["model_name"] == target.model
        assert response["model_version"] == "1"
        assert all("data" not in o for o in response["outputs"])
        probs = result.as_numpy("probabilities")
        assert probs is not None and probs.dtype == np.float32 and probs.shape == (3, 6)
        np.testing.assert_allclose(probs, expected_probs, atol=1e-6)
        labels = result.as_numpy("predicted_class")
        assert labels is not None and labels.shape == (3,)
        assert [label.decode() for label in labels] == expected_labels
        assert response["parameters"]["classes"] == list(CLASSES)

        # JSON input (base64 strings), outputs asked for in JSON and in binary
        for out_binary in (False, True):
            outputs = [
                triton.InferRequestedOutput("probabilities", binary_data=out_binary),
                triton.InferRequestedOutput("predicted_class", binary_data=out_binary),
            ]
            result = client.infer(
                target.model,
                [images_input(IMAGES, binary=False)],
                outputs=outputs,
                model_version="1",
            )
            probs = result.as_numpy("probabilities")
            assert probs is not None and probs.shape == (3, 6)
            np.testing.assert_allclose(probs, expected_probs, atol=1e-6)
            labels = result.as_numpy("predicted_class")
            assert labels is not None
            as_text = [x.decode() if isinstance(x, bytes) else x for x in labels]
            assert as_text == expected_labels
            in_json = all("data" in o for o in result.get_response()["outputs"])
            assert in_json is not out_binary

        # one output only, in binary, from a binary input: the other output is not sent
        result = client.infer(
            target.model,
            [images_input(IMAGES[:1], binary=True)],
            outputs=[triton.InferRequestedOutput("predicted_class", binary_data=True)],
        )
        assert result.as_numpy("probabilities") is None
        only = result.as_numpy("predicted_class")
        assert only is not None and [x.decode() for x in only] == expected_labels[:1]

        # mixed: probabilities in JSON, the class in binary
        result = client.infer(
            target.model,
            [images_input(IMAGES, binary=True)],
            outputs=[
                triton.InferRequestedOutput("probabilities", binary_data=False),
                triton.InferRequestedOutput("predicted_class", binary_data=True),
            ],
        )
        by_name = {o["name"]: o for o in result.get_response()["outputs"]}
        assert "data" in by_name["probabilities"] and "data" not in by_name["predicted_class"]
        np.testing.assert_allclose(result.as_numpy("probabilities"), expected_probs, atol=1e-6)

        # compressed request bodies
        for algorithm in ("gzip", "deflate"):
            result = client.infer(
                target.model,
                [images_input(IMAGES[1:], binary=True)],
                request_compression_algorithm=algorithm,
            )
            np.testing.assert_allclose(
                result.as_numpy("probabilities"), expected_probs[1:], atol=1e-6
            )
    finally:
        client.close()


def test_infer_errors(target: Target) -> None:
    client = target.client()
    try:
        good = [images_input(IMAGES[:1], binary=True)]
        assert status_of(lambda: client.infer("no-such-model", good)) == (
            "404",
            "model_not_found",
        )
        assert status_of(lambda: client.infer(target.model, good, model_version="7")) == (
            "404",
            "model_version_not_found",
        )

        floats = triton.InferInput("image", [1, 3], "FP32")
        floats.set_data_from_numpy(np.zeros((1, 3), dtype=np.float32))
        assert status_of(lambda: client.infer(target.model, [floats])) == (
            "400",
            "invalid_tensor",
        )

        not_an_image = triton.InferInput("image", [1], "BYTES")
        not_an_image.set_data_from_numpy(np.array([b"hello, world"], dtype=np.object_))
        status, message = status_of(lambda: client.infer(target.model, [not_an_image]))
        assert status == "400" and message == "not_an_image"

        not_base64 = triton.InferInput("image", [1], "BYTES")
        not_base64.set_data_from_numpy(np.array(["%%%"], dtype=np.object_), binary_data=False)
        assert status_of(lambda: client.infer(target.model, [not_base64])) == (
            "400",
            "invalid_tensor",
        )

        unknown_output = [triton.InferRequestedOutput("logits")]
        assert status_of(lambda: client.infer(target.model, good, outputs=unknown_output)) == (
            "400",
            "invalid_request",
        )

        wrong_shape = triton.InferInput("image", [1], "BYTES")
        wrong_shape.set_data_from_numpy(np.array([PHOTO], dtype=np.object_))
        wrong_shape.set_shape([2])
        assert status_of(lambda: client.infer(target.model, [wrong_shape])) == (
            "400",
            "invalid_tensor",
        )
        # the server keeps serving after the bad requests
        assert client.is_server_ready()
    finally:
        client.close()


def test_raw_protocol_details(cnn_server: ServerThread) -> None:
    """What the client does not show: response headers, error bodies, unsupported extensions."""
    url = f"{cnn_server.url}/v2"
    assert httpx.get(url).json()["extensions"] == ["binary_tensor_data"]
    missing = httpx.get(f"{url}/models/standard-cnn/versions/2/ready")
    assert missing.status_code == 404 and missing.json()["error"] == "model_version_not_found"
    assert httpx.get(f"{url}/models/standard-cnn/versions/1/ready").json() == {
        "name": "standard-cnn",
        "ready": True,
    }
    encoded = base64.b64encode(IMAGES[1]).decode()
    request = {
        "parameters": {"binary_data_output": True},
        "inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [encoded]}],
    }
    response = httpx.post(f"{url}/models/standard-cnn/infer", json=request, timeout=30)
    assert response.status_code == 200, response.text
    length = int(response.headers["inference-header-content-length"])
    assert response.headers["content-type"] == "application/octet-stream"
    header = response.content[:length]
    result = triton.InferResult.from_response_body(response.content, header_length=length)
    probs = result.as_numpy("probabilities")
    assert probs is not None and probs.shape == (1, 6) and header.startswith(b"{")
    assert len(response.content) - length == 6 * 4 + 4 + len(result.as_numpy("predicted_class")[0])

    for parameters, reason in (
        ({"binary_data_output": "yes"}, "invalid_request"),
        ({"binary_data_output": True, "x": 1}, None),
    ):
        body = {**request, "parameters": parameters}
        answer = httpx.post(f"{url}/models/standard-cnn/infer", json=body, timeout=30)
        if reason is None:
            assert answer.status_code == 200
        else:
            assert answer.status_code == 400 and answer.json()["error"] == reason
    shared = {
        "inputs": [
            {
                "name": "image",
                "shape": [1],
                "datatype": "BYTES",
                "parameters": {"shared_memory_region": "r", "shared_memory_byte_size": 8},
            }
        ]
    }
    answer = httpx.post(f"{url}/models/standard-cnn/infer", json=shared)
    assert answer.status_code == 400 and "shared memory" in answer.json()["detail"]
    head = json.dumps({"inputs": request["inputs"]}).encode()
    trailing = httpx.post(
        f"{url}/models/standard-cnn/infer",
        content=head + b"extra",
        headers={"Inference-Header-Content-Length": str(len(head))},
    )
    assert trailing.status_code == 400 and trailing.json()["error"] == "invalid_tensor"
    bad_gzip = httpx.post(
        f"{url}/models/standard-cnn/infer",
        content=b"not gzip",
        headers={"Content-Encoding": "gzip"},
    )
    assert bad_gzip.status_code == 400 and bad_gzip.json()["error"] == "invalid_request"
    brotli = httpx.post(
        f"{url}/models/standard-cnn/infer", content=b"{}", headers={"Content-Encoding": "br"}
    )
    assert brotli.status_code == 415
