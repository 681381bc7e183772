"""The retry delay after an API error: `reconcile.backoff.retry_delay`."""

from __future__ import annotations

import pytest
from pizza_operator.reconcile.backoff import FIRST_DELAY, MAX_DELAY, retry_delay

pytestmark = pytest.mark.unit


class TestRetryDelay:
    def test_doubles_from_five_seconds(self) -> None:
        assert [retry_delay(n) for n in range(7)] == [5, 10, 20, 40, 80, 160, 300]

    def test_is_capped(self) -> None:
        assert retry_delay(6) == retry_delay(7) == retry_delay(10_000) == MAX_DELAY

    def test_a_negative_count_is_the_first_try(self) -> None:
        assert retry_delay(-1) == FIRST_DELAY
