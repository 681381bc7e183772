"""Schema-driven fuzzing (schemathesis) of a real model server, plus regressions it found.

Each operation of the OpenAPI schema gets a bounded number of generated requests; every answer
must be below 500, JSON for errors, and the server must keep serving.
"""

from __future__ import annotations

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pizza_inference.config import ModelServerConfig
from pizza_inference.server import create_model_app

from tests.inference.servers import ServerThread, image_bytes

SPEC = create_model_app(
    ModelServerConfig(
        backend="cnn", source="builtin://unused", precision="int8", model_name="standard-cnn"
    )
).openapi()
schema = schemathesis.openapi.from_dict(SPEC)


@pytest.mark.slow
@schema.parametrize()
@settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors(case: schemathesis.Case, cnn_server: ServerThread) -> None:  # type: ignore[type-arg]
    response = case.call(base_url=cnn_server.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    )
    if response.status_code >= 400:
        header = response.headers.get("content-type") or response.headers.get("Content-Type")
        content_type = header[0] if isinstance(header, list) else header
        assert str(content_type).startswith("application/json")
        assert "error" in response.json() or "ready" in response.json()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("content", "headers"),
    [
        (b"", {"Content-Type": "application/json"}),
        (b"null", {"Content-Type": "application/json"}),
        (b"[]", {"Content-Type": "application/json"}),
        (b'{"inputs": []}', {"Content-Type": "application/json"}),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}', {}),
        (b'{"inputs": [{"name": "x", "shape": [2], "datatype": "BYTES", "data": ["AAAA"]}]}', {}),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": [1]}]}', {}),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES", "data": ["AAAA"]}]}', {}),
        (b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES"}]}', {}),
        (b"\xff\xfe", {"Content-Type": "application/json"}),
        (b"{}", {"Inference-Header-Content-Length": "999"}),
        (b"{}", {"Inference-Header-Content-Length": "abc"}),
        (
            b'{"inputs": [{"name": "x", "shape": [1], "datatype": "BYTES",'
            b' "parameters": {"binary_data_size": 3}}]}abc',
            {"Inference-Header-Content-Length": "95"},
        ),
    ],
)
def test_infer_regressions(
    cnn_server: ServerThread, content: bytes, headers: dict[str, str]
) -> None:
    """Malformed inference requests (kinds the fuzzer produced): 4xx with a JSON reason."""
    response = httpx.post(
        f"{cnn_server.url}/v2/models/standard-cnn/infer", content=content, headers=headers
    )
    assert 400 <= response.status_code < 500, response.text
    assert response.json()["error"]


@pytest.mark.slow
def test_form_regressions(cnn_server: ServerThread) -> None:
    """Odd multipart forms: a string where the file goes, bad booleans, no parts at all."""
    url = f"{cnn_server.url}/classify"
    cases = [
        httpx.post(url, data={"file": "not a file"}),
        httpx.post(
            url,
            files={"file": ("a.jpg", image_bytes(), "image/jpeg")},
            data={"use_spatial": "maybe"},
        ),
        httpx.post(
            url,
            content=b"--x\r\n\r\n--x--\r\n",
            headers={"Content-Type": "multipart/form-data; boundary=x"},
        ),
        httpx.post(url, content=b"garbage", headers={"Content-Type": "multipart/form-data"}),
        httpx.post(url, files={"file": ("", b"", "")}),
    ]
    for response in cases:
        assert 400 <= response.status_code < 500, response.text
        assert response.json()["error"]
    assert (
        httpx.post(url, files={"file": ("a.jpg", image_bytes(), "image/jpeg")}).status_code == 200
    )
