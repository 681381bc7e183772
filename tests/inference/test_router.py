"""The router against real model servers (controllable INT8 CNN primary, INT8 CNN fallback)."""

from __future__ import annotations

import base64
import socket
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from pizza_inference.backends.cnn import CNNBackend
from pizza_inference.config import RouterConfig
from pizza_inference.images import MAX_IMAGE_BYTES
from pizza_inference.model_server.app import create_model_app
from pizza_inference.model_server.plane import ModelDataPlane
from pizza_inference.router.app import create_router_app
from pizza_inference.router.plane import RouterPlane
from pizza_inference.service import ImageUpload, Prediction, Target
from prometheus_client import REGISTRY
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tests.inference.conftest import cnn_config
from tests.inference.faults import ControllableBackend
from tests.support.images import image_bytes
from tests.support.net import free_port
from tests.support.servers import ServerThread, serve, wait_ready

pytestmark = [pytest.mark.unit, pytest.mark.slow]

IMAGE = image_bytes("JPEG", (80, 80), seed=7)


@pytest.fixture(scope="module")
def primary(cnn_checkpoint: Path) -> Iterator[tuple[ServerThread, ControllableBackend]]:
    backend = ControllableBackend(cnn_checkpoint)
    plane = ModelDataPlane(
        lambda: backend, model_name="primary-cnn", backend_kind="cnn", source="test"
    )
    server = ServerThread(create_model_app(cnn_config(cnn_checkpoint), plane=plane)).start()
    wait_ready(server.url)
    yield server, backend
    server.stop()


@pytest.fixture(autouse=True)
def healthy_primary(primary: tuple[ServerThread, ControllableBackend]) -> Iterator[None]:
    yield
    primary[1].mode = "ok"


@contextmanager
def router(primary_url: str, fallback_url: str, **overrides: object) -> Iterator[str]:
    values: dict[str, object] = {
        "primary_url": primary_url,
        "fallback_url": fallback_url,
        "rate_limit_per_minute": 0,
    }
    values.update(overrides)
    with serve(create_router_app(RouterConfig(**values))) as server:  # type: ignore[arg-type]
        yield server.url


def post(url: str, path: str = "/classify", data: bytes = IMAGE, **form: str) -> httpx.Response:
    return httpx.post(
        f"{url}{path}", files={"file": ("p.jpg", data, "image/jpeg")}, data=form, timeout=30
    )


def fallbacks(reason: str) -> float:
    return REGISTRY.get_sample_value("pizza_api_fallback_total", {"reason": reason}) or 0.0


