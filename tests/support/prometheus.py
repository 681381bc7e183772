"""A real Prometheus server (the Debian package) for the tests, its scrape configs and its HTTP
query API. Scrape configs: fixed targets, or a PizzaModelDeployment's router pods as read from the
API and written as file_sd targets with the `namespace` and `pod` labels the operator's PromQL
selects the router's series by (the labels a cluster's Prometheus gives through kubernetes_sd or a
PodMonitor). `prometheus` is the launcher as a test uses it: on a free port, skipping the test
where Prometheus is not installed."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.net import free_port
from tests.support.waiting import eventually


class PrometheusMissingError(RuntimeError):
    """No `prometheus` binary on PATH (Debian package prometheus)."""


SERVING_POD_LABELS = {
    "app.kubernetes.io/instance": "name",
    "app.kubernetes.io/component": "component",
}
"""Pod labels the chart's PodMonitor turns into target labels: the PizzaModelDeployment and the
component (router, primary, fallback) a series comes from (the dashboard selects by them)."""


@dataclass(frozen=True)
class FileSdJob:
    """One scrape job over the targets in `targets_file`. `honor_labels`: the series' own labels
    win over the target's (the operator's series name the namespace of the resource they describe,
    as the chart's ServiceMonitor keeps them)."""

    name: str
    targets_file: Path
    honor_labels: bool = False


def file_sd_jobs(jobs: list[FileSdJob], scrape_interval: str = "2s") -> str:
    """prometheus.yml scraping the targets listed in each job's file (file_sd: Prometheus re-reads
    them when they change). Debian's prometheus is built without kubernetes_sd_configs, so the
    targets come from the API through `write_pod_targets` instead."""
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": job.name,
                "honor_labels": job.honor_labels,
                "file_sd_configs": [{"files": [str(job.targets_file)], "refresh_interval": "1s"}],
            }
            for job in jobs
        ],
    }
    return json.dumps(config, indent=2)  # JSON is YAML


def file_sd_config(
    targets_file: Path, job: str = "pizza-routers", scrape_interval: str = "2s"
) -> str:
    """prometheus.yml with one file_sd job (see `file_sd_jobs`)."""
    return file_sd_jobs([FileSdJob(job, targets_file)], scrape_interval)


def write_pod_targets(
    targets_file: Path,
    pods: list[dict[str, Any]],
    port: int,
    pod_labels: dict[str, str] | None = None,
) -> None:
    """The running pods as file_sd targets, labelled `namespace` and `pod` the way the usual
    kubernetes_sd relabelling (and the Prometheus Operator's PodMonitor) label them, plus a
    target label for each pod label in `pod_labels` (pod label -> target label)."""
    groups = []
    for p in pods:
        if not (p.get("status") or {}).get("podIP") or p["status"].get("phase") != "Running":
            continue
        meta = p["metadata"]
        labels = {"namespace": meta["namespace"], "pod": meta["name"]}
        for key, target in (pod_labels or {}).items():
            if key in (meta.get("labels") or {}):
                labels[target] = meta["labels"][key]
        groups.append({"targets": [f"{p['status']['podIP']}:{port}"], "labels": labels})
    tmp = targets_file.with_suffix(".tmp")
    tmp.write_text(json.dumps(groups))
    tmp.replace(targets_file)


def static_config(targets: list[str], job: str = "pizza", scrape_interval: str = "1s") -> str:
    """prometheus.yml scraping fixed HOST:PORT targets."""
    return (
        f"global:\n  scrape_interval: {scrape_interval}\n  evaluation_interval: {scrape_interval}\n"
        f"scrape_configs:\n  - job_name: {job}\n    static_configs:\n"
        f"      - targets: {targets!r}\n"
    )


@contextmanager
def prometheus_server(config: str, workdir: Path, listen: str) -> Iterator[str]:
    """Run Prometheus with `config` on `listen` (HOST:PORT) until the block ends; yields its URL."""
    binary = shutil.which("prometheus")
    if binary is None:
        raise PrometheusMissingError("prometheus not installed (Debian package prometheus)")
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "prometheus.yml").write_text(config)
    log = (workdir / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            f"--config.file={workdir / 'prometheus.yml'}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address={listen}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://{listen}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{url}/-/ready", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline or proc.poll() is not None:
                raise RuntimeError(f"prometheus did not start: {workdir / 'prometheus.log'}")
            time.sleep(0.2)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()


@contextmanager
def prometheus(targets: list[str], workdir: Path, job: str = "pizza") -> Iterator[str]:
    """Prometheus on a free port scraping `targets` (host:port) every second; yields its URL.
    Skips the test where Prometheus is not installed."""
    try:
        listen = f"127.0.0.1:{free_port()}"
        with prometheus_server(static_config(targets, job=job), workdir, listen) as url:
            yield url
    except PrometheusMissingError as exc:
        pytest.skip(f"{exc}; hack/install-system-deps.sh")


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    """The samples of an instant query."""
    response = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def instant(prom: str, expr: str) -> float | None:
    """The value of the first sample of an instant query (None when there is none)."""
    samples = query(prom, expr)
    return float(samples[0]["value"][1]) if samples else None


def wait_for_value(prom: str, expr: str, expected: float, timeout: float = 20.0) -> None:
    """Until Prometheus answers `expr` with `expected` (polled every 0.3 s)."""
    eventually(
        lambda: instant(prom, expr) == expected,
        timeout,
        f"prometheus to see {expr} == {expected}",
        every=0.3,
    )
