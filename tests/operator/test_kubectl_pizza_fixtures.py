"""The statuses the `kubectl pizza` tests show, built from the contract.

Each helper writes a status part through the typed model (`.to_wire()`: the JSON the operator
writes) and refuses a reason that is not in `pizza_operator.contract` for its place, so a
fixture (and the screens captured from it for the docs) can only show reasons the operator
really writes. The tests below check the helpers themselves.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import pytest
from pizza_operator import contract
from pizza_operator.api.v1alpha1 import (
    ComponentCheck,
    Condition,
    ConditionStatus,
    LastRollback,
    Mode,
    Verdict,
)

pytestmark = pytest.mark.unit

THRESHOLDS = {
    "failureRate": 0.05,
    "latencyP95Seconds": 5.0,
    "minRequests": 20.0,
    "maxRestarts": 3.0,
}


def condition(
    type_: contract.ConditionType, status: ConditionStatus, reason: str, message: str, time: str
) -> dict[str, Any]:
    """A condition as `status.conditions` holds it; only a reason the operator writes."""
    assert reason in contract.REASONS[type_], f"the operator never writes {type_} reason {reason}"
    return Condition(
        type=type_, status=status, reason=reason, message=message, last_transition_time=time
    ).to_wire()


def component_check(
    verdict: Verdict,
    reasons: Sequence[str],
    values: Mapping[str, float],
    *,
    time: str,
    failures: int = 0,
    healthy_since: str | None = None,
    thresholds: Mapping[str, float] = THRESHOLDS,
) -> dict[str, Any]:
    """An analysis check (`status.analysis.<component>`); only check reasons the operator
    writes."""
    unknown = [r for r in reasons if r not in contract.CHECK_REASONS]
    assert not unknown, f"the operator never writes check reasons {unknown}"
    return ComponentCheck(
        time=time,
        verdict=verdict,
        reasons=list(reasons),
        values=dict(values),
        thresholds=dict(thresholds),
        consecutive_failures=failures,
        healthy_since=healthy_since,
    ).to_wire()


def last_rollback(
    number: int,
    from_mode: Mode,
    to: Mode,
    reason: str,
    message: str,
    *,
    time: str,
    generation: int,
    values: Mapping[str, float] | None = None,
    revision: str | None = None,
) -> dict[str, Any]:
    """`status.lastRollback`: its reason is the one of the RolledBack condition it set."""
    assert reason in contract.LAST_ROLLBACK_REASONS, f"the operator never rolls back for {reason}"
    return LastRollback.model_validate(
        {
            "number": number,
            "from": from_mode,
            "to": to,
            "reason": reason,
            "message": message,
            "values": dict(values or {}),
            "time": time,
            "generation": generation,
            "revision": revision,
        }
    ).to_wire()


def event(type_: str, reason: str, message: str, time: str, **extra: Any) -> dict[str, Any]:
    """An Event about the resource as the operator posts it; only its reasons."""
    assert reason in contract.EVENT_REASONS, f"the operator never posts an Event {reason}"
    return {"type": type_, "reason": reason, "message": message, "lastTimestamp": time, **extra}


class TestFixturesShowOnlyWhatTheOperatorWrites:
    def test_unknown_reasons_are_refused(self) -> None:
        when = "2026-12-02T16:55:00Z"
        with pytest.raises(AssertionError, match="never writes Ready reason ServingPrevious"):
            condition("Ready", "True", "ServingPrevious", "", when)
        with pytest.raises(AssertionError, match="FailureRateHigh"):
            component_check("Failed", ["FailureRateHigh"], {}, time=when)
        with pytest.raises(AssertionError, match="Healthy"):
            last_rollback(1, "primary", "stable", "Healthy", "", time=when, generation=1)
        with pytest.raises(AssertionError, match="R1"):
            event("Normal", "R1", "", when)

    def test_the_wire_form(self) -> None:
        when = "2026-12-02T16:55:00Z"
        assert condition("Ready", "True", "AllComponentsReady", "every component is ready", when)[
            "lastTransitionTime"
        ] == (when)
        check = component_check("Failed", ["FailureRate"], {"failureRate": 0.3}, time=when)
        assert check["consecutiveFailures"] == 0 and "healthySince" not in check
        step = last_rollback(1, "primary", "stable", "PrimaryFailed", "m", time=when, generation=2)
        assert (step["from"], step["to"]) == ("primary", "stable")
