"""Helpers of the automatic-rollback scenarios (tests/e2e/test_rollback.py and bench/rollback):
the local sample under another name with its own settings, waits on the resource's status, the
router's Service URL, freezing a component's containers, and a timeline sampler that records the
mode and the primary's failure rate the operator reports."""

from __future__ import annotations

import copy
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pizza_load.freeze import signal_container
from pizza_load.loadgen import LoadGenerator, Record
from pizza_load.timeline import Sample, draw_timeline, write_samples

from tests.e2e.product import BIN, ROOT, Kubectl, restricted_namespace
from tests.support.waiting import eventually

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
PRIMARY_MODEL = "pizza-convnext-tiny"
FALLBACK_MODEL = "micro-pizza-net"


def sample_manifest(name: str, **spec: Any) -> dict[str, Any]:
    """The local sample named `name`; keyword arguments replace top-level spec fields
    (`analysis={...}` merges into the sample's analysis, the others replace)."""
    body: dict[str, Any] = yaml.safe_load(SAMPLE.read_text())
    body["metadata"]["name"] = name
    for key, value in spec.items():
        if isinstance(value, dict) and isinstance(body["spec"].get(key), dict):
            body["spec"][key] = {**body["spec"][key], **copy.deepcopy(value)}
        else:
            body["spec"][key] = copy.deepcopy(value)
    return body


@dataclass
class Scenario:
    """One PizzaModelDeployment in its own restricted namespace."""

    kubectl: Kubectl
    namespace: str
    name: str

    def apply(self, manifest: dict[str, Any]) -> None:
        restricted_namespace(self.kubectl, self.namespace)
        proc = subprocess.run(
            [str(BIN / "kubectl"), "-n", self.namespace, "apply", "-f", "-"],
            input=json.dumps(manifest),
            capture_output=True,
            text=True,
            env={"KUBECONFIG": str(self.kubectl.kubeconfig), "PATH": f"{BIN}:/usr/bin:/bin"},
            check=False,
        )
        assert proc.returncode == 0, proc.stderr

    def wait_ready(self, timeout: float = 300) -> None:
        self.kubectl.run(
            "-n", self.namespace, "wait", "--for=condition=Ready", f"pmd/{self.name}",
            f"--timeout={int(timeout)}s",
        )  # fmt: skip

    def delete(self) -> None:
        self.kubectl.run("delete", "namespace", self.namespace, "--wait=false", check=False)

    def get(self) -> dict[str, Any]:
        return self.kubectl.json("-n", self.namespace, "get", "pmd", self.name)

    def status(self) -> dict[str, Any]:
        status: dict[str, Any] = self.get().get("status") or {}
        return status

    def mode(self) -> str:
        return str(self.status().get("mode", ""))

    def deployment(self, component: str) -> dict[str, Any]:
        return self.kubectl.json("-n", self.namespace, "get", "deploy", f"{self.name}-{component}")

    def pods(self, component: str) -> list[dict[str, Any]]:
        pods = self.kubectl.json(
            "-n", self.namespace, "get", "pods", "-l",
            f"app.kubernetes.io/instance={self.name},app.kubernetes.io/component={component}",
        )["items"]  # fmt: skip
        return [p for p in pods if p["metadata"].get("deletionTimestamp") is None]

    def running_pods(self, component: str) -> list[dict[str, Any]]:
        return [
            p
            for p in self.pods(component)
            if any(
                "running" in (s.get("state") or {})
                for s in (p.get("status") or {}).get("containerStatuses") or []
            )
        ]

    def router_url(self) -> str:
        service = self.kubectl.json("-n", self.namespace, "get", "service", self.name)
        return f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"

    def events(self, reason: str | None = None) -> list[dict[str, Any]]:
        items = self.kubectl.json(
            "-n", self.namespace, "get", "events", "--field-selector",
            f"involvedObject.kind=PizzaModelDeployment,involvedObject.name={self.name}",
        )["items"]  # fmt: skip
        return [e for e in items if reason is None or e.get("reason") == reason]

    def routing_mode(self) -> str:
        cm = self.kubectl.json("-n", self.namespace, "get", "configmap", f"{self.name}-routing")
        return str(cm["data"]["mode"])

    def revisions(self) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self.kubectl.json(
            "-n", self.namespace, "get", "controllerrevisions", "-l",
            f"app.kubernetes.io/instance={self.name}",
        )["items"]  # fmt: skip
        return sorted(items, key=lambda r: int(r["revision"]))

    def annotate(self, key: str, value: str) -> None:
        self.kubectl.run(
            "-n", self.namespace, "annotate", "--overwrite", f"pmd/{self.name}", f"{key}={value}"
        )

    def patch_spec(self, spec: dict[str, Any]) -> None:
        self.kubectl.run(
            "-n", self.namespace, "patch", f"pmd/{self.name}", "--type=merge",
            "-p", json.dumps({"spec": spec}),
        )  # fmt: skip


def router_load(
    scenario: Scenario, images: list[bytes], records_path: Path | None = None, rate: float = 8.0
) -> LoadGenerator:
    """The load the rollback scenarios use: open loop through the router's Service, at most 32
    in flight, 20 s per request (not started)."""
    return LoadGenerator(
        scenario.router_url(),
        rate=rate,
        concurrency=32,
        images=images,
        timeout_s=20,
        records_path=records_path,
    )


def freeze(pods: list[dict[str, Any]]) -> None:
    for pod in pods:
        assert signal_container(pod, "server", signal.SIGSTOP), pod["metadata"]["name"]


def thaw(pods: list[dict[str, Any]]) -> None:
    for pod in pods:
        try:
            signal_container(pod, "server", signal.SIGCONT)
        except Exception:
            continue


