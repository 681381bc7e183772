"""The canary of a new primary revision, wired end to end on a real API server with a real
operator and kwok's pods (which turn Ready but serve nothing: the routers answer no scrape, so a
step gets no verdict and pauses, as it must without data): a change of the primary's pods starts
a rollout beside the stable primary; `kubectl pizza promote` and `kubectl pizza abort` end it;
a change of the count only, or `strategy: AllAtOnce`, applies at once.

The judging of a step on real traffic (errors, latency, agreement) runs on the real nodes
(tests/e2e/test_canary.py)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, children, events, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

NAME = "pizza-classifier"
PLUGIN = Path(sys.executable).parent / "kubectl-pizza"
CANARY = f"{NAME}-primary-canary"
STEPS = [{"weight": 10, "pause": "1h"}]


def _pizza(*args: str) -> str:
    proc = subprocess.run(
        [str(PLUGIN), *args], capture_output=True, text=True, timeout=60, check=False,
        env=dict(os.environ),
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


def _pmd(ns: str) -> dict[str, Any]:
    body: dict[str, Any] = kubectl_json("get", "pmd", NAME, "-n", ns)
    return body


def _rollout(ns: str) -> dict[str, Any]:
    return dict(_pmd(ns).get("status", {}).get("rollout") or {})


def _routing(ns: str) -> dict[str, str]:
    data: dict[str, str] = kubectl_json("get", "configmap", f"{NAME}-routing", "-n", ns)["data"]
    return data


def _primary_cpu(ns: str, deployment: str = f"{NAME}-primary") -> str:
    dep = kubectl_json("get", "deployment", deployment, "-n", ns)
    cpu: str = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"]
    return cpu


def _set_cpu(ns: str, cpu: str, **spec: Any) -> None:
    patch = {"spec": {"primary": {"resources": {"requests": {"cpu": cpu}}}, **spec}}
    kubectl("patch", "pmd", NAME, "-n", ns, "--type=merge", "-p", json.dumps(patch))


def _canary_pods(ns: str) -> list[str]:
    items = kubectl_json("get", "pods", "-n", ns, "-l", "app.kubernetes.io/component=canary")
    return [
        p["metadata"]["name"] for p in items["items"] if not p["metadata"].get("deletionTimestamp")
    ]


def _reasons(ns: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in events(ns, NAME) if e["reason"] == reason]


def test_canary_promote_abort_and_all_at_once(
    operator: OperatorProcess, test_namespace: str
) -> None:
    ns = test_namespace
    # pods of earlier tests' namespaces may still hold the kwok GPU node's 2 GPUs (then Borrow)
    eventually(lambda: _gpus_requested() == 0, 120, "no other pod holding a GPU")
    apply(pmd_manifest(NAME, ns, rollout={"steps": STEPS}))
    kubectl("wait", "--for=condition=Ready", f"pmd/{NAME}", "-n", ns, "--timeout=90s")
    stable = _pmd(ns)["status"]["currentRevision"]
    assert _primary_cpu(ns) == "100m"

    # ---- a new primary revision: a canary beside the stable primary -------------------------
    _set_cpu(ns, "120m")
    rollout = eventually(lambda: _rollout(ns).get("canaryWeight") == 10 and _rollout(ns), 60,
                         "the ready canary at its first weight")  # fmt: skip
    assert rollout["stableRevision"] == stable and rollout["revision"] != stable
    assert rollout["plan"] == "Surge"
    assert _pmd(ns)["status"]["currentRevision"] == stable
    assert _primary_cpu(ns) == "100m"  # the stable primary keeps its shape
    assert _primary_cpu(ns, CANARY) == "120m"
    canary = kubectl_json("get", "deployment", CANARY, "-n", ns)
    assert canary["spec"]["replicas"] == 1
    assert canary["spec"]["selector"]["matchLabels"]["app.kubernetes.io/component"] == "canary"
    primary_svc = kubectl_json("get", "service", f"{NAME}-primary", "-n", ns)
    assert primary_svc["spec"]["selector"]["app.kubernetes.io/component"] == "primary"
    routing = _routing(ns)
    assert routing["canaryUrl"] == f"http://{CANARY}:8001"
    assert (routing["canaryWeight"], routing["agreementSample"]) == ("10", "1")
    # no router answers a scrape on kwok: no data, no verdict, the step pauses
    paused = eventually(lambda: _rollout(ns).get("phase") == "Paused" and _rollout(ns), 60,
                        "a paused step")  # fmt: skip
    assert paused["reason"].startswith("no verdict")
    assert "Rollout: Paused" in _pizza("status", NAME, "-n", ns)
    assert len(_reasons(ns, "RolloutStarted")) == 1

    # ---- promote: the canary answers at 100 % until the primary runs the revision -------------
    _pizza("promote", NAME, "-n", ns)
    eventually(lambda: _rollout(ns).get("handedOver"), 90, "the promoted revision handed over")
    assert _rollout(ns)["phase"] == "Promoted"
    assert _primary_cpu(ns) == "120m"
    eventually(lambda: f"Deployment/{CANARY}" not in children(ns, NAME), 30, "the canary gone")
    eventually(lambda: not _canary_pods(ns), 30, "the canary's pods gone")
    assert "canaryUrl" not in _routing(ns)
    assert _pmd(ns)["status"]["currentRevision"] == rollout["revision"]
    assert len(_reasons(ns, "RolloutPromoted")) == 1
    promoted = rollout["revision"]

    # ---- abort: the stable primary stays, the revision is Failed, the canary goes ------------
    _set_cpu(ns, "140m")
    second = eventually(lambda: _rollout(ns).get("stableRevision") == promoted and _rollout(ns),
                        60, "a second rollout")  # fmt: skip
    eventually(lambda: f"Deployment/{CANARY}" in children(ns, NAME), 30, "the second canary")
    _pizza("abort", NAME, "-n", ns)
    eventually(lambda: _rollout(ns).get("phase") == "Aborted", 30, "aborted")
    eventually(lambda: f"Deployment/{CANARY}" not in children(ns, NAME), 30, "the canary gone")
    eventually(lambda: not _canary_pods(ns), 30, "the canary's pods gone")
    status = _pmd(ns)["status"]
    assert status["revisionOutcomes"][second["revision"]] == "Failed"
    assert status["currentRevision"] == promoted
    assert _primary_cpu(ns) == "120m"
    assert "canaryUrl" not in _routing(ns)
    assert len(_reasons(ns, "RolloutAborted")) == 1
    assert _reasons(ns, "RolloutAborted")[0]["type"] == "Warning"
    refused = subprocess.run([str(PLUGIN), "promote", NAME, "-n", ns], capture_output=True,
                             text=True, timeout=60, check=False)  # fmt: skip
    assert refused.returncode != 0 and "no canary" in refused.stderr

    # ---- a count change, and AllAtOnce, apply at once -----------------------------------------
    kubectl("patch", "pmd", NAME, "-n", ns, "--type=merge", "-p",
            json.dumps({"spec": {"primary": {"replicas": 2}}}))  # fmt: skip
    eventually(lambda: _pmd(ns)["status"].get("primary", {}).get("replicas") == 2, 30, "2 pods")
    carried = _rollout(ns)  # the failed primary is not tried again for a change of the count
    assert (carried["phase"], carried["stableRevision"]) == ("Aborted", promoted)
    assert _primary_cpu(ns) == "120m"
    _set_cpu(ns, "160m", rollout={"strategy": "AllAtOnce", "steps": STEPS})
    eventually(lambda: _primary_cpu(ns) == "160m", 30, "the new revision at once")
    assert _rollout(ns)["revision"] == carried["revision"]  # no rollout for it
    assert f"Deployment/{CANARY}" not in children(ns, NAME)


def _gpus_requested(node: str = "pizza-gpu-0") -> int:
    pods = kubectl_json("get", "pods", "-A", "--field-selector", f"spec.nodeName={node}")["items"]
    return sum(
        int((c.get("resources", {}).get("requests") or {}).get("nvidia.com/gpu", 0))
        for p in pods
        if p["status"].get("phase") not in ("Succeeded", "Failed")
        for c in p["spec"]["containers"]
    )


def test_no_spare_gpu_the_stable_pod_is_lent_to_the_canary(
    operator: OperatorProcess, test_namespace: str
) -> None:
    """The kwok GPU node has 2 GPUs; the stable primary holds 1 and the new revision asks 2:
    the canary's pod cannot be scheduled, so the plan becomes Borrow, the one stable pod goes
    (its GPU to the canary), the routing table says the primary is lent, and a promotion hands
    over to the primary Deployment once the canary's GPUs are free."""
    ns = test_namespace
    eventually(lambda: _gpus_requested() == 0, 120, "no other pod holding a GPU")
    apply(pmd_manifest(NAME, ns, rollout={"steps": STEPS}))
    kubectl("wait", "--for=condition=Ready", f"pmd/{NAME}", "-n", ns, "--timeout=90s")
    kubectl("patch", "pmd", NAME, "-n", ns, "--type=merge", "-p",
            json.dumps({"spec": {"primary": {"gpu": 2}}}))  # fmt: skip
    borrowed = eventually(lambda: _rollout(ns).get("plan") == "Borrow" and _rollout(ns), 60,
                          "the Borrow plan")  # fmt: skip
    assert "the stable pod's GPUs go to the canary" in borrowed["planReason"]
    eventually(lambda: _rollout(ns).get("canaryWeight") == 10, 90, "the canary ready")
    primary = kubectl_json("get", "deployment", f"{NAME}-primary", "-n", ns)
    assert primary["spec"]["replicas"] == 0
    assert _routing(ns)["primary"] == "lent"

    _pizza("promote", NAME, "-n", ns)
    eventually(lambda: _rollout(ns).get("handedOver"), 90, "handed over")
    eventually(lambda: not _canary_pods(ns), 60, "the canary's pods gone")

    def primary_ready() -> bool:
        dep = kubectl_json("get", "deployment", f"{NAME}-primary", "-n", ns)
        limits = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["limits"]
        return bool(
            dep["spec"]["replicas"] == 1
            and limits.get("nvidia.com/gpu") == "2"
            and dep["status"].get("readyReplicas") == 1
        )

    eventually(primary_ready, 90, "the primary on both GPUs")
    assert _routing(ns)["primary"] == "awake"
    assert "canaryUrl" not in _routing(ns)
