"""Which Events a reconcile posts: `reconcile.events.events_for`, branch by branch."""

from __future__ import annotations

import pytest
from pizza_operator.api.v1alpha1 import ComponentStatus, PizzaModelDeploymentStatus
from pizza_operator.conditions import new_condition
from pizza_operator.reconcile.events import EventSpec, events_for, ready_summary

pytestmark = pytest.mark.unit

SUMMARY = "every component is ready: primary 1/1"


READY = new_condition("Ready", "True", "AllComponentsReady", "every component is ready", 1)
WAITING = new_condition("Ready", "False", "ComponentsNotReady", "waiting for router 1/2 ready", 1)
INVALID = new_condition("Ready", "False", "InvalidSpec", "spec.image: empty", 1)


class TestReadiness:
    def test_becoming_ready_is_told_with_the_summary(self) -> None:
        expected = [EventSpec("Normal", "Ready", SUMMARY)]
        assert events_for(None, READY, SUMMARY, [], 0) == expected
        assert events_for(WAITING, READY, SUMMARY, [], 0) == expected
        assert events_for(INVALID, READY, SUMMARY, [], 0) == expected

    def test_staying_ready_is_not(self) -> None:
        assert events_for(READY, READY, SUMMARY, [], 0) == []

    def test_losing_readiness_is_a_warning(self) -> None:
        assert events_for(READY, WAITING, SUMMARY, [], 0) == [
            EventSpec("Warning", "NotReady", "waiting for router 1/2 ready")
        ]

    def test_not_ready_before_and_after_is_quiet(self) -> None:
        assert events_for(None, WAITING, SUMMARY, [], 0) == []
        assert events_for(WAITING, WAITING, SUMMARY, [], 0) == []


class TestInvalidSpec:
    def test_a_new_problem_is_told(self) -> None:
        expected = [EventSpec("Warning", "InvalidSpec", "spec.image: empty")]
        assert events_for(None, INVALID, SUMMARY, [], 0) == expected
        assert events_for(READY, INVALID, SUMMARY, [], 0) == expected  # not also NotReady
        assert events_for(WAITING, INVALID, SUMMARY, [], 0) == expected

    def test_the_same_problem_is_told_once(self) -> None:
        assert events_for(INVALID, INVALID, SUMMARY, [], 0) == []

    def test_another_problem_is_told_again(self) -> None:
        other = new_condition("Ready", "False", "InvalidSpec", "spec.primary.resources: bad", 2)
        assert events_for(INVALID, other, SUMMARY, [], 0) == [
            EventSpec("Warning", "InvalidSpec", "spec.primary.resources: bad")
        ]


class TestNameConflict:
    HELD = new_condition(
        "Ready", "False", "NameConflict", "Service a-primary belongs to PizzaModelDeployment a", 1
    )

    def test_a_conflict_is_told_once_under_its_own_reason(self) -> None:
        expected = [EventSpec("Warning", "NameConflict", self.HELD.message)]
        assert events_for(None, self.HELD, SUMMARY, [], 0) == expected
        assert events_for(READY, self.HELD, SUMMARY, [], 0) == expected  # not also NotReady
        assert events_for(INVALID, self.HELD, SUMMARY, [], 0) == expected
        assert events_for(self.HELD, self.HELD, SUMMARY, [], 0) == []

    def test_another_conflict_is_told_again(self) -> None:
        more = new_condition("Ready", "False", "NameConflict", "ConfigMap a-routing exists", 1)
        assert events_for(self.HELD, more, SUMMARY, [], 0) == [
            EventSpec("Warning", "NameConflict", "ConfigMap a-routing exists")
        ]

    def test_resolved_conflict_then_ready_is_told(self) -> None:
        assert events_for(self.HELD, READY, SUMMARY, [], 0) == [
            EventSpec("Normal", "Ready", SUMMARY)
        ]


class TestCreated:
    def test_every_child_created_is_the_first_creation(self) -> None:
        created = ["Service/a", "Deployment/a-router"]
        assert events_for(None, WAITING, SUMMARY, created, 2) == [
            EventSpec("Normal", "Created", "created Service/a, Deployment/a-router")
        ]

    def test_some_children_created_is_a_restore(self) -> None:
        assert events_for(WAITING, WAITING, SUMMARY, ["Service/a"], 12) == [
            EventSpec("Warning", "Restored", "recreated missing Service/a")
        ]

    def test_readiness_comes_before_creation(self) -> None:
        events = events_for(WAITING, READY, SUMMARY, ["Service/a"], 12)
        assert [e.reason for e in events] == ["Ready", "Restored"]

    def test_nothing_created_nothing_told(self) -> None:
        assert events_for(WAITING, WAITING, SUMMARY, [], 12) == []


def test_ready_summary_names_each_component_it_knows() -> None:
    status = PizzaModelDeploymentStatus(
        primary=ComponentStatus(ready_replicas=1, replicas=1, summary="1/1"),
        router=ComponentStatus(ready_replicas=2, replicas=2, summary="2/2"),
    )
    assert ready_summary(status) == "every component is ready: primary 1/1, router 2/2"
