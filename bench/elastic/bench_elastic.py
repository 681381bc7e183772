"""Elastic capacity on the real nodes: one bursty, day-like trace through the routers' Services
of two copies of the local sample at once, one always on (the primary's minReplicas = maxReplicas
= 1, no idleAfter) and one elastic (the primary sleeps at zero after 20 s without a request
meant for it); both fallbacks scale with their load (1 to 3 pods). Then fallback cold starts,
pod by pod.

    flock /tmp/pizza-e2e.lock .venv/bin/python bench/elastic/bench_elastic.py [--images DIR]

Starts its own cluster with the two real nodes (as the e2e tier's `real_cluster` does; only one
can exist on the machine, hence the lock) with the images of `.images/`, installs the operator
by its chart, and stops the cluster at the end; `--kubeconfig` uses a running one instead.

Both copies get the same requests at the same moments (two open-loop generators, real images,
at most 32 in flight each, 20 s per request). A watch times every pod on this machine (created,
container running, Ready, deleting, gone) and a sampler reads the Deployments and the
autoscaler's status every second. Writes, under --out: elastic.json (the numbers),
{always-on,elastic}.records.jsonl (every request), samples.jsonl, pods.json and elastic.png.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(ROOT), str(Path(__file__).resolve().parent)]

from draw import draw  # noqa: E402
from kubernetes import config  # noqa: E402
from pizza_load.loadgen import LoadGenerator, read_records  # noqa: E402
from report import PodTimes, Sample, cold_starts, summarize, wake_windows  # noqa: E402
from watch import PodWatch, Sampler  # noqa: E402

from tests.e2e.product import (  # noqa: E402
    Kubectl,
    generated_images,
    helm_install_operator,
    restricted_namespace,
)
from tests.e2e.rollback import PRIMARY_MODEL, Scenario, router_load, sample_manifest  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402

TRACE: tuple[tuple[str, float, float], ...] = (
    # (label, seconds, requests a second; 0: idle)
    ("morning", 40, 3.0),
    ("idle", 90, 0.0),
    ("burst", 60, 6.0),
    ("idle", 90, 0.0),
    ("trickle", 40, 0.3),  # a request every ~3 s: some looks see none, the primary stays up
    ("idle", 80, 0.0),
    ("burst", 40, 8.0),
    ("idle", 30, 0.0),
)
ALWAYS_ON, ELASTIC = "always-on", "elastic"
ROUTER = {"replicas": 1, "rateLimitPerMinute": 100_000}  # one host is one client here


FALLBACK: dict[str, Any] = {
    "replicas": 1,
    "autoscaling": {
        "minReplicas": 1,
        "maxReplicas": 3,
        "targetInFlight": 1,
        "scaleDownWindow": "30s",
    },
}
"""Both arms: the fallback scales with its load, 1 to 3 pods."""
PRIMARY_SCALING: dict[str, dict[str, Any]] = {
    # always on: the count pinned (minReplicas = maxReplicas), no idleAfter
    ALWAYS_ON: {"minReplicas": 1, "maxReplicas": 1, "scaleDownWindow": "30s"},
    # elastic: asleep at zero after 20 s without a request meant for it
    ELASTIC: {"minReplicas": 0, "maxReplicas": 1, "idleAfter": "20s", "scaleDownWindow": "30s"},
}


def manifests() -> dict[str, dict[str, Any]]:
    """The two arms: the local sample, differing only in the primary's autoscaling."""
    return {
        name: sample_manifest(
            name, router=ROUTER, primary={"autoscaling": scaling}, fallback=FALLBACK
        )
        for name, scaling in PRIMARY_SCALING.items()
    }


@contextlib.contextmanager
def cluster(kubeconfig: Path | None, images: Path) -> Iterator[tuple[Path, bool]]:
    """(kubeconfig, whether we started it): the given cluster, or our own with real nodes."""
    if kubeconfig is not None:
        yield kubeconfig, False
        return
    from pizza_devcluster.realnode.layout import read_owner  # noqa: PLC0415
    from pizza_devcluster.supervisor import start_background, stop  # noqa: PLC0415

    owner = read_owner()
    if owner is not None and owner.alive():
        sys.exit(f"real nodes already run from {owner.data_dir}: only one set per machine")
    data_dir = Path(tempfile.mkdtemp(prefix="pizza-bench-elastic-"))
    try:
        took = start_background(data_dir, 600.0, real_nodes=True, images_dir=images)
        print(f"cluster up in {took:.0f} s ({data_dir})", flush=True)
        yield data_dir / "kubeconfig", True
    finally:
        stop(data_dir)


def warm(scenario: Scenario, images: list[bytes]) -> None:
    """Until the primary answers (a few requests, not part of the trace)."""

    def answers() -> bool:
        gen = LoadGenerator(scenario.router_url(), rate=2, images=images, timeout_s=20)
        return any(r.model_used == PRIMARY_MODEL for r in gen.run_for(1.0))

    eventually(answers, 240, f"{scenario.name}: the primary answers", every=2.0)


