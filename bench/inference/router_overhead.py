"""The router's added latency at concurrency 16: straight to a model server vs through a router.

One CNN INT8 model server process (dynamic batching, as in http_load.py) and two router processes
in front of it on loopback: one forwards the client's multipart body as it came (`raw`, what the
router does now), the other encodes a new multipart form for each request (`reencode`, what it
did before: `RouterPlane(config, forward_raw=False)`, selectable only from here).

The run is a series of rounds. In a round, 16 concurrent workers each alternate one request
straight to the model server and one through one of the routers (which one goes first is
alternated by worker), each worker on its own keep-alive connections, with prebuilt request bytes
(common.raw_sender). So the direct and routed requests of a round share the same machine load, and
the added latency is the routed percentile minus the direct percentile of the same round. Rounds
cycle through (multipart | OIP v2 JSON) x (reencode | raw), several times, so that slow drifts of
a shared machine fall on every variant; the rounds of a variant are pooled for its percentiles.
The JSON requests reach the model server through the router as a new form either way (the router
gets decoded bytes there): they are the control.

Also reported per round: the router process's CPU per request (/proc) and its established
connections to the model server after warm-up and after the measured part, with how many were
opened and closed in between (reused connections: the same sockets, the pool at most growing).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import subprocess
import tempfile
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from common import (  # type: ignore[import-not-found]
    PIDS,
    REPO,
    cnn_checkpoint,
    cpu_seconds,
    json_request,
    multipart_request,
    percentile,
    pizza_like_jpeg,
    process,
    raw_sender,
    v2_body,
)
from http_load import model_server  # type: ignore[import-not-found]

ROUTER_LAUNCHER = """
import sys
import uvicorn
from pizza_inference.cli import parse_config
from pizza_inference.router.app import create_router_app
from pizza_inference.router.plane import RouterPlane
config = parse_config(sys.argv[2:])
plane = RouterPlane(config, forward_raw=sys.argv[1] != "reencode")
app = create_router_app(config, plane=plane, fast_classify=sys.argv[1] == "asgi")
uvicorn.run(app, host=config.host, port=config.port, log_level="warning", access_log=False)
"""
"""`pizza-serve router` as cli.main runs it, with the forwarding chosen by the first argument."""

VARIANTS = ("reencode", "raw", "asgi", "asgi2")
"""`asgi2`: two `asgi` router processes, half the workers on each (the chart's 2 router replicas
behind their Service; here without kube-proxy in between)."""
REPLICAS = {"asgi2": 2}
KINDS = ("multipart", "json")
SAMPLES = ("direct_ms", "router_ms", "pair_ms")


def router(variant: str, upstream: str) -> Any:
    args = [
        "-c", ROUTER_LAUNCHER, variant.rstrip("0123456789"), "router",
        "--primary", upstream, "--fallback", upstream,
        "--rate-limit-per-minute", "0", "--host", "127.0.0.1", "--port", "{port}",
    ]  # fmt: skip
    return process(args, "/v2/health/ready")


def sender(url: str, kind: str, image: bytes, model: str) -> Any:
    host, port = url.removeprefix("http://").split(":")
    if kind == "multipart":
        return raw_sender(url, multipart_request(host, int(port), "/classify", image))
    body = v2_body(image)
    return raw_sender(url, json_request(host, int(port), f"/v2/models/{model}/infer", body))


def spread(senders: list[Any]) -> Any:
    """One sender per worker task, in turn: worker i always uses senders[i % len]."""
    chosen: dict[int, Any] = {}

    async def send(arg: Any) -> bool:
        key = id(asyncio.current_task())
        if key not in chosen:
            chosen[key] = senders[len(chosen) % len(senders)]
        return bool(await chosen[key](arg))

    return send


def upstream_sockets(pid: int, port: int) -> set[int]:
    """Local ports of the process's established TCP connections to 127.0.0.1:`port` (/proc)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if link.startswith("socket:["):
            inodes.add(link[8:-1])
    ports = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        local, remote, state, inode = fields[1], fields[2], fields[3], fields[9]
        if state == "01" and inode in inodes and int(remote.split(":")[1], 16) == port:
            ports.add(int(local.split(":")[1], 16))
    return ports


async def round_(
    direct: Any, routed: Any, probe: Any, *, concurrency: int, warmup_s: float, seconds: float
) -> dict[str, Any]:
    """One round: `concurrency` workers, each alternating a direct and a routed request."""
    latencies: dict[str, list[float]] = {"direct": [], "router": []}
    pairs: list[float] = []
    measuring = False
    stop_at = 0.0

    async def timed(send: Any) -> float:
        start = time.perf_counter()
        if not await send(None):
            raise RuntimeError("a request failed")
        return time.perf_counter() - start

    async def worker(index: int) -> None:
        order = (("direct", direct), ("router", routed))
        if index % 2:
            order = order[::-1]
        while time.perf_counter() < stop_at:
            took = {name: await timed(send) for name, send in order}
            if measuring:
                for name, seconds_taken in took.items():
                    latencies[name].append(seconds_taken)
                pairs.append(took["router"] - took["direct"])

    stop_at = time.perf_counter() + warmup_s
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    before = probe()
    measuring = True
    begin = time.perf_counter()
    stop_at = begin + seconds
    await asyncio.gather(*(worker(i) for i in range(concurrency)))
    elapsed = time.perf_counter() - begin
    after = probe()
    n = len(latencies["router"])
    return {
        "seconds": round(elapsed, 3),
        "pairs": n,
        "router_cpu_ms_per_request": round((after["cpu"] - before["cpu"]) * 1000 / n, 3),
        "router_upstream_connections_after_warmup": len(before["sockets"]),
        "router_upstream_connections_after": len(after["sockets"]),
        "connections_opened_while_measuring": len(after["sockets"] - before["sockets"]),
        "connections_closed_while_measuring": len(before["sockets"] - after["sockets"]),
        "direct_ms": [x * 1000 for x in latencies["direct"]],
        "router_ms": [x * 1000 for x in latencies["router"]],
        "pair_ms": [x * 1000 for x in pairs],
    }


