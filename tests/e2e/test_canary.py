"""The canary of a new primary revision on the real nodes, under bounded load through the
router's Service, nothing mocked: the operator installed by its chart, the local sample run from
the test-only wrong-model image (pizza-serve-cpu plus tests/models/wrong-pizza-net), a load
generator on this machine.

A healthy new revision (the same model, its pods reshaped) walks every step and is promoted, with
every client answered and no router pod replaced; then a revision that answers fast, confidently
and wrongly (the test-only model) is aborted on prediction agreement alone, after serving no more
than its first step's share of the clients, and the stable primary takes all primary traffic
again; a revision that never becomes ready is aborted before any client meets it; with no spare
GPU the stable pod is lent and the revision still promoted with every client answered.

Held at one step (no pause): an SRE's abort; a canary whose server hangs, aborted on its failure
rate; an SRE's promote, and then a failure of the promoted revision within its bake time, which
goes straight back to the revision it replaced. The figures go to .cluster/e2e-canary/ (records,
timeline PNGs) and to stderr."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from pizza_devcluster.pytest_plugin import requires_real_nodes
from pizza_load.freeze import signal_container
from pizza_load.loadgen import LoadGenerator, summary

from tests.e2e.product import ROOT, Kubectl, generated_images
from tests.e2e.rollback import (
    OPERATOR_NAMESPACE,
    PRIMARY_MODEL,
    Scenario,
    Timeline,
    frozen,
    keep_logs,
    router_load,
    sample_manifest,
)
from tests.e2e.testimages import WRONG_MODEL, WRONG_MODEL_NAME
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

RATE = 8.0
ARTIFACTS = ROOT / ".cluster" / "e2e-canary"
FIRST_WEIGHT = 20
STEPS = [{"weight": FIRST_WEIGHT, "pause": "20s"}, {"weight": 50, "pause": "20s"}]
HELD = [{"weight": FIRST_WEIGHT}]
READY_WITHIN = 45
MIN_AGREEMENT = 0.8
"""With the stable primary's one pod lent to the canary (no spare GPU), the fallback is the
agreement's reference: MicroPizzaNet agrees with the ConvNeXt primary on 97 % of the test split
(docs/models.md), so 0.8, not the default 0.9, keeps a healthy canary from a chance abort; the
wrong model agrees on about 0 %."""
PLUGIN = Path(sys.executable).parent / "kubectl-pizza"
MARGIN = 0.10
"""How much more than the first step's weight a bad canary may answer before its abort: the
share of requests meant for the primary it gets is a random draw per request (20 % of about 60
requests in a step), and the requests in flight at the abort finish with the canary."""


def _deployed(kubectl: Kubectl, image: str, namespace: str, steps: list[Any]) -> Scenario:
    scenario = Scenario(kubectl, namespace, "canary")
    scenario.apply(
        sample_manifest(
            "canary",
            image=image,
            analysis={"interval": "5s", "window": "30s"},
            # p95 within 3x the stable's: two pods on a shared 2-core machine, tens of samples
            rollout={
                "steps": steps,
                "every": "2s",
                "readyWithin": f"{READY_WITHIN}s",
                "gates": {"maxP95Ratio": 3, "minAgreement": MIN_AGREEMENT},
            },
        )
    )
    scenario.wait_ready()
    return scenario


@pytest.fixture
def canary(
    kubectl: Kubectl, operator_release: str, wrong_model_image_ref: str
) -> Iterator[Scenario]:
    scenario = _deployed(kubectl, wrong_model_image_ref, "e2e-canary", STEPS)
    yield scenario
    scenario.delete()


@pytest.fixture
def held_canary(
    kubectl: Kubectl, operator_release: str, wrong_model_image_ref: str
) -> Iterator[Scenario]:
    """One step with no pause: the canary stays at its weight until an SRE or a gate ends it."""
    scenario = _deployed(kubectl, wrong_model_image_ref, "e2e-canary-held", HELD)
    yield scenario
    scenario.delete()


def _rollout(sc: Scenario) -> dict[str, Any]:
    return dict(sc.status().get("rollout") or {})


def _router_uids(sc: Scenario) -> set[str]:
    return {p["metadata"]["uid"] for p in sc.pods("router")}


def _kill_the_leader(sc: Scenario) -> str:
    """SIGKILL every process of the leading operator's container (the Lease holder's pod)."""
    holder = sc.kubectl.json("-n", OPERATOR_NAMESPACE, "get", "lease", "pizza-operator")
    pod_name = holder["spec"]["holderIdentity"].rsplit("-", 1)[0]
    pod = sc.kubectl.json("-n", OPERATOR_NAMESPACE, "get", "pod", pod_name)
    assert signal_container(pod, "operator", signal.SIGKILL), pod_name
    return pod_name


def _answered_by(gen: LoadGenerator, model: str, since: float) -> bool:
    return any(r.t >= since and r.model_used == model for r in gen.records)


@dataclass
class Observed:
    """A scenario's load through the router's Service, its timeline and its figures."""

    gen: LoadGenerator
    timeline: Timeline
    figures: dict[str, Any] = field(default_factory=dict)


@contextmanager
def _observed(sc: Scenario, name: str, seed: int, title: str) -> Iterator[Observed]:
    """Load from fresh images of `seed` until the primary answers, then the block; after it
    (failed or not) the operator's logs, `NAME-figures.json` and the timeline `NAME.png` in
    ARTIFACTS; the figures to stderr when the block passed."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    images = [p.read_bytes() for p in generated_images(seed=seed)]
    run = Observed(router_load(sc, images, ARTIFACTS / f"{name}.jsonl", RATE).start(),
                   Timeline(sc).start())  # fmt: skip
    try:
        eventually(lambda: _answered_by(run.gen, PRIMARY_MODEL, 0.0), 60, "the primary answering")
        yield run
    finally:
        run.gen.stop()
        run.timeline.stop()
        keep_logs(sc.kubectl, sc.namespace, ARTIFACTS)
        (ARTIFACTS / f"{name}-figures.json").write_text(json.dumps(run.figures, indent=2) + "\n")
        run.timeline.draw(run.gen.records, ARTIFACTS / f"{name}.png", title)
    print(f"canary e2e ({name}): {json.dumps(run.figures)}", file=sys.stderr)


