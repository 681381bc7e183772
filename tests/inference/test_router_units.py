"""Pure parts of the router: circuit breaker, token bucket, routing decision."""

from __future__ import annotations

import random

import pytest
from pizza_inference.config import RouterConfig
from pizza_inference.router.breaker import CLOSED, HALF_OPEN, OPEN, CircuitBreaker
from pizza_inference.router.plane import RouterPlane
from pizza_inference.router.ratelimit import TokenBucketLimiter
from pizza_inference.service import ImageUpload, Target

pytestmark = pytest.mark.unit


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_after_threshold_and_probes_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(failure_threshold=3, reset_seconds=10, clock=clock)
    for _ in range(2):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == CLOSED
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == OPEN and not breaker.allow()
    clock.now += 10
    assert breaker.state == HALF_OPEN
    assert breaker.allow()  # the trial
    assert not breaker.allow()  # only one at a time
    breaker.record_failure()
    assert breaker.state == OPEN
    clock.now += 10
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == CLOSED and breaker.allow()
    assert breaker.times_opened == 2


def test_success_resets_consecutive_failures() -> None:
    breaker = CircuitBreaker(failure_threshold=2, reset_seconds=1, clock=Clock())
    breaker.record_failure()
    breaker.record_success()
    breaker.record_failure()
    assert breaker.state == CLOSED


def test_token_bucket() -> None:
    clock = Clock()
    limiter = TokenBucketLimiter(60, clock=clock)  # one a second, bursts of 60
    assert all(limiter.acquire("a") is None for _ in range(60))
    retry = limiter.acquire("a")
    assert retry is not None and 0 < retry <= 1.0
    assert limiter.acquire("b") is None  # per client
    clock.now += 1.0
    assert limiter.acquire("a") is None
    assert TokenBucketLimiter(0, clock=clock).acquire("a") is None  # 0 disables


def plane(**overrides: object) -> RouterPlane:
    values: dict[str, object] = {"primary_url": "http://p", "fallback_url": "http://f"}
    values.update(overrides)
    return RouterPlane(RouterConfig(**values), rng=random.Random(0))  # type: ignore[arg-type]


def test_decisions() -> None:
    p = plane()
    assert p.decide(Target.AUTO, None).use_primary
    assert p.decide(Target.FALLBACK, None).reason == "requested"
    assert p.decide(Target.AUTO, "B").reason == "ab_test"
    assert p.decide(Target.AUTO, "A").group == "A"
    assert plane(mode="stable").decide(Target.PRIMARY, "A").reason == "mode_stable"
    assert plane(mode="emergency").decide(Target.AUTO, None).reason == "mode_emergency"


def test_ab_split_percentage() -> None:
    p = plane(ab_primary_percent=30)
    decisions = [p.decide(Target.AUTO, None) for _ in range(2000)]
    share = sum(d.use_primary for d in decisions) / len(decisions)
    assert 0.26 < share < 0.34
    assert {d.group for d in decisions} == {"A", "B"}
    assert all(
        plane(ab_primary_percent=0).decide(Target.AUTO, None).reason == "ab_test" for _ in range(50)
    )


@pytest.mark.parametrize(
    "overrides",
    [
        {"mode": "fast"},
        {"ab_primary_percent": 101},
        {"rate_limit_per_minute": -1},
        {"primary_timeout_seconds": 0},
    ],
)
def test_config_rejects(overrides: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        plane(**overrides)


def test_raw_forwarding_is_the_default_and_uploads_without_a_body_have_none() -> None:
    config = RouterConfig(primary_url="http://p", fallback_url="http://f")  # type: ignore[call-arg]
    assert RouterPlane(config).forwards_raw_body is True
    assert RouterPlane(config, forward_raw=False).forwards_raw_body is False
    upload = ImageUpload(data=b"\xff\xd8")  # as the Open Inference Protocol route builds it
    assert upload.raw is None and upload.raw_content_type is None
