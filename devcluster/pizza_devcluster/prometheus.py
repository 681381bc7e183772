"""A real Prometheus server (the Debian package) for tests and benchmarks, and scrape configs:
fixed targets, or a PizzaModelDeployment's router pods as read from the API and written as file_sd
targets with the `namespace` and `pod` labels the operator's PromQL selects the router's series by
(the labels a cluster's Prometheus gives through kubernetes_sd or a PodMonitor)."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx


class PrometheusMissingError(RuntimeError):
    """No `prometheus` binary on PATH (Debian package prometheus)."""


def file_sd_config(
    targets_file: Path, job: str = "pizza-routers", scrape_interval: str = "2s"
) -> str:
    """prometheus.yml scraping the targets listed in `targets_file` (file_sd: Prometheus re-reads
    it when it changes). Debian's prometheus is built without kubernetes_sd_configs, so the
    targets come from the API through `write_pod_targets` instead."""
    return f"""global:
  scrape_interval: {scrape_interval}
  evaluation_interval: {scrape_interval}
scrape_configs:
  - job_name: {job}
    file_sd_configs:
      - files: [{targets_file}]
        refresh_interval: 1s
"""


def write_pod_targets(targets_file: Path, pods: list[dict[str, Any]], port: int) -> None:
    """The running pods as file_sd targets, labelled `namespace` and `pod` the way the usual
    kubernetes_sd relabelling (and the Prometheus Operator's PodMonitor) label them."""
    groups = [
        {
            "targets": [f"{p['status']['podIP']}:{port}"],
            "labels": {"namespace": p["metadata"]["namespace"], "pod": p["metadata"]["name"]},
        }
        for p in pods
        if (p.get("status") or {}).get("podIP") and p["status"].get("phase") == "Running"
    ]
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
