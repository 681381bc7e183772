"""CPU cost of forwarding one multipart upload with httpx vs aiohttp (why the router uses aiohttp).

Sequential POST /classify of the benchmark image to a local CNN model server, 300 requests per
client after 50 warm-up requests, twice each; prints CPU ms (user + system of this process) and
wall ms per request.
"""

from __future__ import annotations

import asyncio
import resource
import time

import aiohttp
import httpx
from common import pizza_like_jpeg, process  # type: ignore[import-not-found]

ARGS = [
    "-m", "pizza_inference.cli", "model", "--backend", "cnn", "--source",
    "builtin://micro-pizza-net", "--precision", "int8", "--host", "127.0.0.1", "--port", "{port}",
    "--log-level", "warning",
]  # fmt: skip
N = 300


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


async def with_httpx(url: str, image: bytes) -> tuple[float, float]:
    async with httpx.AsyncClient() as client:
        files = {"file": ("a.jpg", image, "image/jpeg")}
        for _ in range(50):
            await client.post(f"{url}/classify", files=files)
        start_cpu, start = cpu(), time.perf_counter()
        for _ in range(N):
            (await client.post(f"{url}/classify", files=files)).json()
        return (cpu() - start_cpu) / N * 1000, (time.perf_counter() - start) / N * 1000


async def with_aiohttp(url: str, image: bytes) -> tuple[float, float]:
    async with aiohttp.ClientSession() as session:

        def form() -> aiohttp.FormData:
            data = aiohttp.FormData()
            data.add_field("file", image, filename="a.jpg", content_type="image/jpeg")
            return data

        for _ in range(50):
            async with session.post(f"{url}/classify", data=form()) as response:
                await response.read()
        start_cpu, start = cpu(), time.perf_counter()
        for _ in range(N):
            async with session.post(f"{url}/classify", data=form()) as response:
                await response.json()
        return (cpu() - start_cpu) / N * 1000, (time.perf_counter() - start) / N * 1000


def main() -> None:
    image = pizza_like_jpeg()
    with process(ARGS, "/v2/health/ready") as url:
        for _ in range(2):
            for name, fn in (("httpx", with_httpx), ("aiohttp", with_aiohttp)):
                cpu_ms, wall_ms = asyncio.run(fn(url, image))
                print(f"{name}: {cpu_ms:.2f} ms CPU, {wall_ms:.2f} ms wall per request", flush=True)


if __name__ == "__main__":
    main()
