"""`kubectl pizza`: the screens and the patches, from statuses built from the contract (no
cluster)."""

from __future__ import annotations

import copy
import datetime
import json
import subprocess
import sys
from typing import Any

import pytest
from pizza_operator import contract
from pizza_operator.api.v1alpha1 import ComponentCheck, PizzaModelDeployment, Verdict
from pizza_operator.kubectl_pizza import actions, render, view
from pizza_operator.kubectl_pizza.api import CliError, typed

from .test_kubectl_pizza_fixtures import component_check, condition, event, last_rollback

pytestmark = pytest.mark.unit

NOW = datetime.datetime(2026, 12, 2, 17, 0, 0, tzinfo=datetime.UTC)


VALUES = {
    "latencyP95Seconds": 0.8,
    "requests": 120.0,
    "restarts": 0.0,
    "ready": 1.0,
    "desired": 1.0,
}
SPEC = {
    "primary": {"model": {"name": "vlm", "backend": "vlm", "source": "hf://org/vlm"}},
    "fallback": {"model": {"name": "cnn", "backend": "cnn", "source": "builtin://cnn"}},
    "paused": False,
}


def check(verdict: Verdict, failure_rate: float, failures: int) -> dict[str, Any]:
    return component_check(
        verdict,
        ["FailureRate"] if verdict == "Failed" else [],
        {"failureRate": failure_rate, **VALUES},
        time="2026-12-02T16:59:50Z",
        failures=failures,
        healthy_since=None if verdict == "Failed" else "2026-12-02T16:50:00Z",
    )


def typed_check(**fields: Any) -> ComponentCheck:
    return ComponentCheck(time="2026-12-02T16:59:50Z", verdict="Inconclusive", **fields)


def pmd_body(mode: str = "stable") -> dict[str, Any]:
    """Rolled back to stable with the primary still pending (so not Ready)."""
    return {
        "metadata": {"name": "pizza", "namespace": "shop", "generation": 2, "uid": "u1"},
        "spec": copy.deepcopy(SPEC),
        "status": {
            "observedGeneration": 2,
            "mode": mode,
            "conditions": [
                condition(
                    "Ready",
                    "False",
                    "ComponentsNotReady",
                    "waiting for primary 0/1 ready",
                    "2026-12-02T16:55:00Z",
                )
            ],
            "primary": {"readyReplicas": 0, "replicas": 1, "summary": "0/1"},
            "fallback": {"readyReplicas": 2, "replicas": 2, "summary": "2/2"},
            "router": {"readyReplicas": 2, "replicas": 2, "summary": "2/2"},
            "errorRate": 0.3,
            "analysis": {
                "source": "scrape",
                "checks": 42,
                "inconclusive": 3,
                "primary": check("Failed", 0.3, 3),
                "fallback": check("Healthy", 0.0, 0),
                "clientErrorRate": 0.0,
                "clientRequests": 300.0,
                "fallbackReasons": {"error": 36.0},
            },
            "lastRollback": last_rollback(
                1,
                "primary",
                "stable",
                "PrimaryFailed",
                "failureRate 0.3 > 0.05",
                values={"failureRate": 0.3},
                time="2026-12-02T16:55:00Z",
                generation=2,
            ),
            "currentRevision": "pizza-bbb",
            "revisionOutcomes": {"pizza-aaa": "Good", "pizza-bbb": "Failed"},
        },
    }


def pmd(body: dict[str, Any] | None = None) -> PizzaModelDeployment:
    return PizzaModelDeployment.from_body(body or pmd_body())


def pods() -> list[dict[str, Any]]:
    def pod(component: str, node: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "metadata": {"labels": {contract.COMPONENT_LABEL: component}, **extra},
            "spec": {"nodeName": node} if node else {},
            "status": {"phase": "Running" if node else "Pending"},
        }

    return [
        pod("primary", None),
        pod("fallback", "cpu-0"),
        pod("fallback", "cpu-1"),
        pod("router", "cpu-0"),
        pod("router", "cpu-0"),
        pod("router", "cpu-1", deletionTimestamp="2026-12-02T16:59:00Z"),
    ]


