"""The operator's cost curve: 10, 100, 500 resources on kwok nodes with the analysis running.

    .venv/bin/python bench/operator/cost_curve.py --counts 10,100,500 --window 60 \
        --out bench/operator/results/cost-RUN

It starts its own local control plane (`LocalCluster`: etcd, kube-apiserver, controller-manager,
scheduler, kwok) with enough fake nodes for 500 resources of the sample's shape (5 pods each), and
a real `pizza-operator` process (Lease election, default settings: resync every 60 s, the
analysis every 10 s from the sample's `spec.analysis.interval`, no Prometheus address, so each
tick scrapes the router pods). For each count it adds resources up to that count, waits until
every one is Ready, lets the creation settle, then measures a steady window:

- the operator's CPU seconds (utime + stime of /proc/PID/stat) and RSS (sampled every second),
- each control-plane process' CPU seconds (LocalCluster.pids) and the machine's busy CPU,
- from the operator's /metrics: analysis checks (2 per tick), the tick lag histogram
  (`pizza_operator_analysis_tick_lag_seconds`) and the reconcile duration histogram,
- from the API server's /metrics: requests by verb and resource.

kwok pods run no server: every scrape of a router pod gets no answer, so every check is
Inconclusive. That is the cost of a tick without the parsing of the answers (measured apart by
`--parse-cost`: `parse_router_metrics` of a router-sized page).

Writes OUT.json (summary per count), OUT.csv (the table), OUT.samples.jsonl (one line a second).
`--profile-at COUNT` runs the operator under yappi (CPU clock, every thread) during that count's
window and writes OUT.profile-COUNT.txt (yappi must be importable: PYTHONPATH). `--spy-at COUNT
--py-spy PATH` samples it with py-spy instead (no instrumentation: the timing stays as it is).
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import yaml
from bench_operator import create_namespace, kubectl, manifest, wait_ready
from kubernetes import client, config
from pizza_devcluster.cluster import LocalCluster
from pizza_devcluster.nodes import DEFAULT_NODES, GPU_NODE, NodeSpec
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.net import free_port, http_get  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402

HERE = Path(__file__).resolve().parent
NAMESPACE = "cost"
CLK_TCK = os.sysconf("SC_CLK_TCK")
# 500 resources of the sample's shape: 500 primary pods (1 GPU each), 2000 fallback and router pods
COST_NODES = (
    *DEFAULT_NODES,
    *(NodeSpec(name=f"pizza-cost-cpu-{i}", cpu="512", memory="2Ti", pods="600") for i in range(4)),
    *(
        NodeSpec(
            name=f"pizza-cost-gpu-{i}",
            cpu="512",
            memory="2Ti",
            pods="400",
            extended={"nvidia.com/gpu": "400"},
            labels=dict(GPU_NODE.labels),
            taints=GPU_NODE.taints,
        )
        for i in range(2)
    ),
)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def out(args: argparse.Namespace, suffix: str) -> Path:
    return Path(f"{args.out}{suffix}")


# -- reading processes and metrics ------------------------------------------------------------


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def runq_wait_seconds(pid: int) -> float:
    """Seconds the process' threads waited for a CPU while runnable (/proc/PID/task/*/schedstat:
    the second field). A process short of ticks and of CPU at once waited here, not on a lock."""
    waited = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            waited += int((task / "schedstat").read_text().split()[1])
        except (OSError, IndexError, ValueError):  # a thread that ended meanwhile
            continue
    return waited / 1e9


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def machine_busy_seconds() -> float:
    """Busy CPU seconds of the whole machine (all cores) since boot: /proc/stat minus idle."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    return (sum(fields[:8]) - fields[3] - fields[4]) / CLK_TCK


def loadavg() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def parse_samples(text: str) -> Samples:
    out: Samples = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(samples: Samples, name: str, **labels: str) -> float:
    return sum(
        v
        for (n, ls), v in samples.items()
        if n == name and all((k, want) in ls for k, want in labels.items())
    )


