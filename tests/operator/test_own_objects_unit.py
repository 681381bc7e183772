"""Only our own objects: a child's name held by another object blocks the reconcile
(`NameConflict`), the whole set is checked (held names, then a dry-run) before anything is
applied, and only children the resource controls are ever replaced."""

from __future__ import annotations

import builtins
import copy
from typing import Any, cast

import pytest
from pizza_operator.analysis.tick import skipped
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import build_children, resolve_images
from pizza_operator.children import controlled_by, name_conflict, with_hash
from pizza_operator.conditions import new_condition
from pizza_operator.config import OperatorConfig
from pizza_operator.contract import owner_reference
from pizza_operator.kube import FIELD_MANAGER, InvalidError, Kube, KubeError
from pizza_operator.reconcile.apply import ChildApplier, Step, child_key, plan
from pizza_operator.status import Blocked

from .conftest import sample_body

pytestmark = pytest.mark.unit

UID = "uid-1"
NS = "pizzas"
NAME = "pizza-classifier"


def _pmd() -> PizzaModelDeployment:
    return PizzaModelDeployment.from_body(sample_body(NAME, NS))


def _children() -> list[dict[str, Any]]:
    pmd = _pmd()
    children = build_children(
        pmd, resolve_images(pmd, OperatorConfig(default_image="i:1")), "primary"
    )
    for child in children:
        child["metadata"]["ownerReferences"] = [owner_reference(NAME, UID)]
    return children


