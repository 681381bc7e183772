"""HTTP benchmarks in one run: the CNN INT8 model server at concurrency 16 (dynamic batching on and
off), the router's added latency, and optionally the same CNN behind KServe's model server.

Every server is a separate process started here; the client is an httpx AsyncClient in this
process (it shares the 2 CPUs with the servers, as a sidecar load generator would).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from common import (  # type: ignore[import-not-found]
    REPO,
    cnn_checkpoint,
    multipart_sender,
    pizza_like_jpeg,
    process,
    run_load,
    v2_sender,
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


def sequential_latency(url: str, image: bytes, n: int) -> dict[str, float]:
    """p50/p99 of n one-at-a-time requests over a kept-alive connection."""
    times = []
    with httpx.Client(timeout=30) as client:
        for i in range(n + 50):
            start = time.perf_counter()
            response = client.post(
                f"{url}/classify", files={"file": ("p.jpg", image, "image/jpeg")}
            )
            elapsed = (time.perf_counter() - start) * 1000
            assert response.status_code == 200, response.text
            if i >= 50:
                times.append(elapsed)
    times.sort()
    return {
        "p50_ms": round(statistics.median(times), 3),
        "p99_ms": round(times[int(0.99 * (n - 1))], 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=float, default=15.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--sequential", type=int, default=400)
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

    def measure(key: str, send: Any) -> None:
        load = os.getloadavg()[0]
        result = run_load(send, args.concurrency, args.duration).as_dict()
        results[key] = {**result, "loadavg_1m_before": load}
        print(key, results[key], flush=True)

    with tempfile.TemporaryDirectory() as tmp:
        checkpoint, weights = cnn_checkpoint(Path(tmp))
        results["weights"] = weights
        with model_server(checkpoint, 32, 2.0) as url:
            measure("cnn_multipart_batching", multipart_sender(url, image))
            measure("cnn_v2_batching", v2_sender(url, "standard-cnn", image))
            direct = sequential_latency(url, image, args.sequential)
            router_args = [
                "-m", "pizza_inference.cli", "router", "--primary", url, "--fallback", url,
                "--rate-limit-per-minute", "0", "--host", "127.0.0.1", "--port", "{port}",
                "--log-level", "warning",
            ]  # fmt: skip
            with process(router_args, "/v2/health/ready") as router_url:
                routed = sequential_latency(router_url, image, args.sequential)
                direct_again = sequential_latency(url, image, args.sequential)
                baseline = (direct["p50_ms"] + direct_again["p50_ms"]) / 2
                results["router_overhead"] = {
                    "direct": direct,
                    "direct_again": direct_again,
                    "via_router": routed,
                    "added_p50_ms": round(routed["p50_ms"] - baseline, 3),
                }
                print("router_overhead", results["router_overhead"], flush=True)
                measure("router_multipart", multipart_sender(router_url, image))
        with model_server(checkpoint, 1, 0.0) as url:
            measure("cnn_multipart_no_batching", multipart_sender(url, image))
        if args.kserve_python:
            kserve_args = [
                str(REPO / "bench" / "inference" / "kserve_cnn.py"),
                "--checkpoint", str(checkpoint), "--http_port", "{port}",
            ]  # fmt: skip
            env = {"OMP_NUM_THREADS": "1"}
            with process(
                kserve_args, "/v2/health/ready", python=args.kserve_python, env=env
            ) as url:
                measure("kserve_v2", v2_sender(url, "standard-cnn", image))
            with model_server(checkpoint, 32, 2.0) as url:  # ours again, right after KServe
                measure("cnn_v2_batching_again", v2_sender(url, "standard-cnn", image))
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
