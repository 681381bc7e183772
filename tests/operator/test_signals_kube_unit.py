"""Kubernetes signals from Deployment and Pod JSON in the shapes the API server returns."""

from __future__ import annotations

import copy
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from pizza_operator.analysis.kube_signals import (
    count_restarts,
    kube_signals,
    startup_budget_seconds,
)
from pizza_operator.rollback import Thresholds, judge
from pizza_operator.rollback.verdicts import MetricSignals

pytestmark = pytest.mark.unit
NOW = datetime(2026, 12, 2, 14, 10, 0, tzinfo=UTC)
WINDOW = 60.0

# `kubectl get deployment pizza-classifier-primary -o json`, trimmed to what matters here.
DEPLOYMENT_JSON = """
{
  "apiVersion": "apps/v1",
  "kind": "Deployment",
  "metadata": {
    "name": "pizza-classifier-primary", "namespace": "pizzas", "generation": 3,
    "uid": "4f8a3b1e-2a8c-4a57-9d0b-0c1f7f1f6a10",
    "labels": {"app.kubernetes.io/component": "primary"}
  },
  "spec": {
    "replicas": 2, "progressDeadlineSeconds": 600, "revisionHistoryLimit": 2,
    "selector": {"matchLabels": {"app.kubernetes.io/component": "primary"}},
    "strategy": {"type": "RollingUpdate",
                 "rollingUpdate": {"maxSurge": "25%", "maxUnavailable": 0}}
  },
  "status": {
    "observedGeneration": 3, "replicas": 2, "updatedReplicas": 2, "readyReplicas": 2,
    "availableReplicas": 2,
    "conditions": [
      {"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable",
       "message": "Deployment has minimum availability.",
       "lastUpdateTime": "2026-12-02T13:50:12Z", "lastTransitionTime": "2026-12-02T13:50:12Z"},
      {"type": "Progressing", "status": "True", "reason": "NewReplicaSetAvailable",
       "message":
         "ReplicaSet \\"pizza-classifier-primary-6d5f9c7b8\\" has successfully progressed.",
       "lastUpdateTime": "2026-12-02T13:50:12Z", "lastTransitionTime": "2026-12-02T13:49:40Z"}
    ]
  }
}
"""

# `kubectl get pod -o json` of a Running, Ready primary pod, trimmed.
POD_JSON = """
{
  "apiVersion": "v1",
  "kind": "Pod",
  "metadata": {
    "name": "pizza-classifier-primary-6d5f9c7b8-x2k9q", "namespace": "pizzas",
    "uid": "b3c1d2e4-0000-4a5b-8c9d-000000000001",
    "labels": {"app.kubernetes.io/component": "primary", "pod-template-hash": "6d5f9c7b8"}
  },
  "spec": {
    "containers": [{
      "name": "model", "image": "localhost/pizza-model-gpu:dev",
      "startupProbe": {"httpGet": {"path": "/v2/health/ready", "port": "http"},
                       "periodSeconds": 5, "failureThreshold": 12, "timeoutSeconds": 2}
    }]
  },
  "status": {
    "phase": "Running", "startTime": "2026-12-02T13:49:41Z", "podIP": "10.244.0.17",
    "conditions": [
      {"type": "PodReadyToStartContainers", "status": "True",
       "lastTransitionTime": "2026-12-02T13:49:43Z"},
      {"type": "Initialized", "status": "True", "lastTransitionTime": "2026-12-02T13:49:41Z"},
      {"type": "Ready", "status": "True", "lastTransitionTime": "2026-12-02T13:50:12Z"},
      {"type": "ContainersReady", "status": "True", "lastTransitionTime": "2026-12-02T13:50:12Z"},
      {"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-12-02T13:49:41Z"}
    ],
    "containerStatuses": [{
      "name": "model", "ready": true, "started": true, "restartCount": 0,
      "image": "localhost/pizza-model-gpu:dev",
      "imageID": "sha256:5b2c0e8f0b7d1f0a4c5e6d7f8a9b0c1d2e3f4a5b6c7d8e9f0a1b2c3d4e5f6a7b",
      "containerID": "containerd://0d6f1e2a3b4c5d6e7f8091a2b3c4d5e6f708192a3b4c5d6e7f8091a2b3c4d5e",
      "state": {"running": {"startedAt": "2026-12-02T13:49:43Z"}},
      "lastState": {}
    }]
  }
}
"""


def deployment(**status: Any) -> dict[str, Any]:
    body: dict[str, Any] = json.loads(DEPLOYMENT_JSON)
    body["status"].update(status)
    return body


def pod(uid: str = "b3c1d2e4-0000-4a5b-8c9d-000000000001") -> dict[str, Any]:
    body: dict[str, Any] = json.loads(POD_JSON)
    body["metadata"]["uid"] = uid
    return body


def set_condition(obj: dict[str, Any], kind: str, **fields: Any) -> None:
    for condition in obj["status"]["conditions"]:
        if condition["type"] == kind:
            condition.update(fields)