def test_healthy_canary_promoted_then_wrong_canary_aborted_on_agreement(
    canary: Scenario,
) -> None:
    sc = canary
    routers = _router_uids(sc)
    with _observed(sc, "canary", 6161, "canary: healthy, then wrong") as run:
        gen, timeline, figures = run.gen, run.timeline, run.figures
        stable = sc.status()["currentRevision"]

        # ---- a healthy revision: every step, promoted, handed over ---------------------------
        began = timeline.mark("healthy revision")
        sc.patch_spec({"primary": {"resources": {"requests": {"cpu": "300m"}}}})
        rollout = eventually(lambda: _rollout(sc).get("stableRevision") == stable and _rollout(sc),
                             30, "a rollout")  # fmt: skip
        # the leading operator SIGKILLed in the first step: the next leader carries the rollout on
        eventually(lambda: _rollout(sc).get("canaryWeight", 0) > 0, 120, "the first step")
        timeline.mark(f"operator {_kill_the_leader(sc)} killed")
        eventually(lambda: _rollout(sc).get("phase") == "Promoted", 240, "promoted", every=1.0)
        promoted = time.time()
        done = _rollout(sc)
        assert done["reason"] == "every step healthy", done
        eventually(lambda: _rollout(sc).get("handedOver"), 120, "handed over", every=1.0)
        handed = time.time()
        time.sleep(4)  # requests in flight at the hand-over end
        healthy = summary(gen.records, began, time.time() - 1)
        assert healthy.unanswered == 0 and healthy.server_errors == 0, healthy
        assert sc.status()["currentRevision"] == rollout["revision"]
        assert len(sc.events("RolloutStarted")) == 1
        assert len(sc.events("RolloutStep")) == len(STEPS) - 1
        assert len(sc.events("RolloutPromoted")) == 1
        figures["healthy"] = {
            "promoted_after_s": round(promoted - began, 1),
            "handed_over_after_s": round(handed - began, 1),
            "requests": healthy.sent,
            "client_errors": healthy.unanswered,
        }

        # ---- a fast, confident, wrong revision: aborted on agreement -------------------------
        stable = rollout["revision"]
        began = timeline.mark("wrong revision")
        sc.patch_spec({"primary": {"model": dict(WRONG_MODEL)}})
        eventually(lambda: _rollout(sc).get("stableRevision") == stable, 30, "a second rollout")
        eventually(lambda: _rollout(sc).get("phase") == "Aborted", 240, "aborted", every=1.0)
        aborted = time.time()
        wrong = _rollout(sc)
        assert "agreement" in wrong["reason"], wrong
        assert "failure rate" not in wrong["reason"], wrong  # it answered: only the classes tell
        time.sleep(4)
        during = summary(gen.records, began, aborted)
        meant = [r for r in gen.records if began <= r.t < aborted and r.model_used is not None]
        by_wrong = sum(r.model_used == WRONG_MODEL_NAME for r in meant)
        share = by_wrong / len(meant)
        assert share <= FIRST_WEIGHT / 100 + MARGIN, (share, during)
        after = summary(gen.records, began, time.time() - 1)
        assert after.unanswered == 0 and after.server_errors == 0, after
        status = sc.status()
        assert status["revisionOutcomes"][wrong["revision"]] == "Failed"
        assert status["currentRevision"] == stable
        assert len(sc.events("RolloutAborted")) == 1
        back = time.time()
        eventually(lambda: not sc.pods("canary"), 60, "the canary's pods gone")
        time.sleep(5)
        assert not any(
            r.model_used == WRONG_MODEL_NAME for r in gen.records if r.t >= time.time() - 4
        )
        assert _answered_by(gen, PRIMARY_MODEL, back)
        assert _router_uids(sc) == routers  # no router pod replaced by any step
        figures["wrong"] = {
            "aborted_after_s": round(aborted - began, 1),
            "reason": wrong["reason"],
            "agreement": (wrong.get("signals") or {}).get("agreement"),
            "answered_by_the_wrong_model": by_wrong,
            "answered": len(meant),
            "share": round(share, 3),
            "client_errors": after.unanswered,
        }

        # ---- a revision that never becomes ready: aborted, no client ever sent to it --------
        began = timeline.mark("never-ready revision")
        missing = {**dict(WRONG_MODEL), "source": "builtin://no-such-model"}
        sc.patch_spec({"primary": {"model": missing}})
        eventually(lambda: _rollout(sc).get("revision") not in (None, wrong["revision"]), 30,
                   "a third rollout")  # fmt: skip
        eventually(lambda: _rollout(sc).get("phase") == "Aborted", READY_WITHIN + 90, "aborted",
                   every=1.0)  # fmt: skip
        aborted = time.time()
        never = _rollout(sc)
        assert never["reason"] == f"canary not ready within {READY_WITHIN} s", never
        time.sleep(4)
        after = summary(gen.records, began, time.time() - 1)
        assert after.unanswered == 0 and after.server_errors == 0, after
        assert WRONG_MODEL_NAME not in {r.model_used for r in gen.records if r.t >= began}
        assert sc.status()["revisionOutcomes"][never["revision"]] == "Failed"
        assert len(sc.events("RolloutAborted")) == 2
        figures["never_ready"] = {
            "aborted_after_s": round(aborted - began, 1),
            "reason": never["reason"],
            "requests": after.sent,
            "client_errors": after.unanswered,
        }

        # ---- no spare GPU: the new revision asks both GPUs; the stable pod is lent ------------
        stable = sc.status()["currentRevision"]
        began = timeline.mark("no spare GPU")
        healthy_model = sample_manifest("canary")["spec"]["primary"]["model"]
        sc.patch_spec({"primary": {"gpu": 2, "model": healthy_model}})
        borrowed = eventually(lambda: _rollout(sc).get("plan") == "Borrow" and _rollout(sc), 120,
                              "the Borrow plan", every=1.0)  # fmt: skip
        assert borrowed["stableRevision"] == stable
        eventually(lambda: _rollout(sc).get("phase") == "Promoted", 300, "promoted", every=1.0)
        promoted = time.time()
        eventually(lambda: _rollout(sc).get("handedOver"), 120, "handed over", every=1.0)
        handed = time.time()  # the canary goes; the primary's new pod waits for its GPUs
        eventually(lambda: _answered_by(gen, PRIMARY_MODEL, handed + 3), 120, "the new primary")
        back = time.time()
        time.sleep(4)
        lent = summary(gen.records, began, time.time() - 1)
        assert lent.unanswered == 0 and lent.server_errors == 0, lent
        assert _router_uids(sc) == routers
        figures["no_spare_gpu"] = {
            "promoted_after_s": round(promoted - began, 1),
            "handed_over_after_s": round(handed - began, 1),
            "primary_answering_after_s": round(back - began, 1),
            "requests": lent.sent,
            "by_fallback_reason": lent.by_fallback_reason,
            "client_errors": lent.unanswered,
            "plan_reason": borrowed.get("planReason"),
        }


