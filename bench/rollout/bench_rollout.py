"""The canary of a new primary revision on the real nodes, default rollout settings: how long a
healthy revision takes to be promoted and handed over, how fast a wrong one is aborted, and what
the clients saw meanwhile.

Runs against the local cluster with real nodes and the operator installed by its chart; with
`--up DIR` it starts that cluster itself (the images of .images/ imported), installs the chart,
runs the scenarios and stops the cluster again. Every scenario runs the local sample
(manifests/samples/pizza-classifier-local.yaml) from the test-only wrong-model image
(tests/e2e/testimages.py: pizza-serve-cpu plus tests/models/wrong-pizza-net; built here and
imported into the nodes) under its own name in its own restricted namespace, with no
`spec.rollout` (the defaults: Canary, 10 % for 30 s then 50 % for 30 s, gates maxFailureRate
0.05, maxP95Ratio 1.5, minAgreement 0.9, minRequests 10, agreementSample 1, every 5 s). A load
generator on this machine sends real generated images through the router's Service (only local
addresses), open loop at --rate, and records every request; a sampler reads status.rollout every
second.

    flock /tmp/pizza-e2e.lock .venv/bin/python bench/rollout/bench_rollout.py all \\
        --up /tmp/pizza-rollout-bench-cluster --out bench/rollout/results

healthy: a new revision of the same model, its pods reshaped (primary cpu request 250m ->
300m). Measured: the spec change -> the canary's first traffic, each step, Promoted, handedOver;
client errors; requests the canary answered (the routers' counters).

wrong: the wrong model as the new revision (spec.primary.model = WRONG_MODEL). Measured: the
spec change -> Aborted and its reason; requests answered by the wrong model before the abort
and their share of the primary-bound requests; client errors.

Writes, per scenario, OUT/SCENARIO.json (numbers), .records.jsonl (every request),
.samples.jsonl (status.rollout every second, and the events) and .png (requests a second by
answering model, canaryWeight and the phase over time).
"""

from __future__ import annotations

import argparse
import calendar
import json
import signal
import subprocess
import sys
import time
import traceback
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from threading import Event, Thread
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from pizza_devcluster.supervisor import start_background, stop  # noqa: E402
from pizza_load.loadgen import LoadGenerator, Record, summary  # noqa: E402
from pizza_load.timeline import Panels, Sample, draw_timeline  # noqa: E402
from pizza_operator.builders.naming import PORT  # noqa: E402
from prometheus_client.parser import text_string_to_metric_families  # noqa: E402

from tests.e2e.product import (  # noqa: E402
    Kubectl,
    generated_images,
    helm_install_operator,
    restricted_namespace,
)
from tests.e2e.rollback import PRIMARY_MODEL, Scenario, router_load, sample_manifest  # noqa: E402
from tests.e2e.testimages import (  # noqa: E402
    WRONG_MODEL,
    WRONG_MODEL_IMAGE,
    WRONG_MODEL_NAME,
    serve_cpu_tar,
    wrong_model_image,
)
from tests.support.waiting import eventually  # noqa: E402

PHASES = ("none", "Progressing", "Paused", "Promoted", "Aborted")
"""Panel (c), top to bottom: "none" is no status.rollout yet."""
PANELS = Panels(
    fraction_title="canaryWeight (status.rollout)",
    fraction_legend="canaryWeight",
    state_title="rollout phase",
    levels=PHASES,
    colors=(
        ("none", (110, 110, 110)),
        ("Progressing", (31, 119, 180)),
        ("Paused", (255, 127, 14)),
        ("Promoted", (44, 160, 44)),
        ("Aborted", (214, 39, 40)),
    ),
)
LENIENT: dict[str, float] = {"maxP95Ratio": 3}
"""healthy-p95x3's spec.rollout.gates: the lead's e2e's (tests/e2e/test_canary.py) latency gate
for two pods on a shared 2-core machine; every other setting is the default."""
Gates = dict[str, float]
DONE_WITHIN_S = 600.0
"""How long a scenario waits for its verdict (readyWithin 5 m plus two 30 s steps, and more)."""


def say(what: str) -> None:
    print(f"{time.strftime('%H:%M:%S', time.gmtime())} {what}", file=sys.stderr, flush=True)


# --- the cluster ---------------------------------------------------------------------------------


