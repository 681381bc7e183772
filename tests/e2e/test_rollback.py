"""Automatic rollback on the real nodes, nothing mocked: the operator installed by its chart, the
local sample's real primary, fallback and router pods, a bounded load generator on this machine
sending real images through the router's Service, faults injected from outside the product
(the containers' processes frozen with SIGSTOP, a model source that does not exist, the
operator SIGKILLed in the middle of a step)."""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import pytest
from pizza_devcluster.pytest_plugin import requires_real_nodes
from pizza_load.loadgen import LoadGenerator, summary

from tests.e2e.product import ROOT, Kubectl, generated_images
from tests.e2e.rollback import (
    FALLBACK_MODEL,
    OPERATOR_METRICS_PORT,
    PRIMARY_MODEL,
    Scenario,
    StatusWatch,
    Timeline,
    crash_looping,
    freeze,
    frozen,
    operator_pods,
    router_load,
    sample_manifest,
    thaw,
)
from tests.support.conditions import condition
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

RATE = 8.0  # requests a second: ~4 per router pod, well under the sample's 600 a minute each
ARTIFACTS = ROOT / ".cluster" / "e2e-rollback"


@pytest.fixture(scope="module")
def images() -> list[bytes]:
    return [p.read_bytes() for p in generated_images(seed=5151)]


def _load(scenario: Scenario, images: list[bytes], name: str) -> LoadGenerator:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    return router_load(scenario, images, ARTIFACTS / f"{name}.jsonl", RATE).start()


def _router_pods(scenario: Scenario) -> dict[str, int]:
    return {
        p["metadata"]["uid"]: sum(
            s.get("restartCount", 0) for s in p["status"].get("containerStatuses", [])
        )
        for p in scenario.pods("router")
    }


def _answered_by(gen: LoadGenerator, model: str, since: float) -> bool:
    return any(r.t >= since and r.model_used == model for r in gen.records)


@pytest.fixture
def ladder(kubectl: Kubectl, operator_release: str) -> Iterator[Scenario]:
    scenario = Scenario(kubectl, "e2e-rollback-ladder", "ladder")
    # checks every 5 s: the rollback (3 checks) comes well before the kubelet's liveness probe
    # restarts the hung container (3 x 10 s); bench/rollback measures the default settings
    scenario.apply(sample_manifest("ladder", analysis={"interval": "5s", "window": "30s"}))
    scenario.wait_ready()
    yield scenario
    scenario.delete()


