"""The operator's own health, as its probes see it: beats of its loops and work in flight.

`Health` is shared state (thread-safe): each loop beats, each reconcile and analysis tick is
`working(...)` while it runs. `verdict` is pure: healthy when every expected loop beat recently
and nothing has been in flight longer than its bound (a wedged worker: Kubernetes restarts the
pod). The bounds outlast the API door's worst case (three calls of 35 s), so a frozen API server
does not get the operator restarted.
"""

from __future__ import annotations

import contextlib
import dataclasses
import itertools
import threading
import time
from collections.abc import Iterator


@dataclasses.dataclass(frozen=True)
class Bounds:
    beat: float = 60.0  # a loop that has not beaten for this long is stuck
    work: float = 300.0  # one reconcile or tick running this long is wedged


def verdict(
    now: float,
    beats: dict[str, float],
    expected: tuple[str, ...],
    started: list[tuple[str, float]],
    bounds: Bounds,
) -> tuple[bool, list[str]]:
    """(healthy, reasons): the loops in `expected` beat within `bounds.beat`, no work older than
    `bounds.work`."""
    reasons = []
    for name in expected:
        last = beats.get(name)
        if last is None or now - last > bounds.beat:
            age = "never" if last is None else f"{now - last:.0f} s ago"
            reasons.append(f"{name} last beat {age}")
    for what, since in started:
        if now - since > bounds.work:
            reasons.append(f"{what} running for {now - since:.0f} s")
    return not reasons, reasons


class Health:
    def __init__(self, bounds: Bounds | None = None) -> None:
        self.bounds = bounds or Bounds()
        self.role = "starting"
        self.expected: tuple[str, ...] = ()
        self._beats: dict[str, float] = {}
        self._work: dict[int, tuple[str, float]] = {}
        self._ids = itertools.count()
        self._lock = threading.Lock()

    def beat(self, name: str) -> None:
        with self._lock:
            self._beats[name] = time.monotonic()

    def expect(self, role: str, *loops: str) -> None:
        """What this replica is now (standby, leader) and which loops must beat."""
        with self._lock:
            self.role, self.expected = role, loops
            now = time.monotonic()
            for name in loops:
                self._beats.setdefault(name, now)

    @contextlib.contextmanager
    def working(self, what: str) -> Iterator[None]:
        key = next(self._ids)
        with self._lock:
            self._work[key] = (what, time.monotonic())
        try:
            yield
        finally:
            with self._lock:
                self._work.pop(key, None)

    def check(self) -> tuple[bool, list[str]]:
        with self._lock:
            beats, expected, started = dict(self._beats), self.expected, list(self._work.values())
        return verdict(time.monotonic(), beats, expected, started, self.bounds)
