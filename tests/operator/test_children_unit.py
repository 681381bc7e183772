"""The desired-hash annotation and hand-edit detection, judged from a child object alone."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import build_children, resolve_images
from pizza_operator.children import (
    HASH_ANNOTATION,
    desired_hash,
    drifted,
    edited_by_others,
    lost_fields,
    needs_apply,
    owner_name,
    with_hash,
)
from pizza_operator.config import OperatorConfig
from pizza_operator.kube import FIELD_MANAGER

from .conftest import sample_body

pytestmark = pytest.mark.unit


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


def test_hashing_copies_nothing_it_changes_and_an_empty_annotation_map_is_none() -> None:
    for child in _children():
        before = json.dumps(child, sort_keys=True)
        bare = copy.deepcopy(child)
        bare["metadata"].pop("annotations", None)
        empty = copy.deepcopy(bare)
        empty["metadata"]["annotations"] = {}
        assert desired_hash(bare) == desired_hash(empty) == desired_hash(with_hash(bare))
        needs_apply(child, with_hash(child))
        assert json.dumps(child, sort_keys=True) == before  # neither hashing nor judging wrote


def _fields_of(value: Any) -> dict[str, Any]:
    """The fieldsV1 set a server-side apply of `value` gives its manager (keyed lists by name,
    port, containerPort or uid, as the API server keys them)."""
    if isinstance(value, dict):
        return {f"f:{k}": _fields_of(v) for k, v in value.items() if v is not None}
    keys = ("containerPort", "port", "name", "uid")
    if isinstance(value, list) and value and all(any(k in i for k in keys) for i in value):
        out: dict[str, Any] = {}
        for item in value:
            key = next(k for k in keys if k in item)
            if key == "uid":
                out[f'k:{{"uid":"{item["uid"]}"}}'] = {}
                continue
            keys = {key: item[key], **({"protocol": "TCP"} if "port" in key.lower() else {})}
            out["k:" + json.dumps(keys, separators=(",", ":"))] = {".": {}, **_fields_of(item)}
        return out
    return {}  # a leaf, or an atomic list (tolerations, args)


def _ours(child: dict[str, Any]) -> dict[str, Any]:
    body = with_hash(child)
    meta = {k: v for k, v in body["metadata"].items() if k not in ("name", "namespace")}
    top = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata")}
    fields = _fields_of({"metadata": meta, **top})  # spec, data, rules, roleRef, subjects...
    return {"manager": FIELD_MANAGER, "operation": "Apply", "fieldsV1": fields}


def _live(child: dict[str, Any], *entries: dict[str, Any], ours: Any = None) -> dict[str, Any]:
    live = with_hash(child)
    live["metadata"]["managedFields"] = [ours or _ours(child), *entries]
    return live


def _owned_child(kind: str) -> dict[str, Any]:
    child = next(c for c in _children() if c["kind"] == kind)
    child["metadata"]["ownerReferences"] = [{"apiVersion": "pizza.ai/v1alpha1", "uid": "u-1"}]
    return child


def test_an_untouched_child_needs_nothing() -> None:
    for child in _children():
        child["metadata"]["ownerReferences"] = [{"apiVersion": "pizza.ai/v1alpha1", "uid": "u"}]
        controller = {
            "manager": "kube-controller-manager",
            "operation": "Update",
            "subresource": "status",
            "fieldsV1": {
                "f:metadata": {"f:annotations": {"f:deployment.kubernetes.io/revision": {}}},
                "f:status": {"f:replicas": {}},
            },
        }
        live = _live(child, controller)
        assert lost_fields(live, child) == [], child["metadata"]["name"]
        assert needs_apply(child, live) is None
        assert not drifted(live)


def _without(fields: dict[str, Any], *path: str) -> dict[str, Any]:
    out = copy.deepcopy(fields)
    target = out
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]
    return out


def test_a_field_taken_by_a_hand_edit_is_seen() -> None:
    child = _owned_child("Deployment")
    ours = _ours(child)
    scaled = copy.deepcopy(ours)
    scaled["fieldsV1"] = _without(ours["fieldsV1"], "f:spec", "f:replicas")
    scale = {
        "manager": "kubectl",
        "operation": "Update",
        "subresource": "scale",
        "fieldsV1": {"f:spec": {"f:replicas": {}}},
    }
    live = _live(child, scale, ours=scaled)
    assert needs_apply(child, live) == "edited: .spec.replicas"
    assert drifted(live)
    container = child["spec"]["template"]["spec"]["containers"][0]["name"]
    image = ("f:spec", "f:template", "f:spec", "f:containers", f'k:{{"name":"{container}"}}')
    patched = copy.deepcopy(ours)
    patched["fieldsV1"] = _without(ours["fieldsV1"], *image, "f:image")
    live = _live(child, ours=patched)
    assert needs_apply(child, live) == ("edited: .spec.template.spec.containers[0].image")


def test_no_entry_of_ours_is_an_edit() -> None:
    child = _owned_child("Service")
    live = _live(child, ours={"manager": "kubectl-create", "operation": "Update"})
    assert lost_fields(live, child) == ["*"]
    assert needs_apply(child, live) == "edited: *"
    assert drifted(live)


def test_a_service_port_changed_by_hand_is_seen() -> None:
    child = _owned_child("Service")
    ours = _ours(child)
    ports = ours["fieldsV1"]["f:spec"]["f:ports"]
    (key,) = ports
    ours["fieldsV1"]["f:spec"]["f:ports"] = {key.replace(":8", ":9", 1): ports[key]}
    live = _live(child, ours=ours)
    assert needs_apply(child, live) == "edited: .spec.ports[0]"


def test_missing_or_changed_children_need_an_apply() -> None:
    child = _owned_child("Service")
    assert needs_apply(child, None) == "missing"
    live = _live(child)
    newer = copy.deepcopy(child)
    newer["spec"]["ports"][0]["port"] += 1
    assert needs_apply(newer, live) == "changed"
    del live["metadata"]["annotations"][HASH_ANNOTATION]
    assert needs_apply(child, live) == "changed"
    assert drifted(live)


def test_fields_we_do_not_set_are_theirs_to_keep() -> None:
    child = _owned_child("Deployment")
    theirs: dict[str, Any] = {
        "manager": "kubectl-patch",
        "operation": "Update",
        "fieldsV1": {
            "f:metadata": {"f:labels": {"f:team": {}}},
            "f:spec": {
                "f:minReadySeconds": {},
                "f:template": {
                    "f:spec": {"f:containers": {'k:{"name":"sidecar"}': {".": {}, "f:name": {}}}}
                },
            },
        },
    }
    # a field or a list item someone added is theirs: our apply would not remove it, so it
    # is no reason to write (else every resync would)
    live = _live(child, theirs)
    assert needs_apply(child, live) is None
    assert edited_by_others(live) == ["kubectl-patch"]
    assert drifted(live)  # without the desired child, any spec edit is worth a reconcile
    shared = {
        **theirs,
        "manager": "helm",
        "operation": "Apply",
        "fieldsV1": _ours(child)["fieldsV1"],
    }
    assert needs_apply(child, _live(child, shared)) is None  # another applier of our values


def test_the_owner_of_a_child_is_read_from_its_owner_references() -> None:
    child = _children()[0]
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "not-this"},
        {"apiVersion": "pizza.ai/v1alpha1", "kind": "PizzaModelDeployment", "name": "mine"},
    ]
    assert owner_name(child) == "mine"
    child["metadata"]["ownerReferences"] = [
        {"apiVersion": "pizza.ai/v1beta9", "kind": "PizzaModelDeployment", "name": "other"}
    ]
    assert owner_name(child) is None
    assert owner_name({"metadata": {}}) is None and owner_name({}) is None