NODES: dict[str, dict[str, Any] | None] = {
    "cpu-0": {"metadata": {"labels": {}}, "status": {"capacity": {"cpu": "8"}}},
    "cpu-1": None,
}

EVENTS = [
    event(
        "Normal" if i % 2 else "Warning",
        contract.EVENT_REASONS[i],
        f"event {i}",
        f"2026-12-02T16:5{i}:00Z",
    )
    for i in range(7)
]


def revision(number: int, name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {contract.REVISION_HASH_LABEL: name.rsplit("-", 1)[1]},
            "annotations": {contract.APPLIED_AT_ANNOTATION: f"2026-12-02T1{number}:00:00Z"},
        },
        "revision": number,
    }


REVISIONS = [revision(2, "pizza-bbb"), revision(1, "pizza-aaa"), revision(3, "pizza-ccc")]


class TestNodesAndSignals:
    def test_node_type(self) -> None:
        assert view.node_type({"status": {"capacity": {"nvidia.com/gpu": "2"}}}) == "GPU"
        gpu_label = {"metadata": {"labels": {"nvidia.com/gpu.present": "true"}}}
        assert view.node_type(gpu_label) == "GPU"
        assert view.node_type({"status": {"capacity": {"nvidia.com/gpu": "0"}}}) == "CPU"
        assert view.node_type(None) == "?"

    def test_component_pods_skip_terminating_and_count_pending(self) -> None:
        placed = view.component_pods(pods(), NODES)
        assert placed["primary"] == {"nodes": [], "pending": 1}
        assert placed["router"]["nodes"] == [{"name": "cpu-0", "type": "CPU", "pods": 2}]
        assert [n["type"] for n in placed["fallback"]["nodes"]] == ["CPU", "?"]

    def test_signals_against_thresholds(self) -> None:
        failed = ComponentCheck.model_validate(check("Failed", 0.3, 3))
        sigs = {s["signal"]: s for s in view.signals(failed)}
        assert sigs["failureRate"] == {
            "signal": "failureRate",
            "value": 0.3,
            "threshold": 0.05,
            "op": "<=",
            "ok": False,
        }
        assert sigs["requests"]["threshold"] == 20.0
        assert sigs["requests"]["ok"] is True
        assert sigs["ready"]["threshold"] == 1.0
        assert sigs["ready"]["ok"] is True
        assert "desired" not in sigs

    def test_a_scaled_down_component_is_not_judged(self) -> None:
        scaled_down = ComponentCheck.model_validate(
            component_check(
                "Inconclusive",
                ["ScaledDown"],
                {"failureRate": 0.3, **VALUES},
                time="2026-12-02T16:59:50Z",
            )
        )
        sigs = {s["signal"]: s for s in view.signals(scaled_down)}
        assert sigs["failureRate"]["value"] == 0.3 and sigs["failureRate"]["ok"] is None
        assert sigs["failureRate"]["skipped"] == "scaled down, not judged"
        lines = render._signal_lines({"signals": list(sigs.values())}, render.PLAIN)
        assert not any("FAIL" in line for line in lines)
        assert any("0.3" in line and "scaled down, not judged" in line for line in lines)

    def test_threshold_without_value_is_listed(self) -> None:
        sigs = view.signals(typed_check(thresholds={"failureRate": 0.05}))
        assert sigs == [
            {"signal": "failureRate", "value": None, "threshold": 0.05, "op": "<=", "ok": None}
        ]