def cluster_up(data_dir: Path) -> Kubectl:
    """A real-node cluster in `data_dir` with .images/ imported, and the operator's chart."""
    seconds = start_background(data_dir, 900.0, real_nodes=True, images_dir=ROOT / ".images")
    say(f"cluster up in {seconds:.0f} s")
    kubectl = Kubectl(data_dir.resolve() / "kubeconfig")
    restricted_namespace(kubectl, "pizza-system")
    helm_install_operator(kubectl, "pizza-system")
    return kubectl


def import_wrong_model_image(work: Path) -> str:
    """The wrong-model image (built into `work` unless there already), imported into the real
    nodes; its reference for spec.image."""
    if not (work / "images.txt").is_file():
        base = serve_cpu_tar(ROOT / ".images")
        if isinstance(base, str):
            raise SystemExit(base)
        work.mkdir(parents=True, exist_ok=True)
        wrong_model_image(work, base)
    subprocess.run(
        [sys.executable, "-m", "pizza_devcluster", "import-images", "--images", str(work)],
        check=True,
        timeout=900,
    )
    return WRONG_MODEL_IMAGE


# --- what is observed ----------------------------------------------------------------------------


@dataclass
class RolloutSampler:
    """status.rollout (and the revision) of the resource every `every` seconds, with events."""

    scenario: Scenario
    every: float = 1.0
    samples: list[dict[str, Any]] = field(default_factory=list)
    events: list[tuple[str, float]] = field(default_factory=list)
    _stop: Event = field(default_factory=Event)
    _thread: Thread | None = None

    def start(self) -> RolloutSampler:
        self._thread = Thread(target=self._run, daemon=True)
        self._thread.start()
        return self

    def mark(self, what: str) -> float:
        now = time.time()
        self.events.append((what, now))
        return now

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                status = self.scenario.status()
            except AssertionError:
                status = {}
            rollout = dict(status.get("rollout") or {})
            self.samples.append(
                {
                    "t": time.time(),
                    "mode": rollout.get("phase") or "none",
                    "failure_rate": (rollout.get("canaryWeight") or 0) / 100,
                    "currentRevision": status.get("currentRevision"),
                    "rollout": rollout,
                }
            )
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def first(self, test: Callable[[dict[str, Any]], bool], after: float) -> float | None:
        return next((s["t"] for s in self.samples if s["t"] >= after and test(s)), None)

    def write(self, path: Path) -> None:
        lines = [json.dumps(s) for s in self.samples]
        lines += [json.dumps({"t": t, "event": label}) for label, t in self.events]
        path.write_text("".join(line + "\n" for line in lines))

    def draw(self, records: list[Record], path: Path, title: str) -> None:
        samples = [Sample(s["t"], s["failure_rate"], s["mode"]) for s in self.samples]
        draw_timeline(records, samples, path, title, self.events, panels=PANELS)


def router_counters(sc: Scenario) -> dict[str, float]:
    """The canary's outcomes and the agreement results, summed over every router pod:
    `canary/ok`, `canary/error`, ..., `agreement/agree`, `agreement/disagree`, ..."""
    totals: dict[str, float] = {}
    for pod in sc.running_pods("router"):
        url = f"http://{pod['status']['podIP']}:{PORT}/metrics"
        try:
            with urllib.request.urlopen(url, timeout=5) as response:
                text = response.read().decode()
        except OSError as error:
            say(f"router {pod['metadata']['name']} not scraped: {error}")
            totals["scrape/failed"] = totals.get("scrape/failed", 0.0) + 1
            continue
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                if s.name == "pizza_router_upstream_requests_total":
                    key = f"{s.labels['upstream']}/{s.labels['outcome']}"
                elif s.name == "pizza_router_canary_agreement_total":
                    key = f"agreement/{s.labels['result']}"
                else:
                    continue
                totals[key] = totals.get(key, 0.0) + s.value
    return totals


def since(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, int]:
    """The counters of `prefix` (e.g. "canary/") that grew from `before` to `after`."""
    return {
        key.removeprefix(prefix): int(value - before.get(key, 0.0))
        for key, value in sorted(after.items())
        if key.startswith(prefix) and value - before.get(key, 0.0) > 0
    }


ROUTER_SETTLE_S = 75.0
"""How long a router container must have run, ready, before the change: past its liveness
window (3 x 10 s, no startupProbe) plus the 30 s grace of a kill, so that a router the kubelet
kills for a slow start (seen on this machine: 35 s to listen) does not fall into the
measurement."""


