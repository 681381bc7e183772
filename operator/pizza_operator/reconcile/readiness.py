"""What a status write is computed from, and when to look again.

The live Deployments and the ready endpoints their Services list (one LIST each, through
`ChildApplier`); how long kube-proxy still gets once every Service lists one (`Settling`); and,
while Ready waits for the endpoints only (`EndpointsNotReady`), a status refresh again when that
time is up, or after 0.25 s doubling to 5 s (`Doubling`): the EndpointSlices are not watched, and
the resync is a minute away.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.naming import Component
from pizza_operator.contract import ENDPOINTS_NOT_READY
from pizza_operator.reconcile.apply import ChildApplier
from pizza_operator.reconcile.report import ReconcileResult
from pizza_operator.refresher import Doubling, Key, Settling
from pizza_operator.status import Observed, observe_components

ENDPOINTS_RECHECK = (0.25, 5.0)
"""Seconds before the first look again while a Service lists no ready endpoint, and the longest."""


class Readiness:
    """Observes a resource's children for its status and follows up on `EndpointsNotReady`."""

    def __init__(
        self,
        children: ChildApplier,
        request: Callable[[str, str, float], None],
        settle_seconds: float,
    ) -> None:
        self.children = children
        self._request = request  # a status refresh of (namespace, name) after that many seconds
        self._rechecks = Doubling(*ENDPOINTS_RECHECK)
        self._settling = Settling(settle_seconds)

    def observe(
        self, pmd: PizzaModelDeployment, deployments: Sequence[Mapping[str, Any]]
    ) -> tuple[dict[Component, Observed], bool]:
        """Each component from its Deployment and its Service's endpoints, and whether the
        resource is settling (every Service lists one, only just now)."""
        observed = observe_components(deployments, self.children.endpoints(pmd))
        key = (pmd.metadata.namespace, pmd.metadata.name)
        left = self._settling.left(key, all(o.reachable for o in observed.values()))
        return observed, left > 0

    def follow(self, key: Key, outcome: ReconcileResult) -> None:
        """Look again while Ready waits for the endpoints only; any other outcome ends it."""
        if outcome.reason != ENDPOINTS_NOT_READY:
            self._rechecks.reset(key)
            return
        left = self._settling.remaining(key)
        self._request(*key, left + 0.05 if left > 0 else self._rechecks.next(key))

    def forget(self, key: Key) -> None:
        self._rechecks.reset(key)
        self._settling.forget(key)
