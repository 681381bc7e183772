"""Each client's share of the primary: how many of its requests may be at the primary at once.

Pure bookkeeping (no I/O, no clock). A client may hold at most

    share = max(1, min(per_client, capacity // active))

requests in flight at the primary, where `active` counts the clients holding one now (this one
included). Alone, a client gets `per_client`; when many clients use the primary at once, each
gets an equal part of `capacity` (at least one). A request over its client's share is not sent to
the primary: the router answers it from the fallback (reason `client_share`), and that is no
failure of the primary. So one client, however large its images, holds at most `per_client`
of the primary's work at a time on each router pod, and cannot queue everybody else's requests
behind its own until they time out or are shed.

Memory: one entry per client with a request at the primary now (an entry goes when its count
drops to 0), so at most as many entries as requests in flight.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class ShareLimits:
    """`capacity`: the primary requests in flight the router shares out (per router process);
    `per_client`: the most one client may hold. 0 for either: no limit."""

    capacity: int = 32
    per_client: int = 8

    def __post_init__(self) -> None:
        if self.capacity < 0 or self.per_client < 0:
            raise ValueError("primary share limits must not be negative (0 disables them)")

    @property
    def enabled(self) -> bool:
        return self.per_client > 0 or self.capacity > 0

    def share(self, active: int) -> int | None:
        """The most one client may hold while `active` clients (itself included) hold any;
        None: no limit."""
        limits = []
        if self.per_client > 0:
            limits.append(self.per_client)
        if self.capacity > 0:
            limits.append(max(1, self.capacity // max(1, active)))
        return min(limits) if limits else None


class PrimaryShares:
    """The primary requests each client has in flight, and the admission against its share."""

    def __init__(self, limits: ShareLimits) -> None:
        self.limits = limits
        self._held: dict[str, int] = {}
        self._lock = threading.Lock()
        self.refused = 0

    def acquire(self, client: str) -> bool:
        """True: the request may go to the primary (call `release` when it is done). False: the
        client holds its whole share already."""
        with self._lock:
            held = self._held.get(client, 0)
            active = len(self._held) + (0 if held else 1)
            share = self.limits.share(active)
            if share is not None and held >= share:
                self.refused += 1
                return False
            self._held[client] = held + 1
            return True

    def release(self, client: str) -> None:
        with self._lock:
            held = self._held.get(client, 0) - 1
            if held > 0:
                self._held[client] = held
            else:
                self._held.pop(client, None)

    @property
    def in_flight(self) -> int:
        with self._lock:
            return sum(self._held.values())

    def snapshot(self) -> dict[str, object]:
        with self._lock:
            active = len(self._held)
            return {
                "capacity": self.limits.capacity,
                "per_client": self.limits.per_client,
                "clients_in_flight": active,
                "requests_in_flight": sum(self._held.values()),
                "share_now": self.limits.share(max(1, active)),
                "refused": self.refused,
            }