def routers_settled(sc: Scenario) -> bool:
    """Every router container ready and running for ROUTER_SETTLE_S."""
    pods = sc.pods("router")
    now = time.time()
    for pod in pods:
        for status in (pod.get("status") or {}).get("containerStatuses") or []:
            started = ((status.get("state") or {}).get("running") or {}).get("startedAt")
            if not status.get("ready") or not started:
                return False
            since = calendar.timegm(time.strptime(started, "%Y-%m-%dT%H:%M:%SZ"))
            if now - since < ROUTER_SETTLE_S:
                return False
    return bool(pods)


def pod_identities(sc: Scenario) -> dict[str, list[str]]:
    """Every pod of the resource by component: "NAME uid=.. restarts=N" (a replaced or restarted
    router shows here)."""
    pods = sc.kubectl.json(
        "-n", sc.namespace, "get", "pods", "-l", f"app.kubernetes.io/instance={sc.name}"
    )["items"]
    seen: dict[str, list[str]] = {}
    for pod in pods:
        component = pod["metadata"]["labels"].get("app.kubernetes.io/component", "?")
        restarts = sum(
            s.get("restartCount", 0) for s in pod.get("status", {}).get("containerStatuses") or []
        )
        gone = " deleting" if pod["metadata"].get("deletionTimestamp") else ""
        seen.setdefault(component, []).append(
            f"{pod['metadata']['name']} uid={pod['metadata']['uid'][:8]} restarts={restarts}{gone}"
        )
    return seen


def canary_replicas(sc: Scenario) -> int | None:
    """spec.replicas of NAME-primary-canary; None when there is no such Deployment."""
    found = sc.kubectl.run(
        "-n", sc.namespace, "get", "deploy", f"{sc.name}-primary-canary", "--ignore-not-found",
        "-o", "jsonpath={.spec.replicas}", check=False,
    ).strip()  # fmt: skip
    return int(found) if found else None


def warnings(sc: Scenario) -> list[str]:
    """The namespace's Warning Events: "TIME KIND/NAME REASON xCOUNT: MESSAGE"."""
    items = sc.kubectl.json(
        "-n", sc.namespace, "get", "events", "--field-selector", "type=Warning"
    )["items"]
    return [
        f"{e.get('lastTimestamp') or e.get('eventTime')} "
        f"{e['involvedObject']['kind']}/{e['involvedObject']['name']} {e['reason']} "
        f"x{e.get('count') or 1}: {str(e.get('message'))[:200]}"
        for e in items
    ][:40]


def rollout_events(sc: Scenario) -> list[dict[str, Any]]:
    return sorted(
        (
            {
                "reason": e["reason"],
                "type": e["type"],
                "time": e.get("lastTimestamp") or e.get("eventTime"),
                "message": e.get("message"),
            }
            for e in sc.events()
            if str(e.get("reason", "")).startswith("Rollout")
        ),
        key=lambda e: str(e["time"]),
    )


# --- the scenarios -------------------------------------------------------------------------------