def delta(after: Samples, before: Samples, name: str, **labels: str) -> float:
    return total(after, name, **labels) - total(before, name, **labels)


def buckets(after: Samples, before: Samples, name: str, **labels: str) -> list[tuple[float, float]]:
    """(upper bound, cumulative count in the window) of a histogram, by bound."""
    bounds: dict[float, float] = {}
    for (n, ls), v in after.items():
        d = dict(ls)
        if n != f"{name}_bucket" or any(d.get(k) != want for k, want in labels.items()):
            continue
        le = float(d["le"])
        bounds[le] = bounds.get(le, 0.0) + v - before.get((n, ls), 0.0)
    return sorted(bounds.items())


def quantile(q: float, cumulative: list[tuple[float, float]]) -> float | None:
    """Prometheus' histogram_quantile: linear inside the bucket; None without observations."""
    if not cumulative or cumulative[-1][1] <= 0:
        return None
    rank = q * cumulative[-1][1]
    lower, below = 0.0, 0.0
    for upper, count in cumulative:
        if count >= rank:
            if upper == float("inf"):
                return lower  # beyond the last finite bound: report that bound
            inside = count - below
            return lower + (upper - lower) * ((rank - below) / inside if inside else 1.0)
        lower, below = upper, count
    return lower


def over(cumulative: list[tuple[float, float]], bound: float) -> float:
    """Observations above `bound` (a bucket bound of the histogram)."""
    at = dict(cumulative)
    return (cumulative[-1][1] - at[bound]) if cumulative else 0.0


def histogram_summary(
    after: Samples, before: Samples, name: str, **labels: str
) -> dict[str, float | None]:
    b = buckets(after, before, name, **labels)
    count = b[-1][1] if b else 0.0
    p50, p99 = quantile(0.5, b), quantile(0.99, b)
    return {
        "count": count,
        "mean_s": round(delta(after, before, f"{name}_sum", **labels) / count, 4)
        if count
        else None,
        "p50_s": round(p50, 4) if p50 is not None else None,
        "p99_s": round(p99, 4) if p99 is not None else None,
    }


# -- the run ----------------------------------------------------------------------------------


