"""GPU benchmark of the `vlm` backend with a Qwen2.5-VL-3B-shaped model (random weights, bf16).

Builds the model directly on CUDA from the real 3B config values (nothing is downloaded; the
tokenizer is built locally), wraps it in OUR `VLMBackend` and measures its predict path at
448x448 (256 visual tokens per image):
  - p50 latency of one image (batch 1),
  - throughput through the dynamic batcher (max batch 32) with 256 concurrent requests,
  - and, for reference, a plain forward pass of the prompts alone (what the issue's H100 reference
    figures, 58 ms at batch 1 and 43 images/s at batch 32, describe).

Imports torch, transformers, PIL, numpy and pizza_inference.backends.vlm (+ its light imports).
Run: PYTHONPATH=inference python3 bench/gpu/vlm_bench.py --out DIR   (add --tiny for a CPU check)
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
import transformers
from PIL import Image
from pizza_inference.backends.vlm import VLMBackend
from pizza_inference.batching import DynamicBatcher
from pizza_inference.testing.vlm_checkpoint import (
    QWEN25_VL_3B_TEXT,
    QWEN25_VL_3B_VISION,
    TINY_TEXT,
    TINY_VISION,
    build_config,
    build_image_processor,
    build_model,
    build_tokenizer,
)

T0 = time.perf_counter()


def log(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {message}", flush=True)


def images(n: int, size: int = 640, seed: int = 0) -> list[Image.Image]:
    rng = np.random.default_rng(seed)
    return [
        Image.fromarray(rng.integers(0, 256, (size, size, 3), dtype=np.uint8)) for _ in range(n)
    ]


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn: Any, repeats: int, device: str) -> list[float]:
    out = []
    for _ in range(repeats):
        sync(device)
        start = time.perf_counter()
        fn()
        sync(device)
        out.append(time.perf_counter() - start)
    return out


async def batched_throughput(backend: VLMBackend, requests: int, max_batch: int) -> dict[str, Any]:
    sizes: list[int] = []

    def run(batch: list[Image.Image]) -> list[np.ndarray]:
        sizes.append(len(batch))
        return list(backend.predict(batch))

    batcher: DynamicBatcher[Image.Image, np.ndarray] = DynamicBatcher(
        run, max_batch_size=max_batch, timeout_s=0.002
    )
    pool = images(8, seed=1)
    latencies: list[float] = []

    async def one(i: int) -> None:
        start = time.perf_counter()
        await batcher.submit(pool[i % len(pool)])
        latencies.append(time.perf_counter() - start)

    start = time.perf_counter()
    await asyncio.gather(*(one(i) for i in range(requests)))
    elapsed = time.perf_counter() - start
    await batcher.stop()
    return {
        "requests": requests,
        "seconds": round(elapsed, 3),
        "images_per_s": round(requests / elapsed, 2),
        "batch_sizes": sizes,
        "request_p50_ms": round(statistics.median(latencies) * 1000, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument(
        "--tiny", action="store_true", help="tiny config on CPU (a check that it runs)"
    )
    parser.add_argument("--requests", type=int, default=256)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=20)
    args = parser.parse_args()
    device = "cpu" if args.tiny else "cuda"
    if device == "cuda" and not torch.cuda.is_available():
        sys.exit("CUDA is not available (use --tiny for a CPU check)")
    dtype = torch.float32 if args.tiny else torch.bfloat16
    results: dict[str, Any] = {
        "model": "tiny Qwen2.5-VL" if args.tiny else "Qwen2.5-VL-3B-shaped (random weights)",
        "dtype": str(dtype),
        "device": torch.cuda.get_device_name()
        if device == "cuda"
        else platform.processor() or "cpu",
        "torch": torch.__version__,
        "transformers": transformers.__version__,
    }
    log(f"building tokenizer and {results['model']} on {device} ({dtype})")
    tokenizer = build_tokenizer()
    config = build_config(
        tokenizer,
        text=TINY_TEXT if args.tiny else QWEN25_VL_3B_TEXT,
        vision=TINY_VISION if args.tiny else QWEN25_VL_3B_VISION,
    )
    model = build_model(config, dtype=dtype, device=device)
    results["parameters"] = sum(p.numel() for p in model.parameters())
    backend = VLMBackend.from_components(
        model,
        tokenizer,
        build_image_processor(max_pixels=1024 * 1024),
        precision=str(dtype).split(".")[-1],
    )
    results["image_size"] = backend.image_size
    log(
        f"model ready: {results['parameters'] / 1e9:.2f} B parameters,"
        f" images at {backend.image_size} px"
    )

    one = images(1)
    batch = images(args.max_batch)
    for _ in range(3):
        backend.predict(one)
    backend.predict(batch)
    log("warm-up done")

    b1 = timed(lambda: backend.predict(one), args.repeats, device)
    results["predict_batch1_p50_ms"] = round(statistics.median(b1) * 1000, 2)
    log(f"predict batch 1: p50 {results['predict_batch1_p50_ms']} ms")
    b32 = timed(lambda: backend.predict(batch), max(3, args.repeats // 4), device)
    results["predict_batch32_images_per_s"] = round(args.max_batch / statistics.median(b32), 2)
    log(f"predict batch {args.max_batch}: {results['predict_batch32_images_per_s']} images/s")

    results["dynamic_batching"] = asyncio.run(
        batched_throughput(backend, args.requests, args.max_batch)
    )
    log(f"dynamic batching: {results['dynamic_batching']['images_per_s']} images/s")

    # reference: a plain forward pass over the prompts (no candidate scoring)
    inputs1, inputs32 = backend._inputs(one), backend._inputs(batch)

    def plain(inputs: dict[str, torch.Tensor]) -> None:
        with torch.inference_mode():
            model(**inputs, use_cache=False, logits_to_keep=1)
            model.model.rope_deltas = None

    p1 = timed(lambda: plain(inputs1), args.repeats, device)
    p32 = timed(lambda: plain(inputs32), max(3, args.repeats // 4), device)
    results["plain_forward_batch1_p50_ms"] = round(statistics.median(p1) * 1000, 2)
    results["plain_forward_batch32_images_per_s"] = round(
        args.max_batch / statistics.median(p32), 2
    )
    log(
        f"plain forward: batch 1 {results['plain_forward_batch1_p50_ms']} ms, "
        f"batch {args.max_batch} {results['plain_forward_batch32_images_per_s']} images/s"
    )
    if device == "cuda":
        results["max_memory_allocated_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 2)
    args.out.mkdir(parents=True, exist_ok=True)
    path = args.out / ("vlm_bench_tiny.json" if args.tiny else "vlm_bench.json")
    path.write_text(json.dumps(results, indent=2) + "\n")
    log(f"wrote {path}")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
