"""How often the default latency gate (maxP95Ratio 1.5) aborts a canary that is exactly as fast
as the stable primary: a resampling of measured latencies, not a run.

Both the canary's and the stable primary's latencies are drawn from the same measured sample
(the answered requests of a records.jsonl sent before its change event: one distribution for
both, so every abort is a false one). Each look of the default plan (10 % for 30 s, then 50 % for
30 s, a look every 5 s from the step's first traffic, at --rate requests a second) puts the
step's draws so far into the routers' histogram buckets (pizza_inference.metrics.BUCKETS), takes
both p95s as the operator does (Prometheus' histogram_quantile) and applies the gate once the
canary has minRequests (10) requests. The first failed look aborts, as the operator's does.

    .venv/bin/python bench/rollout/gate_odds.py bench/rollout/results/run1/healthy.records.jsonl
"""

from __future__ import annotations

import argparse
import bisect
import json
import math
import random
import sys
from pathlib import Path

from pizza_inference.metrics import BUCKETS
from pizza_load.loadgen import read_records
from pizza_operator.analysis.window import histogram_quantile

STEPS = ((0.10, 30.0), (0.50, 30.0))
"""The default plan: (weight, pause seconds)."""
EVERY_S = 5.0
MIN_REQUESTS = 10


def p95(counts: list[int]) -> float | None:
    """histogram_quantile(0.95) of per-bucket counts (BUCKETS, then +Inf)."""
    cumulative: dict[float, float] = {}
    total = 0
    for bound, count in zip([*BUCKETS, math.inf], counts, strict=True):
        total += count
        cumulative[bound] = total
    return histogram_quantile(0.95, cumulative)


def bucket(latency: float) -> int:
    return bisect.bisect_left(BUCKETS, latency)


def aborted(latencies: list[float], ratio: float, rate: float, rng: random.Random) -> int | None:
    """The step (0, 1) at which one simulated rollout is aborted; None when promoted."""
    for index, (weight, pause) in enumerate(STEPS):
        canary = [0] * (len(BUCKETS) + 1)
        stable = [0] * (len(BUCKETS) + 1)
        seen = 0.0
        for look in range(1, int(pause / EVERY_S) + 1):
            while seen < look * EVERY_S * rate:  # the requests sent until this look
                target = canary if rng.random() < weight else stable
                target[bucket(rng.choice(latencies))] += 1
                seen += 1
            if sum(canary) < MIN_REQUESTS:
                continue
            c, s = p95(canary), p95(stable)
            if c is not None and s is not None and c > s * ratio:
                return index
    return None


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("records", type=Path)
    parser.add_argument("--ratio", type=float, default=1.5)
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--trials", type=int, default=4000)
    parser.add_argument(
        "--before", type=float, default=None, help="epoch seconds (default: the change event)"
    )
    args = parser.parse_args()
    before = args.before
    if before is None:
        samples = args.records.with_name(args.records.name.replace(".records.", ".samples."))
        events = [json.loads(line) for line in samples.read_text().splitlines()]
        before = [e["t"] for e in events if "event" in e][1]  # the change, after "load on"
    records = [r for r in read_records(args.records) if r.t < before and r.answered]
    latencies = [r.latency_s for r in records if r.latency_s is not None]
    rng = random.Random(6161)
    results = [aborted(latencies, args.ratio, args.rate, rng) for _ in range(args.trials)]
    first = sum(1 for r in results if r == 0) / args.trials
    second = sum(1 for r in results if r == 1) / args.trials
    ordered = sorted(latencies)
    out = {
        "measured_requests": len(latencies),
        "measured_p50_s": round(ordered[len(ordered) // 2], 4),
        "measured_p95_s": round(ordered[int(0.95 * len(ordered))], 4),
        "ratio": args.ratio,
        "trials": args.trials,
        "aborted_in_step_1": round(first, 3),
        "aborted_in_step_2": round(second, 3),
        "promoted": round(1 - first - second, 3),
    }
    json.dump(out, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
