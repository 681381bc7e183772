"""The desired-hash annotation and hand-edit detection, judged from a child object alone."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import build_children
from pizza_operator.children import (
    HASH_ANNOTATION,
    desired_hash,
    drifted,
    edited_by_others,
    needs_apply,
    with_hash,
)
from pizza_operator.config import OperatorConfig
from pizza_operator.kube import FIELD_MANAGER
from pizza_operator.validation import resolve_images

from .conftest import sample_body


def _children() -> list[dict[str, Any]]:
    pmd = PizzaModelDeployment.from_body(sample_body())
    return build_children(pmd, resolve_images(pmd, OperatorConfig()), "primary")


def _reordered(value: Any) -> Any:
    """The same value with every mapping's keys in reverse insertion order."""
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def _paths(value: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every leaf path (mapping keys and list indexes) of a JSON value."""
    if isinstance(value, dict):
        return [p for k, v in value.items() for p in _paths(v, (*prefix, k))]
    if isinstance(value, list):
        return [p for i, v in enumerate(value) for p in _paths(v, (*prefix, i))]
    return [prefix]


def _changed(obj: Any, path: tuple[Any, ...]) -> Any:
    out = copy.deepcopy(obj)
    target = out
    for step in path[:-1]:
        target = target[step]
    leaf = target[path[-1]]
    target[path[-1]] = (not leaf) if isinstance(leaf, bool) else f"{leaf}x"
    return out


def test_hash_is_sha256_hex_and_stable_across_key_order() -> None:
    for child in _children():
        value = desired_hash(child)
        assert len(value) == 64 and int(value, 16) >= 0
        assert desired_hash(_reordered(child)) == value
        assert desired_hash(copy.deepcopy(child)) == value


def test_every_field_changes_the_hash() -> None:
    for child in _children():
        base = desired_hash(child)
        paths = _paths(child)
        assert len(paths) > 5
        for path in paths:
            assert desired_hash(_changed(child, path)) != base, path


def test_list_order_and_added_fields_change_the_hash() -> None:
    deployment = next(c for c in _children() if c["kind"] == "Deployment")
    grown = copy.deepcopy(deployment)
    grown["spec"]["minReadySeconds"] = 0
    assert desired_hash(grown) != desired_hash(deployment)
    ports = [{"name": "a", "port": 1}, {"name": "b", "port": 2}]
    service: dict[str, Any] = {
        "kind": "Service",
        "metadata": {"name": "s"},
        "spec": {"ports": ports},
    }
    swapped = copy.deepcopy(service)
    swapped["spec"]["ports"].reverse()
    assert desired_hash(swapped) != desired_hash(service)


def test_the_annotation_itself_is_not_hashed() -> None:
    for child in _children():
        stamped = with_hash(child)
        assert stamped["metadata"]["annotations"][HASH_ANNOTATION] == desired_hash(child)
        assert desired_hash(stamped) == desired_hash(child)
        assert HASH_ANNOTATION not in child["metadata"].get("annotations", {})  # not mutated


def _live(child: dict[str, Any], *entries: dict[str, Any]) -> dict[str, Any]:
    live = with_hash(child)
    ours = {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": {"f:spec": {"f:x": {}}}}
    live["metadata"]["managedFields"] = [ours, *entries]
    return live


def test_an_untouched_child_needs_nothing() -> None:
    child = next(c for c in _children() if c["kind"] == "Deployment")
    controller = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "fieldsV1": {"f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}}},
    }
    status = {
        "manager": "kube-controller-manager",
        "operation": "Update",
        "subresource": "status",
        "fieldsV1": {"f:status": {"f:replicas": {}}},
    }
    live = _live(child, controller, status)
    assert needs_apply(child, live) is None
    assert not drifted(live)


@pytest.mark.parametrize(
    ("entry", "manager"),
    [
        (
            {
                "manager": "kubectl",
                "subresource": "scale",
                "fieldsV1": {"f:spec": {"f:replicas": {}}},
            },
            "kubectl",
        ),
        (
            {
                "manager": "kubectl-annotate",
                "fieldsV1": {"f:metadata": {"f:annotations": {f"f:{HASH_ANNOTATION}": {}}}},
            },
            "kubectl-annotate",
        ),
    ],
)
def test_a_hand_edit_is_seen(entry: dict[str, Any], manager: str) -> None:
    child = next(c for c in _children() if c["kind"] == "Deployment")
    live = _live(child, {"operation": "Update", **entry})
    assert edited_by_others(live) == [manager]
    assert needs_apply(child, live) == f"edited by {manager}"
    assert drifted(live)


def test_missing_or_changed_children_need_an_apply() -> None:
    child = next(c for c in _children() if c["kind"] == "Service")
    assert needs_apply(child, None) == "missing"
    live = _live(child)
    newer = copy.deepcopy(child)
    newer["spec"]["ports"][0]["port"] += 1
    assert needs_apply(newer, live) == "changed"
    del live["metadata"]["annotations"][HASH_ANNOTATION]
    assert needs_apply(child, live) == "changed"
    assert drifted(live)


def test_fields_we_do_not_set_are_theirs_to_keep() -> None:
    child = next(c for c in _children() if c["kind"] == "Deployment")
    container = child["spec"]["template"]["spec"]["containers"][0]["name"]
    theirs: dict[str, Any] = {
        "manager": "kubectl-patch",
        "operation": "Update",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:team": {}}},
            "f:spec": {
                "f:minReadySeconds": {},
            },
        },
    }
    live = _live(child, theirs)
    assert needs_apply(child, live) is None
    assert drifted(live)  # without the desired child, any spec edit is worth a reconcile
    ours = copy.deepcopy(theirs)
    ours["fieldsV1"]["f:spec"]["f:template"] = {
        "f:spec": {"f:containers": {f'k:{{"name":"{container}"}}': {"f:image": {}}}}
    }
    assert needs_apply(child, _live(child, ours)) == "edited by kubectl-patch"
    added = copy.deepcopy(theirs)  # an item added to a list we set (a port, a container)
    added["fieldsV1"]["f:spec"]["f:template"] = {
        "f:spec": {"f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:name": {}}}}
    }
    assert needs_apply(child, _live(child, added)) == "edited by kubectl-patch"
