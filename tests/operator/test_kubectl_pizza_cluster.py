"""`kubectl pizza` against a real API server: no operator, the status written by hand.

A PizzaModelDeployment is created with kubectl, its status (built from the contract by
`test_kubectl_pizza_fixtures`: only reasons the operator writes) written with `kubectl patch
--subresource=status`, its ControllerRevisions, pods (bound to the fake nodes) and an Event
created with kubectl; then the plugin (the installed console script `kubectl-pizza`) reads
and changes it, and everything is read back with kubectl.
"""

from __future__ import annotations

import datetime
import json
import os
import pty
import re
import select
import shlex
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import yaml
from pizza_operator import contract
from pizza_operator.api.v1alpha1 import KIND, Verdict

from tests.support.waiting import eventually

from .helpers import KUBECTL, ROOT, apply, kubectl, kubectl_json, pmd_manifest
from .test_kubectl_pizza_fixtures import component_check, condition, event, last_rollback

pytestmark = [pytest.mark.cluster]

NAME = "pizza-classifier"
PLUGIN = Path(sys.executable).parent / "kubectl-pizza"
PLUGIN_KUBECTL = ROOT / ".bin" / "kubectl"
SCREEN = ROOT / ".cluster" / "kubectl-pizza-status.txt"
"""The plain screen of `test_plain_screen`, kept for docs/kubectl-pizza.md."""


def pizza(
    *args: str, check: bool = True, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    if not PLUGIN.exists():
        pytest.fail(f"{PLUGIN} missing: run `.venv/bin/pip install -e . --no-deps`")
    proc = subprocess.run(
        [str(PLUGIN), *args],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={**os.environ, **(env or {})},
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    if check and proc.returncode != 0:
        raise AssertionError(f"kubectl-pizza {' '.join(args)}: {proc.stderr}")
    return proc


def stamp(seconds_ago: int) -> str:
    moment = datetime.datetime.now(datetime.UTC) - datetime.timedelta(seconds=seconds_ago)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def analysis_check(verdict: Verdict, failure_rate: float, failures: int) -> dict[str, Any]:
    return component_check(
        verdict,
        ["FailureRate"] if verdict == "Failed" else [],
        {
            "failureRate": failure_rate,
            "latencyP95Seconds": 0.42,
            "requests": 240.0,
            "restarts": 0.0,
            "ready": 1.0,
            "desired": 1.0,
        },
        time=stamp(5),
        failures=failures,
        healthy_since=None if verdict == "Failed" else stamp(600),
    )


def write_status(ns: str, status: dict[str, Any]) -> None:
    kubectl(
        "patch",
        f"pmd/{NAME}",
        "-n",
        ns,
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps({"status": status}),
    )


def rolled_back_status(outcomes: dict[str, str]) -> dict[str, Any]:
    """Rolled back to the known-good revision after the new one failed; every component of
    the revision now served is ready."""
    return {
        "observedGeneration": 1,
        "mode": "previous",
        "conditions": [
            condition("Ready", "True", "AllComponentsReady", "every component is ready", stamp(90)),
            condition(
                "RolledBack",
                "True",
                "PrimaryFailedNewRevision",
                "primary failureRate 0.125 > 0.05 (3 checks in a row)",
                stamp(120),
            ),
        ],
        "primary": {"readyReplicas": 1, "replicas": 1, "summary": "1/1"},
        "fallback": {"readyReplicas": 2, "replicas": 2, "summary": "2/2"},
        "router": {"readyReplicas": 2, "replicas": 2, "summary": "2/2"},
        "errorRate": 0.125,
        "analysis": {
            "source": "scrape",
            "checks": 57,
            "inconclusive": 4,
            "primary": analysis_check("Failed", 0.125, 3),
            "fallback": analysis_check("Healthy", 0.0, 0),
            "clientErrorRate": 0.0,
            "clientRequests": 480.0,
            "fallbackReasons": {"error": 30.0},
        },
        "lastRollback": last_rollback(
            1,
            "primary",
            "previous",
            "PrimaryFailedNewRevision",
            "primary failureRate 0.125 > 0.05 (3 checks in a row)",
            values={"failureRate": 0.125},
            time=stamp(120),
            generation=1,
            revision=f"{NAME}-aaaaaaaaaa",
        ),
        "currentRevision": f"{NAME}-bbbbbbbbbb",
        "servingRevision": f"{NAME}-aaaaaaaaaa",
        "revisionOutcomes": outcomes,
    }


def controller_revision(ns: str, number: int, hash_: str, uid: str) -> dict[str, Any]:
    return {
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {
            "name": f"{NAME}-{hash_}",
            "namespace": ns,
            "labels": {
                contract.INSTANCE_LABEL: NAME,
                contract.MANAGED_BY_LABEL: contract.MANAGER,
                contract.REVISION_HASH_LABEL: hash_,
            },
            "annotations": {contract.APPLIED_AT_ANNOTATION: f"2026-12-0{number}T10:00:00Z"},
            "ownerReferences": [contract.owner_reference(NAME, uid)],
        },
        "revision": number,
        "data": {"primary": {"replicas": 1}, "image": f"pizza:{number}"},
    }


def pod(ns: str, component: str, index: int, node: str) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{NAME}-{component}-{index}",
            "namespace": ns,
            "labels": {
                contract.NAME_LABEL: contract.APP_NAME,
                contract.INSTANCE_LABEL: NAME,
                contract.COMPONENT_LABEL: component,
            },
        },
        "spec": {
            "nodeName": node,
            "tolerations": [{"key": "nvidia.com/gpu", "operator": "Exists"}],
            "securityContext": {
                "runAsNonRoot": True,
                "runAsUser": 1000,
                "seccompProfile": {"type": "RuntimeDefault"},
            },
            "containers": [
                {
                    "name": "serve",
                    "image": "pizza-operator:test",
                    "securityContext": {
                        "allowPrivilegeEscalation": False,
                        "capabilities": {"drop": ["ALL"]},
                    },
                }
            ],
        },
    }