def test_primary_answers_when_healthy(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    server, backend = primary
    with router(server.url, cnn_server.url) as url:
        before = backend.calls
        body = post(url).json()
        assert body["model_used"] == "primary-cnn" and body["fallback_reason"] is None
        assert backend.calls == before + 1
        spatial = post(url, "/predict/spatial").json()
        assert spatial["model_used"] == "primary-cnn"
        standard = post(url, "/predict/standard").json()
        assert (
            standard["model_used"] == "standard-cnn" and standard["fallback_reason"] == "requested"
        )
        not_spatial = post(url, use_spatial="false").json()
        assert not_spatial["model_used"] == "standard-cnn"
        # same image, same INT8 weights on both servers: the same probabilities
        assert body["probabilities"] == standard["probabilities"]


def test_fallback_on_primary_error(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    server, backend = primary
    backend.mode = "fail"
    with router(server.url, cnn_server.url) as url:
        before = fallbacks("error")
        response = post(url)
        assert response.status_code == 200
        assert (
            response.json()["model_used"] == "standard-cnn"
            and response.json()["fallback_reason"] == "error"
        )
        assert fallbacks("error") == before + 1
        errors = httpx.get(f"{url}/status").json()["models"]["primary"]["errors_by_reason"]
        assert errors == {"error": 1}


def test_fallback_on_timeout(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    server, backend = primary
    backend.mode, backend.delay_s = "slow", 1.0
    with router(server.url, cnn_server.url, primary_timeout_seconds=0.3) as url:
        start = time.monotonic()
        body = post(url).json()
        assert body["fallback_reason"] == "timeout" and body["model_used"] == "standard-cnn"
        assert time.monotonic() - start < 1.0
    time.sleep(0.8)  # let the primary finish its slow batch


def test_fallback_when_primary_is_down_or_unready(cnn_server: ServerThread, tmp_path: Path) -> None:
    with router(f"http://127.0.0.1:{free_port()}", cnn_server.url) as url:
        assert post(url).json()["fallback_reason"] == "unavailable"
        health = httpx.get(f"{url}/health")
        assert health.status_code == 200 and health.json()["status"] == "degraded"
    unready = create_model_app(cnn_config(tmp_path / "missing"))
    with serve(unready) as broken, router(broken.url, cnn_server.url) as url:
        assert post(url).json()["fallback_reason"] == "unavailable"


def test_circuit_breaker_opens_and_recovers(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    server, backend = primary
    backend.mode = "fail"
    with router(
        server.url, cnn_server.url, circuit_failure_threshold=2, circuit_reset_seconds=0.5
    ) as url:
        assert [post(url).json()["fallback_reason"] for _ in range(2)] == ["error", "error"]
        calls = backend.calls
        assert post(url).json()["fallback_reason"] == "circuit_open"
        assert backend.calls == calls, "an open circuit must not call the primary"
        breaker = httpx.get(f"{url}/status").json()["router"]["circuit_breaker"]
        assert breaker["state"] == "open" and breaker["times_opened"] == 1
        backend.mode = "ok"
        time.sleep(0.6)
        body = post(url).json()
        assert body["model_used"] == "primary-cnn" and body["fallback_reason"] is None
        assert httpx.get(f"{url}/status").json()["router"]["circuit_breaker"]["state"] == "closed"


@contextmanager
def counting_listener() -> Iterator[tuple[str, list[int]]]:
    """A TCP listener that counts connections (stands where a primary would be)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    sock.settimeout(0.1)
    accepted = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            try:
                conn, _ = sock.accept()
            except OSError:
                continue
            accepted[0] += 1
            conn.close()

    thread = threading.Thread(target=loop, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}", accepted
    finally:
        stop.set()
        thread.join(2)
        sock.close()


def test_stable_and_emergency_modes_never_call_the_primary(cnn_server: ServerThread) -> None:
    with counting_listener() as (primary_url, accepted):
        for mode in ("stable", "emergency"):
            with router(primary_url, cnn_server.url, mode=mode) as url:
                body = post(url).json()
                assert (
                    body["model_used"] == "standard-cnn"
                    and body["fallback_reason"] == f"mode_{mode}"
                )
                assert post(url, ab_test_group="A").json()["fallback_reason"] == f"mode_{mode}"
                if mode == "emergency":
                    assert httpx.get(f"{url}/health").json()["models"]["primary"]["ready"] is None
                    compare = httpx.post(
                        f"{url}/ab-test/compare", files={"file": ("p.jpg", IMAGE, "image/jpeg")}
                    )
                    assert "primary" in compare.json()["errors"]
                    assert httpx.get(f"{url}/v2/health/ready").status_code == 200
                    httpx.get(f"{url}/status")
        assert accepted[0] == 0, "stable and emergency modes must not send requests to the primary"
        with router(
            primary_url, cnn_server.url
        ) as url:  # the listener does see a primary-mode router
            assert post(url).json()["fallback_reason"] in ("unavailable", "error")
        assert accepted[0] >= 1


def test_rate_limit_per_client(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    with router(primary[0].url, cnn_server.url, rate_limit_per_minute=3) as url:
        before = (
            REGISTRY.get_sample_value(
                "pizza_api_requests_total",
                {"method": "POST", "endpoint": "/classify", "status": "429"},
            )
            or 0.0
        )
        # a series from 0 before the first refusal, so dashboards and alerts see the first one
        limited_before = REGISTRY.get_sample_value("pizza_router_rate_limited_total")
        assert limited_before is not None
        assert [post(url).status_code for _ in range(3)] == [200, 200, 200]
        limited = post(url)
        assert limited.status_code == 429
        assert int(limited.headers["Retry-After"]) >= 1
        assert (
            limited.json()["error"] == "rate_limited"
            and "3 requests a minute" in limited.json()["detail"]
        )
        assert httpx.get(f"{url}/health").status_code == 200  # probes are not limited
        after = REGISTRY.get_sample_value(
            "pizza_api_requests_total", {"method": "POST", "endpoint": "/classify", "status": "429"}
        )
        assert after == before + 1
        assert REGISTRY.get_sample_value("pizza_router_rate_limited_total") == limited_before + 1


def test_ab_split(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    with router(primary[0].url, cnn_server.url, ab_primary_percent=50) as url:
        assert post(url, ab_test_group="A").json()["model_used"] == "primary-cnn"
        b = post(url, ab_test_group="B").json()
        assert (
            b["model_used"] == "standard-cnn"
            and b["fallback_reason"] == "ab_test"
            and b["ab_test_group"] == "B"
        )
        answers = [post(url).json() for _ in range(30)]
        groups = {a["ab_test_group"] for a in answers}
        assert groups == {"A", "B"}
        assert all(
            (a["ab_test_group"] == "A") == (a["model_used"] == "primary-cnn") for a in answers
        )
        status = httpx.get(f"{url}/ab-test/status").json()
        assert status["enabled"] and status["primary_percent"] == 50
        assert status["groups"]["A"]["requests"] + status["groups"]["B"]["requests"] == 32


def test_bad_input_is_passed_through_not_fallen_back(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    with router(primary[0].url, cnn_server.url) as url:
        before = sum(fallbacks(r) for r in ("error", "unavailable", "timeout"))
        response = post(url, data=b"definitely not a jpeg")
        assert response.status_code == 400 and response.json()["error"] == "not_an_image"
        assert sum(fallbacks(r) for r in ("error", "unavailable", "timeout")) == before
        empty = post(url, data=b"")
        assert empty.status_code == 400 and empty.json()["error"] == "empty_file"


def test_readiness_follows_the_fallback(cnn_server: ServerThread, tmp_path: Path) -> None:
    with serve(create_model_app(cnn_config(tmp_path / "missing"))) as broken:
        with router(cnn_server.url, broken.url) as url:
            assert httpx.get(f"{url}/v2/health/ready").status_code == 503
            assert httpx.get(f"{url}/health").json()["status"] == "unhealthy"
        with router(f"http://127.0.0.1:{free_port()}", broken.url) as url:
            response = post(url)
            assert response.status_code == 503 and response.json()["error"] == "no_model_available"
    with router(f"http://127.0.0.1:{free_port()}", cnn_server.url) as url:
        assert httpx.get(f"{url}/v2/health/ready").status_code == 200


def test_compare_and_open_inference_protocol(
    primary: tuple[ServerThread, ControllableBackend], cnn_server: ServerThread
) -> None:
    with router(primary[0].url, cnn_server.url) as url:
        compare = httpx.post(
            f"{url}/ab-test/compare", files={"file": ("p.jpg", IMAGE, "image/jpeg")}
        ).json()
        assert [r["model_used"] for r in compare["results"]] == ["primary-cnn", "standard-cnn"]
        assert compare["agreement"] is True  # same weights behind both
        request = {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(IMAGE).decode()],
                }
            ]
        }
        response = httpx.post(f"{url}/v2/models/pizza-classifier/infer", json=request, timeout=30)
        assert response.status_code == 200, response.text
        assert response.json()["parameters"]["model_used"] == ["primary-cnn"]
        assert httpx.get(f"{url}/v2/models/pizza-classifier/ready").json()["ready"] is True


# -- forwarding the client's body as it came ---------------------------------------------------
BOUNDARY = "client-boundary-5f1c"


def client_form(
    filename: str = "margherita.png", content_type: str = "image/png", **fields: str
) -> tuple[bytes, str]:
    """A multipart body built here byte by byte (so a test knows the exact bytes a client sent)."""
    parts = [
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()
        for name, value in fields.items()
    ]
    head = (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="file"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    body = b"".join(parts) + head + IMAGE + f"\r\n--{BOUNDARY}--\r\n".encode()
    return body, f"multipart/form-data; boundary={BOUNDARY}"


@dataclass
class Seen:
    """One request a model server received, as the ASGI server handed it over."""

    path: str
    client_port: int
    headers: dict[str, str]
    body: bytes


class RecordingMiddleware:
    """Outermost ASGI middleware of a real model server: keeps every POST's headers and body."""

    def __init__(self, app: ASGIApp, seen: list[Seen]) -> None:
        self.app = app
        self.seen = seen

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []

        async def recording() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                chunks.append(message.get("body", b""))
            return message

        await self.app(scope, recording, send)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        self.seen.append(Seen(scope["path"], scope["client"][1], headers, b"".join(chunks)))


class RecordingPlane(ModelDataPlane):
    """The real model server's data plane, keeping each `ImageUpload` its API layer parsed."""

    def __init__(self, checkpoint: Path, name: str) -> None:
        backend = CNNBackend(checkpoint, precision="int8", device="cpu")
        super().__init__(lambda: backend, model_name=name, backend_kind="cnn", source="test")
        self.uploads: list[ImageUpload] = []

    async def classify(
        self, upload: ImageUpload, *, target: Target = Target.AUTO, ab_test_group: str | None = None
    ) -> Prediction:
        self.uploads.append(upload)
        return await super().classify(upload, target=target, ab_test_group=ab_test_group)


@dataclass
class Recording:
    url: str
    plane: RecordingPlane
    seen: list[Seen]

    def clear(self) -> None:
        self.plane.uploads.clear()
        self.seen.clear()


@pytest.fixture(scope="module")
def recording(cnn_checkpoint: Path) -> Iterator[Recording]:
    """A real model server that records what reaches it (headers, body, parsed upload)."""
    plane = RecordingPlane(cnn_checkpoint, "recording-cnn")
    app = create_model_app(cnn_config(cnn_checkpoint), plane=plane)
    seen: list[Seen] = []
    app.add_middleware(RecordingMiddleware, seen=seen)
    server = ServerThread(app).start()
    wait_ready(server.url)
    yield Recording(server.url, plane, seen)
    server.stop()


def test_the_model_server_gets_the_clients_body_and_content_type(
    recording: Recording, cnn_server: ServerThread
) -> None:
    recording.clear()
    body, content_type = client_form(return_probabilities="false")
    direct = httpx.post(
        f"{recording.url}/classify", content=body, headers={"Content-Type": content_type}
    )
    assert direct.status_code == 200, direct.text
    with router(recording.url, cnn_server.url) as url:
        routed = httpx.post(f"{url}/classify", content=body, headers={"Content-Type": content_type})
    assert routed.status_code == 200, routed.text
    answer = routed.json()
    assert answer["model_used"] == "recording-cnn" and answer["fallback_reason"] is None
    assert answer["probabilities"] is None  # the client's return_probabilities=false, honoured
    assert answer["predicted_class"] == direct.json()["predicted_class"]
    assert answer["confidence"] == direct.json()["confidence"]
    first, forwarded = recording.seen
    assert forwarded.body == body == first.body, "the router must forward the bytes as they came"
    assert forwarded.headers["content-type"] == content_type  # the client's boundary too
    assert forwarded.headers["content-length"] == str(len(body))
    assert "transfer-encoding" not in forwarded.headers
    # the model server parses the forwarded form exactly as the client's own request
    by_client, by_router = recording.plane.uploads
    assert by_router == by_client
    assert (by_router.filename, by_router.content_type) == ("margherita.png", "image/png")
    assert by_router.data == IMAGE and by_router.raw is None


def test_the_old_multipart_forward_and_decoded_bytes_still_work(
    recording: Recording, cnn_server: ServerThread, cnn_checkpoint: Path
) -> None:
    recording.clear()
    body, content_type = client_form()
    headers = {"Content-Type": content_type}
    config = RouterConfig(
        primary_url=recording.url, fallback_url=cnn_server.url, rate_limit_per_minute=0
    )
    plane = RouterPlane(config, forward_raw=False)  # what the router did before: a new form
    with serve(create_router_app(config, plane=plane)) as server:
        response = httpx.post(f"{server.url}/classify", content=body, headers=headers)
    assert response.status_code == 200 and response.json()["model_used"] == "recording-cnn"
    assert recording.seen[0].body != body and recording.seen[0].headers["content-type"] != (
        content_type
    )
    assert recording.plane.uploads[0].filename == "margherita.png"
    assert recording.plane.uploads[0].data == IMAGE
    # the Open Inference Protocol path has decoded bytes, no body to forward: a new form
    recording.clear()
    tensor = {
        "name": "image",
        "shape": [1],
        "datatype": "BYTES",
        "data": [base64.b64encode(IMAGE).decode()],
    }
    with router(recording.url, cnn_server.url) as url:
        infer = httpx.post(
            f"{url}/v2/models/pizza-classifier/infer", json={"inputs": [tensor]}, timeout=30
        )
    assert infer.status_code == 200, infer.text
    assert infer.json()["parameters"]["model_used"] == ["recording-cnn"]
    (upload,) = recording.plane.uploads
    assert upload.data == IMAGE and upload.content_type == "application/octet-stream"
    assert recording.seen[-1].headers["content-type"].startswith("multipart/form-data; boundary=")


def test_the_fallback_and_compare_get_the_same_bytes(
    primary: tuple[ServerThread, ControllableBackend], recording: Recording
) -> None:
    server, backend = primary
    body, content_type = client_form(ab_test_group="A")
    headers = {"Content-Type": content_type}
    recording.clear()
    backend.mode = "fail"
    with router(server.url, recording.url) as url:
        response = httpx.post(f"{url}/classify", content=body, headers=headers)
        answer = response.json()
        assert answer["model_used"] == "recording-cnn" and answer["fallback_reason"] == "error"
        assert answer["ab_test_group"] == "A"
        (seen,) = recording.seen
        assert seen.body == body and seen.headers["content-type"] == content_type
        backend.mode = "ok"
        recording.clear()
        compare = httpx.post(f"{url}/ab-test/compare", content=body, headers=headers)
    assert [r["model_used"] for r in compare.json()["results"]] == ["primary-cnn", "recording-cnn"]
    (seen,) = recording.seen
    assert seen.body == body and seen.headers["content-type"] == content_type
    # both servers behind the router get the one body
    recording.clear()
    with router(recording.url, recording.url) as url:
        compare = httpx.post(f"{url}/ab-test/compare", content=body, headers=headers)
    assert compare.status_code == 200, compare.text
    assert [s.body for s in recording.seen] == [body, body]


def test_connections_to_the_model_server_are_reused(
    recording: Recording, cnn_server: ServerThread
) -> None:
    recording.clear()
    with router(recording.url, cnn_server.url) as url, httpx.Client(timeout=30) as client:
        for _ in range(20):
            assert client.post(f"{url}/classify", files={"file": ("p.jpg", IMAGE)}).is_success
        assert len({s.client_port for s in recording.seen}) == 1, "one keep-alive connection"
        assert all(s.headers.get("connection", "") != "close" for s in recording.seen)
        with ThreadPoolExecutor(8) as pool:  # 8 at once: at most 8 connections, reused
            list(pool.map(lambda _: post(url).status_code, range(40)))
    assert 1 < len({s.client_port for s in recording.seen}) <= 9
    assert len(recording.seen) == 60


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_limits_are_checked_before_forwarding(
    recording: Recording, cnn_server: ServerThread, chunked: bool
) -> None:
    recording.clear()
    big = b"\xff\xd8" + b"\x00" * (MAX_IMAGE_BYTES + 1)
    head, tail = client_form(content_type="image/jpeg")[0].split(IMAGE)
    content_type = client_form()[1]
    oversized = head + big + tail
    with router(recording.url, cnn_server.url) as url:
        content: bytes | Iterator[bytes] = (
            iter([oversized[i : i + 65536] for i in range(0, len(oversized), 65536)])
            if chunked
            else oversized
        )
        response = httpx.post(
            f"{url}/classify", content=content, headers={"Content-Type": content_type}, timeout=30
        )
        assert response.status_code == 413, response.text
        assert response.json()["error"] == "file_too_large"
        # just over the image limit, the body within the router's limit: the same answer
        over = head + b"\xff\xd8" + b"\x00" * (MAX_IMAGE_BYTES - 1) + tail
        response = httpx.post(
            f"{url}/classify", content=over, headers={"Content-Type": content_type}
        )
        assert response.status_code == 413 and response.json()["error"] == "file_too_large"
        text = client_form(content_type="text/plain")
        response = httpx.post(f"{url}/classify", content=text[0], headers={"Content-Type": text[1]})
        assert response.status_code == 415 and response.json()["error"] == "unsupported_media_type"
        response = httpx.post(
            f"{url}/classify", content=b"{}", headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422
    assert recording.seen == [], "refused by the router itself: nothing forwarded"


def _sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def test_a_sleeping_primary_is_not_called_and_its_demand_counted(cnn_server: ServerThread) -> None:
    """The operator's routing table says the primary sleeps: what was meant for it is answered
    by the fallback at once (reason primary_idle) and counted as demand (what wakes it)."""
    with counting_listener() as (primary_url, accepted):
        config = RouterConfig(
            primary_url=primary_url, fallback_url=cnn_server.url, rate_limit_per_minute=0
        )
        plane = RouterPlane(config)
        assert plane.set_primary_asleep(True, source="test")
        with serve(create_router_app(config, plane=plane)) as server:
            demand = _sample("pizza_router_primary_demand_total")
            idle = fallbacks("primary_idle")
            for _ in range(3):
                body = post(server.url).json()
                assert body["fallback_reason"] == "primary_idle", body
            assert accepted[0] == 0, "a sleeping primary must not be called"
            assert _sample("pizza_router_primary_demand_total") == demand + 3
            assert fallbacks("primary_idle") == idle + 3
            assert _sample("pizza_router_upstream_in_flight", upstream="fallback") == 0
            assert plane.set_primary_asleep(False, source="test")
            assert post(server.url).json()["fallback_reason"] in ("unavailable", "error")
            assert accepted[0] >= 1
