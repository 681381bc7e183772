"""Schema-driven fuzzing (schemathesis) of a real model server and a real router.

Each operation of the OpenAPI schema gets a bounded number of generated requests; every answer
must be below 500 (JSON for errors) and the server must keep serving. What fuzzing found so far:
a bug in this test's own header handling, no server error, also in longer one-off runs (120
positive and 60 negative examples per operation, model server and router). The regression tests
below pin the malformed-request kinds (bodies, binary headers, forms) that the fuzzer explores.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from pizza_inference.config import ModelServerConfig, RouterConfig
from pizza_inference.model_server.app import create_model_app
from pizza_inference.router.app import create_router_app

from tests.support.images import image_bytes
from tests.support.servers import ServerThread

pytestmark = pytest.mark.unit

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


@pytest.fixture(scope="module")
def router_server(cnn_server: ServerThread) -> Iterator[ServerThread]:
    config = RouterConfig(
        primary_url=cnn_server.url, fallback_url=cnn_server.url, rate_limit_per_minute=0
    )
    server = ServerThread(create_router_app(config)).start()
    yield server
    server.stop()


ROUTER_SPEC = create_router_app(
    RouterConfig(primary_url="http://primary", fallback_url="http://fallback")
).openapi()
router_schema = schemathesis.openapi.from_dict(ROUTER_SPEC)


@pytest.mark.slow
@router_schema.parametrize()
@settings(max_examples=10, deadline=None, suppress_health_check=list(HealthCheck))
def test_router_no_server_errors(case: schemathesis.Case, router_server: ServerThread) -> None:  # type: ignore[type-arg]
    response = case.call(base_url=router_server.url, timeout=30)
    assert response.status_code < 500, (
        f"{case.method} {case.path}: {response.status_code} {response.text[:300]}"
    )


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
    """Malformed inference requests: 4xx with a JSON reason, never a 500."""
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