@pytest.fixture
def resource(crds_installed: Path, test_namespace: str) -> str:
    """NAME in a fresh namespace: rolled back to `previous`, three revisions (1 Good, 2 Failed,
    3 Pending), pods on the GPU and CPU nodes, one Warning Event."""
    ns = test_namespace
    apply(pmd_manifest(NAME, ns))
    uid = kubectl_json("get", "pmd", NAME, "-n", ns)["metadata"]["uid"]
    for number, hash_ in ((1, "aaaaaaaaaa"), (2, "bbbbbbbbbb"), (3, "cccccccccc")):
        kubectl("create", "-f", "-", stdin=json.dumps(controller_revision(ns, number, hash_, uid)))
    outcomes = {f"{NAME}-aaaaaaaaaa": "Good", f"{NAME}-bbbbbbbbbb": "Failed"}
    write_status(ns, rolled_back_status(outcomes))
    pods = [
        pod(ns, "primary", 0, "pizza-gpu-0"),
        pod(ns, "fallback", 0, "pizza-cpu-0"),
        pod(ns, "fallback", 1, "pizza-cpu-1"),
        pod(ns, "router", 0, "pizza-cpu-0"),
        pod(ns, "router", 1, "pizza-cpu-0"),
    ]
    kubectl("create", "-f", "-", stdin=yaml.safe_dump_all(pods))
    rolled_back = event(
        "Warning",
        "RolledBack",
        "primary -> previous: primary failureRate 0.125 > 0.05",
        stamp(120),
        apiVersion="v1",
        kind="Event",
        metadata={"name": f"{NAME}.rollback-1", "namespace": ns},
        involvedObject={
            "apiVersion": contract.API_VERSION,
            "kind": KIND,
            "name": NAME,
            "namespace": ns,
            "uid": uid,
        },
        source={"component": contract.MANAGER},
        firstTimestamp=stamp(120),
        count=1,
    )
    kubectl("create", "-f", "-", stdin=json.dumps(rolled_back))
    return ns


def live(ns: str) -> dict[str, Any]:
    body: dict[str, Any] = kubectl_json("get", "pmd", NAME, "-n", ns)
    return body