def run_trace(
    scenarios: dict[str, Scenario], images: list[bytes], out: Path
) -> list[tuple[str, float, float]]:
    """The trace through both resources at once; (label, start, end) of each phase."""
    phases = []
    for label, seconds, rate in TRACE:
        start = time.time()
        print(f"{label}: {seconds:g} s at {rate:g} requests/s", flush=True)
        if rate > 0:
            gens = [
                router_load(sc, images, out / f"{name}.records.jsonl", rate).start()
                for name, sc in scenarios.items()
            ]
            time.sleep(seconds)
            for gen in gens:
                gen.stop()
        else:
            time.sleep(seconds)
        phases.append((label, start, time.time()))
    return phases


def fallback_cold_starts(sc: Scenario, rounds: int, extra: int) -> None:
    """`rounds` times: the fallback's autoscaling pinned `extra` pods above its floor (min =
    max, as a user would), all Ready, then back to its bounds, all gone. The watch times the new
    pods."""
    scaling: dict[str, Any] = FALLBACK["autoscaling"]
    low = int(scaling["minReplicas"])
    for _ in range(rounds):
        for count in (low + extra, low):
            pinned: dict[str, Any] = {"minReplicas": count, "maxReplicas": count}
            if count == low:  # back to its bounds, down soon (10 s: admission's least window)
                pinned = {"maxReplicas": scaling["maxReplicas"], "scaleDownWindow": "10s"}
            sc.patch_spec({"fallback": {"autoscaling": {**scaling, **pinned}}})

            def settled(count: int = count) -> bool:
                pods = sc.pods("fallback")
                ready = [
                    p for p in pods
                    if any(c.get("type") == "Ready" and c.get("status") == "True"
                           for c in (p.get("status") or {}).get("conditions") or [])
                ]  # fmt: skip
                return len(pods) == count and len(ready) == count

            eventually(settled, 180, f"{count} fallback pods Ready", every=0.5)
            time.sleep(3)