def test_hung_primary_goes_stable_then_hung_fallback_goes_emergency(
    ladder: Scenario, images: list[bytes]
) -> None:
    sc = ladder
    routers = _router_pods(sc)
    gen = _load(sc, images, "ladder")
    timeline = Timeline(sc).start()
    watch = StatusWatch(sc, "e2e-ladder-watch").start()
    try:
        eventually(
            lambda: sc.status().get("analysis", {}).get("primary", {}).get("verdict") == "Healthy",
            120,
            "a Healthy check of the primary under load",
            every=1.0,
        )
        watch.wait_for("mode: primary")
        # ---- the primary hangs: stable, with every client answered ----------------------
        primary = sc.running_pods("primary")
        fault = timeline.mark("primary frozen")
        freeze(primary)
        try:
            eventually(lambda: sc.mode() == "stable", 90, "rollback to stable", every=0.5)
            rolled = time.time()
            eventually(
                lambda: sc.deployment("primary")["spec"]["replicas"] == 0,
                15,
                "primary at 0",
                every=1.0,
            )
            assert sc.routing_mode() == "stable"
        finally:
            thaw(primary)
        time.sleep(6)  # let requests in flight at the switch end
        during = summary(gen.records, fault, time.time() - 1)
        assert during.sent > 0 and during.unanswered == 0 and during.server_errors == 0, during
        assert _answered_by(gen, FALLBACK_MODEL, rolled)
        status = sc.status()
        last = status["lastRollback"]
        assert (last["from"], last["to"], last["reason"], last["number"]) == (
            "primary",
            "stable",
            "PrimaryFailed",
            1,
        ), last
        assert condition(status, "RolledBack")["status"] == "True"
        assert len(sc.events("RolledBack")) == 1
        assert _router_pods(sc) == routers  # the mode reached the router without a restart
        print(f"fault -> stable in {rolled - fault:.1f} s; {during}", file=sys.stderr)
        # the SRE's terminal redrew itself as the mode changed (tmux: a real terminal)
        screen = watch.wait_for("mode: stable", "Last rollback #1: primary -> stable", timeout=15)
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        (ARTIFACTS / "kubectl-pizza-status-stable.txt").write_text(screen.rstrip() + "\n")

        # ---- the fallback hangs too: emergency, then answered again ----------------------
        fallback = sc.running_pods("fallback")
        second = timeline.mark("fallback frozen")
        freeze(fallback)
        try:
            eventually(lambda: sc.mode() == "emergency", 120, "emergency", every=0.5)
            emergency_at = time.time()
            eventually(
                lambda: _answered_by(gen, FALLBACK_MODEL, emergency_at + 1),
                240,
                "clients answered by the emergency server",
                every=1.0,
            )
        finally:
            thaw(fallback)
        last = sc.status()["lastRollback"]
        assert (last["from"], last["to"], last["reason"]) == (
            "stable",
            "emergency",
            "FallbackFailed",
        )
        pod = sc.deployment("fallback")["spec"]["template"]["spec"]["containers"][0]
        assert pod["resources"]["requests"] == {"cpu": "100m", "memory": "192Mi"}
        assert len(sc.events("RolledBack")) == 2
        print(f"fallback frozen -> emergency in {emergency_at - second:.1f} s", file=sys.stderr)
        screen = watch.wait_for(
            "mode: emergency", "Last rollback #2: stable -> emergency", timeout=15
        )
        (ARTIFACTS / "kubectl-pizza-status-emergency.txt").write_text(screen.rstrip() + "\n")

        # ---- no flapping: stays in emergency until an SRE retries --------------------------
        time.sleep(15)
        assert sc.mode() == "emergency"
        retried = timeline.mark("retry")
        sc.annotate("pizza.ai/retry", "1")
        eventually(lambda: sc.mode() == "primary", 60, "back to primary on retry", every=1.0)
        eventually(
            lambda: _answered_by(gen, PRIMARY_MODEL, retried),
            240,
            "answers from the primary",
            every=1.0,
        )
        assert sc.routing_mode() == "primary"
        assert _router_pods(sc) == routers
    finally:
        watch.stop()
        gen.stop()
        timeline.stop()
        _draw(gen, timeline, "ladder")


def _draw(gen: LoadGenerator, timeline: Timeline, name: str) -> None:
    """The scenario's timeline as a PNG beside its records (evidence, not a check)."""
    try:
        timeline.draw(gen.records, ARTIFACTS / f"{name}.png", title=name)
    except Exception as exc:
        print(f"timeline not drawn: {exc!r}", file=sys.stderr)


