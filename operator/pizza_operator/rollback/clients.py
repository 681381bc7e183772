"""The primary judged across clients (pure): one noisy client cannot move its failure rate.

The router counts the requests meant for the primary and the primary's failures per client
group (`pizza_router_primary_client_{requests,failures}_total{client_group}`: each client's
address hashed into one of 16 groups, the same on every router pod). A client that sends what
the primary cannot answer in time (the largest images, as fast as the rate limit lets it) fails
mostly in its own group. So the rate judged is that of every group but the one with the most
failures, when the other groups sent at least `min_requests` requests: a primary that fails for
everyone fails in the other groups too; a primary that fails for one client does not.

When the other groups sent fewer than `min_requests` (one client, or everything through one proxy
that is not trusted to name its clients), there are not enough other clients' requests to judge
the primary by, and the rate of all requests is judged, as it was without groups. The rate judged
is never above the rate of all requests: setting one group aside only ever forgives.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ClientGroups:
    """Per client group, over the window: requests meant for the primary, and its failures
    (breaker skips included)."""

    requests: Mapping[str, float] = field(default_factory=dict)
    failures: Mapping[str, float] = field(default_factory=dict)

    @property
    def failing(self) -> int:
        """Groups that saw at least one failure of the primary."""
        return sum(1 for v in self.failures.values() if v > 0)

    def noisiest(self) -> str | None:
        """The group with the most failures (ties: the most requests, then the name)."""
        failing = [g for g, v in self.failures.items() if v > 0]
        if not failing:
            return None
        return max(failing, key=lambda g: (self.failures[g], self.requests.get(g, 0.0), g))


@dataclass(frozen=True)
class AcrossClients:
    """The failure rate judged, and the group set aside to get it (None: none was)."""

    failure_rate: float | None
    set_aside: str | None = None


def across_clients(
    overall_rate: float | None, groups: ClientGroups | None, min_requests: float
) -> AcrossClients:
    """The primary's failure rate with its noisiest client group set aside (module doc).

    `overall_rate` is the rate of all requests (the prior counters: `None` without requests).
    Without groups (a router that does not count them) it is judged as it is."""
    if overall_rate is None or groups is None:
        return AcrossClients(overall_rate)
    noisiest = groups.noisiest()
    if noisiest is None:
        return AcrossClients(overall_rate)
    rest = sum(v for g, v in groups.requests.items() if g != noisiest)
    if rest < max(1.0, min_requests):
        return AcrossClients(overall_rate)
    failed = sum(v for g, v in groups.failures.items() if g != noisiest)
    rate = min(1.0, max(0.0, failed / rest))
    return AcrossClients(min(overall_rate, rate), noisiest)