def wakes(
    records: list[Any], samples: list[Sample], pods: list[PodTimes], namespace: str
) -> list[dict[str, Any]]:
    """Per wake-up of the elastic primary: seconds from the first request it missed to the
    decision (a pod wanted), the pod created and Ready, the routers told (asleep false) and the
    first answer from it."""
    rows = []
    for start, end in wake_windows(records, PRIMARY_MODEL):
        after = [s for s in samples if s.t >= start]
        decided = next((s.t for s in after if (s.primary_wanted or 0) >= 1), None)
        awake = next((s.t for s in after if s.asleep is False), None)
        pod = next(
            (p for p in sorted(pods, key=lambda p: p.created)
             if p.namespace == namespace and p.component == "primary" and p.created >= start - 1),
            None,
        )  # fmt: skip

        def rel(t: float | None, start: float = start) -> float | None:
            return None if t is None else round(t - start, 2)

        rows.append(
            {
                "first_request_t": round(start, 3),
                "decided_s": rel(decided),
                "pod_created_s": rel(pod.created if pod else None),
                "pod_ready_s": rel(pod.ready if pod else None),
                "routed_to_primary_s": rel(awake),
                "first_primary_answer_s": rel(end),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--kubeconfig", type=Path, default=None, help="a running cluster")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "elastic" / "results")
    parser.add_argument(
        "--images", type=Path, default=ROOT / ".images", help="the images' tars (make images)"
    )
    parser.add_argument("--cold-rounds", type=int, default=1)
    parser.add_argument("--cold-extra", type=int, default=3)
    parser.add_argument(
        "--report-only",
        action="store_true",
        help="no run: the numbers and the PNG again from the raw files under --out",
    )
    args = parser.parse_args()
    if args.report_only:
        write_result(args.out, read_raw(args.out))
        return
    args.out.mkdir(parents=True, exist_ok=True)
    for name in (ALWAYS_ON, ELASTIC):
        (args.out / f"{name}.records.jsonl").unlink(missing_ok=True)
    began = time.time()
    with cluster(args.kubeconfig, args.images) as (kubeconfig, ours):
        kubectl = Kubectl(kubeconfig)
        if ours:
            restricted_namespace(kubectl, "pizza-system")
            helm_install_operator(kubectl, "pizza-system")
        scenarios = {name: Scenario(kubectl, NAMESPACES[name], name) for name in manifests()}
        for name, body in manifests().items():
            scenarios[name].apply(body)
        for sc in scenarios.values():
            sc.wait_ready()
        images = [p.read_bytes() for p in generated_images(seed=7171)]
        api = config.new_client_from_config(str(kubeconfig))  # type: ignore[no-untyped-call]
        pod_watch = PodWatch(api, list(scenarios)).start()
        sampler = Sampler(api, {sc.namespace: sc.name for sc in scenarios.values()}).start()
        for sc in scenarios.values():
            warm(sc, images)
        phases = run_trace(scenarios, images, args.out)
        cold_from = time.time()
        try:  # the trace's numbers are kept whatever happens here
            fallback_cold_starts(scenarios[ALWAYS_ON], args.cold_rounds, args.cold_extra)
        except Exception as exc:
            print(f"fallback cold starts failed: {exc}", flush=True)
        samples = sampler.stop()
        pods = pod_watch.stop()
        for sc in scenarios.values():
            sc.delete()
    wall_s = round(time.time() - began, 1)
    write_raw(args.out, samples, pods, phases=phases, cold_from=cold_from, wall_s=wall_s)
    write_result(args.out, read_raw(args.out))


NAMESPACES = {name: f"bench-{name}" for name in (ALWAYS_ON, ELASTIC)}


def write_raw(
    out: Path,
    samples: dict[str, list[Sample]],
    pods: list[PodTimes],
    *,
    phases: list[tuple[str, float, float]],
    cold_from: float,
    wall_s: float,
) -> None:
    """pods.json and samples.jsonl (the samples, then the phases and the run's times)."""
    (out / "pods.json").write_text(
        json.dumps([dataclasses.asdict(p) for p in pods], indent=1) + "\n"
    )
    (out / "samples.jsonl").write_text(
        "".join(
            json.dumps({"namespace": n, **dataclasses.asdict(s)}) + "\n"
            for n, rows in samples.items()
            for s in rows
        )
        + "".join(json.dumps({"phase": p, "start": a, "end": b}) + "\n" for p, a, b in phases)
        + json.dumps({"cold_from": cold_from, "wall_s": wall_s})
        + "\n"
    )


Raw = tuple[dict[str, list[Sample]], list[PodTimes], list[tuple[str, float, float]], float, float]


def read_raw(out: Path) -> Raw:
    """What write_raw wrote (a run without the last line: the cold starts from the trace's end)."""
    samples: dict[str, list[Sample]] = {ns: [] for ns in NAMESPACES.values()}
    phases: list[tuple[str, float, float]] = []
    times: dict[str, float] = {}
    for line in (out / "samples.jsonl").read_text().splitlines():
        row = json.loads(line)
        if "namespace" in row:
            samples[row.pop("namespace")].append(Sample(**row))
        elif "phase" in row:
            phases.append((row["phase"], row["start"], row["end"]))
        else:
            times = row
    pods = [PodTimes(**row) for row in json.loads((out / "pods.json").read_text())]
    return samples, pods, phases, times.get("cold_from", phases[-1][2]), times.get("wall_s", 0.0)


def write_result(out: Path, raw: Raw) -> None:
    samples, pods, phases, cold_from, wall_s = raw
    result = report(out, samples, pods, phases=phases, cold_from=cold_from)
    result["wall_s"] = wall_s
    (out / "elastic.json").write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


def report(
    out: Path,
    samples: dict[str, list[Sample]],
    pods: list[PodTimes],
    *,
    phases: list[tuple[str, float, float]],
    cold_from: float,
) -> dict[str, Any]:
    t0, t_end = phases[0][1], phases[-1][2]
    ns = NAMESPACES
    # the samples of the trace, and the one before it (each holds until the next: every second)
    during = {n: [s for s in rows if t0 - 1.0 <= s.t <= t_end] for n, rows in samples.items()}
    records = {name: read_records(out / f"{name}.records.jsonl") for name in ns}
    elastic_wakes = wake_windows(records[ELASTIC], PRIMARY_MODEL)
    result: dict[str, Any] = {
        "trace": [{"phase": label, "seconds": s, "rate_rps": r} for label, s, r in TRACE],
        "trace_s": round(t_end - t0, 1),
        "resources": {name: manifests()[name]["spec"] for name in ns},
    }
    for name in ns:
        # the wake-up windows of the elastic primary, for both: the same moments of the trace
        result[name] = summarize(
            records[name],
            during[ns[name]],
            pods,
            namespace=ns[name],
            windows=elastic_wakes,
            start=t0,
            end=t_end,
        )
    result["wakeups"] = wakes(records[ELASTIC], samples[ns[ELASTIC]], pods, ns[ELASTIC])
    mine = [p for p in pods if p.namespace == ns[ELASTIC]]
    result["primary_cold_starts"] = cold_starts(mine, "primary", t0)
    result["fallback_autoscaled_cold_starts"] = cold_starts(mine, "fallback", t0)
    result["fallback_cold_starts"] = cold_starts(
        [p for p in pods if p.namespace == ns[ALWAYS_ON]], "fallback", cold_from
    )
    draw(
        out / "elastic.png",
        "the same bursty trace: always-on vs elastic (primary sleeps after 20 s idle)",
        {name: (records[name], during[ns[name]]) for name in (ALWAYS_ON, ELASTIC)},
        primary=PRIMARY_MODEL,
        t0=t0,
        t_end=t_end,
        phases=phases,
        wakes=[start for start, _ in elastic_wakes],
    )
    return result


if __name__ == "__main__":
    main()
