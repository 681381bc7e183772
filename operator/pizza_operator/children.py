"""What the cluster tells about our children: the desired hash each carries, and hand edits.

No process memory: a new leader judges every child from the live object alone. Each child we
apply carries `pizza.ai/desired-hash`, the sha256 of the canonical JSON of the object we applied
(without that annotation). A child whose hash matches the desired one and that no other field
manager changed is left alone; any other child is applied again.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping
from typing import Any

from prometheus_client import Counter

from pizza_operator.kube import FIELD_MANAGER

HASH_ANNOTATION = "pizza.ai/desired-hash"
_HASH_FIELD = f"f:{HASH_ANNOTATION}"

CHILD_WRITES = Counter(
    "pizza_operator_child_writes_total",
    "Writes to children (server-side applies, replaces and prunes), by kind and action.",
    ["kind", "action"],
)


def desired_hash(child: Mapping[str, Any]) -> str:
    """sha256 of the canonical JSON of `child` (sorted keys, no spaces), without our annotation."""
    body = copy.deepcopy(dict(child))
    annotations = body.get("metadata", {}).get("annotations")
    if annotations is not None:
        annotations.pop(HASH_ANNOTATION, None)
        if not annotations:
            body["metadata"].pop("annotations")
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return hashlib.sha256(canonical.encode()).hexdigest()


def with_hash(child: dict[str, Any]) -> dict[str, Any]:
    """A copy of `child` carrying its desired hash annotation (what we apply)."""
    stamped = copy.deepcopy(child)
    meta = stamped.setdefault("metadata", {})
    meta.setdefault("annotations", {})[HASH_ANNOTATION] = desired_hash(child)
    return stamped


def live_hash(live: Mapping[str, Any]) -> str | None:
    value = live.get("metadata", {}).get("annotations", {}).get(HASH_ANNOTATION)
    return str(value) if value is not None else None


def edited_by_others(
    live: Mapping[str, Any], desired: Mapping[str, Any] | None = None
) -> list[str]:
    """Field managers other than ours that own fields we set.

    A hand edit (`kubectl edit/patch/scale/annotate`) moves the fields it changes to its own
    manager; our next forced apply takes them back and the entry disappears. Status writers don't
    count. With `desired`, only fields the desired child sets count (a field someone added that we
    don't set is theirs to keep); without it, any spec field or our hash annotation counts."""
    managers = []
    for entry in live.get("metadata", {}).get("managedFields", []) or []:
        if entry.get("manager") == FIELD_MANAGER or entry.get("subresource") == "status":
            continue
        fields = entry.get("fieldsV1", {}) or {}
        if desired is not None:
            touched = _overlaps(fields, with_hash(dict(desired)))
        else:
            annotations = fields.get("f:metadata", {}).get("f:annotations", {})
            touched = bool(fields.get("f:spec")) or _HASH_FIELD in annotations
        if touched:
            managers.append(str(entry.get("manager", "")))
    return managers


def _overlaps(fields: Mapping[str, Any], desired: Any) -> bool:
    """Whether a managedFields set (fieldsV1) owns anything inside `desired` (a JSON value)."""
    for key, sub in fields.items():
        if key == ".":
            continue  # the node itself: what matters is whether a field under it is ours
        if key.startswith("f:") and isinstance(desired, dict):
            name = key[2:]
            if name == "status" or name not in desired:
                continue
            value = desired[name]
            if not isinstance(value, dict | list) or not sub or _overlaps(sub, value):
                return True
        elif key.startswith("k:") and isinstance(desired, list):
            item = _matching_item(json.loads(key[2:]), desired)
            if item is None or _overlaps(sub, item):
                return True  # an item someone put into (or changed in) a list we set
        elif isinstance(desired, list):
            return True  # v: (set members) or i: (indexes) of a list we set: ours
    return False


def _matching_item(keys: Mapping[str, Any], items: list[Any]) -> Any:
    """The item of an associative list that the key fields name (defaulted keys may be absent)."""
    for item in items:
        if not isinstance(item, dict):
            continue
        shared = [k for k in keys if k in item]
        if shared and all(item[k] == keys[k] for k in shared):
            return item
    return None


def needs_apply(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> str | None:
    """Why `desired` must be applied over `live` (None: the live child is what we want)."""
    if live is None:
        return "missing"
    if live_hash(live) != desired_hash(desired):
        return "changed"
    others = edited_by_others(live, desired)
    if others:
        return "edited by " + ",".join(sorted(set(others)))
    return None


def drifted(live: Mapping[str, Any]) -> bool:
    """A live child that no longer shows what we applied, judged from the object alone."""
    return live_hash(live) is None or bool(edited_by_others(live))
