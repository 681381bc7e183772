"""Shared pieces of the inference benchmarks: test images, servers as processes, a load client."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import resource
import statistics
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from tests.support.servers import server_process  # noqa: E402

BUILTIN_CNN = REPO / "inference" / "pizza_inference" / "weights" / "micro-pizza-net"


def pizza_like_jpeg(size: int = 256, seed: int = 0) -> bytes:
    """A smooth synthetic 'pizza' JPEG (disc + toppings), about the size of a phone thumbnail."""
    rng = np.random.default_rng(seed)
    image = Image.new("RGB", (size, size), (200, 190, 170))
    draw = ImageDraw.Draw(image)
    draw.ellipse((8, 8, size - 8, size - 8), fill=(215, 160, 80))
    draw.ellipse((24, 24, size - 24, size - 24), fill=(190, 60, 40))
    for _ in range(12):
        x, y = rng.integers(40, size - 40, 2)
        draw.ellipse((x - 10, y - 10, x + 10, y + 10), fill=(120, 30, 30))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def cnn_checkpoint(workdir: Path) -> tuple[Path, str]:
    """The shipped MicroPizzaNet when present, else a random-weight one (same architecture)."""
    if (BUILTIN_CNN / "checkpoint.json").is_file():
        return BUILTIN_CNN, "builtin://micro-pizza-net"
    from pizza_inference.cnn.checkpoint import make_random_checkpoint  # noqa: PLC0415

    path = make_random_checkpoint(workdir / "random-micro-pizza-net", seed=0)
    return path, "random weights (make_random_checkpoint)"


PIDS: dict[str, int] = {}
"""Process id of each running server, by URL (for CPU accounting)."""


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux /proc), in seconds."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def process(
    args: list[str], ready_path: str, env: dict[str, str] | None = None, python: str | None = None
) -> Iterator[str]:
    """Starts a server process on a free port ("{port}" in `args`) and waits until `ready_path`
    answers 200; yields its URL, its pid in PIDS meanwhile."""
    with server_process(args, ready_path, timeout=180, every=0.2, env=env, python=python) as server:
        PIDS[server.url] = server.pid
        try:
            yield server.url
        finally:
            PIDS.pop(server.url, None)


@dataclass
class LoadResult:
    concurrency: int
    requests: int
    errors: int
    seconds: float
    throughput_rps: float
    p50_ms: float
    p90_ms: float
    p99_ms: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


async def _load(
    send: Any, concurrency: int, duration_s: float, warmup_s: float, cpu_probe: Any
) -> tuple[LoadResult, float, float]:
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(limits=limits, timeout=30) as client:
        latencies: list[float] = []
        errors = 0
        stop_at = 0.0
        measuring = False

        async def worker() -> None:
            nonlocal errors
            while time.perf_counter() < stop_at:
                start = time.perf_counter()
                try:
                    ok = await send(client)
                except httpx.HTTPError:
                    ok = False
                if measuring:
                    if ok:
                        latencies.append(time.perf_counter() - start)
                    else:
                        errors += 1

        stop_at = time.perf_counter() + warmup_s
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        measuring = True
        cpu_before = cpu_probe() if cpu_probe else 0.0
        client_before = _own_cpu()
        begin = time.perf_counter()
        stop_at = begin + duration_s
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
        cpu_used = (cpu_probe() - cpu_before) if cpu_probe else 0.0
        client_used = _own_cpu() - client_before
    ms = [x * 1000 for x in latencies]
    return (
        LoadResult(
            concurrency=concurrency,
            requests=len(latencies),
            errors=errors,
            seconds=round(elapsed, 3),
            throughput_rps=round(len(latencies) / elapsed, 1),
            p50_ms=round(statistics.median(ms), 3),
            p90_ms=round(percentile(ms, 90), 3),
            p99_ms=round(percentile(ms, 99), 3),
        ),
        cpu_used,
        client_used,
    )


def run_load(
    send: Any, concurrency: int, duration_s: float, warmup_s: float = 2.0, cpu_probe: Any = None
) -> dict[str, Any]:
    """Load result as a dict; with `cpu_probe`, `server_cpu_s` spent during the measured part."""
    result, cpu, client = asyncio.run(_load(send, concurrency, duration_s, warmup_s, cpu_probe))
    return {**result.as_dict(), "server_cpu_s": round(cpu, 4), "client_cpu_s": round(client, 4)}


def _own_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def multipart_sender(url: str, image: bytes) -> Any:
    async def send(client: httpx.AsyncClient) -> bool:
        response = await client.post(
            f"{url}/classify", files={"file": ("pizza.jpg", image, "image/jpeg")}
        )
        return response.status_code == 200

    return send


def v2_body(image: bytes) -> bytes:
    """OIP v2 JSON request with the image as one base64 BYTES element (same body for any server)."""
    tensor = {
        "name": "image",
        "shape": [1],
        "datatype": "BYTES",
        "data": [base64.b64encode(image).decode()],
    }
    return json.dumps({"inputs": [tensor]}).encode()


def v2_sender(url: str, model: str, image: bytes) -> Any:
    """OIP v2 JSON request (v2_body) sent with httpx."""
    body = v2_body(image)
    headers = {"Content-Type": "application/json"}

    async def send(client: httpx.AsyncClient) -> bool:
        response = await client.post(
            f"{url}/v2/models/{model}/infer", content=body, headers=headers
        )
        return response.status_code == 200

    return send


def multipart_request(host: str, port: int, path: str, image: bytes) -> bytes:
    """A complete HTTP/1.1 keep-alive request: multipart form with the image as `file`."""
    boundary = b"pizzabenchboundary7d2f"
    body = (
        b"--" + boundary + b"\r\n"
        b'Content-Disposition: form-data; name="file"; filename="pizza.jpg"\r\n'
        b"Content-Type: image/jpeg\r\n\r\n" + image + b"\r\n--" + boundary + b"--\r\n"
    )
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary.decode()}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def json_request(host: str, port: int, path: str, body: bytes) -> bytes:
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode()
    return head + body


def raw_sender(url: str, request: bytes) -> Any:
    """A minimal keep-alive HTTP/1.1 client (a connection per worker, request bytes built once).

    It costs the shared CPUs far less than httpx (as wrk would); every server gets this client."""
    host, port = url.removeprefix("http://").split(":")
    connections: dict[int, tuple[asyncio.StreamReader, asyncio.StreamWriter]] = {}

    async def send(_: Any) -> bool:
        key = id(asyncio.current_task())
        if key not in connections:
            connections[key] = await asyncio.open_connection(host, int(port))
        reader, writer = connections[key]
        writer.write(request)
        await writer.drain()
        head = await reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":", 1)[1])
        await reader.readexactly(length)
        return status == 200

    return send