def crashed(body: dict[str, Any], count: int, finished: str) -> dict[str, Any]:
    """The container restarted `count` times, last ended at `finished`, now in back-off."""
    body = copy.deepcopy(body)
    status = body["status"]["containerStatuses"][0]
    status.update(ready=False, started=False, restartCount=count)
    status["state"] = {
        "waiting": {
            "reason": "CrashLoopBackOff",
            "message": "back-off 40s restarting failed container=model pod=...",
        }
    }
    status["lastState"] = {
        "terminated": {
            "exitCode": 1,
            "reason": "Error",
            "startedAt": "2026-12-02T14:09:20Z",
            "finishedAt": finished,
            "containerID": "containerd://7a1b2c3d",
        }
    }
    set_condition(body, "Ready", status="False", reason="ContainersNotReady")
    return body


def signals(dep: dict[str, Any], pods: list[dict[str, Any]], **kw: Any) -> Any:
    return kube_signals(dep, pods, now=NOW, window_seconds=WINDOW, **kw)[0]


class TestDeployment:
    def test_healthy(self) -> None:
        kube = signals(deployment(), [pod("a"), pod("b")])
        assert (kube.desired, kube.ready, kube.available, kube.rolling_out) == (2, 2, True, False)
        assert not (kube.crash_looping or kube.unschedulable or kube.startup_never_passed)
        verdict = judge("primary", kube, MetricSignals(0), Thresholds()).verdict
        assert verdict == "Inconclusive"  # healthy pods, no traffic: no verdict

    def test_rollout_in_progress(self) -> None:
        dep = deployment(updatedReplicas=1, replicas=3, readyReplicas=2, availableReplicas=2)
        set_condition(dep, "Progressing", reason="ReplicaSetUpdated")
        assert signals(dep, []).rolling_out

    def test_a_pod_that_stops_being_ready_after_the_rollout_is_no_rollout(self) -> None:
        dep = deployment(readyReplicas=0, availableReplicas=0, replicas=1, updatedReplicas=1)
        dep["spec"]["replicas"] = 1
        hung = pod()
        hung["status"]["containerStatuses"][0]["ready"] = False  # served, then hung
        kube = signals(dep, [hung])
        assert not kube.rolling_out and kube.ready == 0
        assert "NoReadyPods" in judge("primary", kube, MetricSignals(0), Thresholds()).reasons

    def test_a_pod_still_starting_is_a_rollout_even_after_one_completed(self) -> None:
        dep = deployment(readyReplicas=0, availableReplicas=0, replicas=1, updatedReplicas=1)
        dep["spec"]["replicas"] = 1  # scaled back up from 0: Progressing still says complete
        fresh = pod()
        fresh["status"]["containerStatuses"][0].update(ready=False, started=False)
        kube = signals(dep, [fresh])
        assert kube.rolling_out
        check = judge("primary", kube, MetricSignals(50, failure_rate=1.0), Thresholds())
        assert "NotServingYet" in check.reasons  # the fallbacks while it starts are no verdict
        assert "FailureRate" not in check.reasons and "NoReadyPods" not in check.reasons

    def test_new_generation_not_yet_observed_is_rolling_out(self) -> None:
        dep = deployment(observedGeneration=2)
        assert signals(dep, [pod()]).rolling_out

    def test_progress_deadline_exceeded(self) -> None:
        dep = deployment(updatedReplicas=1, readyReplicas=2, availableReplicas=2, replicas=3)
        set_condition(
            dep,
            "Progressing",
            status="False",
            reason="ProgressDeadlineExceeded",
            message='ReplicaSet "pizza-classifier-primary-7c9d" has timed out progressing.',
        )
        kube = signals(dep, [])
        assert kube.progress_deadline_exceeded and not kube.rolling_out
        assert (
            "ProgressDeadlineExceeded"
            in judge("primary", kube, MetricSignals(0), Thresholds()).reasons
        )

    def test_not_available_nothing_ready(self) -> None:
        dep = deployment(unavailableReplicas=2)
        del dep["status"]["readyReplicas"], dep["status"]["availableReplicas"]
        set_condition(dep, "Available", status="False", reason="MinimumReplicasUnavailable")
        kube = signals(dep, [])
        assert (kube.ready, kube.available) == (0, False)

    def test_replicas_default_to_one(self) -> None:
        dep = deployment()
        del dep["spec"]["replicas"]
        assert signals(dep, []).desired == 1


