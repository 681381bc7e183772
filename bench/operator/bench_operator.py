"""Operator benchmark on the local control plane (real apiserver, controllers, scheduler, kwok).

    .venv/bin/python bench/operator/bench_operator.py [--single-runs 15] [--count 200]

1. apply -> Ready: `kubectl apply` of one PizzaModelDeployment until its Ready condition is True
   (seen through a watch), repeated; p50/p90/max.
2. burst: `kubectl apply` of COUNT resources in one file, until all are Ready; operator RSS
   sampled from /proc every 0.2 s.

It starts its own cluster in a temporary directory, with two changes to the dev cluster's
defaults so 200 resources fit: extra fake kwok nodes (1000 pods; the three default nodes allow
110 pods each) and a /16 service range (600 Services; the default /24 holds 254). It runs its
own operator process.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import yaml
from kubernetes import client, config, watch
from pizza_devcluster import components
from pizza_devcluster.cluster import LocalCluster
from pizza_devcluster.nodes import DEFAULT_NODES, GPU_NODE, NodeSpec

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT))

from tests.support.conditions import is_true  # noqa: E402
from tests.support.net import free_port, http_get  # noqa: E402
from tests.support.waiting import eventually  # noqa: E402

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier.yaml"
BENCH_NODES = (
    *DEFAULT_NODES,
    *(NodeSpec(name=f"pizza-bench-cpu-{i}", cpu="256", memory="1Ti", pods="500") for i in range(3)),
    NodeSpec(
        name="pizza-bench-gpu-0",
        cpu="256",
        memory="1Ti",
        pods="500",
        extended={"nvidia.com/gpu": "256"},
        labels=dict(GPU_NODE.labels),
        taints=GPU_NODE.taints,
    ),
)


REPLICAS = (1, 2, 2)  # primary, fallback, router: the sample's shape


def manifest(name: str, namespace: str) -> dict[str, Any]:
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"] = {"name": name, "namespace": namespace}
    for component, replicas in zip(("primary", "fallback", "router"), REPLICAS, strict=True):
        body["spec"][component]["replicas"] = replicas
    body["spec"]["primary"]["resources"] = {"requests": {"cpu": "10m", "memory": "32Mi"}}
    body["spec"]["fallback"]["resources"] = {"requests": {"cpu": "10m", "memory": "32Mi"}}
    body["spec"]["router"]["resources"] = {"requests": {"cpu": "10m", "memory": "32Mi"}}
    return body


def kubectl(*args: str, stdin: str | None = None) -> None:
    subprocess.run(["kubectl", *args], input=stdin, text=True, check=True, capture_output=True)


def wait_ready(
    api: client.CustomObjectsApi, namespace: str, names: set[str], timeout: float
) -> tuple[dict[str, float], dict[str, float]]:
    """Watch the namespace until every name is Ready.

    Returns (name -> monotonic time first reconciled, i.e. status.observedGeneration set;
    name -> monotonic time seen Ready)."""
    seen: dict[str, float] = {}
    reconciled: dict[str, float] = {}
    deadline = time.monotonic() + timeout
    while len(seen) < len(names) and time.monotonic() < deadline:
        stream = watch.Watch()  # type: ignore[no-untyped-call]
        for event in stream.stream(  # type: ignore[no-untyped-call]
            api.list_namespaced_custom_object,
            "pizza.ai",
            "v1alpha1",
            namespace,
            "pizzamodeldeployments",
            timeout_seconds=max(1, int(deadline - time.monotonic())),
        ):
            obj = event["object"]
            name = obj["metadata"]["name"]
            now = time.monotonic()
            if name in names and (obj.get("status") or {}).get("observedGeneration"):
                reconciled.setdefault(name, now)
            if name in names and name not in seen and is_true(obj, "Ready"):
                seen[name] = now
                if len(seen) == len(names):
                    stream.stop()  # type: ignore[no-untyped-call]
                    break
    return reconciled, seen


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def create_namespace(core: client.CoreV1Api, name: str) -> None:
    core.create_namespace(
        client.V1Namespace(
            metadata=client.V1ObjectMeta(
                name=name, labels={"pod-security.kubernetes.io/enforce": "restricted"}
            )
        )
    )
    eventually(
        lambda: core.list_namespaced_service_account(name).items,
        30,
        f"the default ServiceAccount in {name}",
        every=0.1,
    )


def operator_metrics(port: int) -> dict[str, float]:
    """Reconcile counts and mean durations from the operator's own /metrics."""
    text = http_get(f"http://127.0.0.1:{port}/metrics", timeout=5)[1]
    out: dict[str, float] = {}
    for line in text.splitlines():
        if line.startswith(
            (
                "pizza_operator_reconciles_total",
                "pizza_operator_reconcile_duration_seconds_sum",
                "pizza_operator_reconcile_duration_seconds_count",
            )
        ):
            key, value = line.rsplit(" ", 1)
            out[key] = float(value)
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--single-runs", type=int, default=15)
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--burst-timeout", type=float, default=300)
    parser.add_argument(
        "--replicas", default="1,2,2", help="primary,fallback,router pods of each resource"
    )
    parser.add_argument("--log", type=Path, default=None, help="copy the operator log here")
    parser.add_argument("--out", type=Path, default=None, help="write results as JSON here")
    args = parser.parse_args()
    global REPLICAS  # noqa: PLW0603
    primary, fallback, router = (int(x) for x in args.replicas.split(","))
    REPLICAS = (primary, fallback, router)

    results: dict[str, Any] = {"cpus": os.cpu_count(), "replicas": args.replicas}
    # 200 resources need 600 Services; the dev cluster's /24 service range holds 254.
    components.SERVICE_CIDR = "10.0.0.0/16"
    with (
        tempfile.TemporaryDirectory(prefix="pizza-bench-") as tmp,
        LocalCluster(Path(tmp) / "cluster", nodes=BENCH_NODES) as cluster,
    ):
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        config.load_kube_config(config_file=str(cluster.kubeconfig))  # type: ignore[no-untyped-call]
        core, custom = client.CoreV1Api(), client.CustomObjectsApi()
        kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
        kubectl("wait", "--for=condition=Established", "crd/pizzamodeldeployments.pizza.ai")
        log = (Path(tmp) / "operator.log").open("wb")
        metrics_port = free_port()
        operator = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pizza_operator",
                "--metrics-port",
                str(metrics_port),
                "--liveness-port",
                "0",
                "--lease",  # the operator's own leader election (a fresh Lease: no wait)
                f"bench-{uuid.uuid4().hex[:6]}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            time.sleep(3)
            # 1. one resource at a time
            create_namespace(core, "bench-single")
            durations = []
            for i in range(args.single_runs):
                name = f"single-{i}"
                started = time.monotonic()
                kubectl("apply", "-f", "-", stdin=yaml.safe_dump(manifest(name, "bench-single")))
                _, seen = wait_ready(custom, "bench-single", {name}, timeout=60)
                durations.append(seen[name] - started)
            durations.sort()
            results["single"] = {
                "runs": len(durations),
                "p50_s": round(statistics.median(durations), 3),
                "p90_s": round(durations[int(0.9 * (len(durations) - 1))], 3),
                "max_s": round(durations[-1], 3),
            }
            print("apply -> Ready (one resource):", results["single"], flush=True)

            # 2. COUNT resources in one apply
            create_namespace(core, "bench-burst")
            names = {f"burst-{i:03d}" for i in range(args.count)}
            docs = "---\n".join(yaml.safe_dump(manifest(n, "bench-burst")) for n in sorted(names))
            peak = [rss_mb(operator.pid)]
            stop = threading.Event()

            def sample() -> None:
                while not stop.is_set():
                    peak.append(rss_mb(operator.pid))
                    time.sleep(0.2)

            sampler = threading.Thread(target=sample, daemon=True)
            sampler.start()
            started = time.monotonic()
            kubectl("apply", "--server-side", "-f", "-", stdin=docs)
            applied = time.monotonic() - started
            reconciled, seen = wait_ready(custom, "bench-burst", names, timeout=args.burst_timeout)
            stop.set()
            sampler.join()
            times = sorted(t - started for t in seen.values())
            results["burst"] = {
                "count": args.count,
                "kubectl_apply_s": round(applied, 2),
                "ready": len(seen),
                "all_reconciled_s": round(max(reconciled.values()) - started, 2)
                if len(reconciled) == args.count
                else None,
                "all_ready_s": round(times[-1], 2) if len(seen) == args.count else None,
                "p50_ready_s": round(statistics.median(times), 2) if times else None,
                "operator_rss_peak_mb": round(max(peak), 1),
                "operator_rss_start_mb": round(peak[0], 1),
                "pods": len(core.list_namespaced_pod("bench-burst").items),
            }
            print(f"{args.count} at once:", results["burst"], flush=True)
            results["operator_metrics"] = operator_metrics(metrics_port)
            fields = Path(f"/proc/{operator.pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks = os.sysconf("SC_CLK_TCK")
            results["operator_cpu_s"] = round((int(fields[11]) + int(fields[12])) / ticks, 1)
        finally:
            operator.terminate()
            operator.wait(timeout=30)
            log.close()
            if args.log:
                args.log.write_bytes((Path(tmp) / "operator.log").read_bytes())
    print(json.dumps(results, indent=2))
    if args.out:
        args.out.write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
