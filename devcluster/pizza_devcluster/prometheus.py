"""A real Prometheus server (the Debian package) for tests and benchmarks, and the scrape config
that finds a PizzaModelDeployment's router pods through the API, the way a cluster's Prometheus
does (`kubernetes_sd_configs`, role pod; the `namespace` and `pod` labels the operator's PromQL
selects the router's series by)."""

from __future__ import annotations

import shutil
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx


class PrometheusMissingError(RuntimeError):
    """No `prometheus` binary on PATH (Debian package prometheus)."""


def router_pods_config(kubeconfig: Path, namespace: str, scrape_interval: str = "5s") -> str:
    """prometheus.yml scraping every router pod (component=router) of `namespace`."""
    return f"""global:
  scrape_interval: {scrape_interval}
  evaluation_interval: {scrape_interval}
scrape_configs:
  - job_name: pizza-routers
    kubernetes_sd_configs:
      - role: pod
        kubeconfig_file: {kubeconfig}
        namespaces: {{names: [{namespace}]}}
    relabel_configs:
      - source_labels: [__meta_kubernetes_pod_label_app_kubernetes_io_component]
        regex: router
        action: keep
      - source_labels: [__meta_kubernetes_pod_container_port_name]
        regex: http
        action: keep
      - source_labels: [__meta_kubernetes_namespace]
        target_label: namespace
      - source_labels: [__meta_kubernetes_pod_name]
        target_label: pod
"""


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
