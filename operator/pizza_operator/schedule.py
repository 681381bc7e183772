"""When each resource's next analysis tick and next resync are due (pure, no clock of its own).

One operator-wide loop (`rounds`) reads it; kopf's per-resource daemons and timers are gone
because kopf puts a finalizer on every resource that has one, and a finalizer makes deletion
wait for the operator.
"""

from __future__ import annotations

from typing import Literal

Key = tuple[str, str]  # (namespace, name)
Work = Literal["tick", "resync", "scale", "rollout"]


class Schedule:
    def __init__(self, resync_every: float) -> None:
        self.resync_every = resync_every
        self._due: dict[tuple[Work, Key], float] = {}

    def __contains__(self, key: Key) -> bool:
        return ("tick", key) in self._due or ("resync", key) in self._due

    def has(self, work: Work, key: Key) -> bool:
        return (work, key) in self._due

    def __len__(self) -> int:
        return len({key for _, key in self._due})

    def know(self, key: Key, now: float) -> bool:
        """A resource seen for the first time: its first tick now, its first resync one interval
        on (its create, update or resume handler has just reconciled it). False if known."""
        if key in self:
            return False
        self._due[("tick", key)] = now
        self._due[("resync", key)] = now + self.resync_every
        return True

    def forget(self, key: Key) -> None:
        for work in ("tick", "resync", "scale", "rollout"):
            self._due.pop((work, key), None)

    def plan(self, work: Work, key: Key, at: float) -> None:
        """The next `work` of a resource still known (a forgotten one stays forgotten)."""
        if key in self:
            self._due[(work, key)] = at

    def take_due(self, now: float) -> list[tuple[Work, Key]]:
        """The work due by `now`, oldest first; each leaves the schedule until planned again."""
        return [(work, key) for work, key, _ in self.take_due_at(now)]

    def take_due_at(self, now: float) -> list[tuple[Work, Key, float]]:
        """`take_due`, each with the time it was due (its lag is measured from there)."""
        due = sorted((at, item) for item, at in self._due.items() if at <= now)
        for _, item in due:
            del self._due[item]
        return [(work, key, at) for at, (work, key) in due]

    def next_at(self) -> float | None:
        return min(self._due.values(), default=None)