def test_idle_and_sporadic_errors_then_a_bad_new_revision_goes_back_to_the_good_one(
    kubectl: Kubectl, operator_release: str, images: list[bytes]
) -> None:
    sc = Scenario(kubectl, "e2e-rollback-previous", "previous")
    fast = {"interval": "5s", "window": "20s", "minRequests": 10}
    # a pod that never loads its model fails when its startup probe gives up (30 s here)
    # AllAtOnce: the ladder's own step back to the good revision (a canary would abort the bad
    # revision before it ever served: tests/e2e/test_canary.py)
    manifest = sample_manifest(
        "previous",
        analysis=fast,
        primary={"startupTimeoutSeconds": 30},
        rollout={"strategy": "AllAtOnce"},
    )
    sc.apply(manifest)
    sc.wait_ready()
    try:
        # ---- idle: no traffic at all is no verdict, never a rollback -----------------------
        start = sc.status().get("analysis", {}).get("inconclusive", 0)
        time.sleep(30)
        status = sc.status()
        assert status["analysis"]["inconclusive"] >= start + 4, status["analysis"]
        assert "TooFewRequests" in status["analysis"]["primary"]["reasons"]
        assert "lastRollback" not in status and status["mode"] == "primary"

        gen = _load(sc, images, "previous")
        timeline = Timeline(sc).start()
        try:
            eventually(
                lambda: "Good" in sc.status().get("revisionOutcomes", {}).values(),
                150,
                "the first revision proven good",
                every=1.0,
            )
            good = sc.revisions()[0]["metadata"]["name"]
            # ---- sporadic primary timeouts below the threshold: no rollback ---------------
            for blip in range(2):
                timeline.mark(f"blip {blip + 1}")
                primary = sc.running_pods("primary")
                with frozen(primary):  # just over the 2 s primary timeout: a few time out
                    time.sleep(2.4)
                time.sleep(25)  # about one window apart: each window sees one blip
            status = sc.status()
            assert status["mode"] == "primary" and "lastRollback" not in status, status
            assert _answered_by(gen, PRIMARY_MODEL, time.time() - 20)
            timeouts = summary(gen.records).by_fallback_reason.get("timeout", 0)
            assert timeouts >= 1, "the blips should have made the primary time out"
            bad_at = timeline.mark("bad revision applied")
            sc.patch_spec({"primary": {"model": {"source": "builtin://no-such-model"}}})
            eventually(lambda: sc.mode() == "previous", 240, "rollback to previous", every=0.5)
            status = sc.status()
            assert status["servingRevision"] == good != status["currentRevision"], status
            assert status["lastRollback"]["reason"] == "PrimaryFailedNewRevision"
            good_source = {"name": "PIZZA_SOURCE", "value": "builtin://pizza-convnext-tiny"}
            eventually(
                lambda: (
                    good_source
                    in sc.deployment("primary")["spec"]["template"]["spec"]["containers"][0]["env"]
                ),
                30,
                "the known-good revision's primary applied",
                every=1.0,
            )
            back = time.time()
            eventually(
                lambda: _answered_by(gen, PRIMARY_MODEL, back),
                240,
                "the good revision serving",
                every=1.0,
            )
            outcomes = sc.status()["revisionOutcomes"]
            assert {r["metadata"]["name"] for r in sc.revisions()} >= set(outcomes)
            assert outcomes[good] == "Good"
            assert outcomes[status["currentRevision"]] == "Failed", outcomes
            assert len(sc.events("RolledBack")) == 1
            assert sc.get()["spec"]["primary"]["model"]["source"] == "builtin://no-such-model"
            whole = summary(gen.records, bad_at, time.time() - 1)
            assert whole.server_errors == 0 and whole.unanswered == 0, whole
        finally:
            gen.stop()
            timeline.stop()
            _draw(gen, timeline, "previous")
    finally:
        sc.delete()


