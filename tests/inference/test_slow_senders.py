"""Slow senders and crowds against a real model server under uvicorn with pizza-serve's protocol
(`api.protocol.BoundedProtocol`), over real loopback sockets: a body or a head trickled past its
deadline gets 408 with a JSON reason and frees what it held, requests beyond the most in flight
get 503 with Retry-After while the probes are still served, connections beyond the most open
are closed at once, and the server keeps serving. The deadlines and limits are shortened here
(the module constants, read when used); the last test measures, in a pizza-serve process with
the shipped numbers, what a full set of connections with full heads costs."""

from __future__ import annotations

import re
import socket
import time
from collections.abc import Iterator
from contextlib import ExitStack, suppress

import httpx
import pytest
from pizza_inference.api import admission, protocol
from pizza_inference.api.protocol import BoundedProtocol
from pizza_inference.config import ModelServerConfig
from pizza_inference.model_server.app import create_model_app

from tests.inference.test_memory_servers import peak_bytes, reset_peak
from tests.support.images import image_bytes
from tests.support.servers import ServerThread, server_process, wait_ready
from tests.support.waiting import eventually

pytestmark = pytest.mark.unit

IMAGE = image_bytes("JPEG", (64, 64), seed=5)


@pytest.fixture(scope="module")
def server() -> Iterator[ServerThread]:
    config = ModelServerConfig(
        backend="onnx",
        source="builtin://micro-pizza-net",
        precision="int8",
        model_name="micro-pizza-net",
        memory_budget_bytes=64 * 1024 * 1024,
    )
    running = ServerThread(create_model_app(config), http=BoundedProtocol).start()
    wait_ready(running.url)
    yield running
    running.stop()


def connect(url: str) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    return socket.create_connection((host, int(port)), timeout=15)