@dataclass
class Run:
    """One scenario's resource, load and sampler, started with a warm primary."""

    sc: Scenario
    gen: LoadGenerator
    sampler: RolloutSampler
    out: Path
    stable: str
    pods_before: dict[str, list[str]] = field(default_factory=dict)

    @classmethod
    def start(
        cls, kubectl: Kubectl, name: str, image: str, rate: float, out: Path, *, gates: Gates
    ) -> Run:
        """`name`'s resource from `image`; no spec.rollout unless `gates` (spec.rollout.gates)."""
        sc = Scenario(kubectl, f"bench-rollout-{name}", f"rollout-{name}")
        sc.delete()
        eventually(
            lambda: not kubectl.run("get", "ns", sc.namespace, "--ignore-not-found",
                                    check=False).strip(),
            180, "old namespace gone", every=1.0,
        )  # fmt: skip
        records = out.with_suffix(".records.jsonl")
        records.unlink(missing_ok=True)
        rollout = {"rollout": {"gates": dict(gates)}} if gates else {}
        sc.apply(sample_manifest(sc.name, image=image, **rollout))
        sc.wait_ready()
        say(f"{sc.name} ready")
        eventually(lambda: routers_settled(sc), 300, "routers settled", every=2.0)
        say(f"{sc.name} routers settled")
        images = [p.read_bytes() for p in generated_images(seed=6161)]
        sampler = RolloutSampler(sc).start()
        gen = router_load(sc, images, records, rate).start()
        sampler.mark("load on")
        eventually(
            lambda: any(r.model_used == PRIMARY_MODEL for r in gen.records),
            60, "the primary answering", every=0.5,
        )  # fmt: skip
        time.sleep(20)  # warm: both routers and the primary in their stride
        run = cls(sc, gen, sampler, out, str(sc.status()["currentRevision"]))
        run.pods_before = pod_identities(sc)
        return run

    def rollout(self) -> dict[str, Any]:
        return dict(self.sc.status().get("rollout") or {})

    def change(self, spec: dict[str, Any], label: str) -> float:
        """Patches the spec; the time of the patch, once status.rollout is this rollout's."""
        began = self.sampler.mark(label)
        self.sc.patch_spec(spec)
        say(f"{self.sc.name}: {label}")
        eventually(
            lambda: self.rollout().get("stableRevision") == self.stable
            and self.rollout().get("revision") not in (None, self.stable),
            60, "a rollout", every=0.5,
        )  # fmt: skip
        return began

    def wait_phase(self, phases: tuple[str, ...]) -> tuple[float, dict[str, Any]]:
        def verdict() -> dict[str, Any] | None:
            rollout = self.rollout()
            return rollout if rollout.get("phase") in phases else None

        rollout = eventually(verdict, DONE_WITHIN_S, f"phase in {phases}", every=1.0)
        return time.time(), rollout

    def first_traffic(self, began: float) -> float | None:
        return self.sampler.first(lambda s: (s["rollout"].get("canaryWeight") or 0) > 0, began)

    def steps(self, began: float) -> list[tuple[int, int, float]]:
        """(step, weight, seconds after `began`) at each change of the step or the weight."""
        seen: list[tuple[int, int, float]] = []
        for s in self.sampler.samples:
            r = s["rollout"]
            if s["t"] < began or r.get("step") is None:
                continue
            key = (int(r["step"]), int(r.get("canaryWeight") or 0))
            if not seen or seen[-1][:2] != key:
                seen.append((*key, round(s["t"] - began, 1)))
        return seen

    def finish(self, result: dict[str, Any], title: str) -> list[Record]:
        records = self.gen.stop()
        self.sampler.stop()
        result["pods_before_after"] = {"before": self.pods_before, "after": pod_identities(self.sc)}
        result["canary_deployment_replicas"] = canary_replicas(self.sc)
        result["namespace_warnings"] = warnings(self.sc)
        result["spec_rollout"] = self.sc.get()["spec"].get("rollout")
        result["status_rollout"] = self.rollout()
        result["rollout_events"] = rollout_events(self.sc)
        result["timeline_events_s"] = [
            (label, round(t - self.sampler.events[0][1], 1)) for label, t in self.sampler.events
        ]
        self.sampler.write(self.out.with_suffix(".samples.jsonl"))
        self.sampler.draw(records, self.out.with_suffix(".png"), title)
        self.out.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
        print(json.dumps(result, indent=2))
        self.sc.delete()
        return records


def healthy(kubectl: Kubectl, image: str, rate: float, out: Path, gates: Gates) -> None:
    run = Run.start(kubectl, out.name, image, rate, out, gates=gates)
    before = router_counters(run.sc)
    began = run.change({"primary": {"resources": {"requests": {"cpu": "300m"}}}}, "cpu 300m")
    ended, done = run.wait_phase(("Promoted", "Aborted"))
    say(f"{done['phase']} after {ended - began:.1f} s: {done.get('reason')}")
    at_verdict = router_counters(run.sc)
    run.sampler.mark(str(done["phase"]))
    handed: float | None = None
    if done["phase"] == "Promoted":
        eventually(lambda: run.rollout().get("handedOver"), DONE_WITHIN_S, "handed over",
                   every=1.0)  # fmt: skip
        handed = run.sampler.mark("handed over")
    time.sleep(10)  # requests in flight at the hand-over end; the new primary alone
    after = router_counters(run.sc)
    first = run.first_traffic(began)
    whole = summary(run.gen.records, began, time.time() - 2)
    result = {
        "scenario": out.name,
        "gates_set": gates,
        "change": "spec.primary.resources.requests.cpu 250m -> 300m",
        "rate_rps": rate,
        "phase": done["phase"],
        "reason": done.get("reason"),
        "change_to_s": {
            "first_canary_traffic": round(first - began, 1) if first else None,
            done["phase"].lower(): round(ended - began, 1),
            "handed_over": round(handed - began, 1) if handed else None,
        },
        "steps": run.steps(began),
        "requests_from_change": whole.to_dict(),
        "client_errors": whole.unanswered,
        "canary_outcomes_until_verdict": since(before, at_verdict, "canary/"),
        "canary_outcomes_whole": since(before, after, "canary/"),
        "agreement_until_verdict": since(before, at_verdict, "agreement/"),
        "routers_primary_outcomes_whole": since(before, after, "primary/"),
    }
    settings = f"gates {json.dumps(gates)}" if gates else "default rollout"
    run.finish(result, f"rollout bench: healthy revision (cpu 250m -> 300m), {settings}")


