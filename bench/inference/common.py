"""Shared pieces of the inference benchmarks: test images, servers as processes, a load client."""

from __future__ import annotations

import asyncio
import io
import os
import socket
import statistics
import subprocess
import sys
import tempfile
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


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def process(
    args: list[str], ready_path: str, env: dict[str, str] | None = None, python: str | None = None
) -> Iterator[str]:
    """Starts a server process on a free port and waits until `ready_path` answers 200.

    Its output goes to a temporary file (a pipe nobody reads would fill up and block a chatty
    server such as KServe, which logs every request)."""
    port = free_port()
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "inference"), **(env or {})}
    argv = [python or sys.executable, *[a.replace("{port}", str(port)) for a in args]]
    log = tempfile.TemporaryFile()  # noqa: SIM115 (closed in the finally below)
    proc = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                log.seek(0)
                raise RuntimeError(f"{args} exited: {log.read().decode()[-2000:]}")
            try:
                if httpx.get(f"{url}{ready_path}", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{args} not ready")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


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


async def _load(send: Any, concurrency: int, duration_s: float, warmup_s: float) -> LoadResult:
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
        begin = time.perf_counter()
        stop_at = begin + duration_s
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - begin
    ms = [x * 1000 for x in latencies]
    return LoadResult(
        concurrency=concurrency,
        requests=len(latencies),
        errors=errors,
        seconds=round(elapsed, 3),
        throughput_rps=round(len(latencies) / elapsed, 1),
        p50_ms=round(statistics.median(ms), 3),
        p90_ms=round(percentile(ms, 90), 3),
        p99_ms=round(percentile(ms, 99), 3),
    )


def run_load(send: Any, concurrency: int, duration_s: float, warmup_s: float = 2.0) -> LoadResult:
    return asyncio.run(_load(send, concurrency, duration_s, warmup_s))


def multipart_sender(url: str, image: bytes) -> Any:
    async def send(client: httpx.AsyncClient) -> bool:
        response = await client.post(
            f"{url}/classify", files={"file": ("pizza.jpg", image, "image/jpeg")}
        )
        return response.status_code == 200

    return send


def v2_sender(url: str, model: str, image: bytes) -> Any:
    """OIP v2 JSON request with the image as one base64 BYTES element (same body for any server)."""
    import base64  # noqa: PLC0415
    import json  # noqa: PLC0415

    body = json.dumps(
        {
            "inputs": [
                {
                    "name": "image",
                    "shape": [1],
                    "datatype": "BYTES",
                    "data": [base64.b64encode(image).decode()],
                }
            ]
        }
    ).encode()
    headers = {"Content-Type": "application/json"}

    async def send(client: httpx.AsyncClient) -> bool:
        response = await client.post(
            f"{url}/v2/models/{model}/infer", content=body, headers=headers
        )
        return response.status_code == 200

    return send