def answer_of(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes the connection."""
    parts = []
    while chunk := sock.recv(65536):
        parts.append(chunk)
    return b"".join(parts)


def answer_or_reset(sock: socket.socket, timeout: float) -> bytes:
    """The answer, or b"" for a connection the server reset."""
    sock.settimeout(timeout)
    try:
        return answer_of(sock)
    except ConnectionResetError:
        return b""


def json_reason(answer: bytes) -> str:
    match = re.search(rb'"error":"([a-z_]+)"', answer)
    assert match is not None, answer[:300]
    return match.group(1).decode()


def body_pool_in_use(url: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    match = re.search(r'^pizza_api_memory_in_flight_bytes\{pool="bodies"\} (\S+)$', text, re.M)
    return float(match.group(1)) if match else -1.0


def upload_head(length: int | None) -> bytes:
    framing = f"Content-Length: {length}" if length is not None else "Transfer-Encoding: chunked"
    return (
        b"POST /classify HTTP/1.1\r\nHost: x\r\n"
        b"Content-Type: multipart/form-data; boundary=x\r\n" + framing.encode() + b"\r\n\r\n"
    )


def classify(url: str) -> httpx.Response:
    files = {"file": ("p.jpg", IMAGE, "image/jpeg")}
    return httpx.post(f"{url}/classify", files=files, timeout=30)


@pytest.mark.parametrize("framing", ["content-length", "chunked"])
def test_a_trickled_body_gets_408_and_frees_its_reservation(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch, framing: str
) -> None:
    monkeypatch.setattr(admission, "BODY_TIMEOUT_SECONDS", 1.5)
    chunked = framing == "chunked"
    with connect(server.url) as sock:
        sock.sendall(upload_head(None if chunked else 100_000))
        started = time.monotonic()
        if not chunked:  # the declared body is reserved on arrival
            eventually(lambda: body_pool_in_use(server.url) > 0, 5, "the body reserved")
        answer = b""
        for _ in range(10):  # a byte every 0.3 s: never idle for long, never done
            try:
                sock.sendall(b"1\r\na\r\n" if chunked else b"a")
            except OSError:
                break  # closed after the answer
            time.sleep(0.3)
        answer = answer_of(sock)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert json_reason(answer) == "request_timeout"
    assert b"within 1.5 s" in answer
    assert 1.4 < took < 4.5, took
    eventually(lambda: body_pool_in_use(server.url) == 0, 5, "the reservation released")
    assert classify(server.url).status_code == 200


def test_a_refused_body_trickled_on_is_closed_at_its_deadline(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 413 before the body is read keeps the connection for the rest of the body, but not past
    the body's deadline: a client trickling it on is then closed."""
    monkeypatch.setattr(admission, "BODY_TIMEOUT_SECONDS", 1.5)
    with connect(server.url) as sock:
        sock.sendall(upload_head(50 * 1024 * 1024))
        started = time.monotonic()
        answer = b""
        while time.monotonic() - started < 6:
            try:
                sock.sendall(b"a")
                sock.settimeout(0.3)
                chunk = sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not chunk:
                break
            answer += chunk
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 413 "), answer[:300]
    assert json_reason(answer) == "file_too_large"
    assert 1.4 < took < 4.5, took


def test_a_body_that_arrives_in_time_is_served(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The deadline covers the whole body, not each read: a slow but timely one is fine."""
    monkeypatch.setattr(admission, "BODY_TIMEOUT_SECONDS", 3.0)
    form = (
        b'--x\r\nContent-Disposition: form-data; name="file"; filename="p.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + IMAGE + b"\r\n--x--\r\n"
    )
    with connect(server.url) as sock:
        sock.sendall(upload_head(len(form)))
        step = len(form) // 4 + 1
        for offset in range(0, len(form), step):
            sock.sendall(form[offset : offset + step])
            time.sleep(0.3)
        answer = sock.recv(65536)
    assert answer.startswith(b"HTTP/1.1 200 "), answer[:300]


@pytest.mark.parametrize("sent", [b"", b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-A: "])
def test_a_head_that_does_not_come_gets_408(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch, sent: bytes
) -> None:
    """A connection that sends nothing, or trickles its headers, is answered and closed."""
    monkeypatch.setattr(protocol, "HEAD_TIMEOUT_SECONDS", 1.0)
    with connect(server.url) as sock:
        started = time.monotonic()
        sock.sendall(sent)
        for _ in range(8):
            try:
                if sent:
                    sock.sendall(b"a")
            except OSError:
                break
            time.sleep(0.25)
        answer = answer_of(sock)
        took = time.monotonic() - started
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]
    assert json_reason(answer) == "request_timeout"
    assert 0.9 < took < 3.5, took


def test_a_kept_alive_connection_gets_a_new_head_deadline(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "HEAD_TIMEOUT_SECONDS", 1.0)
    with connect(server.url) as sock:
        for _ in range(3):  # each request within its own deadline, together past it
            sock.sendall(b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200 ")
            time.sleep(0.6)
        sock.sendall(b"GET /v2/health/live HTTP/1.1\r\n")  # and then nothing
        answer = answer_of(sock)
    assert answer.startswith(b"HTTP/1.1 408 "), answer[:300]


def test_requests_beyond_the_most_in_flight_get_503_and_probes_are_served(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "MAX_REQUESTS", 3)
    with ExitStack() as stack:
        for _ in range(3):  # three uploads still coming in
            sock = stack.enter_context(connect(server.url))
            sock.sendall(upload_head(50_000) + b"--x\r\n")

        def refused() -> httpx.Response | None:
            response = classify(server.url)
            return response if response.status_code == 503 else None

        busy = eventually(refused, 5, "the uploads admitted")
        assert busy.headers["retry-after"] == "1"
        assert busy.json()["error"] == "server_busy" and "3 requests" in busy.json()["detail"]
        for probe in ("/v2/health/live", "/v2/health/ready"):
            assert httpx.get(f"{server.url}{probe}", timeout=5).status_code == 200
    eventually(lambda: classify(server.url).status_code == 200, 10, "served once they left")
    metrics = httpx.get(f"{server.url}/metrics", timeout=5).text
    assert re.search(r'^pizza_api_overload_refused_total\{limit="requests"\} [1-9]', metrics, re.M)


def test_connections_beyond_the_most_open_are_closed_at_once(
    server: ServerThread, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(protocol, "MAX_CONNECTIONS", 4)
    with ExitStack() as stack:
        idle = [stack.enter_context(connect(server.url)) for _ in range(4)]
        assert idle
        time.sleep(0.2)  # the server has taken them
        with connect(server.url) as extra:
            extra.settimeout(5)
            try:
                refused = extra.recv(100) == b""
            except ConnectionResetError:
                refused = True
        assert refused
    eventually(lambda: classify(server.url).status_code == 200, 10, "served once they left")


@pytest.mark.slow
def test_a_full_set_of_connections_with_full_heads_costs_little() -> None:
    """`MAX_CONNECTIONS` connections, each sending all but the last bytes of a `MAX_HEAD_BYTES`
    head, against pizza-serve router: its peak memory grows by about
    `MAX_CONNECTIONS * (MAX_HEAD_BYTES + CONNECTION_OVERHEAD_BYTES)` at most, the connections
    beyond are closed, the held ones get 408 after the head deadline, and it serves again."""
    n = protocol.MAX_CONNECTIONS
    argv = ["-m", "pizza_inference.cli", "router", "--primary", "http://127.0.0.1:9"]
    argv += ["--fallback", "http://127.0.0.1:9", "--port", "{port}", "--host", "127.0.0.1"]
    argv += ["--log-level", "warning"]
    with server_process(argv, "/v2/health/live") as process, ExitStack() as stack:
        reset_peak(process.pid)
        before = peak_bytes(process.pid)
        head = b"GET /v2/health/live HTTP/1.1\r\nHost: x\r\nX-Pad: "
        pad = b"a" * (protocol.MAX_HEAD_BYTES - len(head) - 64)
        socks = []
        for _ in range(n + 16):
            sock = stack.enter_context(connect(process.url))
            with suppress(OSError):
                sock.sendall(head + pad)
            socks.append(sock)
        time.sleep(1.0)
        growth = peak_bytes(process.pid) - before
        bound = n * (protocol.MAX_HEAD_BYTES + protocol.CONNECTION_OVERHEAD_BYTES)
        print(
            f"{n} connections with {len(head + pad)}-byte heads: peak RSS +{growth / 2**20:.1f}"
            f" MiB (bound {bound / 2**20:.0f} MiB)"
        )
        assert growth < bound
        answers = [answer_or_reset(s, protocol.HEAD_TIMEOUT_SECONDS + 10) for s in socks]
        timed_out = sum(a.startswith(b"HTTP/1.1 408 ") for a in answers)
        assert timed_out >= n - 16, timed_out  # held ones answered at their deadline
        assert timed_out <= n  # the ones beyond were closed at once
        assert httpx.get(f"{process.url}/v2/health/live", timeout=5).status_code == 200
