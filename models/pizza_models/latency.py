"""In-process latency of one model call (batch 1), measured, reported as percentiles."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np


def measure(call: Callable[[], Any], runs: int = 200, warmup: int = 20) -> dict[str, float]:
    """Wall-clock milliseconds of `call()`: p50, p90, p99 and mean over `runs` after `warmup`."""
    for _ in range(warmup):
        call()
    samples = np.empty(runs)
    for i in range(runs):
        start = time.perf_counter()
        call()
        samples[i] = (time.perf_counter() - start) * 1000
    return {
        "p50_ms": float(np.percentile(samples, 50)),
        "p90_ms": float(np.percentile(samples, 90)),
        "p99_ms": float(np.percentile(samples, 99)),
        "mean_ms": float(samples.mean()),
        "runs": runs,
    }
