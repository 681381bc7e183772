"""MicroPizzaNet in-process latency per image: INT8 vs float32, batch 1 and batch 32.

Measures the serving path of the `cnn` backend (`predict` on decoded PIL images: resize to 48x48,
normalise, forward, softmax), without HTTP.
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import torch
from common import cnn_checkpoint, pizza_like_jpeg  # type: ignore[import-not-found]
from PIL import Image
from pizza_inference.backends.cnn import CNNBackend


def time_predict(backend: CNNBackend, images: list[Image.Image], repeats: int) -> list[float]:
    for _ in range(20):
        backend.predict(images)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        backend.predict(images)
        times.append((time.perf_counter() - start) / len(images))
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=500)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory() as tmp:
        path, weights = cnn_checkpoint(Path(tmp))
        image = Image.open(io.BytesIO(pizza_like_jpeg())).convert("RGB")
        results: dict[str, Any] = {
            "weights": weights,
            "torch": torch.__version__,
            "threads": args.threads,
        }
        for precision in ("int8", "float32"):
            backend = CNNBackend(path, precision=precision, device="cpu")
            backend.load()
            for batch in (1, 32):
                repeats = args.repeats if batch == 1 else max(20, args.repeats // 10)
                times = time_predict(backend, [image] * batch, repeats)
                ms = sorted(t * 1000 for t in times)
                results[f"{precision}_batch{batch}"] = {
                    "p50_ms_per_image": round(statistics.median(ms), 4),
                    "p99_ms_per_image": round(ms[int(0.99 * (len(ms) - 1))], 4),
                    "repeats": repeats,
                }
        # the same numbers without the PIL resize: the network alone
        for precision in ("int8", "float32"):
            backend = CNNBackend(path, precision=precision, device="cpu")
            backend.load()
            x = torch.randn(1, 3, 48, 48)
            with torch.inference_mode():
                for _ in range(50):
                    backend.checkpoint.model(x)
                times = []
                for _ in range(args.repeats):
                    start = time.perf_counter()
                    backend.checkpoint.model(x)
                    times.append((time.perf_counter() - start) * 1000)
            results[f"{precision}_forward_only_batch1"] = {
                "p50_ms": round(statistics.median(times), 4)
            }
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