def test_automatic_false_reports_and_changes_nothing(
    kubectl: Kubectl, operator_release: str, images: list[bytes]
) -> None:
    sc = Scenario(kubectl, "e2e-rollback-suppressed", "suppressed")
    sc.apply(
        sample_manifest(
            "suppressed",
            analysis={"interval": "5s", "window": "20s", "minRequests": 10},
            rollback={"automatic": False},
        )
    )
    sc.wait_ready()
    gen = _load(sc, images, "suppressed")
    try:
        primary = sc.running_pods("primary")
        with frozen(primary):
            eventually(
                lambda: (
                    (condition(sc.status(), "RolledBack") or {}).get("reason")
                    == "RollbackSuppressed"
                ),
                90,
                "the suppressed rollback reported",
                every=1.0,
            )
            status = sc.status()
            assert status["mode"] == "primary" and "lastRollback" not in status
            assert "stable" in condition(status, "RolledBack")["message"]
            assert sc.deployment("primary")["spec"]["replicas"] == 1
            assert status["analysis"]["primary"]["verdict"] == "Failed"
        assert sc.events("RolledBack") == []
        assert len(sc.events("RollbackSuppressed")) == 1
        # an SRE's own step is taken even so (kubectl pizza rollback sets this annotation) ...
        sc.annotate("pizza.ai/rollback", "stable@1")
        eventually(lambda: sc.mode() == "stable", 60, "the requested rollback to stable", every=1.0)
        assert sc.status()["lastRollback"]["reason"] == "Requested"
        # ... once, and one that cannot be taken is refused, saying why
        sc.annotate("pizza.ai/rollback", "previous@2")
        eventually(
            lambda: (condition(sc.status(), "RolledBack") or {}).get("reason") == "RequestRefused",
            60,
            "the refused request reported",
            every=1.0,
        )
        assert "no known-good revision" in condition(sc.status(), "RolledBack")["message"]
        assert sc.mode() == "stable" and sc.status()["lastRollback"]["number"] == 1
    finally:
        gen.stop()
        sc.delete()


