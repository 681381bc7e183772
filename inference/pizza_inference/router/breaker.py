"""A circuit breaker for the primary: opens after consecutive failures, probes with one request.

One client's failures alone do not open it while the primary answers others: a streak of
failures all of one client (say, the largest images the primary cannot answer in time) opens the
breaker only when no other client had an answer from the primary in the last `reset_seconds`.
A streak that spans two clients, or the failures of the only client there is, open it as before;
so a primary that fails for everyone is still skipped, and one client cannot make the router
skip a primary that serves everybody else (every skip counts against the primary).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

CLOSED, OPEN, HALF_OPEN = "closed", "open", "half_open"


class CircuitBreaker:
    def __init__(
        self,
        failure_threshold: int = 5,
        reset_seconds: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if failure_threshold < 1:
            raise ValueError("failure_threshold must be at least 1")
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._state = CLOSED
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        self._lock = threading.Lock()
        self.times_opened = 0
        self._streak_client: str | None = None
        self._streak_mixed = False
        self._answered: list[tuple[str, float]] = []
        """The last primary answers of the two most recent distinct clients: (client, when)."""

    @property
    def state(self) -> str:
        with self._lock:
            if self._state == OPEN and self._clock() - self._opened_at >= self.reset_seconds:
                return HALF_OPEN
            return self._state

    def allow(self) -> bool:
        """May a request go to the primary now? In half-open state only one trial at a time."""
        with self._lock:
            if self._state == CLOSED:
                return True
            if self._state == OPEN:
                if self._clock() - self._opened_at < self.reset_seconds:
                    return False
                self._state = HALF_OPEN
            if self._trial_in_flight:
                return False
            self._trial_in_flight = True
            return True

    def record_success(self, client: str = "") -> None:
        with self._lock:
            self._state = CLOSED
            self._failures = 0
            self._streak_client, self._streak_mixed = None, False
            self._trial_in_flight = False
            others = [a for a in self._answered if a[0] != client]
            self._answered = [(client, self._clock()), *others[:1]]

    def _others_answered(self, client: str) -> bool:
        """Did a client other than `client` have an answer in the last `reset_seconds`?"""
        now = self._clock()
        return any(c != client and now - t < self.reset_seconds for c, t in self._answered)

    def record_failure(self, client: str = "") -> None:
        with self._lock:
            self._failures += 1
            if self._streak_client is None:
                self._streak_client = client
            elif self._streak_client != client:
                self._streak_mixed = True
            one_client = not self._streak_mixed and self._others_answered(client)
            if self._state == HALF_OPEN or (
                self._failures >= self.failure_threshold and not one_client
            ):
                if self._state != OPEN:
                    self.times_opened += 1
                self._state = OPEN
                self._opened_at = self._clock()
            self._trial_in_flight = False

    def snapshot(self) -> dict[str, object]:
        state = self.state
        with self._lock:
            return {
                "state": state,
                "consecutive_failures": self._failures,
                "failure_threshold": self.failure_threshold,
                "reset_seconds": self.reset_seconds,
                "times_opened": self.times_opened,
                "streak_clients": 0
                if self._streak_client is None
                else (2 if self._streak_mixed else 1),
            }