class TestStatusScreen:
    def data(self) -> dict[str, Any]:
        return view.status_view(pmd(), pods(), NODES, EVENTS)

    def test_view_is_json_and_complete(self) -> None:
        data = self.data()
        json.dumps(data)
        assert data["mode"] == "stable"
        assert data["ready"] == {
            "status": "False",
            "reason": "ComponentsNotReady",
            "message": "waiting for primary 0/1 ready",
        }
        assert data["components"]["fallback"]["readyReplicas"] == 2
        assert data["analysis"]["primary"]["consecutiveFailures"] == 3
        assert data["lastRollback"]["to"] == "stable"
        assert data["servingRevision"] == "pizza-bbb"  # unset: the current one
        assert [e["message"] for e in data["events"]] == [f"event {i}" for i in range(2, 7)]
        assert [e["reason"] for e in data["events"]] == list(contract.EVENT_REASONS[2:7])

    def test_plain_text(self) -> None:
        text = render.render_status(self.data(), NOW)
        assert "\x1b[" not in text
        assert text.startswith(
            "PizzaModelDeployment shop/pizza   mode: stable   Ready: False (ComponentsNotReady)\n"
            "  waiting for primary 0/1 ready\n"
        )
        assert "    reasons: FailureRate\n" in text
        assert "fallback   2/2    cpu-0 (CPU), cpu-1 (?)" in text
        assert "router     2/2    cpu-0 (CPU) x2" in text
        assert "primary    0/1    1 pending" in text
        assert "primary   Failed   3 consecutive failures" in text
        assert "fallback  Healthy   0 consecutive failures" in text
        assert "failureRate        0.3  <= 0.05  FAIL" in text
        assert "ready              1    >= 1     ok" in text
        assert "desired" not in text
        assert "requests           120  >= 20    ok" in text
        assert "Last rollback #1: primary -> stable   reason PrimaryFailed" in text
        assert "2026-12-02T16:55:00Z (5m ago)" in text
        assert "failureRate 0.3 > 0.05" in text
        assert "Events (last 5):" in text
        assert "event 1" not in text
        assert "event 6" in text

    def test_colour_only_when_asked(self) -> None:
        text = render.render_status(self.data(), NOW, render.Style(True))
        assert "\x1b[33mstable\x1b[0m" in text
        assert "\x1b[31mFAIL\x1b[0m" in text
        # the columns line up as in the plain screen
        plain = render.render_status(self.data(), NOW)
        assert render._strip(text) == plain

    def test_empty_status(self) -> None:
        body = {"metadata": {"name": "x", "namespace": "y"}, "spec": SPEC}
        text = render.render_status(view.status_view(pmd(body), [], {}, []), NOW)
        assert "mode: primary   Ready: Unknown" in text
        assert "Analysis: none yet" in text
        assert "Last rollback: none" in text
        assert "Events: none" in text

    def test_paused_is_shown(self) -> None:
        body = pmd_body()
        body["spec"] = {**SPEC, "paused": True}
        assert "PAUSED" in render.render_status(view.status_view(pmd(body), [], {}, []), NOW)


class TestListAndHistory:
    def test_list_line(self) -> None:
        row = view.list_row(pmd())
        text = render.render_list([row], NOW)
        header, line = text.splitlines()
        assert header.split() == [
            "NAMESPACE",
            "NAME",
            "MODE",
            "READY",
            "PRIMARY",
            "FALLBACK",
            "ERROR-RATE",
            "LAST-ROLLBACK",
        ]
        assert line.split()[:7] == ["shop", "pizza", "stable", "False", "0/1", "2/2", "30.0%"]
        assert line.endswith("stable (PrimaryFailed, 5m ago)")

    def test_list_empty(self) -> None:
        assert render.render_list([], NOW) == "No PizzaModelDeployments found.\n"

    def test_history_markers(self) -> None:
        body = pmd_body()
        body["status"]["servingRevision"] = "pizza-aaa"
        rows = view.history_view(pmd(body), REVISIONS)
        assert [r["revision"] for r in rows] == [1, 2, 3]
        assert [r["outcome"] for r in rows] == ["Good", "Failed", "Pending"]
        text = render.render_history(rows).splitlines()
        assert text[1].split() == [
            "1",
            "pizza-aaa",
            "aaa",
            "2026-12-02T11:00:00Z",
            "Good",
            "serving,",
            "known-good",
        ]
        assert text[2].split()[-2:] == ["Failed", "current"]
        assert text[3].split()[-1] == "-"

    def test_known_good_is_the_newest_good_but_the_current(self) -> None:
        """The operator's rule (`contract.known_good`): `previous` never goes back to the
        revision of the spec as it is now."""

        def marked(current: str) -> list[str]:
            body = pmd_body()
            body["status"]["revisionOutcomes"] = {"pizza-aaa": "Good", "pizza-bbb": "Good"}
            body["status"]["currentRevision"] = current
            return [r["name"] for r in view.history_view(pmd(body), REVISIONS) if r["knownGood"]]

        assert marked("pizza-ccc") == ["pizza-bbb"]
        assert marked("pizza-bbb") == ["pizza-aaa"]
        body = pmd_body()
        body["status"]["revisionOutcomes"] = {}
        assert not any(r["knownGood"] for r in view.history_view(pmd(body), REVISIONS))


