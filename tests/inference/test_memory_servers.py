"""Hostile bodies against the real router and model server, each its own process: compressed
bombs and oversized bodies are refused (413) while the process's peak memory (VmHWM) stays
within reach of its limits, requests beyond the memory budget get 503 with Retry-After, and the
server keeps serving. The budgets are the ones the operator gives the default pods."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import re
import socket
import time
import zlib
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from PIL import Image
from pizza_inference import memory
from pizza_inference.config import RouterConfig
from pizza_inference.errors import ServerBusyError
from pizza_inference.memory import MIB, MemoryLimits, image_cost, memory_limits
from pizza_inference.model_server import plane as plane_module
from pizza_inference.model_server.plane import ModelDataPlane
from pizza_inference.router.app import create_router_app
from pizza_inference.router.plane import retry_after_seconds
from pizza_inference.service import ImageUpload

from tests.inference.faults import ControllableBackend
from tests.support.images import image_bytes
from tests.support.servers import ServerProcess, ServerThread, serve, server_process
from tests.support.waiting import eventually

pytestmark = [pytest.mark.unit, pytest.mark.slow]

ROUTER_BUDGET = 80 * MIB
"""What the operator gives a router with the default 256 MiB limit."""
MODEL_BUDGET = 192 * MIB
"""What the operator gives the default fallback (MicroPizzaNet, 1 GiB limit)."""
GROWTH_LIMIT = 64 * 1000 * 1000
"""The most a process's peak memory may grow while it refuses hostile bodies."""
BOMB_BYTES = 850 * 1000 * 1000
"""What each compressed bomb inflates to (as in the incident: about 850 MB from about 1 MB)."""
PLAIN_BYTES = 300 * 1000 * 1000
IMAGE = image_bytes("JPEG", (80, 80), seed=3)


@dataclass
class Target:
    process: ServerProcess
    limits: MemoryLimits
    model: str

    @property
    def url(self) -> str:
        return self.process.url

    @property
    def infer(self) -> str:
        return f"{self.url}/v2/models/{self.model}/infer"


@pytest.fixture(scope="module", params=["router", "model-server"])
def target(request: pytest.FixtureRequest, cnn_server: ServerThread) -> Iterator[Target]:
    if request.param == "router":
        role = ["router", "--primary", cnn_server.url, "--fallback", cnn_server.url]
        budget, limits = (
            ROUTER_BUDGET,
            memory_limits(ROUTER_BUDGET, decodes_images=False, batch_images=64),
        )
        model = "pizza-classifier"
    else:
        role = ["model", "--backend", "onnx", "--source", "builtin://micro-pizza-net"]
        role += ["--precision", "int8", "--max-batch-size", "32"]
        budget, limits = (
            MODEL_BUDGET,
            memory_limits(MODEL_BUDGET, decodes_images=True, batch_images=32),
        )
        model = "onnx-classifier"
    argv = ["-m", "pizza_inference.cli", *role, "--memory-budget-bytes", str(budget)]
    argv += ["--port", "{port}", "--host", "127.0.0.1", "--log-level", "warning"]
    env = {"PIZZA_RATE_LIMIT_PER_MINUTE": "0"}
    with server_process(argv, "/v2/health/ready", env=env, timeout=120) as process:
        yield Target(process, limits, model)


def reset_peak(pid: int) -> None:
    """Starts the process's peak resident memory afresh from its current one (clear_refs 5),
    where the kernel lets us; otherwise the growth is measured from the peak so far."""
    with contextlib.suppress(OSError):
        Path(f"/proc/{pid}/clear_refs").write_text("5")


def peak_bytes(pid: int) -> int:
    """The process's peak resident memory (VmHWM)."""
    status = Path(f"/proc/{pid}/status").read_text()
    match = re.search(r"^VmHWM:\s+(\d+) kB", status, re.M)
    assert match is not None, status
    return int(match.group(1)) * 1024