def comparable(body: dict[str, Any]) -> dict[str, Any]:
    """The resource without what every write changes."""
    meta = {
        k: v
        for k, v in body["metadata"].items()
        if k not in ("resourceVersion", "managedFields", "generation")
    }
    return {"metadata": meta, "spec": body["spec"], "status": body.get("status")}


def without_annotation(body: dict[str, Any], key: str) -> dict[str, Any]:
    out = comparable(body)
    annotations = dict(out["metadata"].get("annotations") or {})
    annotations.pop(key, None)
    out["metadata"] = {**out["metadata"], "annotations": annotations}
    return out


def viewer_kubeconfig(ns: str, tmp_path: Path) -> Path:
    """A kubeconfig of the new ServiceAccount `viewer` of `ns` (no Role yet), `ns` its
    namespace."""
    kubectl("create", "serviceaccount", "viewer", "-n", ns)
    token = kubectl("create", "token", "viewer", "-n", ns, "--duration=1h").stdout.strip()
    admin = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
    context = next(c for c in admin["contexts"] if c["name"] == admin["current-context"])
    admin["users"] = [{"name": "viewer", "user": {"token": token}}]
    context["context"]["user"] = "viewer"
    context["context"]["namespace"] = ns
    admin["contexts"] = [context]
    limited: Path = tmp_path / "viewer-kubeconfig"
    limited.write_text(yaml.safe_dump(admin))
    return limited


def run_printed(command: str) -> None:
    argv = shlex.split(command)
    assert argv[0] == "kubectl"
    kubectl(*argv[1:])


