"""`kubectl pizza`: the screens and the patches, from status dicts (no cluster)."""

from __future__ import annotations

import datetime
import json
from typing import Any

import pytest
from pizza_operator.kubectl_pizza import actions, render, view
from pizza_operator.kubectl_pizza.api import CliError

pytestmark = pytest.mark.unit

NOW = datetime.datetime(2026, 12, 2, 17, 0, 0, tzinfo=datetime.UTC)


def check(verdict: str, failure_rate: float, failures: int) -> dict[str, Any]:
    return {
        "time": "2026-12-02T16:59:50Z",
        "verdict": verdict,
        "reasons": ["FailureRateHigh"] if verdict == "Failed" else [],
        "values": {
            "failureRate": failure_rate,
            "latencyP95Seconds": 0.8,
            "requests": 120.0,
            "restarts": 0.0,
            "ready": 1.0,
            "desired": 1.0,
        },
        "thresholds": {
            "failureRate": 0.05,
            "latencyP95Seconds": 5.0,
            "minRequests": 20.0,
            "maxRestarts": 3.0,
        },
        "consecutiveFailures": failures,
        "healthySince": None if verdict == "Failed" else "2026-12-02T16:50:00Z",
    }


def pmd_body(mode: str = "stable") -> dict[str, Any]:
    return {
        "metadata": {"name": "pizza", "namespace": "shop", "generation": 2, "uid": "u1"},
        "spec": {"paused": False},
        "status": {
            "observedGeneration": 2,
            "mode": mode,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "FallbackServing",
                    "message": "serving from the fallback",
                    "lastTransitionTime": "2026-12-02T16:55:00Z",
                }
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
            "lastRollback": {
                "number": 1,
                "from": "primary",
                "to": "stable",
                "reason": "PrimaryFailed",
                "message": "failureRate 0.3 > 0.05",
                "values": {"failureRate": 0.3},
                "time": "2026-12-02T16:55:00Z",
                "generation": 2,
                "revision": "pizza-bbb",
            },
            "currentRevision": "pizza-bbb",
            "revisionOutcomes": {"pizza-aaa": "Good", "pizza-bbb": "Failed"},
        },
    }


def pods() -> list[dict[str, Any]]:
    def pod(component: str, node: str | None, **extra: Any) -> dict[str, Any]:
        return {
            "metadata": {"labels": {"app.kubernetes.io/component": component}, **extra},
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
    {
        "type": "Normal" if i % 2 else "Warning",
        "reason": f"R{i}",
        "message": f"event {i}",
        "lastTimestamp": f"2026-12-02T16:5{i}:00Z",
    }
    for i in range(7)
]


def revision(number: int, name: str) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "labels": {"pizza.ai/revision-hash": name.rsplit("-", 1)[1]},
            "annotations": {"pizza.ai/applied-at": f"2026-12-02T1{number}:00:00Z"},
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
        sigs = {s["signal"]: s for s in view.signals(check("Failed", 0.3, 3))}
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
        scaled_down = {**check("Inconclusive", 0.3, 0), "reasons": ["ScaledDown"]}
        sigs = {s["signal"]: s for s in view.signals(scaled_down)}
        assert sigs["failureRate"]["value"] == 0.3 and sigs["failureRate"]["ok"] is None
        assert sigs["failureRate"]["skipped"] == "scaled down, not judged"
        lines = render._signal_lines({"signals": list(sigs.values())}, render.PLAIN)
        assert not any("FAIL" in line for line in lines)
        assert any("0.3" in line and "scaled down, not judged" in line for line in lines)

    def test_threshold_without_value_is_listed(self) -> None:
        sigs = view.signals({"values": {}, "thresholds": {"failureRate": 0.05}})
        assert sigs == [
            {"signal": "failureRate", "value": None, "threshold": 0.05, "op": "<=", "ok": None}
        ]


class TestStatusScreen:
    def data(self) -> dict[str, Any]:
        return view.status_view(pmd_body(), pods(), NODES, EVENTS)

    def test_view_is_json_and_complete(self) -> None:
        data = self.data()
        json.dumps(data)
        assert data["mode"] == "stable"
        assert data["ready"]["status"] == "True"
        assert data["components"]["fallback"]["readyReplicas"] == 2
        assert data["analysis"]["primary"]["consecutiveFailures"] == 3
        assert data["lastRollback"]["to"] == "stable"
        assert data["servingRevision"] == "pizza-bbb"  # unset: the current one
        assert [e["reason"] for e in data["events"]] == ["R2", "R3", "R4", "R5", "R6"]

    def test_plain_text(self) -> None:
        text = render.render_status(self.data(), NOW)
        assert "\x1b[" not in text
        assert "PizzaModelDeployment shop/pizza   mode: stable   Ready: True" in text
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
        body = {"metadata": {"name": "x", "namespace": "y"}, "spec": {}}
        text = render.render_status(view.status_view(body, [], {}, []), NOW)
        assert "mode: primary   Ready: Unknown" in text
        assert "Analysis: none yet" in text
        assert "Last rollback: none" in text
        assert "Events: none" in text

    def test_paused_is_shown(self) -> None:
        body = pmd_body()
        body["spec"]["paused"] = True
        assert "PAUSED" in render.render_status(view.status_view(body, [], {}, []), NOW)


class TestListAndHistory:
    def test_list_line(self) -> None:
        row = view.list_row(pmd_body())
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
        assert line.split()[:7] == ["shop", "pizza", "stable", "True", "0/1", "2/2", "30.0%"]
        assert line.endswith("stable (PrimaryFailed, 5m ago)")

    def test_list_empty(self) -> None:
        assert render.render_list([], NOW) == "No PizzaModelDeployments found.\n"

    def test_history_markers(self) -> None:
        body = pmd_body()
        body["status"]["servingRevision"] = "pizza-aaa"
        rows = view.history_view(body, REVISIONS)
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

    def test_known_good_is_the_newest_good(self) -> None:
        outcomes = {"pizza-aaa": "Good", "pizza-bbb": "Good"}
        assert view.known_good(REVISIONS, outcomes) == "pizza-bbb"
        assert view.known_good(REVISIONS, {}) is None


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
        body = pmd_body()
        assert actions.rollback_target(body, REVISIONS, "previous", None) is None
        assert actions.rollback_target(body, REVISIONS, "previous", 3) == "pizza-ccc"
        assert actions.rollback_target(body, [], "stable", None) is None
        change = actions.rollback("shop", "pizza", "previous", "pizza-ccc", "17")
        assert change.patch["metadata"]["annotations"] == {
            "pizza.ai/rollback": "previous:pizza-ccc@17"
        }
        plain = actions.rollback("shop", "pizza", "emergency", None, "18")
        assert plain.patch["metadata"]["annotations"] == {"pizza.ai/rollback": "emergency@18"}

    def test_rollback_errors(self) -> None:
        body = pmd_body()
        body["status"]["revisionOutcomes"] = {"pizza-bbb": "Failed"}
        with pytest.raises(CliError, match="no known-good revision"):
            actions.rollback_target(body, REVISIONS, "previous", None)
        with pytest.raises(CliError, match=r"unknown revision 9 of shop/pizza \(revisions: 1, 2"):
            actions.rollback_target(body, REVISIONS, "previous", 9)
        with pytest.raises(CliError, match="--revision goes with --to previous"):
            actions.rollback_target(body, REVISIONS, "stable", 1)

    def test_token_is_unix_ms(self) -> None:
        stamp = int(actions.token())
        assert abs(stamp / 1000 - datetime.datetime.now(datetime.UTC).timestamp()) < 5