def _pizza(sc: Scenario, verb: str) -> None:
    argv = [
        str(PLUGIN),
        verb,
        sc.name,
        "-n",
        sc.namespace,
        "--kubeconfig",
        str(sc.kubectl.kubeconfig),
    ]
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    assert proc.returncode == 0, proc.stderr


def _held_rollout(sc: Scenario, cpu: str, stable: str) -> dict[str, Any]:
    """A new primary revision (its pods reshaped): its canary at the held step's weight."""
    sc.patch_spec({"primary": {"resources": {"requests": {"cpu": cpu}}}})
    eventually(lambda: _rollout(sc).get("stableRevision") == stable
               and _rollout(sc).get("phase") not in ("Promoted", "Aborted"), 30,
               f"a rollout to {cpu}")  # fmt: skip
    return eventually(lambda: _rollout(sc).get("canaryWeight") == FIRST_WEIGHT and _rollout(sc),
                      120, "the canary at its weight", every=1.0)  # fmt: skip


def test_sre_abort_an_erroring_canary_aborted_sre_promote_then_a_failure_while_baking(
    held_canary: Scenario,
) -> None:
    """Held at one step: `kubectl pizza abort`; a canary whose server hangs (every request to
    it times out) aborted on its failure rate; `kubectl pizza promote`; then the promoted
    revision fails once within its bake time and the resource goes straight back to the revision
    it replaced. Every client answered throughout."""
    sc = held_canary
    with _observed(sc, "held", 6262, "canary: abort, errors, promote, bake") as run:
        gen, timeline, figures = run.gen, run.timeline, run.figures
        stable = sc.status()["currentRevision"]

        # ---- an SRE aborts a canary held at its step ----------------------------------------
        began = timeline.mark("abort by an SRE")
        first = _held_rollout(sc, "300m", stable)
        _pizza(sc, "abort")
        eventually(lambda: _rollout(sc).get("phase") == "Aborted", 60, "aborted", every=1.0)
        assert _rollout(sc)["reason"] == "aborted by request"
        assert sc.status()["revisionOutcomes"][first["revision"]] == "Failed"
        assert sc.status()["currentRevision"] == stable
        eventually(lambda: not sc.pods("canary"), 60, "the canary's pods gone")
        figures["sre_abort"] = {"aborted_after_s": round(time.time() - began, 1)}

        # ---- a canary whose server hangs: aborted on its failure rate ------------------------
        began = timeline.mark("erroring canary")
        erring = _held_rollout(sc, "350m", stable)
        hung = sc.running_pods("canary")
        assert hung, "the canary's pod"
        frozen_at = timeline.mark("canary frozen")
        with frozen(hung):
            eventually(lambda: _rollout(sc).get("phase") == "Aborted", 120, "aborted", every=1.0)
            aborted = time.time()
        errored = _rollout(sc)
        assert errored["revision"] == erring["revision"]
        assert "failure rate" in errored["reason"], errored
        time.sleep(4)
        after = summary(gen.records, began, time.time() - 1)
        assert after.unanswered == 0 and after.server_errors == 0, after
        assert sc.status()["revisionOutcomes"][erring["revision"]] == "Failed"
        figures["erroring"] = {
            "aborted_after_frozen_s": round(aborted - frozen_at, 1),
            "reason": errored["reason"],
            "signals": errored.get("signals"),
            "requests": after.sent,
            "by_fallback_reason": after.by_fallback_reason,
            "client_errors": after.unanswered,
        }
        eventually(lambda: not sc.pods("canary"), 60, "the canary's pods gone")

        # ---- an SRE promotes; the promoted revision fails within its bake time ---------------
        began = timeline.mark("promote by an SRE")
        promoting = _held_rollout(sc, "400m", stable)
        _pizza(sc, "promote")
        eventually(lambda: _rollout(sc).get("handedOver"), 180, "handed over", every=1.0)
        done = _rollout(sc)
        assert done["phase"] == "Promoted" and done["reason"] == "promoted by request", done
        assert sc.status()["currentRevision"] == promoting["revision"]
        handed = time.time()
        # the new primary serves a whole analysis window before its failure can count
        eventually(lambda: _answered_by(gen, PRIMARY_MODEL, handed), 60, "the promoted primary")
        time.sleep(32)
        failing = timeline.mark("promoted primary frozen")
        with frozen(sc.running_pods("primary")):
            eventually(lambda: sc.mode() == "previous", 90, "back to previous", every=0.5)
            back = time.time()
        status = sc.status()
        last = status["lastRollback"]
        assert last["reason"] == "PrimaryFailedNewRevision", last
        assert "bake time" in last["message"], last
        assert status["servingRevision"] == stable, status
        assert len(sc.events("RolledBack")) == 1

        def replaced_serving() -> bool:  # the primary rolled back to its pods, the frozen gone
            dep = sc.deployment("primary")
            pod = dep["spec"]["template"]["spec"]["containers"][0]["resources"]["requests"]
            st, wanted = dep.get("status") or {}, dep["spec"].get("replicas", 1)
            return bool(
                pod["cpu"] != "400m"
                and st.get("observedGeneration", 0) >= dep["metadata"]["generation"]
                and st.get("replicas") == st.get("updatedReplicas") == st.get("readyReplicas")
                and st.get("readyReplicas") == wanted
            )

        eventually(replaced_serving, 120, "the replaced revision's primary", every=1.0)
        served = time.time()
        eventually(lambda: _answered_by(gen, PRIMARY_MODEL, served), 60,
                   "the replaced revision answering", every=1.0)  # fmt: skip
        time.sleep(4)
        everything = summary(gen.records, 0.0, time.time() - 1)
        assert everything.unanswered == 0 and everything.server_errors == 0, everything
        figures["bake"] = {
            "back_to_previous_after_frozen_s": round(back - failing, 1),
            "message": last["message"],
        }
        figures["requests"] = everything.sent
        figures["client_errors"] = everything.unanswered