def wrong(kubectl: Kubectl, image: str, rate: float, out: Path, gates: Gates) -> None:
    run = Run.start(kubectl, out.name, image, rate, out, gates=gates)
    before = router_counters(run.sc)
    began = run.change({"primary": {"model": dict(WRONG_MODEL)}}, "wrong model")
    ended, done = run.wait_phase(("Aborted", "Promoted"))
    say(f"{done['phase']} after {ended - began:.1f} s: {done.get('reason')}")
    at_verdict = router_counters(run.sc)
    run.sampler.mark(str(done["phase"]))
    try:
        eventually(lambda: not run.sc.pods("canary"), 45, "the canary's pods gone", every=1.0)
        gone: float | None = run.sampler.mark("canary pods gone")
    except AssertionError as error:
        say(str(error))
        gone = None
    time.sleep(15)  # the stable primary alone again
    after = router_counters(run.sc)
    first = run.first_traffic(began)
    records = run.gen.records
    meant = [r for r in records if began <= r.t < ended and r.answered]
    by_wrong = [r for r in meant if r.model_used == WRONG_MODEL_NAME]
    late = [r for r in records if r.t >= ended and r.model_used == WRONG_MODEL_NAME]
    whole = summary(records, began, time.time() - 2)
    result = {
        "scenario": out.name,
        "gates_set": gates,
        "change": f"spec.primary.model -> {WRONG_MODEL_NAME} (test-only, answers wrongly)",
        "rate_rps": rate,
        "phase": done["phase"],
        "reason": done.get("reason"),
        "signals_at_verdict": done.get("signals"),
        "change_to_s": {
            "first_canary_traffic": round(first - began, 1) if first else None,
            done["phase"].lower(): round(ended - began, 1),
            "canary_pods_gone": round(gone - began, 1) if gone else None,
        },
        "aborted_after_first_traffic_s": round(ended - first, 1) if first else None,
        "steps": run.steps(began),
        "answered_change_to_verdict": len(meant),
        "answered_by_wrong_model_before_verdict": len(by_wrong),
        "wrong_share_of_primary_bound": round(len(by_wrong) / len(meant), 3) if meant else None,
        "answered_by_wrong_model_sent_after_verdict": len(late),
        "requests_from_change": whole.to_dict(),
        "client_errors": whole.unanswered,
        "canary_outcomes_until_verdict": since(before, at_verdict, "canary/"),
        "canary_outcomes_whole": since(before, after, "canary/"),
        "agreement_until_verdict": since(before, at_verdict, "agreement/"),
    }
    run.finish(result, "rollout bench: wrong model as the new revision, default rollout")


SCENARIOS: dict[str, tuple[Callable[[Kubectl, str, float, Path, Gates], None], Gates]] = {
    "healthy": (healthy, {}),
    "wrong": (wrong, {}),
    "healthy-p95x3": (healthy, LENIENT),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n")[0])
    parser.add_argument("scenarios", nargs="+", choices=[*SCENARIOS, "all"])
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "rollout" / "results")
    parser.add_argument("--kubeconfig", type=Path, default=ROOT / ".cluster" / "kubeconfig")
    parser.add_argument(
        "--up", type=Path, default=None, help="start a real-node cluster here, stop it after"
    )
    parser.add_argument("--image-work", type=Path, default=Path("/tmp/pizza-rollout-bench-image"))
    parser.add_argument("--rate", type=float, default=8.0)
    args = parser.parse_args()
    # a timeout's SIGTERM still stops the cluster (finally)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    args.out.mkdir(parents=True, exist_ok=True)
    names = [n for name in args.scenarios for n in (SCENARIOS if name == "all" else [name])]
    try:
        kubectl = cluster_up(args.up) if args.up else Kubectl(args.kubeconfig)
        image = import_wrong_model_image(args.image_work)
        for name in names:
            say(f"scenario {name}")
            try:
                scenario, gates = SCENARIOS[name]
                scenario(kubectl, image, args.rate, args.out / name, gates)
            except Exception:  # the next scenario still runs; its records are on disk
                traceback.print_exc()
    finally:
        if args.up:
            stop(args.up)


if __name__ == "__main__":
    main()
