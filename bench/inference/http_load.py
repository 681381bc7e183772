"""HTTP benchmarks in one run: the CNN INT8 model server at concurrency 16 (dynamic batching on and
off), the router's added latency, and optionally the same CNN behind KServe's model server.

Every server is a separate process started here. The client (common.raw_sender) is a minimal
keep-alive HTTP/1.1 client in this process, one connection per concurrent worker, sending
prebuilt request bytes; it shares the CPUs with the servers. Besides wall-clock numbers, the CPU
seconds each server process spent per request are reported (read from /proc).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from common import (  # type: ignore[import-not-found]
    PIDS,
    REPO,
    cnn_checkpoint,
    cpu_seconds,
    json_request,
    multipart_request,
    pizza_like_jpeg,
    process,
    raw_sender,
    run_load,
    v2_body,
)


def model_server(checkpoint: Path, batch: int, timeout_ms: float) -> Any:
    return process(
        [
            "-m",
            "pizza_inference.cli",
            "model",
            "--backend",
            "cnn",
            "--source",
            f"file://{checkpoint}",
            "--precision",
            "int8",
            "--host",
            "127.0.0.1",
            "--port",
            "{port}",
            "--max-batch-size",
            str(batch),
            "--batch-timeout-ms",
            str(timeout_ms),
            "--log-level",
            "warning",
        ],
        "/v2/health/ready",
        env={"OMP_NUM_THREADS": "1"},
    )


def classify_sender(url: str, image: bytes) -> Any:
    host, port = url.removeprefix("http://").split(":")
    return raw_sender(url, multipart_request(host, int(port), "/classify", image))


def infer_sender(url: str, image: bytes) -> Any:
    """OIP v2 JSON, the image as one base64 BYTES element: the same bytes to any v2 server."""
    host, port = url.removeprefix("http://").split(":")
    body = v2_body(image)
    return raw_sender(url, json_request(host, int(port), "/v2/models/standard-cnn/infer", body))


def interleaved_overhead(
    direct_url: str, router_url: str, image: bytes, seconds: float
) -> dict[str, Any]:
    """Alternates one request to the model server and one through the router (concurrency 1), so
    both see the same machine load; reports p50s and the median of the paired differences."""
    direct_send = classify_sender(direct_url, image)
    router_send = classify_sender(router_url, image)

    async def run() -> tuple[list[float], list[float]]:
        direct: list[float] = []
        routed: list[float] = []
        stop = time.perf_counter() + seconds
        for _ in range(50):  # warm-up, connections opened
            await direct_send(None)
            await router_send(None)
        while time.perf_counter() < stop:
            start = time.perf_counter()
            assert await direct_send(None)
            middle = time.perf_counter()
            assert await router_send(None)
            direct.append(middle - start)
            routed.append(time.perf_counter() - middle)
        return direct, routed

    direct, routed = asyncio.run(run())
    differences = sorted((r - d) * 1000 for d, r in zip(direct, routed, strict=True))
    return {
        "pairs": len(direct),
        "direct_p50_ms": round(statistics.median(direct) * 1000, 3),
        "via_router_p50_ms": round(statistics.median(routed) * 1000, 3),
        "added_p50_ms": round(
            statistics.median(routed) * 1000 - statistics.median(direct) * 1000, 3
        ),
        "paired_difference_median_ms": round(statistics.median(differences), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential-seconds", type=float, default=8.0)
    parser.add_argument(
        "--kserve-python", help="python of the kserve venv (.venv-kserve/bin/python)"
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    image = pizza_like_jpeg()
    results: dict[str, Any] = {
        "image_bytes": len(image),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
    }

    def measure(key: str, url: str, send: Any) -> None:
        """Wall-clock load test, plus the CPU seconds the server and this client spent per request
        (a cost that other processes on the machine do not distort the way they distort time)."""
        load = os.getloadavg()[0]
        pid = PIDS[url]
        result = run_load(send, args.concurrency, args.duration, cpu_probe=lambda: cpu_seconds(pid))
        n = max(1, result["requests"])
        results[key] = {
            **result,
            "server_cpu_ms_per_request": round(result["server_cpu_s"] * 1000 / n, 3),
            "client_cpu_ms_per_request": round(result["client_cpu_s"] * 1000 / n, 3),
            "loadavg_1m_before": round(load, 2),
        }
        print(key, results[key], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, weights = cnn_checkpoint(Path(tmp))
        results["weights"] = weights
        with model_server(checkpoint, 32, 2.0) as url:
            measure("cnn_multipart_batching", url, classify_sender(url, image))
            measure("cnn_v2_batching", url, infer_sender(url, image))
            router_args = [
                "-m", "pizza_inference.cli", "router", "--primary", url, "--fallback", url,
                "--rate-limit-per-minute", "0", "--host", "127.0.0.1", "--port", "{port}",
                "--log-level", "warning",
            ]  # fmt: skip
            with process(router_args, "/v2/health/ready") as router_url:
                results["router_overhead"] = {
                    **interleaved_overhead(url, router_url, image, args.sequential_seconds),
                    "loadavg_1m_before": round(os.getloadavg()[0], 2),
                }
                print("router_overhead", results["router_overhead"], flush=True)
                measure("router_multipart", router_url, classify_sender(router_url, image))
        with model_server(checkpoint, 1, 0.0) as url:
            measure("cnn_multipart_no_batching", url, classify_sender(url, image))
        if args.kserve_python:
            kserve_args = [
                str(REPO / "bench" / "inference" / "kserve_cnn.py"),
                "--checkpoint", str(checkpoint), "--http_port", "{port}",
            ]  # fmt: skip
            env = {"OMP_NUM_THREADS": "1"}
            with process(
                kserve_args, "/v2/health/ready", python=args.kserve_python, env=env
            ) as url:
                measure("kserve_v2", url, infer_sender(url, image))
            with model_server(checkpoint, 32, 2.0) as url:  # ours again, right after KServe
                measure("cnn_v2_batching_again", url, infer_sender(url, image))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