class TestStatus:
    def test_plain_screen(self, resource: str) -> None:
        ns = resource
        text = pizza("status", NAME, "-n", ns).stdout
        assert "\x1b[" not in text  # stdout is a pipe, not a TTY
        SCREEN.parent.mkdir(exist_ok=True)
        SCREEN.write_text(text)
        first = text.splitlines()[0]
        assert first == (
            f"PizzaModelDeployment {ns}/{NAME}   mode: previous   Ready: True (AllComponentsReady)"
        )
        assert "  every component is ready\n" in text
        assert "    reasons: FailureRate\n" in text
        assert f"serving {NAME}-aaaaaaaaaa" in text
        assert re.search(r"^primary\s+1/1\s+pizza-gpu-0 \(GPU\)$", text, re.M), text
        assert re.search(r"^fallback\s+2/2\s+pizza-cpu-0 \(CPU\), pizza-cpu-1 \(CPU\)$", text, re.M)
        assert re.search(r"^router\s+2/2\s+pizza-cpu-0 \(CPU\) x2$", text, re.M)
        assert re.search(r"primary\s+Failed\s+3 consecutive failures", text)
        assert re.search(r"failureRate\s+0\.125\s+<= 0\.05\s+FAIL", text)
        assert re.search(r"requests\s+240\s+>= 20\s+ok", text)
        assert re.search(r"fallback\s+Healthy\s+0 consecutive failures", text)
        assert "Last rollback #1: primary -> previous   reason PrimaryFailedNewRevision" in text
        assert "primary failureRate 0.125 > 0.05 (3 checks in a row)" in text
        assert re.search(r"Warning\s+RolledBack\s+primary -> previous", text)

    def test_colour_on_a_terminal(self, resource: str) -> None:
        primary, replica = pty.openpty()
        try:
            proc = subprocess.run(
                [str(PLUGIN), "status", NAME, "-n", resource],
                stdout=replica,
                stderr=subprocess.PIPE,
                timeout=60,
                check=False,
            )
            assert proc.returncode == 0, proc.stderr
            chunks = []
            while select.select([primary], [], [], 0.5)[0]:
                chunk = os.read(primary, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
            text = b"".join(chunks).decode()
        finally:
            os.close(primary)
            os.close(replica)
        assert "\x1b[33mprevious\x1b[0m" in text
        assert "\x1b[31mFAIL\x1b[0m" in text

    def test_json(self, resource: str) -> None:
        data = json.loads(pizza("status", NAME, "-n", resource, "-o", "json").stdout)
        assert data["mode"] == "previous"
        assert data["ready"]["status"] == "True"
        assert data["components"]["primary"]["nodes"] == [
            {"name": "pizza-gpu-0", "type": "GPU", "pods": 1}
        ]
        assert data["components"]["router"]["nodes"] == [
            {"name": "pizza-cpu-0", "type": "CPU", "pods": 2}
        ]
        failure = next(
            s for s in data["analysis"]["primary"]["signals"] if s["signal"] == "failureRate"
        )
        assert failure == {
            "signal": "failureRate",
            "value": 0.125,
            "threshold": 0.05,
            "op": "<=",
            "ok": False,
        }
        assert data["analysis"]["primary"]["consecutiveFailures"] == 3
        assert data["lastRollback"]["to"] == "previous"
        assert data["lastRollback"]["reason"] == "PrimaryFailedNewRevision"
        assert [e["reason"] for e in data["events"]] == ["RolledBack"]

    def test_namespace_from_the_context(self, resource: str, tmp_path: Path) -> None:
        config = yaml.safe_load(Path(os.environ["KUBECONFIG"]).read_text())
        for context in config["contexts"]:
            context["context"]["namespace"] = resource
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump(config))
        data = json.loads(pizza("status", NAME, "--kubeconfig", str(path), "-o", "json").stdout)
        assert data["namespace"] == resource
        context = config["current-context"]
        listed = pizza("list", "--kubeconfig", str(path), "--context", context).stdout
        assert NAME in listed
        missing = pizza("list", "--context", "no-such-context", check=False)
        assert missing.returncode == 1
        assert "context 'no-such-context' not found" in missing.stderr

    def test_watch_draws_a_new_frame_on_change(self, resource: str) -> None:
        ns = resource
        proc = subprocess.Popen(
            [str(PLUGIN), "status", NAME, "-n", ns, "--watch"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            assert proc.stdout is not None
            lines: list[str] = []
            # the first frame
            while not any("mode: previous" in line for line in lines):
                line = proc.stdout.readline()
                assert line, f"watch ended: {proc.stderr.read() if proc.stderr else ''}"
                lines.append(line)
            write_status(ns, {"mode": "stable"})
            changed_at = time.monotonic()
            seen_separator = False
            while True:
                line = proc.stdout.readline()
                assert line, "watch ended"
                assert "\x1b[" not in line
                seen_separator = seen_separator or line.startswith("-" * 20)
                if "mode: stable" in line:
                    break
            assert seen_separator
            assert time.monotonic() - changed_at < 5
        finally:
            proc.terminate()
            proc.wait(timeout=10)


class TestListAndHistory:
    def test_list(self, resource: str) -> None:
        text = pizza("list", "-n", resource).stdout
        header, line = text.splitlines()
        assert header.split()[:3] == ["NAMESPACE", "NAME", "MODE"]
        cols = line.split()
        assert cols[:7] == [resource, NAME, "previous", "True", "1/1", "2/2", "12.5%"]
        assert re.search(r"previous \(PrimaryFailedNewRevision, \d+m ago\)$", line), line
        everywhere = pizza("list", "-A").stdout
        assert any(row.split()[:2] == [resource, NAME] for row in everywhere.splitlines())

    def test_through_kubectl(self, resource: str) -> None:
        """kubectl finds `kubectl-pizza` on PATH as the plugin `pizza`."""
        env = {**os.environ, "PATH": f"{PLUGIN.parent}{os.pathsep}{os.environ['PATH']}"}
        plugins = subprocess.run(
            [str(PLUGIN_KUBECTL), "plugin", "list"],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        assert str(PLUGIN) in plugins.stdout
        proc = subprocess.run(
            [str(PLUGIN_KUBECTL), "pizza", "list", "-n", resource],
            capture_output=True,
            text=True,
            env=env,
            timeout=60,
            check=False,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.splitlines()[1].split()[:3] == [resource, NAME, "previous"]

    def test_history_markers(self, resource: str) -> None:
        lines = pizza("history", NAME, "-n", resource).stdout.splitlines()
        assert lines[0].split() == [
            "REVISION",
            "NAME",
            "HASH",
            "APPLIED-AT",
            "OUTCOME",
            "MARKERS",
        ]
        rows = [line.split(None, 5) for line in lines[1:]]
        assert rows == [
            [
                "1",
                f"{NAME}-aaaaaaaaaa",
                "aaaaaaaaaa",
                "2026-12-01T10:00:00Z",
                "Good",
                "serving, known-good",
            ],
            ["2", f"{NAME}-bbbbbbbbbb", "bbbbbbbbbb", "2026-12-02T10:00:00Z", "Failed", "current"],
            ["3", f"{NAME}-cccccccccc", "cccccccccc", "2026-12-03T10:00:00Z", "Pending", "-"],
        ]


class TestChanges:
    def test_retry(self, resource: str) -> None:
        ns, key = resource, "pizza.ai/retry"
        before = live(ns)
        dry = pizza("retry", NAME, "-n", ns, "--dry-run").stdout.strip()
        assert re.fullmatch(rf"kubectl -n {ns} annotate pmd/{NAME} {key}=\d{{13}} --overwrite", dry)
        assert comparable(live(ns)) == comparable(before)  # nothing changed
        run_printed(dry)
        printed = live(ns)
        assert printed["metadata"]["annotations"][key] == dry.split("=")[1].split()[0]
        assert without_annotation(printed, key) == without_annotation(before, key)

        pizza("retry", NAME, "-n", ns)
        after = live(ns)
        token = after["metadata"]["annotations"][key]
        assert re.fullmatch(r"\d{13}", token)
        assert abs(int(token) / 1000 - time.time()) < 60
        assert token != printed["metadata"]["annotations"][key]
        assert without_annotation(after, key) == without_annotation(before, key)

    def test_rollback(self, resource: str) -> None:
        ns, key = resource, "pizza.ai/rollback"
        before = live(ns)
        pizza("rollback", NAME, "-n", ns, "--to", "stable")
        value = live(ns)["metadata"]["annotations"][key]
        assert re.fullmatch(r"stable@\d{13}", value)
        assert without_annotation(live(ns), key) == without_annotation(before, key)

        pizza("rollback", NAME, "-n", ns, "--to", "previous", "--revision", "3")
        assert re.fullmatch(
            rf"previous:{NAME}-cccccccccc@\d{{13}}", live(ns)["metadata"]["annotations"][key]
        )
        pizza("rollback", NAME, "-n", ns, "--to", "previous")  # the known-good one exists
        assert re.fullmatch(r"previous@\d{13}", live(ns)["metadata"]["annotations"][key])

        settled = live(ns)
        dry = pizza("rollback", NAME, "-n", ns, "--to", "emergency", "--dry-run").stdout.strip()
        assert re.fullmatch(
            rf"kubectl -n {ns} annotate pmd/{NAME} {key}=emergency@\d{{13}} --overwrite", dry
        )
        assert comparable(live(ns)) == comparable(settled)
        run_printed(dry)
        assert live(ns)["metadata"]["annotations"][key] == dry.split("=")[1].split()[0]
        assert without_annotation(live(ns), key) == without_annotation(before, key)

    def test_pause_and_resume(self, resource: str) -> None:
        ns = resource
        before = live(ns)
        assert before["spec"]["paused"] is False

        def without_paused(body: dict[str, Any]) -> dict[str, Any]:
            out = comparable(body)
            out["spec"] = {k: v for k, v in out["spec"].items() if k != "paused"}
            return out

        dry = pizza("pause", NAME, "-n", ns, "--dry-run").stdout.strip()
        assert dry == (
            f"kubectl -n {ns} patch pmd/{NAME} --type=merge -p " """'{"spec":{"paused":true}}'"""
        )
        assert comparable(live(ns)) == comparable(before)
        run_printed(dry)
        assert live(ns)["spec"]["paused"] is True
        pizza("resume", NAME, "-n", ns)
        assert live(ns)["spec"]["paused"] is False
        pizza("pause", NAME, "-n", ns)
        paused = live(ns)
        assert paused["spec"]["paused"] is True
        assert without_paused(paused) == without_paused(before)
        assert "PAUSED" in pizza("status", NAME, "-n", ns).stdout
        dry = pizza("resume", NAME, "-n", ns, "--dry-run").stdout.strip()
        assert live(ns)["spec"]["paused"] is True
        run_printed(dry)
        resumed = live(ns)
        assert resumed["spec"]["paused"] is False
        assert comparable(resumed) == comparable(before)


class TestErrors:
    def test_missing_resource(self, resource: str) -> None:
        for args in (
            ["status", "nope"],
            ["history", "nope"],
            ["retry", "nope"],
            ["pause", "nope", "--dry-run"],
            ["rollback", "nope", "--to", "stable"],
        ):
            proc = pizza(*args, "-n", resource, check=False)
            assert proc.returncode == 1, args
            assert proc.stderr.strip() == f"error: pizzamodeldeployment {resource}/nope not found"

    def test_no_known_good_revision(self, resource: str) -> None:
        ns = resource
        write_status(ns, {"revisionOutcomes": {f"{NAME}-aaaaaaaaaa": "Failed"}})
        before = live(ns)
        proc = pizza("rollback", NAME, "-n", ns, "--to", "previous", check=False)
        assert proc.returncode == 1
        assert proc.stderr.startswith("error: no known-good revision: ")
        dry = pizza("rollback", NAME, "-n", ns, "--to", "previous", "--dry-run", check=False)
        assert dry.returncode == 1
        assert dry.stdout == ""
        unknown = pizza(
            "rollback", NAME, "-n", ns, "--to", "previous", "--revision", "7", check=False
        )
        assert unknown.returncode == 1
        assert f"unknown revision 7 of {ns}/{NAME} (revisions: 1, 2, 3)" in unknown.stderr
        assert comparable(live(ns)) == comparable(before)

    def test_forbidden(self, resource: str, tmp_path: Path) -> None:
        """A ServiceAccount may get and list pmd, nothing else: reads work, a patch is a 403
        naming the verb and the resource; without any Role even the read is refused."""
        ns = resource
        env = {"KUBECONFIG": str(viewer_kubeconfig(ns, tmp_path))}

        proc = pizza("status", NAME, check=False, env=env)
        assert proc.returncode == 1
        assert proc.stderr.startswith(
            f"error: forbidden: you may not get pizzamodeldeployments.pizza.ai in namespace {ns}:"
        ), proc.stderr
        listing = pizza("list", "-A", check=False, env=env)
        assert listing.returncode == 1
        assert "you may not list pizzamodeldeployments.pizza.ai in all namespaces" in (
            listing.stderr
        )

        kubectl(
            "create", "role", "pmd-viewer", "-n", ns, "--verb=get,list",
            "--resource=pizzamodeldeployments.pizza.ai",
        )  # fmt: skip
        kubectl(
            "create", "rolebinding", "pmd-viewer", "-n", ns, "--role=pmd-viewer",
            f"--serviceaccount={ns}:viewer",
        )  # fmt: skip
        screen = eventually(
            lambda: pizza("status", NAME, check=False, env=env).returncode == 0,
            timeout=30,
            what="the Role takes effect",
            ignoring=AssertionError,
        )
        assert screen
        # no pods, nodes or events may be read: the screen still comes, without them
        text = pizza("status", NAME, env=env).stdout
        assert "mode: previous" in text
        proc = pizza("retry", NAME, check=False, env=env)
        assert proc.returncode == 1
        assert proc.stderr.startswith(
            f"error: forbidden: you may not patch pizzamodeldeployments.pizza.ai in namespace {ns}:"
        ), proc.stderr
        # the printed equivalent is refused the same way by kubectl
        dry = pizza("retry", NAME, "--dry-run", env=env).stdout.strip()
        refused = subprocess.run(
            [KUBECTL, *shlex.split(dry)[1:]],
            capture_output=True,
            text=True,
            env={**os.environ, **env},
            check=False,
        )
        assert refused.returncode != 0
        assert "forbidden" in refused.stderr
