"""Pure parts of the router's client handling: who the client is, its share of the primary, the
breaker that one client's failures do not open, and the client middleware on a real app."""

from __future__ import annotations

import pytest
from pizza_inference.router.breaker import CLOSED, OPEN, CircuitBreaker
from pizza_inference.router.clients import (
    CLIENT_GROUPS,
    UNKNOWN_CLIENT,
    TrustedProxies,
    client_group,
    identify,
)
from pizza_inference.router.shares import PrimaryShares, ShareLimits

pytestmark = pytest.mark.unit

PROXY = TrustedProxies.parse("10.0.0.0/8, 192.168.1.7")


class TestIdentify:
    def test_the_peer_by_default_whatever_the_header_says(self) -> None:
        assert identify("203.0.113.5", ["1.2.3.4"], TrustedProxies()) == "203.0.113.5"

    def test_an_untrusted_peer_is_the_client(self) -> None:
        assert identify("203.0.113.5", ["1.2.3.4"], PROXY) == "203.0.113.5"

    def test_a_trusted_proxy_names_the_client_right_to_left(self) -> None:
        # the client wrote "6.6.6.6" itself; the proxy appended what it saw
        assert identify("10.1.2.3", ["6.6.6.6, 198.51.100.9"], PROXY) == "198.51.100.9"

    def test_trusted_hops_are_skipped(self) -> None:
        forwarded = ["198.51.100.9", "10.9.9.9, 192.168.1.7"]  # two headers, joined
        assert identify("10.1.2.3", forwarded, PROXY) == "198.51.100.9"

    def test_only_proxies_named_gives_the_left_most(self) -> None:
        assert identify("10.1.2.3", ["10.4.4.4, 10.5.5.5"], PROXY) == "10.4.4.4"

    def test_no_header_from_a_proxy_is_the_proxy(self) -> None:
        assert identify("10.1.2.3", [], PROXY) == "10.1.2.3"

    def test_one_spelling_and_garbage_cut_short(self) -> None:
        assert identify("10.1.2.3", ["2001:DB8::0001"], PROXY) == "2001:db8::1"
        assert identify("10.1.2.3", ["x" * 500], PROXY) == "x" * 64

    def test_no_peer(self) -> None:
        assert identify(None, ["1.2.3.4"], PROXY) == UNKNOWN_CLIENT

    def test_bad_setting_is_refused_by_name(self) -> None:
        with pytest.raises(ValueError, match="'nonsense'"):
            TrustedProxies.parse("10.0.0.0/8 nonsense")
        assert TrustedProxies.parse("") == TrustedProxies()


def test_client_groups_are_stable_and_bounded() -> None:
    groups = {client_group(f"10.0.{i // 256}.{i % 256}") for i in range(2000)}
    assert groups == set(range(CLIENT_GROUPS))  # every group used, nothing else
    assert client_group("127.0.0.66") == client_group("127.0.0.66")


class TestShares:
    def test_one_client_holds_at_most_its_share(self) -> None:
        shares = PrimaryShares(ShareLimits(capacity=32, per_client=2))
        assert shares.acquire("a") and shares.acquire("a")
        assert not shares.acquire("a")
        assert shares.acquire("b")  # others are not held back
        shares.release("a")
        assert shares.acquire("a")
        assert shares.refused == 1

    def test_fair_share_of_the_capacity(self) -> None:
        shares = PrimaryShares(ShareLimits(capacity=4, per_client=4))
        assert all(shares.acquire("a") for _ in range(2))
        assert shares.acquire("b")  # two active: 4 // 2 = 2 each
        assert not shares.acquire("a")
        assert shares.acquire("b") and not shares.acquire("b")
        assert shares.acquire("c") and shares.acquire("d")  # at least one each, always

    def test_memory_is_the_clients_in_flight(self) -> None:
        shares = PrimaryShares(ShareLimits(capacity=0, per_client=1))
        for i in range(1000):
            assert shares.acquire(str(i))
            shares.release(str(i))
        assert shares.snapshot()["clients_in_flight"] == 0 and shares.in_flight == 0

    def test_zero_disables(self) -> None:
        shares = PrimaryShares(ShareLimits(capacity=0, per_client=0))
        assert all(shares.acquire("a") for _ in range(1000))
        with pytest.raises(ValueError, match="negative"):
            ShareLimits(capacity=-1)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class TestBreakerAcrossClients:
    def test_one_clients_failures_do_not_open_it_while_others_are_answered(self) -> None:
        breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=Clock())
        breaker.record_success("good")
        for _ in range(10):
            breaker.record_failure("noisy")
        assert breaker.state == CLOSED and breaker.allow()

    def test_a_streak_over_two_clients_opens_it(self) -> None:
        breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=Clock())
        breaker.record_success("good")
        breaker.record_failure("noisy")
        breaker.record_failure("noisy")
        breaker.record_failure("good")
        assert breaker.state == OPEN

    def test_the_only_client_opens_it(self) -> None:
        breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=Clock())
        breaker.record_success("alone")
        for _ in range(3):
            breaker.record_failure("alone")
        assert breaker.state == OPEN

    def test_others_answered_long_ago_do_not_count(self) -> None:
        clock = Clock()
        breaker = CircuitBreaker(failure_threshold=3, reset_seconds=30, clock=clock)
        breaker.record_success("good")
        clock.now += 31
        for _ in range(3):
            breaker.record_failure("noisy")
        assert breaker.state == OPEN


def test_client_of_a_scope() -> None:
    from pizza_inference.router.ratelimit import client_of  # noqa: PLC0415

    scope = {
        "type": "http",
        "client": ("10.1.2.3", 5555),
        "headers": [(b"x-forwarded-for", b"6.6.6.6, 198.51.100.9"), (b"host", b"x")],
    }
    assert client_of(scope, PROXY) == "198.51.100.9"
    assert client_of(scope, TrustedProxies()) == "10.1.2.3"  # the default trusts nobody
    assert client_of({"type": "http", "headers": []}, PROXY) == UNKNOWN_CLIENT
