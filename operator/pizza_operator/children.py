"""What the cluster tells about our children: the desired hash each carries, and hand edits.

No process memory: a new leader judges every child from the live object alone. Each child we
apply carries `pizza.ai/desired-hash`, the sha256 of the canonical JSON of the object we applied
(without that annotation). A child whose hash matches the desired one and whose managedFields
show that our apply still owns every field we set is left alone; any other child is applied
again. (A hand edit of a field we set moves that field to the editor's manager.)
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from pizza_operator.api.v1alpha1 import KIND
from pizza_operator.contract import API_VERSION, DESIRED_HASH_ANNOTATION, MANAGER

HASH_ANNOTATION = DESIRED_HASH_ANNOTATION
_HASH_FIELD = f"f:{HASH_ANNOTATION}"

CHILD_WRITES = Counter(
    "pizza_operator_child_writes_total",
    "Writes to children (server-side applies, replaces and prunes), by kind and action.",
    ["kind", "action"],
)


def desired_hash(child: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `child` (sorted keys, no spaces), without our annotation
    (an annotations map left empty counts as none). Nothing is copied below the metadata: a
    resync hashes every child of every resource."""
    body = dict(child)
    meta = body.get("metadata", {})
    annotations = meta.get("annotations")
    if annotations is not None:
        kept = {k: v for k, v in annotations.items() if k != HASH_ANNOTATION}
        body["metadata"] = {k: v for k, v in meta.items() if k != "annotations"}
        if kept:
            body["metadata"]["annotations"] = kept
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _stamped(child: Mapping[str, Any]) -> dict[str, Any]:
    """`child` with its desired hash annotation; shares everything else with `child`."""
    meta = dict(child.get("metadata", {}))
    meta["annotations"] = {**(meta.get("annotations") or {}), HASH_ANNOTATION: desired_hash(child)}
    return {**child, "metadata": meta}


def with_hash(child: dict[str, Any]) -> dict[str, Any]:
    """A copy of `child` carrying its desired hash annotation (what we apply)."""
    return copy.deepcopy(_stamped(child))


def live_hash(live: Mapping[str, Any]) -> str | None:
    value = live.get("metadata", {}).get("annotations", {}).get(HASH_ANNOTATION)
    return str(value) if value is not None else None