class TestActions:
    def test_retry_command(self) -> None:
        change = actions.retry("shop", "pizza", "1733150000123")
        assert change.patch == {"metadata": {"annotations": {"pizza.ai/retry": "1733150000123"}}}
        assert change.command() == (
            "kubectl -n shop annotate pmd/pizza pizza.ai/retry=1733150000123 --overwrite"
        )

    def test_pause_command(self) -> None:
        change = actions.set_paused("shop", "pizza", True)
        assert change.patch == {"spec": {"paused": True}}
        assert change.command(("--context", "c")) == (
            "kubectl --context c -n shop patch pmd/pizza --type=merge -p "
            """'{"spec":{"paused":true}}'"""
        )

    def test_rollback_values(self) -> None:
        asked = actions.rollback_request(pmd(), REVISIONS, "previous", None, "17")
        assert asked == contract.RollbackRequest("previous", None, "17")
        named = actions.rollback_request(pmd(), REVISIONS, "previous", 3, "17")
        assert named == contract.RollbackRequest("previous", "pizza-ccc", "17")
        stable = actions.rollback_request(pmd(), [], "stable", None, "18")
        assert stable == contract.RollbackRequest("stable", None, "18")
        change = actions.rollback("shop", "pizza", named)
        annotations = change.patch["metadata"]["annotations"]
        assert annotations == {contract.ROLLBACK_ANNOTATION: "previous:pizza-ccc@17"}
        assert contract.RollbackRequest.decode(annotations[contract.ROLLBACK_ANNOTATION]) == named
        assert change.summary == "asked shop/pizza to roll back to previous (pizza-ccc)"
        plain = actions.rollback("shop", "pizza", contract.RollbackRequest("emergency", None, "18"))
        assert plain.patch["metadata"]["annotations"] == {"pizza.ai/rollback": "emergency@18"}

    def test_rollback_errors(self) -> None:
        body = pmd_body()
        body["status"]["revisionOutcomes"] = {"pizza-bbb": "Failed"}
        with pytest.raises(CliError, match="no known-good revision"):
            actions.rollback_request(pmd(body), REVISIONS, "previous", None, "1")
        body["status"]["revisionOutcomes"] = {"pizza-bbb": "Good"}  # the current one
        with pytest.raises(CliError, match="other than the current one is marked Good"):
            actions.rollback_request(pmd(body), REVISIONS, "previous", None, "1")
        with pytest.raises(CliError, match=r"unknown revision 9 of shop/pizza \(revisions: 1, 2"):
            actions.rollback_request(pmd(body), REVISIONS, "previous", 9, "1")
        # the target is checked as the operator checks it (RollbackRequest.problem)
        with pytest.raises(
            CliError, match="--revision goes with --to previous only, not --to stable"
        ):
            actions.rollback_request(pmd(body), REVISIONS, "stable", 1, "1")
        with pytest.raises(CliError, match="unknown target 'sideways'"):
            actions.rollback_request(pmd(body), REVISIONS, "sideways", None, "1")

    def test_token_is_unix_ms(self) -> None:
        stamp = int(actions.token())
        assert abs(stamp / 1000 - datetime.datetime.now(datetime.UTC).timestamp()) < 5


