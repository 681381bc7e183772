"""The Lease decisions (pure): who may take it, when a holder must stop acting, what it writes."""

from __future__ import annotations

from typing import Any

import pytest
from pizza_operator.leadership.lease import (
    Seen,
    Timing,
    confirmed,
    lease_body,
    may_take,
    observe,
    released,
)

pytestmark = pytest.mark.unit
T = Timing(duration=10, renew_every=2, renew_deadline=7, retry_every=1)


def lease(holder: str, version: str, duration: int = 10, **spec: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "l", "namespace": "ns", "resourceVersion": version},
        "spec": {"holderIdentity": holder, "leaseDurationSeconds": duration, **spec},
    }


class TestObserve:
    def test_same_record_keeps_its_first_sight(self) -> None:
        first = observe(None, lease("a", "1"), 100.0, gap=False)
        assert observe(first, lease("a", "1"), 105.0, gap=False) is first

    def test_a_renewal_starts_the_count_again(self) -> None:
        first = observe(None, lease("a", "1"), 100.0, gap=False)
        assert observe(first, lease("a", "2"), 105.0, gap=False).since == 105.0

    def test_an_outage_gives_the_holder_a_whole_duration(self) -> None:
        first = observe(None, lease("a", "1"), 100.0, gap=False)
        assert observe(first, lease("a", "1"), 190.0, gap=True).since == 190.0

    def test_a_missing_lease_is_free(self) -> None:
        assert observe(None, None, 1.0, gap=False) == Seen("", "", 0.0, 1.0)

    @pytest.mark.parametrize("spec", [{"holderIdentity": 7}, {"leaseDurationSeconds": "x"}, None])
    def test_malformed_records_read_as_free_or_default(self, spec: Any) -> None:
        seen = observe(None, {"metadata": {"resourceVersion": "3"}, "spec": spec}, 1.0, gap=False)
        assert seen.holder == ""
        assert may_take(seen, "me", 1.0, T)


class TestMayTake:
    def test_free_or_ours(self) -> None:
        assert may_take(Seen("", "1", 10, 0), "me", 0.0, T)
        assert may_take(Seen("me", "1", 10, 0), "me", 0.0, T)

    def test_held_by_another_until_unchanged_for_its_duration(self) -> None:
        seen = Seen("other", "1", 15, 100.0)
        assert not may_take(seen, "me", 114.9, T)
        assert may_take(seen, "me", 115.0, T)

    def test_no_duration_written_uses_ours(self) -> None:
        seen = Seen("other", "1", 0, 100.0)
        assert not may_take(seen, "me", 109.0, T)
        assert may_take(seen, "me", 110.0, T)


class TestConfirmed:
    def test_within_the_renew_deadline_only(self) -> None:
        assert confirmed(100.0, 106.9, T)
        assert not confirmed(100.0, 107.0, T)
        assert not confirmed(None, 0.0, T)

    def test_the_holder_stops_before_anyone_may_take_over(self) -> None:
        assert T.renew_deadline < T.duration
        with pytest.raises(ValueError):
            Timing(duration=5, renew_every=2, renew_deadline=6)


class TestBody:
    def test_taking_counts_a_transition_and_keeps_the_version(self) -> None:
        body = lease_body(
            "l", "ns", me="me", timing=T, now="t1", previous=lease("a", "7", leaseTransitions=2)
        )
        assert body["metadata"]["resourceVersion"] == "7"
        assert body["spec"] == {
            "holderIdentity": "me",
            "leaseDurationSeconds": 10,
            "acquireTime": "t1",
            "renewTime": "t1",
            "leaseTransitions": 3,
        }

    def test_renewing_keeps_the_acquire_time(self) -> None:
        live = lease("me", "8", acquireTime="t0", leaseTransitions=3)
        body = lease_body("l", "ns", me="me", timing=T, now="t2", previous=live)
        assert body["spec"]["acquireTime"] == "t0"
        assert body["spec"]["leaseTransitions"] == 3

    def test_creating_has_no_version(self) -> None:
        body = lease_body("l", "ns", me="me", timing=T, now="t", previous=None)
        assert "resourceVersion" not in body["metadata"]
        assert body["spec"]["leaseTransitions"] == 0

    def test_only_the_holder_releases(self) -> None:
        assert released(lease("other", "1"), "me") is None
        out = released(lease("me", "1"), "me")
        assert out is not None
        assert out["spec"]["holderIdentity"] == ""
        assert out["spec"]["leaseDurationSeconds"] == 1