def summary(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    direct = [x for r in rounds for x in r["direct_ms"]]
    routed = [x for r in rounds for x in r["router_ms"]]
    pairs = [x for r in rounds for x in r["pair_ms"]]
    per_round = [
        {
            "added_p50_ms": round(
                statistics.median(r["router_ms"]) - statistics.median(r["direct_ms"]), 3
            ),
            "added_p99_ms": round(
                percentile(r["router_ms"], 99) - percentile(r["direct_ms"], 99), 3
            ),
            **{k: v for k, v in r.items() if k not in SAMPLES},
        }
        for r in rounds
    ]
    p50 = (statistics.median(direct), statistics.median(routed))
    p99 = (percentile(direct, 99), percentile(routed, 99))
    return {
        "requests_each": len(routed),
        "direct_p50_ms": round(p50[0], 3),
        "direct_p99_ms": round(p99[0], 3),
        "router_p50_ms": round(p50[1], 3),
        "router_p99_ms": round(p99[1], 3),
        "added_p50_ms": round(p50[1] - p50[0], 3),
        "added_p99_ms": round(p99[1] - p99[0], 3),
        "paired_difference_median_ms": round(statistics.median(pairs), 3),
        "router_cpu_ms_per_request": round(
            statistics.median(r["router_cpu_ms_per_request"] for r in rounds), 3
        ),
        "rounds": per_round,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--round-seconds", type=float, default=5.0)
    parser.add_argument("--warmup-seconds", type=float, default=1.0)
    parser.add_argument("--repeats", type=int, default=3, help="rounds of each kind and variant")
    parser.add_argument(
        "--variants",
        type=lambda text: tuple(text.split(",")),
        default=VARIANTS[:3],
        help=f"comma-separated, of {', '.join(VARIANTS)} (default: the first three)",
    )
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    image = pizza_like_jpeg()
    git = ["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"]
    results: dict[str, Any] = {
        "command": "PYTHONPATH=inference .venv/bin/python bench/inference/router_overhead.py "
        f"--concurrency {args.concurrency} --round-seconds {args.round_seconds} "
        f"--warmup-seconds {args.warmup_seconds} --repeats {args.repeats} "
        f"--variants {','.join(args.variants)}",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "git_head": subprocess.run(git, check=False, capture_output=True, text=True).stdout.strip(),
        "cpus": os.cpu_count(),
        "machine": platform.processor() or platform.machine(),
        "image_bytes": len(image),
        "concurrency": args.concurrency,
        "loadavg_1m_before": round(os.getloadavg()[0], 2),
    }
    rounds: dict[str, list[dict[str, Any]]] = {f"{k}_{v}": [] for k in KINDS for v in args.variants}
    with tempfile.TemporaryDirectory() as tmp, ExitStack() as stack:
        checkpoint, weights = cnn_checkpoint(Path(tmp))
        results["weights"] = weights
        model_url = stack.enter_context(model_server(checkpoint, 32, 2.0))
        model_port = int(model_url.rsplit(":", 1)[1])
        routers = {
            v: [stack.enter_context(router(v, model_url)) for _ in range(REPLICAS.get(v, 1))]
            for v in args.variants
        }
        schedule = [
            (kind, variant)
            for repeat in range(args.repeats)
            for kind in KINDS
            for variant in (args.variants if repeat % 2 == 0 else args.variants[::-1])
        ]
        for kind, variant in schedule:
            pids = [PIDS[url] for url in routers[variant]]

            def probe(pids: list[int] = pids) -> dict[str, Any]:
                return {
                    "cpu": sum(cpu_seconds(pid) for pid in pids),
                    "sockets": set().union(*(upstream_sockets(pid, model_port) for pid in pids)),
                }

            load = os.getloadavg()[0]
            result = asyncio.run(
                round_(
                    sender(model_url, kind, image, "standard-cnn"),
                    spread([sender(u, kind, image, "pizza-classifier") for u in routers[variant]]),
                    probe,
                    concurrency=args.concurrency,
                    warmup_s=args.warmup_seconds,
                    seconds=args.round_seconds,
                )
            )
            result["loadavg_1m_before"] = round(load, 2)
            rounds[f"{kind}_{variant}"].append(result)
            last = summary([result])
            print(
                f"{kind:9} {variant:8} pairs {last['requests_each']:5}  direct p50/p99 "
                f"{last['direct_p50_ms']:.2f}/{last['direct_p99_ms']:.2f}  router "
                f"{last['router_p50_ms']:.2f}/{last['router_p99_ms']:.2f}  added "
                f"{last['added_p50_ms']:.2f}/{last['added_p99_ms']:.2f} ms  router CPU "
                f"{result['router_cpu_ms_per_request']:.3f} ms/req  upstream conns "
                f"{result['router_upstream_connections_after_warmup']} -> "
                f"{result['router_upstream_connections_after']} "
                f"(+{result['connections_opened_while_measuring']} "
                f"-{result['connections_closed_while_measuring']})",
                flush=True,
            )
    results["loadavg_1m_after"] = round(os.getloadavg()[0], 2)
    results["results"] = {key: summary(value) for key, value in rounds.items()}
    text = json.dumps(results, indent=2)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