class TestTypedRead:
    def test_the_status_is_read_as_the_operator_reads_it(self) -> None:
        body = pmd_body()
        body["status"]["analysis"]["primary"]["consecutiveFailures"] = "many"
        with pytest.raises(CliError, match=r"shop/pizza cannot be read: status\.analysis"):
            typed(body)
        assert typed(pmd_body()) == pmd()

    def test_json_keys(self) -> None:
        """The keys of `-o json` are part of the CLI contract (docs/kubectl-pizza.md)."""
        data = view.status_view(pmd(), pods(), NODES, EVENTS)
        assert sorted(data) == sorted(
            [
                "namespace", "name", "generation", "observedGeneration", "paused", "mode",
                "ready", "errorRate", "components", "analysis", "autoscaling", "lastRollback",
                "currentRevision", "servingRevision", "rollout", "bakeEnds", "events",
            ]
        )  # fmt: skip
        assert sorted(data["components"]["primary"]) == [
            "nodes", "pending", "readyReplicas", "replicas", "summary"
        ]  # fmt: skip
        assert sorted(data["analysis"]) == sorted(
            [
                "source", "checks", "inconclusive", "clientErrorRate", "clientRequests",
                "fallbackReasons", "primary", "fallback",
            ]
        )  # fmt: skip
        assert sorted(data["analysis"]["primary"]) == sorted(
            ["time", "verdict", "reasons", "consecutiveFailures", "healthySince", "signals"]
        )
        assert data["lastRollback"] == pmd_body()["status"]["lastRollback"]
        assert sorted(data["events"][0]) == ["count", "message", "reason", "time", "type"]
        assert sorted(view.list_row(pmd())) == sorted(
            [
                "namespace", "name", "mode", "ready", "primary", "fallback", "errorRate",
                "lastRollback",
            ]
        )  # fmt: skip
        assert sorted(view.history_view(pmd(), REVISIONS)[0]) == sorted(
            [
                "revision", "name", "hash", "appliedAt", "outcome", "current", "serving",
                "knownGood",
            ]
        )  # fmt: skip


def test_the_plugin_imports_without_kopf() -> None:
    """`kubectl pizza` is a client: it needs the contract and the typed API, never kopf."""
    code = (
        "import sys; sys.modules['kopf'] = None; "
        "import pizza_operator.kubectl_pizza.cli, pizza_operator.contract; "
        "assert sys.modules['kopf'] is None"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr


class TestAutoscalingScreen:
    def test_the_decisions_are_shown(self) -> None:
        body = pmd_body()
        body["status"]["autoscaling"] = {
            "primary": {"wanted": 0, "reason": "idle for 900 s", "time": "2026-12-04T10:00:00Z",
                        "asleep": True, "lastDemand": "2026-12-04T09:45:00Z"},
            "fallback": {"wanted": 3, "reason": "5 in flight, 2 per pod: up to 3",
                         "time": "2026-12-04T10:00:05Z", "inFlight": 5},
        }  # fmt: skip
        data = view.status_view(pmd(body), pods(), NODES, EVENTS)
        assert data["autoscaling"]["primary"]["asleep"] is True
        screen = render.render_status(data, NOW)
        assert "Autoscaling:" in screen
        assert "0 (asleep)" in screen
        assert "5 in flight, 2 per pod: up to 3" in screen


class TestRolloutScreen:
    def _promoted(self, mode: str) -> dict[str, Any]:
        body = pmd_body()
        body["status"]["mode"] = mode
        body["status"]["currentRevision"] = "pizza-c3"
        body["status"]["rollout"] = {
            "phase": "Promoted", "revision": "pizza-c3", "stableRevision": "pizza-b2",
            "step": 1, "canaryWeight": 0, "plan": "Surge", "reason": "every step healthy",
            "startedAt": "2026-12-02T16:55:00Z", "stepStartedAt": "2026-12-02T16:57:00Z",
            "finishedAt": "2026-12-02T16:58:00Z", "handedOver": True,
        }  # fmt: skip
        return body

    def test_the_bake_time_is_shown_while_it_lasts(self) -> None:
        data = view.status_view(pmd(self._promoted("primary")), pods(), NODES, EVENTS)
        assert data["bakeEnds"] == "2026-12-02T17:03:00Z"  # finishedAt + the default 5m
        screen = render.render_status(data, NOW)
        assert "Rollout: Promoted" in screen
        assert (
            "  baking until 2026-12-02T17:03:00Z (180s left): one failed check goes back to "
            "pizza-b2\n"
        ) in screen
        later = NOW + datetime.timedelta(minutes=4)
        assert "baking" not in render.render_status(data, later)

    def test_no_bake_once_stepped_back(self) -> None:
        data = view.status_view(pmd(self._promoted("previous")), pods(), NODES, EVENTS)
        assert data["bakeEnds"] is None
        assert "baking" not in render.render_status(data, NOW)