def test_operator_killed_mid_rollback_a_new_one_converges_once(
    kubectl: Kubectl, operator_release: str, images: list[bytes], tmp_path: Path
) -> None:
    """The primary crashes in a loop (its processes SIGKILLed whenever they run). The chart's
    replicas stand aside; an operator on the host kills itself (SIGKILL) right after announcing
    the rollback and before recording it; the chart's replicas come back and finish the step:
    exactly one rollback recorded and one Event."""
    import os  # noqa: PLC0415
    import subprocess  # noqa: PLC0415

    sc = Scenario(kubectl, "e2e-rollback-crash", "crash")
    sc.apply(sample_manifest("crash", analysis={"interval": "5s", "window": "20s"}))
    sc.wait_ready()
    gen = _load(sc, images, "crash")
    deploy = ["-n", "pizza-system", "scale", "deploy", operator_release]
    kubectl.run(*deploy, "--replicas=0")
    kubectl.run(
        "-n", "pizza-system", "wait", "--for=delete", "pod", "-l",
        "app.kubernetes.io/component=operator", "--timeout=90s",
    )  # fmt: skip
    log = (tmp_path / "operator.log").open("wb")
    env = {
        **os.environ,
        "KUBECONFIG": str(kubectl.kubeconfig),
        "PIZZA_OPERATOR_FAILPOINT": "rollback-announced",
        "PYTHONUNBUFFERED": "1",
    }
    host = subprocess.Popen(
        [sys.executable, "-m", "pizza_operator", "--standalone", "--namespace", sc.namespace,
         "--metrics-port", "0", "--liveness-port", "0"],
        stdout=log, stderr=subprocess.STDOUT, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        time.sleep(12)  # a baseline scrape or two under load
        with crash_looping(sc, "primary"):
            assert host.wait(timeout=120) == -signal.SIGKILL, (
                tmp_path / "operator.log"
            ).read_text()
            assert len(sc.events("RolledBack")) == 1  # announced...
            assert sc.mode() == "primary"  # ...not recorded
            kubectl.run(*deploy, "--replicas=2")
            eventually(
                lambda: sc.mode() == "stable", 180, "the new leader finishes the step", every=1.0
            )
        time.sleep(10)
        status = sc.status()
        assert status["lastRollback"]["number"] == 1
        assert len(sc.events("RolledBack")) == 1
        assert sc.deployment("primary")["spec"]["replicas"] == 0
    finally:
        if host.poll() is None:
            host.kill()
        kubectl.run(*deploy, "--replicas=2", check=False)
        gen.stop()
        sc.delete()


def test_prometheus_path_rolls_back_a_hung_primary(
    kubectl: Kubectl, operator_release: str, images: list[bytes], tmp_path: Path
) -> None:
    """spec.analysis.prometheus.address: a real Prometheus (the Debian package) on this machine,
    listening only on the CPU node's bridge, finds the router pods through the API
    (kubernetes_sd) and scrapes them; the operator's analysis queries it."""
    from pizza_devcluster.realnode.layout import CPU_REAL_NODE  # noqa: PLC0415

    from tests.support.dashboard import check_dashboard, load  # noqa: PLC0415
    from tests.support.net import free_port  # noqa: PLC0415
    from tests.support.prometheus import (  # noqa: PLC0415
        SERVING_POD_LABELS,
        FileSdJob,
        PrometheusMissingError,
        file_sd_jobs,
        prometheus_server,
        write_pod_targets,
    )

    sc = Scenario(kubectl, "e2e-rollback-prometheus", "prom")
    listen = f"{CPU_REAL_NODE.ip}:{free_port()}"
    serving, operators = tmp_path / "serving.json", tmp_path / "operator.json"
    jobs = [FileSdJob("pizza-serving", serving), FileSdJob("pizza-operator", operators, True)]
    for targets in (serving, operators):
        targets.write_text("[]")
    stack = ExitStack()
    try:
        prom = stack.enter_context(
            prometheus_server(file_sd_jobs(jobs), tmp_path / "prometheus", listen)
        )
    except PrometheusMissingError as exc:
        pytest.skip(str(exc))
    # service discovery, as the chart's PodMonitor and ServiceMonitor do it: the serving pods
    # (router, primary, fallback) and the operator pods as the API lists them, every second
    stop = threading.Event()

    def discover() -> None:
        while not stop.is_set():
            with contextlib.suppress(AssertionError):
                pods = [p for c in ("router", "primary", "fallback") for p in sc.pods(c)]
                write_pod_targets(serving, pods, 8001, SERVING_POD_LABELS)
                write_pod_targets(operators, operator_pods(kubectl), OPERATOR_METRICS_PORT)
            stop.wait(1.0)

    threading.Thread(target=discover, daemon=True).start()
    stack.callback(stop.set)
    stack.callback(sc.delete)
    with stack:
        started = time.time()
        analysis = {"interval": "5s", "window": "30s", "minRequests": 10}
        sc.apply(sample_manifest("prom", analysis={**analysis, "prometheus": {"address": prom}}))
        sc.wait_ready()
        gen = _load(sc, images, "prometheus")
        stack.callback(gen.stop)
        eventually(
            lambda: (
                (a := sc.status().get("analysis", {})).get("source") == "prometheus"
                and a.get("primary", {}).get("verdict") == "Healthy"
            ),
            120,
            "a Healthy primary check from Prometheus",
            every=1.0,
        )
        primary = sc.running_pods("primary")
        fault = time.time()
        with frozen(primary):
            eventually(lambda: sc.mode() == "stable", 90, "rollback to stable", every=0.5)
        time.sleep(5)
        during = summary(gen.records, fault, time.time() - 1)
        assert during.unanswered == 0 and during.server_errors == 0, during
        last = sc.status()["lastRollback"]
        assert last["reason"] == "PrimaryFailed", last
        assert sc.status()["analysis"]["source"] == "prometheus"
        # the Grafana dashboard over this real run: every panel's every query answers with data
        dashboard = load(ROOT / "helm" / "pizza-operator" / "files" / "pizza-dashboard.json")
        variables = {"datasource": "prometheus", "namespace": sc.namespace, "name": sc.name}
        problems: list[str] = []

        def dashboard_has_data() -> bool:
            found = check_dashboard(prom, dashboard, variables, start=started, end=time.time())
            problems[:] = [str(p) for p in found]
            return not found

        with contextlib.suppress(AssertionError):  # scrapes lag: retry for a while
            eventually(dashboard_has_data, 30, "every dashboard panel with data", every=1.0)
        assert not problems, "dashboard panels without data or failing:\n" + "\n".join(problems)
