"""Automatic rollback on the real nodes, default analysis settings: how fast, how many client
errors, and how many false rollbacks in a soak.

Needs the local cluster with real nodes, the images and the operator installed by its chart
(`make demo` leaves exactly that; or `make cluster-up images` and the chart). Each scenario runs
the local sample under its own name in its own restricted namespace, a bounded load generator on
this machine sending real images through the router's Service (only local addresses), and
samples the resource's status every second.

    .venv/bin/python bench/rollback/bench_rollback.py stable --out bench/rollback/stable
    .venv/bin/python bench/rollback/bench_rollback.py soak --minutes 20 --out bench/rollback/soak

stable: healthy load, then the primary's container frozen (SIGSTOP); measured: fault -> mode
stable in the status, -> the routing ConfigMap says stable (the router stops sending to the
primary), -> the primary Deployment at 0 replicas; client-visible errors (5xx, timeouts,
connection errors) from the fault to the end.

soak: for --minutes, load at --rate with idle periods (no traffic at all) and sporadic primary
timeouts below the threshold: the primary frozen for --blip seconds (just over the router's 2 s
primary timeout: the few requests sent in the first fraction of a second time out and are
answered by the fallback; fewer than the breaker's 5 in a row); measured: rollbacks (aim 0),
Inconclusive checks during idle periods.

Writes OUT.json (raw numbers), OUT.records.jsonl (every request), OUT.samples.jsonl and OUT.png
(the timeline: requests a second by answering model, the primary's failure rate, the mode).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pizza_load.loadgen import LoadGenerator, Record, summary  # noqa: E402

from tests.e2e.product import Kubectl, generated_images  # noqa: E402
from tests.e2e.rollback import (  # noqa: E402
    Scenario,
    Timeline,
    freeze,
    router_load,
    sample_manifest,
    thaw,
)
from tests.support.waiting import eventually  # noqa: E402


def _generator(sc: Scenario, rate: float, out: Path) -> LoadGenerator:
    images = [p.read_bytes() for p in generated_images(seed=6161)]
    # appended: one records file for every run of the scenario
    return router_load(sc, images, out.with_suffix(".records.jsonl"), rate)


def _start(kubectl: Kubectl, name: str, out: Path) -> tuple[Scenario, Timeline]:
    sc = Scenario(kubectl, f"bench-{name}", name)
    sc.delete()
    eventually(
        lambda: "NotFound" in kubectl.run("get", "ns", sc.namespace, check=False) or
        not kubectl.run("get", "ns", sc.namespace, "--ignore-not-found", check=False).strip(),
        180, "old namespace gone", every=1.0,
    )  # fmt: skip
    out.with_suffix(".records.jsonl").unlink(missing_ok=True)
    sc.apply(sample_manifest(name))
    sc.wait_ready()
    return sc, Timeline(sc).start()


def _finish(
    sc: Scenario, records: list[Record], timeline: Timeline, out: Path, result: dict[str, Any]
) -> None:
    timeline.stop()
    timeline.draw(records, out.with_suffix(".png"), title=f"rollback bench: {sc.name}")
    result["events"] = [
        (label, round(t - timeline.events[0][1], 1)) for label, t in timeline.events
    ]
    out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    sc.delete()


def stable(kubectl: Kubectl, out: Path, rate: float) -> None:
    sc, timeline = _start(kubectl, "stable", out)
    gen = _generator(sc, rate, out).start()
    timeline.mark("load on")
    eventually(
        lambda: sc.status().get("analysis", {}).get("primary", {}).get("verdict") == "Healthy",
        120,
        "a Healthy primary check",
        every=1.0,
    )
    time.sleep(30)  # a window of healthy traffic
    primary = sc.running_pods("primary")
    fault = timeline.mark("primary frozen")
    freeze(primary)
    marks: dict[str, float] = {}
    try:
        deadline = time.time() + 180
        while len(marks) < 3 and time.time() < deadline:
            if "status_stable" not in marks and sc.mode() == "stable":
                marks["status_stable"] = time.time()
            if "router_stable" not in marks and sc.routing_mode() == "stable":
                marks["router_stable"] = time.time()
            if "primary_scaled_down" not in marks and (
                sc.deployment("primary")["spec"]["replicas"] == 0
            ):
                marks["primary_scaled_down"] = time.time()
            time.sleep(0.25)
    finally:
        thaw(primary)
    timeline.mark("rolled back")
    time.sleep(30)
    records = gen.stop()
    during = summary(records, fault, time.time() - 2)
    status = sc.status()
    result = {
        "scenario": "stable",
        "rate_rps": rate,
        "analysis": sc.get()["spec"]["analysis"],
        "fault_to_s": {k: round(v - fault, 1) for k, v in marks.items()},
        "rollback_applied_s": round(max(marks.values()) - fault, 1) if len(marks) == 3 else None,
        "during_fault": during.to_dict(),
        "client_visible_errors": during.unanswered,
        "last_rollback": status.get("lastRollback"),
        "rolled_back_events": len(sc.events("RolledBack")),
    }
    _finish(sc, records, timeline, out, result)


def soak(kubectl: Kubectl, out: Path, rate: float, minutes: float, blip: float) -> None:
    sc, timeline = _start(kubectl, "soak", out)
    end = time.time() + minutes * 60
    cycle = 0
    idle_inconclusive = 0
    blips = 0
    records: list[Record] = []
    gen = _generator(sc, rate, out).start()
    timeline.mark("load on")
    while time.time() < end:
        cycle += 1
        # 3 minutes of load with a primary blip in the middle of each minute
        for _ in range(3):
            time.sleep(25)
            primary = sc.running_pods("primary")
            if primary and sc.mode() == "primary":
                freeze(primary)
                time.sleep(blip)
                thaw(primary)
                blips += 1
            time.sleep(max(0.0, 35 - blip))
            if time.time() >= end:
                break
        if time.time() >= end:
            break
        # 90 s idle: no traffic at all
        records += gen.stop()
        timeline.mark(f"idle {cycle}")
        before = sc.status().get("analysis", {}).get("inconclusive", 0)
        time.sleep(90)
        idle_inconclusive += sc.status().get("analysis", {}).get("inconclusive", 0) - before
        gen = _generator(sc, rate, out).start()
        timeline.mark(f"load {cycle + 1}")
    records += gen.stop()
    status = sc.status()
    whole = summary(records)
    result = {
        "scenario": "soak",
        "minutes": minutes,
        "rate_rps": rate,
        "blip_s": blip,
        "blips": blips,
        "analysis": sc.get()["spec"]["analysis"],
        "rollbacks": (status.get("lastRollback") or {}).get("number", 0),
        "rolled_back_events": len(sc.events("RolledBack")),
        "final_mode": status.get("mode"),
        "checks": status.get("analysis", {}).get("checks"),
        "inconclusive_checks": status.get("analysis", {}).get("inconclusive"),
        "inconclusive_during_idle": idle_inconclusive,
        "requests": whole.to_dict(),
    }
    _finish(sc, records, timeline, out, result)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("scenario", choices=["stable", "soak"])
    parser.add_argument("--kubeconfig", default=str(ROOT / ".cluster" / "kubeconfig"))
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rate", type=float, default=8.0)
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--blip", type=float, default=2.4)
    args = parser.parse_args()
    kubectl = Kubectl(Path(args.kubeconfig))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    if args.scenario == "stable":
        stable(kubectl, args.out, args.rate)
    else:
        soak(kubectl, args.out, args.rate, args.minutes, args.blip)


if __name__ == "__main__":
    main()
