"""The one path every status write takes: fresh read, change, conditional merge-patch.

The reconcile and the analysis both write the status of a resource. Each write reads the live
resource, computes its change from that (so the conditions and fields the other one wrote are
kept), and merge-patches with the resourceVersion it read: a write in between makes the patch a
409 Conflict, and the change is computed again from the newer object. Nobody overwrites anybody.

Who owns what: the reconcile writes observedGeneration, the five conditions of `status.py`,
the replica counts and currentRevision; the analysis writes mode, analysis, errorRate,
lastRollback, servingRevision, revisionOutcomes and the RolledBack condition.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from pizza_operator.api.v1alpha1 import KIND, PizzaModelDeployment
from pizza_operator.kube import ConflictError, Kube

logger = logging.getLogger(__name__)

Change = Callable[[PizzaModelDeployment], dict[str, Any] | None]
"""From the live resource to the status fields to merge (None or {}: nothing to write)."""

ATTEMPTS = 8


class StatusWriter:
    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def update(
        self, namespace: str, name: str, change: Change, current: PizzaModelDeployment | None = None
    ) -> PizzaModelDeployment | None:
        """Apply `change` to the live status; returns the resource as written (or as read when
        nothing changed), None when it is gone. `current`, when given, is tried first."""
        pmd = current
        for _ in range(ATTEMPTS):
            if pmd is None:
                body = self.kube.get(KIND, namespace, name)
                if body is None:
                    return None
                pmd = PizzaModelDeployment.from_body(body)
            patch = change(pmd)
            if not patch:
                return pmd
            try:
                live = self.kube.patch_status(
                    namespace, name, patch, resource_version=pmd.metadata.resource_version or None
                )
            except ConflictError:
                pmd = None  # someone wrote in between: read again, compute again
                continue
            return PizzaModelDeployment.from_body(live)
        raise ConflictError(409, "Conflict", f"status of {namespace}/{name} kept changing")