@functools.cache
def bomb(encoding: str) -> bytes:
    """`BOMB_BYTES` zeros, compressed (gzip framing, or zlib framing for deflate)."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    zeros = b"0" * MIB
    parts = [packer.compress(zeros) for _ in range(BOMB_BYTES // MIB)]
    return b"".join([*parts, packer.flush()])


def plain_chunks(chunk: bytes = b"0" * MIB) -> Iterator[bytes]:
    for _ in range(PLAIN_BYTES // len(chunk)):
        yield chunk


def hostile(kind: str) -> tuple[bytes | Iterator[bytes], dict[str, str]]:
    if kind in ("gzip", "deflate"):
        return bomb(kind), {"Content-Encoding": kind, "Content-Type": "application/json"}
    if kind == "plain":
        return b"0" * PLAIN_BYTES, {"Content-Type": "application/json"}
    return plain_chunks(), {"Content-Type": "application/json"}  # chunked: no length


def in_flight(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r'^pizza_api_memory_in_flight_bytes\{pool="bodies"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else -1.0


@pytest.mark.parametrize("kind", ["gzip", "deflate", "plain", "plain-chunked"])
def test_a_hostile_infer_body_is_refused_in_bounded_memory(target: Target, kind: str) -> None:
    reset_peak(target.process.pid)
    before = peak_bytes(target.process.pid)
    for _ in range(3 if kind in ("gzip", "deflate") else 1):
        content, headers = hostile(kind)
        response = httpx.post(target.infer, content=content, headers=headers, timeout=60)
        assert response.status_code == 413, response.text
        body = response.json()
        assert body["error"] == "request_too_large"
        assert str(target.limits.infer_bytes) in body["detail"]
    growth = peak_bytes(target.process.pid) - before
    print(f"{kind}: peak RSS grew by {growth / 1e6:.1f} MB (limit {target.limits.infer_bytes})")
    assert growth < GROWTH_LIMIT
    assert httpx.get(f"{target.url}/v2/health/ready", timeout=5).status_code == 200
    eventually(lambda: in_flight(target.url) == 0, 10, "the body pool empty again")


def test_an_oversized_upload_is_refused_in_bounded_memory(target: Target) -> None:
    reset_peak(target.process.pid)
    before = peak_bytes(target.process.pid)
    response = httpx.post(
        f"{target.url}/classify",
        content=plain_chunks(),
        headers={"Content-Type": "multipart/form-data; boundary=x"},
        timeout=60,
    )
    assert response.status_code == 413 and response.json()["error"] == "file_too_large"
    form = httpx.post(  # many fields, each under Starlette's own 1 MB limit of a field
        f"{target.url}/classify",
        content=plain_chunks(b"a=" + b"0" * 500_000 + b"&"),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        timeout=60,
    )
    assert form.status_code == 413 and form.json()["error"] == "file_too_large"
    assert peak_bytes(target.process.pid) - before < GROWTH_LIMIT


def test_a_deeply_nested_infer_request_is_a_client_error(target: Target) -> None:
    """A 5xx would count against the component's error rate (and the automatic rollback)."""
    depth = 100_000
    data = "[" * depth + "]" * depth
    document = f'{{"inputs":[{{"name":"image","shape":[1],"datatype":"BYTES","data":{data}}}]}}'
    response = httpx.post(target.infer, content=document, timeout=30)
    assert response.status_code == 400, response.text
    assert response.json()["error"] == "invalid_request"


HEADS = {
    "header": b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Big: ",
    "url": b"GET /v2/health/live?",
}


@pytest.mark.parametrize("where", list(HEADS))
def test_an_endless_request_head_is_cut_off(target: Target, where: str) -> None:
    """httptools would keep a header or URL however long: the server answers 431 past 64 KiB."""
    host, port = target.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(HEADS[where] + b"a" * 70_000)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]
    assert b'"error":"headers_too_large"' in answer
    reset_peak(target.process.pid)
    before = peak_bytes(target.process.pid)
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sent = 0
        with contextlib.suppress(OSError):  # the server closes the connection
            sock.sendall(HEADS[where])
            while sent < PLAIN_BYTES:
                sock.sendall(b"a" * MIB)
                sent += MIB
    assert sent < PLAIN_BYTES
    assert peak_bytes(target.process.pid) - before < GROWTH_LIMIT
    assert httpx.get(f"{target.url}/v2/health/live", timeout=5).status_code == 200


def open_upload(url: str, length: int) -> socket.socket:
    """A /classify request that declares `length` body bytes and sends only the first few."""
    host, port = url.removeprefix("http://").split(":")
    sock = socket.create_connection((host, int(port)), timeout=10)
    sock.sendall(
        b"POST /classify HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n"
        + f"Content-Length: {length}\r\n\r\n".encode()
        + b"--x\r\n"
    )
    return sock