def our_fields(live: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The fields our server-side apply owns in `live` (managedFields), None when it owns none."""
    for entry in live.get("metadata", {}).get("managedFields", []) or []:
        if (
            entry.get("manager") == MANAGER
            and entry.get("operation") == "Apply"
            and not entry.get("subresource")
        ):
            fields: Mapping[str, Any] = entry.get("fieldsV1", {}) or {}
            return fields
    return None


def lost_fields(live: Mapping[str, Any], desired: Mapping[str, Any]) -> list[str]:
    """Fields `desired` sets that our apply no longer owns in `live`: someone else changed them.

    Server-side apply makes us the owner of every field we apply. A hand edit (`kubectl edit`,
    `patch`, `scale`, `annotate`, a client-side `kubectl apply`) that changes such a field moves
    it to the editor's field manager; removing it drops it from our set. Nothing else takes a
    field from us: defaulting, status writers and the revision annotation of the Deployment
    controller don't, nor do fields someone adds that we don't set (theirs to keep), nor another
    manager that sets a field to our value (shared ownership). So this is exact for the fields we
    set, and a forced apply makes it empty again."""
    fields = our_fields(live)
    if fields is None:
        return ["*"]
    body = _stamped(desired)  # only read
    meta = {k: v for k, v in body.get("metadata", {}).items() if k not in ("name", "namespace")}
    top = {k: v for k, v in body.items() if k not in ("apiVersion", "kind", "metadata", "status")}
    lost = _missing(fields, {"metadata": meta, **top}, "")
    return lost


def _missing(fields: Mapping[str, Any], desired: Any, path: str) -> list[str]:
    """The paths under `desired` (a JSON value) that the fieldsV1 set `fields` doesn't hold."""
    if isinstance(desired, dict):
        lost = []
        for name, value in desired.items():
            if value is None:
                continue  # an explicit null sets nothing
            sub = fields.get(f"f:{name}")
            if sub is None:
                lost.append(f"{path}.{name}")
            elif isinstance(value, dict | list) and value and sub:
                lost.extend(_missing(sub, value, f"{path}.{name}"))
        return lost
    if isinstance(desired, list):
        keyed = [json.loads(k[2:]) for k in fields if k.startswith("k:")]
        if not keyed and not any(k.startswith("v:") for k in fields):
            return []  # an atomic list (or one indexed by position): owned as a whole
        lost = []
        for index, item in enumerate(desired):
            here = f"{path}[{index}]"
            if not isinstance(item, dict):
                if f"v:{json.dumps(item, separators=(',', ':'))}" not in fields:
                    lost.append(here)
                continue
            matches = [k for k in keyed if _names(k, item)]
            if not matches:
                lost.append(here)
                continue
            # an entry with no fields under it (an ownerReference) is owned as a whole
            options: list[list[str]] = [
                _missing(e, item, here) if (e := _entry(fields, k)) else [] for k in matches
            ]
            fewest: list[str] = min(options, key=len)
            lost.extend(fewest)
        return lost
    return []


def _names(keys: Mapping[str, Any], item: Mapping[str, Any]) -> bool:
    """Whether the key fields of an associative list entry name `item` (defaulted keys such as a
    port's protocol may be absent from what we apply)."""
    shared = [k for k in keys if k in item]
    return bool(shared) and all(item[k] == keys[k] for k in shared)


def _entry(fields: Mapping[str, Any], keys: Mapping[str, Any]) -> Mapping[str, Any]:
    for key, sub in fields.items():
        if key.startswith("k:") and json.loads(key[2:]) == keys:
            return sub or {}
    return {}  # pragma: no cover (callers pass keys read from `fields`)


def edited_by_others(live: Mapping[str, Any]) -> list[str]:
    """Field managers other than ours that own spec fields or our hash annotation (a cheap,
    generous filter for child events: it may name an editor whose fields we don't set, and the
    reconcile it triggers then writes nothing). Status writers don't count."""
    managers = []
    for entry in live.get("metadata", {}).get("managedFields", []) or []:
        if entry.get("manager") == MANAGER or entry.get("subresource") == "status":
            continue
        fields = entry.get("fieldsV1", {}) or {}
        annotations = fields.get("f:metadata", {}).get("f:annotations", {})
        if fields.get("f:spec") or _HASH_FIELD in annotations:
            managers.append(str(entry.get("manager", "")))
    return managers


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> str | None:
    """Why `desired` must be applied over `live` (None: the live child is what we want)."""
    if live is None:
        return "missing"
    if live_hash(live) != desired_hash(desired):
        return "changed"
    lost = lost_fields(live, desired)
    if lost:
        return "edited: " + ",".join(lost[:5])
    return None


def drifted(live: Mapping[str, Any]) -> bool:
    """A live child that no longer shows what we applied, judged from the object alone."""
    return live_hash(live) is None or our_fields(live) is None or bool(edited_by_others(live))


def owner_name(child: Mapping[str, Any]) -> str | None:
    """The name of the PizzaModelDeployment a child's ownerReferences name, None for a child
    that is not one of ours."""
    refs = child.get("metadata", {}).get("ownerReferences", [])
    return next(
        (r["name"] for r in refs if r.get("kind") == KIND and r.get("apiVersion") == API_VERSION),
        None,
    )


def controller_of(obj: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The ownerReference of `obj` with `controller: true` (there is at most one), or None."""
    refs = obj.get("metadata", {}).get("ownerReferences", []) or []
    return next((r for r in refs if r.get("controller") is True), None)


def controlled_by(obj: Mapping[str, Any], uid: str) -> bool:
    """Whether the resource of `uid` controls `obj`: only such an object is ours to change."""
    ref = controller_of(obj)
    return ref is not None and ref.get("uid") == uid


def name_conflict(
    desired: Mapping[str, Any], holder: Mapping[str, Any] | None, uid: str
) -> str | None:
    """Why the child `desired` cannot be created under its name: `holder`, the live object of
    that kind and name, is not controlled by the resource of `uid` (None: no holder, or ours)."""
    if holder is None or controlled_by(holder, uid):
        return None
    what = f"{desired.get('kind')} {desired.get('metadata', {}).get('name')}"
    ref = controller_of(holder)
    if ref is None:
        return f"{what} exists and is not controlled by this resource"
    return f"{what} belongs to {ref.get('kind')} {ref.get('name')}"