class Bench:
    def __init__(self, cluster: LocalCluster, args: argparse.Namespace, log: Path) -> None:
        self.cluster, self.args = cluster, args
        self.metrics_port, self.liveness_port = free_port(), free_port()
        self.log_path = log
        self.samples_out = out(args, ".samples.jsonl").open("w")
        self.phase, self.count = "start", 0
        self.operator: subprocess.Popen[bytes] | None = None
        self._stop = threading.Event()

    def start_operator(self) -> None:
        argv = [
            sys.executable,
            *(
                [str(HERE / "profiled_operator.py")]
                if self.args.profile_at
                else ["-m", "pizza_operator"]
            ),
            "--lease",
            f"cost-{uuid.uuid4().hex[:6]}",
            "--lease-namespace",
            "default",
            "--metrics-port",
            str(self.metrics_port),
            "--liveness-port",
            str(self.liveness_port),
        ]
        env = {
            **os.environ,
            "PIZZA_PROFILE_OUT": str(out(self.args, f".profile-{self.args.profile_at}.txt")),
        }
        self._log = self.log_path.open("wb")
        self.operator = subprocess.Popen(argv, stdout=self._log, stderr=subprocess.STDOUT, env=env)
        eventually(
            lambda: total(self.op_metrics(), "pizza_operator_leading") == 1,
            90,
            "the operator leads",
            ignoring=OSError,
        )
        threading.Thread(target=self._sample, daemon=True).start()

    def stop(self) -> None:
        self._stop.set()
        if self.operator is not None and self.operator.poll() is None:
            self.operator.send_signal(signal.SIGTERM)
            try:
                self.operator.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.operator.kill()
                self.operator.wait(timeout=10)
        self.samples_out.close()

    @property
    def pid(self) -> int:
        assert self.operator is not None
        if self.operator.poll() is not None:
            raise RuntimeError(f"the operator exited {self.operator.returncode}: {self.log_path}")
        return self.operator.pid

    def op_metrics(self) -> Samples:
        return parse_samples(
            http_get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=10)[1]
        )

    def apiserver_metrics(self) -> Samples:
        status, text = self.cluster.admin().request("GET", "/metrics", timeout=30)
        if status != 200:
            raise RuntimeError(f"apiserver /metrics: {status}")
        keep = "\n".join(ln for ln in text.splitlines() if "apiserver_request_total" in ln)
        return parse_samples(keep + "\n")

    def _sample(self) -> None:
        while not self._stop.wait(1.0):
            try:
                line = {
                    "t": round(time.time(), 2),
                    "phase": self.phase,
                    "count": self.count,
                    "operator_cpu_s": cpu_seconds(self.pid),
                    "operator_rss_mb": round(rss_mb(self.pid), 1),
                    "control_plane_cpu_s": {
                        n: cpu_seconds(p) for n, p in self.cluster.pids.items()
                    },
                    "machine_busy_s": round(machine_busy_seconds(), 2),
                    "loadavg": loadavg(),
                }
            except (OSError, RuntimeError):
                continue
            self.samples_out.write(json.dumps(line) + "\n")
            self.samples_out.flush()

    def grow(self, custom: client.CustomObjectsApi, count: int) -> dict[str, Any]:
        """Adds resources up to `count` and waits until all are Ready."""
        self.phase, first = "create", self.count
        names = [f"pmd-{i:04d}" for i in range(first, count)]
        before = self.op_metrics()
        started = time.monotonic()
        for chunk in range(0, len(names), 100):
            docs = "---\n".join(
                yaml.safe_dump(manifest(n, NAMESPACE)) for n in names[chunk : chunk + 100]
            )
            kubectl("apply", "--server-side", "-f", "-", stdin=docs)
        applied = time.monotonic() - started
        self.count = count
        _, seen = wait_ready(custom, NAMESPACE, set(names), timeout=self.args.ready_timeout)
        after = self.op_metrics()
        return {
            "added": len(names),
            "kubectl_apply_s": round(applied, 1),
            "ready": len(seen),
            "all_ready_s": round(max(seen.values()) - started, 1)
            if len(seen) == len(names)
            else None,
            "reconcile_full": histogram_summary(
                after, before, "pizza_operator_reconcile_duration_seconds", kind="full"
            ),
            "reconcile_status": histogram_summary(
                after, before, "pizza_operator_reconcile_duration_seconds", kind="status"
            ),
        }

    def window(self, seconds: float, interval: float) -> dict[str, Any]:
        """The steady window: deltas of CPU, metrics and API requests over `seconds`."""
        self.phase = "steady"
        pids = self.cluster.pids
        op0, cp0 = cpu_seconds(self.pid), {n: cpu_seconds(p) for n, p in pids.items()}
        m0, wait0 = machine_busy_seconds(), runq_wait_seconds(self.pid)
        load0, met0, api0 = loadavg(), self.op_metrics(), self.apiserver_metrics()
        rss: list[float] = []
        t0 = time.monotonic()
        with self.profiled(), self.spied(seconds):
            while (elapsed := time.monotonic() - t0) < seconds:
                rss.append(rss_mb(self.pid))
                time.sleep(min(1.0, seconds - elapsed))
        wall = time.monotonic() - t0
        op1, cp1 = cpu_seconds(self.pid), {n: cpu_seconds(p) for n, p in pids.items()}
        m1, wait1 = machine_busy_seconds(), runq_wait_seconds(self.pid)
        met1, api1 = self.op_metrics(), self.apiserver_metrics()
        n, op_cpu = self.count, op1 - op0
        checks = delta(met1, met0, "pizza_operator_analysis_checks_total")
        lag = buckets(met1, met0, "pizza_operator_analysis_tick_lag_seconds")
        cp = {name: round((cp1[name] - cp0[name]) / wall, 3) for name in cp0}
        return {
            "window_s": round(wall, 1),
            "pod_route": pod_route(),
            "loadavg_start": load0,
            "loadavg_end": loadavg(),
            "machine_busy_cores": round((m1 - m0) / wall, 2),
            "operator_cpu_s": round(op_cpu, 2),
            "operator_cores": round(op_cpu / wall, 3),
            "operator_runq_wait_s": round(wait1 - wait0, 2),
            "operator_cpu_s_per_resource_per_interval": (
                round(op_cpu / (wall / interval) / n, 5) if n else None
            ),
            "operator_rss_mb_mean": round(sum(rss) / len(rss), 1),
            "operator_rss_mb_max": round(max(rss), 1),
            "control_plane_cores": cp,
            "control_plane_cores_total": round(sum(cp.values()), 3),
            "ticks": checks / 2,
            "ticks_expected": round(n * wall / interval, 1),
            "checks_by_verdict": {
                v: delta(met1, met0, "pizza_operator_analysis_checks_total", verdict=v)
                for v in ("Healthy", "Failed", "Inconclusive")
            },
            "tick_lag": {
                **histogram_summary(met1, met0, "pizza_operator_analysis_tick_lag_seconds"),
                "over_1s": over(lag, 1.0),
                "over_2s": over(lag, 2.0),
                "over_5s": over(lag, 5.0),
            },
            "reconcile_full": histogram_summary(
                met1, met0, "pizza_operator_reconcile_duration_seconds", kind="full"
            ),
            "reconcile_status": histogram_summary(
                met1, met0, "pizza_operator_reconcile_duration_seconds", kind="status"
            ),
            "apiserver_requests_per_s": round(
                delta(api1, api0, "apiserver_request_total") / wall, 1
            ),
            "apiserver_requests_per_s_by": top_requests(api1, api0, wall),
        }

    @contextmanager
    def spied(self, seconds: float) -> Iterator[None]:
        """py-spy during the window of `--spy-at`: on-CPU samples of every thread (raw collapsed
        stacks, OUT.spy-COUNT.txt) and three dumps of every thread's stack, idle ones too
        (OUT.dump-COUNT.txt): where the threads and the loop wait."""
        if not self.args.py_spy or self.args.spy_at != self.count:
            yield
            return
        record = subprocess.Popen(
            [
                self.args.py_spy,
                "record",
                "--pid",
                str(self.pid),
                "--duration",
                str(int(seconds)),
                "--rate",
                "20",
                "--threads",
                "--nonblocking",
                "--format",
                "raw",
                "--output",
                str(out(self.args, f".spy-{self.count}.txt")),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        dumps = threading.Thread(target=self._dumps, args=(seconds,), daemon=True)
        dumps.start()
        try:
            yield
        finally:
            dumps.join()
            record.wait(timeout=60)

    def _dumps(self, seconds: float) -> None:
        with out(self.args, f".dump-{self.count}.txt").open("w") as f:
            for _ in range(3):
                time.sleep(seconds / 4)
                proc = subprocess.run(
                    [self.args.py_spy, "dump", "--pid", str(self.pid), "--nonblocking"],
                    capture_output=True,
                    text=True,
                    check=False,
                )
                f.write(f"== {time.strftime('%H:%M:%S')}\n{proc.stdout}{proc.stderr}\n")

    @contextmanager
    def profiled(self) -> Iterator[None]:
        """yappi on during the window of `--profile-at` (SIGUSR1 starts, SIGUSR2 writes)."""
        if not self.args.profile_at or self.args.profile_at != self.count:
            yield
            return
        os.kill(self.pid, signal.SIGUSR1)
        try:
            yield
        finally:
            os.kill(self.pid, signal.SIGUSR2)
            target = out(self.args, f".profile-{self.count}.txt")
            eventually(target.exists, 60, "the profile", every=0.5)


def analysis_summary(custom: client.CustomObjectsApi, core: client.CoreV1Api) -> dict[str, Any]:
    """The last check of every resource (component, verdict, reasons) and the pods by phase."""
    checks: dict[str, int] = {}
    listed: Any = custom.list_namespaced_custom_object(
        "pizza.ai", "v1alpha1", NAMESPACE, "pizzamodeldeployments"
    )
    items: list[dict[str, Any]] = listed["items"]
    for item in items:
        analysis = (item.get("status") or {}).get("analysis") or {}
        for component in ("primary", "fallback"):
            check = analysis.get(component) or {}
            reasons = ",".join(check.get("reasons") or [])
            key = f"{component} {check.get('verdict', 'none')} {reasons}".strip()
            checks[key] = checks.get(key, 0) + 1
    phases: dict[str, int] = {}
    for pod in core.list_namespaced_pod(NAMESPACE).items:
        phase = str(pod.status.phase if pod.status else None)
        phases[phase] = phases.get(phase, 0) + 1
    return {"last_checks": checks, "pods_by_phase": phases}


def pod_route() -> str:
    """Where the host sends the kwok pods' addresses (the router scrapes go there): a local pod
    bridge while a real-node cluster is up (a scrape then waits its 2 s timeout), else the
    default route (it fails sooner)."""
    proc = subprocess.run(
        ["ip", "route", "get", "10.244.0.2"], capture_output=True, text=True, check=False
    )
    return (
        (proc.stdout or proc.stderr).splitlines()[0].strip() if proc.stdout or proc.stderr else ""
    )


def top_requests(after: Samples, before: Samples, wall: float) -> dict[str, float]:
    by: dict[str, float] = {}
    for (n, ls), v in after.items():
        if n != "apiserver_request_total":
            continue
        d = dict(ls)
        sub = f"/{d['subresource']}" if d.get("subresource") else ""
        key = f"{d.get('verb')} {d.get('resource')}{sub}"
        by[key] = by.get(key, 0.0) + v - before.get((n, ls), 0.0)
    ranked = sorted(by.items(), key=lambda kv: -kv[1])[:10]
    return {k: round(v / wall, 1) for k, v in ranked if v > 0}


def parse_cost(repeat: int = 200) -> dict[str, float]:
    """CPU seconds of `parse_router_metrics` on the router page in tests/support (if present)."""
    from pizza_operator.analysis.window import parse_router_metrics  # noqa: PLC0415

    page = (HERE / "router-metrics.txt").read_text()
    start = time.process_time()
    for _ in range(repeat):
        parse_router_metrics(page)
    return {
        "page_bytes": len(page),
        "cpu_ms_per_parse": round((time.process_time() - start) / repeat * 1000, 3),
    }


def machine() -> dict[str, Any]:
    model = next(
        (
            ln.split(":", 1)[1].strip()
            for ln in Path("/proc/cpuinfo").read_text().splitlines()
            if ln.startswith("model name")
        ),
        "",
    )
    mem = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    return {
        "cpus": os.cpu_count(),
        "cpu_model": model,
        "mem_gb": round(int(mem) / 1024 / 1024, 1),
        "python": platform.python_version(),
        "kernel": platform.release(),
    }


def table_row(count: int, grown: dict[str, Any], steady: dict[str, Any]) -> dict[str, Any]:
    return {
        "resources": count,
        "all_ready_s": grown["all_ready_s"],
        "operator_cores": steady["operator_cores"],
        "operator_runq_wait_s": steady["operator_runq_wait_s"],
        "cpu_s_per_resource_per_interval": steady["operator_cpu_s_per_resource_per_interval"],
        "same_over_idle": steady["operator_cpu_s_per_resource_per_interval_over_idle"],
        "cpu_ms_per_tick": (
            round(1000 * steady["operator_cpu_s"] / steady["ticks"], 2) if steady["ticks"] else None
        ),
        "rss_mb": steady["operator_rss_mb_max"],
        "ticks": steady["ticks"],
        "ticks_expected": steady["ticks_expected"],
        "tick_lag_p50_s": steady["tick_lag"]["p50_s"],
        "tick_lag_p99_s": steady["tick_lag"]["p99_s"],
        "ticks_over_2s": steady["tick_lag"]["over_2s"],
        "reconcile_full_p50_s": steady["reconcile_full"]["p50_s"],
        "reconcile_full_p99_s": steady["reconcile_full"]["p99_s"],
        "control_plane_cores": steady["control_plane_cores_total"],
        "machine_busy_cores": steady["machine_busy_cores"],
        "loadavg_1m": steady["loadavg_start"][0],
        "pod_route": steady["pod_route"].split(" src ")[0],
    }


def run(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    results: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "machine": machine(),
        "interval_s": args.interval,
        "counts": {},
    }
    with LocalCluster(tmp / "cluster", nodes=COST_NODES) as cluster:
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        config.load_kube_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        core, custom = client.CoreV1Api(), client.CustomObjectsApi()
        kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl(
            "wait",
            "--for=condition=Established",
            "--timeout=180s",  # 30 s by default: too short on a loaded machine
            "crd/pizzamodeldeployments.pizza.ai",
        )
        create_namespace(core, NAMESPACE)
        bench = Bench(cluster, args, out(args, ".operator.log"))
        try:
            bench.start_operator()
            time.sleep(args.settle)
            bench.count = 0
            idle = bench.window(args.idle_window, args.interval)
            results["idle"] = {**idle, "operator_rss_mb": round(rss_mb(bench.pid), 1)}
            print(f"0: idle {json.dumps(idle)}", flush=True)
            rows = []
            for count in args.counts:
                grown = bench.grow(custom, count)
                print(f"{count}: created {grown}", flush=True)
                bench.phase = "settle"
                time.sleep(args.settle)
                steady = bench.window(args.window, args.interval)
                steady.update(analysis_summary(custom, core))
                net = steady["operator_cpu_s"] - idle["operator_cores"] * steady["window_s"]
                steady["operator_cpu_s_per_resource_per_interval_over_idle"] = round(
                    net / (steady["window_s"] / args.interval) / count, 5
                )
                steady["operator_rss_mb_per_resource"] = round(
                    (steady["operator_rss_mb_max"] - results["idle"]["operator_rss_mb"]) / count, 3
                )
                print(f"{count}: steady {json.dumps(steady)}", flush=True)
                results["counts"][str(count)] = {"create": grown, "steady": steady}
                rows.append(table_row(count, grown, steady))
                out(args, ".json").write_text(json.dumps(results, indent=2) + "\n")
            with out(args, ".csv").open("w", newline="") as f:
                writer = csv.DictWriter(f, fieldnames=list(rows[0]))
                writer.writeheader()
                writer.writerows(rows)
        finally:
            bench.stop()
    return results


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--counts", default="10,100,500")
    parser.add_argument("--window", type=float, default=60.0, help="steady window, seconds")
    parser.add_argument("--idle-window", type=float, default=60.0, help="no resources, seconds")
    parser.add_argument("--settle", type=float, default=30.0, help="seconds after all Ready")
    parser.add_argument(
        "--interval", type=float, default=10.0, help="the sample's analysis interval"
    )
    parser.add_argument("--ready-timeout", type=float, default=1200.0)
    parser.add_argument("--profile-at", type=int, default=0, help="profile this count's window")
    parser.add_argument("--py-spy", default="", help="py-spy's path (for --spy-at)")
    parser.add_argument("--spy-at", type=int, default=0, help="py-spy this count's window")
    parser.add_argument("--out", type=Path, required=True, help="path prefix of the results")
    args = parser.parse_args()
    args.counts = [int(c) for c in args.counts.split(",")]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="pizza-cost-") as tmp:
        results = run(args, Path(tmp))
    if (HERE / "router-metrics.txt").exists():
        results["parse_cost"] = parse_cost()
    out(args, ".json").write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
