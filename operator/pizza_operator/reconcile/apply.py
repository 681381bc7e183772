"""The children through the API door: list those a resource owns, dry-run, apply what differs,
replace what an apply cannot merge, prune what is no longer wanted.

Every write the API server accepted counts in `pizza_operator_child_writes_total`. Only children
whose ownerReference carries the resource's uid are ever pruned; the label selector merely
narrows the listing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pizza_operator import children as kids
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.naming import owned_selector
from pizza_operator.kube import Kube, KubeError

logger = logging.getLogger(__name__)

ChildKey = tuple[str, str, str]
"""(kind, namespace, name)"""
Live = Mapping[ChildKey, Any]

CHILD_KINDS = (
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
)
MUTABLE_BY_USERS = ("Deployment",)
"""Kinds whose spec a user may get wrong (node selectors, tolerations): dry-run them first."""


def child_key(obj: Mapping[str, Any], kind: str | None = None) -> ChildKey:
    """(kind, namespace, name); items of a LIST carry no kind, so callers pass it."""
    meta = obj.get("metadata", {})
    kind = kind or str(obj.get("kind", ""))
    return (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))


@dataclass
class Applied:
    """What `apply_changed` did: the Deployments as they are after it, the children it created
    (`Kind/name`) and how many applies it made."""

    deployments: list[Mapping[str, Any]] = field(default_factory=list)
    created: list[str] = field(default_factory=list)
    applied: int = 0


class ChildApplier:
    """Reads and writes the children of a resource; keeps no state between calls."""

    def __init__(self, kube: Kube) -> None:
        self.kube = kube

    def live(self, pmd: PizzaModelDeployment) -> dict[ChildKey, Any]:
        """The live children this resource owns (by uid), keyed by (kind, namespace, name)."""
        live: dict[ChildKey, Any] = {}
        selector = owned_selector(pmd.metadata.name)
        for kind in CHILD_KINDS:
            for obj in self.kube.list(kind, pmd.metadata.namespace, selector):
                refs = obj.get("metadata", {}).get("ownerReferences", [])
                if any(ref.get("uid") == pmd.metadata.uid for ref in refs):
                    live[child_key(obj, kind)] = obj
        return live

    def deployments(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The live Deployments labelled as resource `name`'s (a status refresh reads these)."""
        return self.kube.list("Deployment", namespace, owned_selector(name))

    def dry_run(self, children: list[dict[str, Any]]) -> list[str]:
        """Ask the API server whether it would accept the children the user can get wrong."""
        problems = []
        for child in children:
            if child["kind"] not in MUTABLE_BY_USERS:
                continue
            try:
                self.kube.apply_dry_run(child)
            except KubeError as exc:
                if exc.status not in (400, 422):
                    raise
                problems.append(f"{child['kind']} {child['metadata']['name']}: {exc.message}")
        return problems

    def apply_changed(self, children: list[dict[str, Any]], live: Live, force: bool) -> Applied:
        """Apply, in order, the children that differ from the cluster (`children.needs_apply`);
        `force` applies every one."""
        done = Applied()
        for child in children:
            current = live.get(child_key(child))
            why = "forced" if force else kids.needs_apply(child, current)
            if why is not None:
                logger.info(
                    "applying child=%s/%s namespace=%s reason=%s",
                    child["kind"],
                    child["metadata"]["name"],
                    child["metadata"]["namespace"],
                    why,
                )
                current, was_created = self._apply_one(kids.with_hash(child))
                done.applied += 1
                if was_created:
                    done.created.append(f"{child['kind']}/{child['metadata']['name']}")
            assert current is not None  # needs_apply() calls a missing child "missing"
            if child["kind"] == "Deployment":
                done.deployments.append(current)
        return done

    def _apply_one(self, child: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Apply; when hand edits make the merged object invalid, replace it, then apply again."""
        try:
            result = self.kube.apply(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="apply").inc()
            return result
        except KubeError as exc:
            if exc.status != 422:
                raise
            logger.warning(
                "replacing child=%s/%s namespace=%s reason=%r",
                child["kind"],
                child["metadata"]["name"],
                child["metadata"]["namespace"],
                exc.message,
            )
            self.kube.replace(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="replace").inc()
            live, _ = self.kube.apply(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="apply").inc()
            return live, False

    def prune(self, children: list[dict[str, Any]], live: Live) -> None:
        """Delete owned children the desired set no longer contains (a PDB once replicas is 1)."""
        wanted = {child_key(child) for child in children}
        for key in sorted(set(live) - wanted):
            kind, namespace, name = key
            logger.info("pruning child=%s/%s namespace=%s", kind, name, namespace)
            self.kube.delete(kind, namespace, name)
            kids.CHILD_WRITES.labels(kind=kind, action="delete").inc()
