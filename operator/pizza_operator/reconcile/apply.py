"""The children through the API door: list those a resource owns, plan what differs, check the
whole set (names held by others, a dry-run), apply, replace what an apply cannot merge, prune
what is no longer wanted.

Only our own objects: a child is ours when its controller ownerReference carries the resource's
uid. Only such children are listed as ours, replaced or pruned; a name held by any other object
blocks the reconcile (`NameConflict`) and that object is never written. Every write the API
server accepted counts in `pizza_operator_child_writes_total`; the label selector merely narrows
the listing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pizza_operator import children as kids
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.naming import COMPONENTS, Component, owned_selector, service_name
from pizza_operator.contract import SERVICE_NAME_LABEL
from pizza_operator.endpoints import endpoints_by_component
from pizza_operator.kube import InvalidError, Kube, KubeError
from pizza_operator.status import Blocked

logger = logging.getLogger(__name__)

ChildKey = tuple[str, str, str]
"""(kind, namespace, name)"""
Live = Mapping[ChildKey, Any]

CHILD_KINDS = (
    "Deployment",
    "Service",
    "PodDisruptionBudget",
    "NetworkPolicy",
    "ConfigMap",
    "ServiceAccount",
    "Role",
    "RoleBinding",
)
DRY_RUN_SKIPPED = ("RoleBinding",)
"""Kinds the dry-run leaves out: a RoleBinding's admission reads the Role it binds (the
escalation check), which the dry-run of a new Role does not create; and it carries nothing from
the spec but the resource's name."""


def child_key(obj: Mapping[str, Any], kind: str | None = None) -> ChildKey:
    """(kind, namespace, name); items of a LIST carry no kind, so callers pass it."""
    meta = obj.get("metadata", {})
    kind = kind or str(obj.get("kind", ""))
    return (kind, str(meta.get("namespace", "")), str(meta.get("name", "")))


@dataclass(frozen=True)
class Step:
    """One desired child, the live one this resource owns (None: it would be created) and why
    it is applied (None: it is as wanted, left alone)."""

    child: dict[str, Any]
    current: Mapping[str, Any] | None
    why: str | None

    @property
    def what(self) -> str:
        """`Kind name`, as problems name a child."""
        return f"{self.child['kind']} {self.child['metadata']['name']}"


def plan(children: list[dict[str, Any]], live: Live, force: bool) -> list[Step]:
    """Each desired child, in apply order, with why it must be applied (`children.needs_apply`;
    `force` applies every one)."""
    steps = []
    for child in children:
        current = live.get(child_key(child))
        why = "forced" if force else kids.needs_apply(child, current)
        steps.append(Step(child, current, why))
    return steps


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
        """The live children this resource controls (by uid), keyed by (kind, namespace, name)."""
        live: dict[ChildKey, Any] = {}
        selector = owned_selector(pmd.metadata.name)
        for kind in CHILD_KINDS:
            for obj in self.kube.list(kind, pmd.metadata.namespace, selector):
                if kids.controlled_by(obj, pmd.metadata.uid):
                    live[child_key(obj, kind)] = obj
        return live

    def deployments(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The live Deployments labelled as resource `name`'s (a status refresh reads these)."""
        return self.kube.list("Deployment", namespace, owned_selector(name))

    def endpoints(self, pmd: PizzaModelDeployment) -> dict[Component, int]:
        """The ready endpoints each component's Service lists, from one LIST of their
        EndpointSlices, selected as kube-proxy selects them (`endpoints.endpoints_by_component`)."""
        services = {c: service_name(pmd, c) for c in COMPONENTS}
        selector = f"{SERVICE_NAME_LABEL} in ({','.join(sorted(services.values()))})"
        slices = self.kube.list("EndpointSlice", pmd.metadata.namespace, selector)
        return endpoints_by_component(slices, services)

    def check(self, steps: list[Step], uid: str, *, dry_run: bool) -> Blocked | None:
        """What forbids applying any of `steps` (the whole set is judged before anything is
        applied): a name held by an object the resource of `uid` does not control
        (`NameConflict`), else, with `dry_run`, a child the API server refuses (`InvalidSpec`)."""
        held = self.held_by_others(steps, uid)
        if held:
            return Blocked("NameConflict", tuple(held))
        refused = self.dry_run(steps) if dry_run else []
        return Blocked("InvalidSpec", tuple(refused)) if refused else None

    def held_by_others(self, steps: list[Step], uid: str) -> list[str]:
        """The children to be created whose name another object holds. One GET for each child
        missing from the owned listing, and none for the others."""
        problems = []
        for step in steps:
            if step.current is not None:
                continue
            meta = step.child["metadata"]
            holder = self.kube.get(step.child["kind"], meta["namespace"], meta["name"])
            problem = kids.name_conflict(step.child, holder, uid)
            if problem is not None:
                problems.append(problem)
        return problems

    def dry_run(self, steps: list[Step]) -> list[str]:
        """Ask the API server whether it accepts every child to be applied (but those of
        `DRY_RUN_SKIPPED`): each refusal (400, 422) as `Kind name: the server's message`."""
        problems = []
        for step in steps:
            if step.why is None or step.child["kind"] in DRY_RUN_SKIPPED:
                continue
            refusal = self._refusal(kids.with_hash(step.child), owned=step.current is not None)
            if refusal is not None:
                problems.append(f"{step.what}: {refusal}")
        return problems

    def _refusal(self, child: dict[str, Any], *, owned: bool) -> str | None:
        """The server's message when it refuses `child`; a child we own that hand edits make
        unmergeable is judged as the replace `_apply_one` would then make."""
        try:
            self.kube.apply_dry_run(child)
            return None
        except InvalidError as exc:
            if not owned:
                return exc.message
        try:
            self.kube.replace(child, dry_run=True)
            return None
        except InvalidError as exc:
            return exc.message

    def apply_changed(self, steps: list[Step]) -> Applied:
        """Apply, in order, the children of `steps` that have a reason to be."""
        done = Applied()
        for step in steps:
            current = step.current
            child = step.child
            if step.why is not None:
                logger.info(
                    "applying child=%s/%s namespace=%s reason=%s",
                    child["kind"],
                    child["metadata"]["name"],
                    child["metadata"]["namespace"],
                    step.why,
                )
                owned = step.current is not None
                current, was_created = self._apply_one(kids.with_hash(child), owned=owned)
                done.applied += 1
                if was_created:
                    done.created.append(f"{child['kind']}/{child['metadata']['name']}")
            assert current is not None  # needs_apply() calls a missing child "missing"
            if child["kind"] == "Deployment":
                done.deployments.append(current)
        return done

    def _apply_one(self, child: dict[str, Any], *, owned: bool) -> tuple[dict[str, Any], bool]:
        """Apply; when hand edits make the merged object invalid, replace it, then apply again.
        Only a child we own is replaced: a 422 on a new one (another resource created it since
        `held_by_others` looked: two controller references) is an API error, and the next
        reconcile sees the conflict."""
        try:
            result = self.kube.apply(child)
            kids.CHILD_WRITES.labels(kind=child["kind"], action="apply").inc()
            return result
        except KubeError as exc:
            if exc.status != 422 or not owned:
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