class TestPods:
    def test_crash_loop(self) -> None:
        kube = signals(deployment(), [pod("a"), crashed(pod("b"), 4, "2026-12-02T14:09:30Z")])
        assert kube.crash_looping

    def test_crash_loop_of_a_terminating_pod_is_ignored(self) -> None:
        old = crashed(pod("b"), 4, "2026-12-02T14:09:30Z")
        old["metadata"]["deletionTimestamp"] = "2026-12-02T14:09:50Z"
        assert not signals(deployment(), [old]).crash_looping

    def test_unschedulable(self) -> None:
        pending = pod("p")
        pending["status"] = {
            "phase": "Pending",
            "qosClass": "Burstable",
            "conditions": [
                {
                    "type": "PodScheduled",
                    "status": "False",
                    "reason": "Unschedulable",
                    "message": "0/1 nodes are available: 1 Insufficient nvidia.com/gpu. "
                    "preemption: 0/1 nodes are available: 1 No preemption victims found.",
                    "lastTransitionTime": "2026-12-02T14:08:00Z",
                }
            ],
        }
        assert signals(deployment(), [pending]).unschedulable
        assert not signals(deployment(), [pod()]).unschedulable

    def test_startup_probe_never_passed(self) -> None:
        starting = pod()
        status = starting["status"]["containerStatuses"][0]
        status.update(ready=False, started=False, restartCount=0)
        status["state"] = {"running": {"startedAt": "2026-12-02T14:08:00Z"}}
        set_condition(starting, "Ready", status="False", lastTransitionTime="2026-12-02T14:08:00Z")
        starting["status"]["startTime"] = "2026-12-02T14:08:00Z"
        # probe budget: 0 + 12 x 5 s + 2 s = 62 s; the pod started 120 s ago
        assert startup_budget_seconds(starting["spec"]["containers"][0]["startupProbe"]) == 62
        assert signals(deployment(), [starting]).startup_never_passed
        assert not signals(deployment(), [starting], startup_budget=300).startup_never_passed
        # a pod that was Ready until 30 s ago has its startup budget again from then
        set_condition(starting, "Ready", lastTransitionTime="2026-12-02T14:09:30Z")
        assert not signals(deployment(), [starting]).startup_never_passed

    def test_started_container_or_no_probe_is_not_startup_failure(self) -> None:
        assert not signals(deployment(), [pod()]).startup_never_passed
        no_probe = pod()
        del no_probe["spec"]["containers"][0]["startupProbe"]
        no_probe["status"]["containerStatuses"][0]["started"] = False
        no_probe["status"]["startTime"] = "2026-12-02T12:00:00Z"
        assert not signals(deployment(), [no_probe]).startup_never_passed

    def test_ready_container_without_started_field_passed_startup(self) -> None:
        # the field is optional (kwok's pods leave it out): ready means the startup probe passed
        quiet = pod()
        status = quiet["status"]["containerStatuses"][0]
        del status["started"]
        quiet["status"]["startTime"] = "2026-12-02T12:00:00Z"
        assert not signals(deployment(), [quiet]).startup_never_passed
        status["ready"] = False  # not ready and nothing says it started: still counted
        assert signals(deployment(), [quiet]).startup_never_passed


class TestRestarts:
    def test_first_sight_counts_only_a_recent_last_restart(self) -> None:
        recent = crashed(pod("a"), 7, "2026-12-02T14:09:30Z")
        old = crashed(pod("b"), 3, "2026-12-02T12:00:00Z")
        count, ledger = count_restarts([recent, old], {}, now=NOW, window_seconds=WINDOW)
        assert count == 1
        assert ledger["a/model"] == {"count": 7, "times": ["2026-12-02T14:09:30Z"]}
        assert ledger["b/model"] == {"count": 3, "times": []}

    def test_deltas_across_checks_and_the_window_slides(self) -> None:
        ledger: Any = {"a/model": {"count": 2, "times": ["2026-12-02T14:09:05Z"]}}
        now_pod = crashed(pod("a"), 5, "2026-12-02T14:09:55Z")
        dep = deployment()
        kube, ledger = kube_signals(dep, [now_pod], now=NOW, window_seconds=WINDOW, restarts=ledger)
        assert kube.restarts_in_window == 4  # one remembered + three new
        assert "Restarts" in judge("primary", kube, MetricSignals(0), Thresholds()).reasons
        later = datetime(2026, 12, 2, 14, 10, 30, tzinfo=UTC)
        count, ledger = count_restarts([now_pod], ledger, now=later, window_seconds=WINDOW)
        assert count == 3  # 14:09:05 left the window; nothing new
        json.dumps(ledger)  # kept in the resource's status: plain JSON

    def test_counts_never_go_negative_and_gone_pods_are_forgotten(self) -> None:
        ledger: Any = {
            "a/model": {"count": 9, "times": []},
            "gone/model": {"count": 1, "times": ["2026-12-02T14:09:59Z"]},
        }
        count, ledger = count_restarts([pod("a")], ledger, now=NOW, window_seconds=WINDOW)
        assert count == 0 and set(ledger) == {"a/model"}

    def test_init_container_restarts_count(self) -> None:
        body = pod("a")
        body["status"]["initContainerStatuses"] = [
            {
                "name": "fetch-model",
                "ready": False,
                "restartCount": 2,
                "state": {"waiting": {"reason": "CrashLoopBackOff"}},
                "lastState": {"terminated": {"exitCode": 1, "finishedAt": "2026-12-02T14:09:40Z"}},
            }
        ]
        kube, ledger = kube_signals(deployment(), [body], now=NOW, window_seconds=WINDOW)
        assert kube.crash_looping and kube.restarts_in_window == 1
        assert "a/fetch-model" in ledger