def _fields(value: Any) -> Any:
    """The fieldsV1 set of `value` (lists owned as a whole)."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields(v) for k, v in value.items()}
    return {}


def _live(child: dict[str, Any]) -> dict[str, Any]:
    """`child` as the API server returns it after our apply: every field ours."""
    live = with_hash(child)
    top = {k: v for k, v in live.items() if k not in ("apiVersion", "kind")}
    entry = {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": _fields(top)}
    live["metadata"]["managedFields"] = [entry]
    return live


def _theirs(kind: str, name: str, owner: dict[str, Any] | None = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name, "namespace": NS, "resourceVersion": "7"}
    if owner is not None:
        meta["ownerReferences"] = [owner]
    return {"kind": kind, "metadata": meta, "data": {"user": "data"}}


class FakeKube:
    """The API door's reads and writes the applier uses, answering from `objects`; `refuse`
    maps `Kind/name` to the message of a 422 for a dry-run (and `refuse_replace` for a replace)."""

    def __init__(self, objects: list[dict[str, Any]] | None = None) -> None:
        self.objects = {(o["kind"], o["metadata"]["name"]): o for o in objects or []}
        self.calls: list[tuple[str, str]] = []
        self.refuse: dict[str, str] = {}
        self.refuse_replace: dict[str, str] = {}
        self.apply_status: int | None = None

    def list(self, kind: str, namespace: str, selector: dict[str, str]) -> list[dict[str, Any]]:
        self.calls.append(("list", kind))
        return [copy.deepcopy(o) for (k, _), o in self.objects.items() if k == kind]

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", f"{kind}/{name}"))
        return self.objects.get((kind, name))

    def apply_dry_run(self, obj: dict[str, Any]) -> None:
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        self.calls.append(("dry-run", key))
        if key in self.refuse:
            raise InvalidError(422, "Invalid", self.refuse[key])

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        self.calls.append(("dry-replace" if dry_run else "replace", key))
        if key in self.refuse_replace:
            raise InvalidError(422, "Invalid", self.refuse_replace[key])
        return obj

    def apply(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        key = f"{obj['kind']}/{obj['metadata']['name']}"
        self.calls.append(("apply", key))
        if self.apply_status is not None:
            raise KubeError(self.apply_status, "Invalid", "two controllers")
        return obj, True

    def writes(self) -> builtins.list[tuple[str, str]]:
        return [c for c in self.calls if c[0] in ("apply", "replace")]


def _applier(kube: FakeKube) -> ChildApplier:
    return ChildApplier(cast(Kube, kube))


class TestNameConflict:
    def test_no_holder_or_our_own_is_no_conflict(self) -> None:
        child = _children()[0]
        assert name_conflict(child, None, UID) is None
        assert name_conflict(child, _live(child), UID) is None

    def test_an_object_without_a_controller_is_not_ours(self) -> None:
        child = next(c for c in _children() if c["kind"] == "ConfigMap")
        holder = _theirs("ConfigMap", child["metadata"]["name"])
        assert not controlled_by(holder, UID)
        assert name_conflict(child, holder, UID) == (
            f"ConfigMap {NAME}-routing exists and is not controlled by this resource"
        )

    def test_another_resource_is_named(self) -> None:
        child = next(c for c in _children() if c["kind"] == "Service")
        holder = _theirs("Service", child["metadata"]["name"], owner_reference("a", "uid-a"))
        assert name_conflict(child, holder, UID) == (
            f"Service {child['metadata']['name']} belongs to PizzaModelDeployment a"
        )

    def test_a_reference_to_us_that_is_not_the_controller_is_not_ours(self) -> None:
        child = _children()[0]
        holder = _theirs(child["kind"], child["metadata"]["name"])
        holder["metadata"]["ownerReferences"] = [
            {**owner_reference(NAME, UID), "controller": False}
        ]
        assert not controlled_by(holder, UID)
        assert name_conflict(child, holder, UID) is not None


class TestPlan:
    def test_missing_changed_and_unchanged(self) -> None:
        children = _children()
        live = {child_key(children[0]): _live(children[0])}
        steps = plan(children, live, force=False)
        assert [s.why for s in steps][:2] == [None, "missing"]
        edited = copy.deepcopy(live[child_key(children[0])])
        edited["metadata"]["managedFields"] = []
        assert plan(children, {child_key(children[0]): edited}, False)[0].why == "edited: *"
        assert steps[0].current is not None and steps[1].current is None
        assert all(s.why == "forced" for s in plan(children, live, force=True))


class TestCheck:
    def test_a_held_name_blocks_before_any_dry_run_and_gets_only_the_missing(self) -> None:
        children = _children()
        routing = next(c for c in children if c["kind"] == "ConfigMap")
        router_svc = next(c for c in children if c["metadata"]["name"] == NAME)
        kube = FakeKube(
            [_theirs("ConfigMap", routing["metadata"]["name"]), _theirs("Service", NAME)]
        )
        live = {child_key(children[0]): _live(children[0])}  # the ServiceAccount is ours
        steps = plan(children, live, force=False)
        blocked = _applier(kube).check(steps, UID, dry_run=True)
        assert blocked == Blocked(
            "NameConflict",
            (
                f"ConfigMap {NAME}-routing exists and is not controlled by this resource",
                f"Service {NAME} exists and is not controlled by this resource",
            ),
        )
        gets = [what for call, what in kube.calls if call == "get"]
        assert len(gets) == len(children) - 1 and f"ServiceAccount/{NAME}-router" not in gets
        assert f"Service/{router_svc['metadata']['name']}" in gets
        assert not any(call == "dry-run" for call, _ in kube.calls)
        assert kube.writes() == []

    def test_our_own_child_found_by_name_is_no_conflict(self) -> None:
        children = _children()
        kube = FakeKube([_live(children[0])])  # ours, but its labels were taken off
        steps = plan(children, {}, force=False)
        assert _applier(kube).check(steps, UID, dry_run=False) is None

    def test_every_refusal_of_the_set_is_reported_and_nothing_applied(self) -> None:
        children = _children()
        kube = FakeKube()
        kube.refuse = {
            f"Deployment/{NAME}-fallback": "spec.template.spec.containers[0].resources.limits: x",
            f"Service/{NAME}-primary": "spec.ports: y",
        }
        blocked = _applier(kube).check(plan(children, {}, False), UID, dry_run=True)
        assert blocked == Blocked(
            "InvalidSpec",
            (
                f"Service {NAME}-primary: spec.ports: y",
                f"Deployment {NAME}-fallback: spec.template.spec.containers[0].resources.limits: x",
            ),
        )
        dry = [what for call, what in kube.calls if call == "dry-run"]
        assert len(dry) == len(children) - 1  # all but the RoleBinding
        assert not any(what.startswith("RoleBinding/") for what in dry)
        assert kube.writes() == []

    def test_no_dry_run_unless_asked_and_none_of_unchanged_children(self) -> None:
        children = _children()
        live = {child_key(c): _live(c) for c in children}
        kube = FakeKube()
        steps = [Step(s.child, s.current, None) for s in plan(children, live, False)]
        assert _applier(kube).check(steps, UID, dry_run=True) is None
        assert _applier(kube).check(plan(children, {}, False), UID, dry_run=False) is None
        assert not any(call == "dry-run" for call, _ in kube.calls)

    def test_an_owned_child_is_judged_as_its_replace(self) -> None:
        children = _children()
        svc = next(c for c in children if c["kind"] == "Service")
        key = f"Service/{svc['metadata']['name']}"
        steps = [Step(svc, _live(svc), "edited: .spec.ports")]
        kube = FakeKube()
        kube.refuse = {key: "spec.ports[1]: Duplicate value"}  # the hand edit clashes
        assert _applier(kube).dry_run(steps) == []
        assert ("dry-replace", key) in kube.calls
        kube.refuse_replace = {key: "spec.ports: Invalid"}
        assert _applier(kube).dry_run(steps) == [
            f"Service {svc['metadata']['name']}: spec.ports: Invalid"
        ]
        assert kube.writes() == []


class TestApply:
    def test_a_new_child_refused_is_never_replaced(self) -> None:
        svc = next(c for c in _children() if c["kind"] == "Service")
        kube = FakeKube()
        kube.apply_status = 422  # another resource created it since the check
        with pytest.raises(KubeError):
            _applier(kube).apply_changed([Step(svc, None, "missing")])
        assert not any(call == "replace" for call, _ in kube.calls)

    def test_an_owned_child_refused_is_replaced(self) -> None:
        svc = next(c for c in _children() if c["kind"] == "Service")
        kube = FakeKube()
        kube.apply_status = 422
        with pytest.raises(KubeError):  # the apply after the replace fails too, in this fake
            _applier(kube).apply_changed([Step(svc, _live(svc), "edited")])
        assert ("replace", f"Service/{svc['metadata']['name']}") in kube.calls

    def test_the_listing_keeps_only_children_we_control(self) -> None:
        children = _children()
        ours = _live(children[0])
        other = _theirs("ServiceAccount", "x", {**owner_reference(NAME, UID), "controller": False})
        kube = FakeKube([ours, other])
        live = _applier(kube).live(_pmd())
        assert list(live) == [child_key(ours)]


class TestAnalysisSkips:
    @pytest.mark.parametrize("reason", ["InvalidSpec", "NameConflict"])
    def test_a_blocked_resource_is_not_judged(self, reason: str) -> None:
        body = sample_body(NAME, NS)
        ready = new_condition("Ready", "False", reason, "m", 1).model_dump(by_alias=True)
        body["status"] = {"currentRevision": "r1", "conditions": [ready]}
        assert skipped(PizzaModelDeployment.from_body(body))
        body["status"]["conditions"] = []
        assert not skipped(PizzaModelDeployment.from_body(body))
