"""When status refreshes run: a burst of child events becomes one refresh per resource
(`Coalescer`), a refresh again soon while a resource waits (`Doubling`), and how long a resource
whose Services list their endpoints still waits for kube-proxy (`Settling`)."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

logger = logging.getLogger(__name__)

Key = tuple[str, str]


class Coalescer:
    """Run `action(namespace, name)` once, `delay` seconds after the first request of a burst.

    Requests for a key that is already due are dropped; a request that arrives while the action
    for that key runs schedules one more run, so the last event is never lost.
    """

    def __init__(
        self, action: Callable[[str, str], None], delay: float = 0.3, workers: int = 2
    ) -> None:
        self._action = action
        self._delay = delay
        self._due: dict[Key, float] = {}
        self._cond = threading.Condition()
        self._threads = [
            threading.Thread(target=self._work, name=f"status-refresh-{i}", daemon=True)
            for i in range(workers)
        ]
        for thread in self._threads:
            thread.start()

    def request(self, namespace: str, name: str, delay: float | None = None) -> None:
        """Run the action for this key `delay` seconds from now (the coalescer's own delay
        unless given), or at the time it is due already if that is sooner."""
        due = time.monotonic() + (self._delay if delay is None else delay)
        with self._cond:
            key = (namespace, name)
            if key not in self._due or due < self._due[key]:
                self._due[key] = due
                self._cond.notify()

    def pending(self) -> int:
        with self._cond:
            return len(self._due)

    def _next(self) -> Key:
        with self._cond:
            while True:
                now = time.monotonic()
                ready = [k for k, due in self._due.items() if due <= now]
                if ready:
                    key = min(ready, key=self._due.__getitem__)
                    del self._due[key]
                    return key
                wait = min(self._due.values()) - now if self._due else None
                self._cond.wait(timeout=wait)

    def _work(self) -> None:
        while True:
            namespace, name = self._next()
            try:
                self._action(namespace, name)
            except Exception:
                logger.exception("status refresh failed namespace=%s name=%s", namespace, name)


class Doubling:
    """A delay per key: `first` seconds, then twice the last, up to `last`; `reset` starts the
    key over. Holds one small count per key asked for and not reset."""

    def __init__(self, first: float, last: float) -> None:
        self.first = first
        self.last = last
        self._tries: dict[Key, int] = {}
        self._lock = threading.Lock()

    def next(self, key: Key) -> float:
        with self._lock:
            tries = self._tries.get(key, 0)
            self._tries[key] = min(tries + 1, 32)  # the delay is at `last` long before
        return float(min(self.first * 2**tries, self.last))

    def reset(self, key: Key) -> None:
        with self._lock:
            self._tries.pop(key, None)


class Settling:
    """Per key: since when its Services all list a ready endpoint, as this process saw it, and
    how long it is to wait from then (`seconds`). A key whose Services stop listing one starts
    over. Seen by this process only: a new leader waits once more, never less."""

    def __init__(self, seconds: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.seconds = seconds
        self._clock = clock
        self._since: dict[Key, float] = {}
        self._lock = threading.Lock()

    def left(self, key: Key, reachable: bool) -> float:
        """Seconds `key` still waits (0: settled); `reachable`: every Service lists one now."""
        now = self._clock()
        with self._lock:
            if not reachable:
                self._since.pop(key, None)
                return 0.0
            since = self._since.setdefault(key, now)
        return max(0.0, since + self.seconds - now)

    def remaining(self, key: Key) -> float:
        """Seconds `key` still waits, as last judged by `left` (0 when it does not wait)."""
        with self._lock:
            since = self._since.get(key)
        return 0.0 if since is None else max(0.0, since + self.seconds - self._clock())

    def forget(self, key: Key) -> None:
        with self._lock:
            self._since.pop(key, None)