@contextmanager
def frozen(pods: list[dict[str, Any]]) -> Iterator[None]:
    freeze(pods)
    try:
        yield
    finally:
        thaw(pods)


@contextmanager
def crash_looping(scenario: Scenario, component: str, every: float = 0.5) -> Iterator[None]:
    """The component's server crashes in a loop: its container's processes are SIGKILLed
    whenever they run, until the block ends (the kubelet restarts it; back-off follows)."""
    stop = threading.Event()

    def kill() -> None:
        while not stop.is_set():
            for pod in scenario.running_pods(component):
                try:
                    signal_container(pod, "server", signal.SIGKILL)
                except Exception:
                    continue
            stop.wait(every)

    thread = threading.Thread(target=kill, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=30)


@dataclass
class Timeline:
    """Samples (time.time(), mode, primary failure rate or None) of the resource every second."""

    scenario: Scenario
    every: float = 1.0
    samples: list[tuple[float, str, float | None]] = field(default_factory=list)
    events: list[tuple[str, float]] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None

    def start(self) -> Timeline:
        self._thread = threading.Thread(target=self._run, daemon=True)
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
            self.samples.append((time.time(), str(status.get("mode", "")), status.get("errorRate")))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=30)

    def draw(self, records: list[Record], out: Path, title: str) -> Path:
        """Requests by answering model, the primary's failure rate and the mode, one PNG."""
        samples = [Sample(t, rate, mode or None) for t, mode, rate in self.samples]
        status = self.scenario.get().get("spec", {}).get("analysis", {})
        threshold = float(status.get("errorRateThreshold", 0.05))
        write_samples(out.with_suffix(".samples.jsonl"), samples, self.events, threshold)
        return draw_timeline(records, samples, out, title, self.events, threshold=threshold)

    def first(self, mode: str, after: float = 0.0) -> float | None:
        return next((t for t, m, _ in self.samples if m == mode and t >= after), None)


OPERATOR_NAMESPACE = "pizza-system"
OPERATOR_METRICS_PORT = 9090
"""The chart's default metrics.port."""


def operator_pods(kubectl: Kubectl) -> list[dict[str, Any]]:
    """The operator's pods as the chart installs them in pizza-system (both replicas)."""
    pods: list[dict[str, Any]] = kubectl.json(
        "-n", OPERATOR_NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component=operator"
    )["items"]
    return pods


def keep_logs(kubectl: Kubectl, namespace: str, artifacts: Path) -> None:
    """The operator's logs and the namespace's workloads, resources and Events, for a failure's
    post-mortem."""
    artifacts.mkdir(parents=True, exist_ok=True)
    for pod in operator_pods(kubectl):
        name = pod["metadata"]["name"]
        text = kubectl.run("-n", OPERATOR_NAMESPACE, "logs", name, check=False)
        (artifacts / f"operator-{name}.log").write_text(text)
    for what, args in {
        "workloads.txt": ("get", "deploy,rs,pods", "-o", "wide", "--show-labels"),
        "pmd.yaml": ("get", "pmd", "-o", "yaml"),
        "events.txt": ("get", "events", "--sort-by=.lastTimestamp"),
    }.items():
        (artifacts / what).write_text(kubectl.run("-n", namespace, *args, check=False))


class StatusWatch:
    """`kubectl pizza status NAME --watch` in a real terminal (a detached tmux session, 132x60),
    as an SRE runs it: kubectl finds the plugin on PATH. `screen()` is what the terminal shows."""

    def __init__(self, scenario: Scenario, session: str) -> None:
        self.scenario = scenario
        self.session = session
        self.tmux = shutil.which("tmux")

    def start(self) -> StatusWatch:
        if self.tmux is None:
            raise AssertionError("tmux not installed (Debian package tmux)")
        sc = self.scenario
        path = f"{Path(sys.executable).parent}:{BIN}:/usr/bin:/bin"
        command = (
            f"env KUBECONFIG={sc.kubectl.kubeconfig} PATH={path} "
            f"kubectl pizza status {sc.name} -n {sc.namespace} --watch"
        )
        subprocess.run(
            [self.tmux, "kill-session", "-t", self.session], capture_output=True, check=False
        )
        subprocess.run(
            [self.tmux, "new-session", "-d", "-s", self.session, "-x", "132", "-y", "60", command],
            check=True,
            env={**os.environ, "TERM": "xterm-256color"},
        )
        return self

    def screen(self) -> str:
        assert self.tmux is not None
        proc = subprocess.run(
            [self.tmux, "capture-pane", "-p", "-t", self.session],
            capture_output=True,
            text=True,
            check=False,
        )
        assert proc.returncode == 0, f"the watch ended: {proc.stderr}"
        return proc.stdout

    def shows(self, *texts: str) -> str | None:
        """The screen when it shows every text, once redrawn as one frame (a clear, not
        scrolled frames: the resource line appears once), else None."""
        screen = self.screen()
        frames = screen.count(f"PizzaModelDeployment {self.scenario.namespace}/")
        return screen if frames == 1 and all(t in screen for t in texts) else None

    def wait_for(self, *texts: str, timeout: float = 30) -> str:
        """The screen once it shows every text in one frame; fails with the last screen."""
        try:
            return eventually(lambda: self.shows(*texts), timeout, f"the watch to show {texts}")
        except AssertionError:
            screen = self.screen()
            raise AssertionError(f"the watch never showed {texts}; it shows:\n{screen}") from None

    def stop(self) -> None:
        if self.tmux is not None:
            subprocess.run(
                [self.tmux, "kill-session", "-t", self.session], capture_output=True, check=False
            )