def test_requests_beyond_the_budget_get_503_and_the_server_keeps_serving(target: Target) -> None:
    limits = target.limits
    each = memory.BODY_COPIES * limits.upload_bytes
    fitting = limits.body_pool_bytes // each
    assert fitting >= 1
    with ExitStack() as stack:
        for _ in range(fitting):  # the largest uploads, still coming in
            stack.callback(open_upload(target.url, limits.upload_bytes).close)
        eventually(lambda: in_flight(target.url) >= fitting * each, 10, "the uploads admitted")
        files = {"file": ("p.jpg", b"\xff" * (limits.upload_bytes - 1000), "image/jpeg")}
        started = time.perf_counter()
        busy = httpx.post(f"{target.url}/classify", files=files, timeout=30)
        assert busy.status_code == 503, busy.text
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"] == "server_busy" and busy.json()["retry_after_seconds"] == 1
        assert "budget" in busy.json()["detail"]
        assert time.perf_counter() - started < 5  # refused at once, not queued
        normal = httpx.post(
            f"{target.url}/classify", files={"file": ("p.jpg", IMAGE, "image/jpeg")}, timeout=30
        )
        assert normal.status_code == 200, normal.text
    eventually(lambda: in_flight(target.url) == 0, 10, "the held uploads released")
    again = httpx.post(
        f"{target.url}/classify", files={"file": ("p.jpg", IMAGE, "image/jpeg")}, timeout=30
    )
    assert again.status_code == 200, again.text


def test_an_image_larger_than_the_image_memory_is_refused(target: Target) -> None:
    if target.limits.image_pool_bytes == 0:
        pytest.skip("the router decodes no image (the model server behind it judges it)")
    side = int((target.limits.max_image_pixels * 1.2) ** 0.5)
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 40)).save(buffer, "PNG")
    response = httpx.post(
        f"{target.url}/classify",
        files={"file": ("big.png", buffer.getvalue(), "image/png")},
        timeout=30,
    )
    assert response.status_code == 413, response.text
    assert response.json()["error"] == "image_too_large"


def test_images_wait_their_turn_for_image_memory(
    cnn_checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two images that do not fit together: the second waits for the first, or, when the first
    takes longer than the wait, gets 503."""
    backend = ControllableBackend(cnn_checkpoint)
    size = (400, 300)
    plane = ModelDataPlane(
        lambda: backend,
        model_name="m",
        backend_kind="cnn",
        source="test",
        image_memory_bytes=image_cost(*size) * 3 // 2,
    )
    plane.load()
    upload = ImageUpload(data=image_bytes("PNG", size, seed=1), content_type="image/png")

    async def two() -> list[object]:
        return await asyncio.gather(
            plane.classify(upload), plane.classify(upload), return_exceptions=True
        )

    async def scenario() -> tuple[list[object], list[object]]:
        backend.mode, backend.delay_s = "slow", 0.3
        waited = await two()
        assert plane.images.in_use == 0
        monkeypatch.setattr(plane_module, "IMAGE_WAIT_SECONDS", 0.05)
        refused = await two()
        await plane.stop()
        return waited, refused

    waited, refused = asyncio.run(scenario())
    assert all(not isinstance(r, BaseException) for r in waited), waited
    assert sum(isinstance(r, ServerBusyError) for r in refused) == 1, refused
    assert plane.images.in_use == 0


def test_the_router_passes_on_a_busy_model_servers_retry_after() -> None:
    busy = FastAPI()

    @busy.get("/v2/health/ready")
    async def ready() -> dict[str, bool]:
        return {"ready": True}

    @busy.post("/classify")
    async def classify() -> JSONResponse:
        body = {"error": "server_busy", "detail": "budget in use", "retry_after_seconds": 7}
        return JSONResponse(body, status_code=503, headers={"Retry-After": "7"})

    with serve(busy) as upstream:
        config = RouterConfig(
            primary_url=upstream.url, fallback_url=upstream.url, rate_limit_per_minute=0
        )
        with serve(create_router_app(config)) as router:
            files = {"file": ("p.jpg", IMAGE, "image/jpeg")}
            response = httpx.post(f"{router.url}/classify", files=files, timeout=30)
    assert response.status_code == 503, response.text
    assert response.json()["error"] == "no_model_available"
    assert response.headers["retry-after"] == "7"
    assert [retry_after_seconds(v) for v in ("3", " 1 ", None, "soon", "-1")] == [
        3,
        1,
        None,
        None,
        None,
    ]
