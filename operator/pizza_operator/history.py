"""The revision history in the cluster: one ControllerRevision per shape of the children.

Like a StatefulSet's, each revision is a ControllerRevision owned by the resource, named
NAME-HASH, numbered in order of first application. It holds the spec parts that shape the
children (image, primary, fallback, router) and, in an annotation, when it was first applied.
Its outcome (Pending, Good, Failed) is in the resource's `status.revisionOutcomes`: a
ControllerRevision cannot be patched at all once created (the API server re-encodes its data
on any patch and refuses it as a change of the immutable field). The rollback to `previous`
re-applies a Good revision's children without touching the resource's spec. The reconcile
records revisions; the analysis marks their outcome (one writer each).
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, cast

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.naming import owned_selector
from pizza_operator.contract import (
    APPLIED_AT_ANNOTATION,
    REVISION_HASH_LABEL,
    RevisionOutcome,
    RevisionRef,
    owner_reference,
)
from pizza_operator.kube import Kube, now_rfc3339
from pizza_operator.rollback.revisions import next_outcome, prune
from pizza_operator.status_writer import StatusWriter

logger = logging.getLogger(__name__)

SHAPING_FIELDS = ("image", "primary", "fallback", "router")
"""The spec parts that shape the children; analysis, rollback and paused do not."""


@dataclass(frozen=True)
class StoredRevision:
    """A ControllerRevision as the rollback reads it."""

    name: str
    revision: RevisionRef
    hash: str
    data: dict[str, Any]
    applied_at: str = ""


def shaping_spec(pmd: PizzaModelDeployment) -> dict[str, Any]:
    wire = pmd.spec.to_wire()
    return {k: wire[k] for k in SHAPING_FIELDS if k in wire}


def revision_hash(data: dict[str, Any]) -> str:
    canonical = json.dumps(data, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()[:10]


def revision_name(pmd: PizzaModelDeployment, hash_: str) -> str:
    return f"{pmd.metadata.name}-{hash_}"


def with_revision(pmd: PizzaModelDeployment, stored: StoredRevision) -> PizzaModelDeployment:
    """The resource as it was in `stored`: its shaping spec parts put back, the rest as now."""
    wire = pmd.spec.to_wire()
    for key in SHAPING_FIELDS:
        wire.pop(key, None)
    wire.update(stored.data)
    return pmd.model_copy(update={"spec": type(pmd.spec).model_validate(wire)})


def _stored(obj: dict[str, Any], outcomes: Mapping[str, str]) -> StoredRevision:
    meta = obj["metadata"]
    annotations = meta.get("annotations") or {}
    outcome = outcomes.get(meta["name"], "Pending")
    hash_ = (meta.get("labels") or {}).get(REVISION_HASH_LABEL, "")
    return StoredRevision(
        name=meta["name"],
        revision=RevisionRef(
            meta["name"], int(obj.get("revision", 0)), cast(RevisionOutcome, outcome)
        ),
        hash=hash_,
        data=dict(obj.get("data") or {}),
        applied_at=annotations.get(APPLIED_AT_ANNOTATION, ""),
    )


class History:
    """Reads and writes the ControllerRevisions of one resource."""

    def __init__(self, kube: Kube, writer: StatusWriter) -> None:
        self.kube = kube
        self.writer = writer

    def revisions(self, pmd: PizzaModelDeployment) -> list[StoredRevision]:
        items = self.kube.list(
            "ControllerRevision", pmd.metadata.namespace, owned_selector(pmd.metadata.name)
        )
        owned = [
            i
            for i in items
            if any(
                r.get("uid") == pmd.metadata.uid for r in i["metadata"].get("ownerReferences", [])
            )
        ]
        outcomes = pmd.status.revision_outcomes
        return sorted((_stored(i, outcomes) for i in owned), key=lambda r: r.revision.number)

    def get(self, pmd: PizzaModelDeployment, name: str) -> StoredRevision | None:
        obj = self.kube.get("ControllerRevision", pmd.metadata.namespace, name)
        return _stored(obj, pmd.status.revision_outcomes) if obj is not None else None

    def record(self, pmd: PizzaModelDeployment) -> StoredRevision:
        """The current spec's revision, created when new; older ones pruned to the limit."""
        data = shaping_spec(pmd)
        hash_ = revision_hash(data)
        history = self.revisions(pmd)
        for stored in history:
            if stored.hash == hash_:
                return stored
        number = max((s.revision.number for s in history), default=0) + 1
        name = revision_name(pmd, hash_)
        body: dict[str, Any] = {
            "apiVersion": "apps/v1",
            "kind": "ControllerRevision",
            "metadata": {
                "name": name,
                "namespace": pmd.metadata.namespace,
                "labels": {**owned_selector(pmd.metadata.name), REVISION_HASH_LABEL: hash_},
                "annotations": {APPLIED_AT_ANNOTATION: now_rfc3339()},
                "ownerReferences": [owner_reference(pmd.metadata.name, pmd.metadata.uid)],
            },
            "revision": number,
            "data": data,
        }
        created = self.kube.create(body)
        found = _stored(created, {}) if created is not None else self.get(pmd, name)
        stored = found if found is not None else _stored(body, {})  # a race with a delete: ours
        self._prune(pmd, [*history, stored], stored.name)
        return stored

    def _prune(
        self, pmd: PizzaModelDeployment, history: list[StoredRevision], current: str
    ) -> None:
        limit = pmd.spec.rollback.revision_history_limit
        kept = {r.name for r in prune([s.revision for s in history], current, limit)}
        rollout = pmd.status.rollout  # a canary's stable revision is served: it stays
        serving = {pmd.status.serving_revision, rollout.stable_revision if rollout else None}
        gone = []
        for stored in history:
            if stored.name not in kept and stored.name not in serving:
                self.kube.delete("ControllerRevision", pmd.metadata.namespace, stored.name)
                gone.append(stored.name)
        if gone:
            self.writer.update(
                pmd.metadata.namespace,
                pmd.metadata.name,
                lambda fresh: (
                    {
                        "revisionOutcomes": {
                            n: None for n in gone if n in fresh.status.revision_outcomes
                        }
                    }
                    if any(n in fresh.status.revision_outcomes for n in gone)
                    else None
                ),
            )

    def mark(self, pmd: PizzaModelDeployment, name: str, outcome: RevisionOutcome) -> None:
        """Set a revision's outcome (`next_outcome`: a Good revision is never demoted)."""

        def change(fresh: PizzaModelDeployment) -> dict[str, Any] | None:
            after = next_outcome(fresh.status.revision_outcomes.get(name), outcome)
            return {"revisionOutcomes": {name: after}} if after else None

        if next_outcome(pmd.status.revision_outcomes.get(name), outcome):
            self.writer.update(pmd.metadata.namespace, pmd.metadata.name, change)


def serving_shape(history: History, pmd: PizzaModelDeployment, mode: Mode) -> PizzaModelDeployment:
    """The resource the children are built from: itself, or in mode previous the resource
    with the known-good revision's shaping spec (its spec itself is never changed)."""
    serving = pmd.status.serving_revision
    if mode != "previous" or not serving or serving == pmd.status.current_revision:
        return pmd
    stored = history.get(pmd, serving)
    if stored is None:
        logger.warning(
            "serving revision %s of %s/%s is gone",
            serving,
            pmd.metadata.namespace,
            pmd.metadata.name,
        )
        return pmd
    return with_revision(pmd, stored)
