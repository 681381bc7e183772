"""Status conditions of Kubernetes objects: dicts (as `kubectl -o json` or the API returns them)
and kubernetes-client objects (V1Pod...)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def conditions(obj: Any) -> list[Any]:
    """`status.conditions` of `obj` ([] when none). A dict may be the whole object or only its
    status (a dict without a `status` mapping of its own)."""
    if isinstance(obj, Mapping):
        status = obj.get("status")
        if not isinstance(status, Mapping):
            status = obj
        return list(status.get("conditions") or [])
    return list(getattr(getattr(obj, "status", None), "conditions", None) or [])


def condition(obj: Any, type_: str) -> Any:
    """The condition of type `type_` in `obj`'s status (a dict or a client object), or None."""
    return next((c for c in conditions(obj) if field(c, "type") == type_), None)


def is_true(obj: Any, type_: str) -> bool:
    """Whether `obj` has the condition `type_` with status "True"."""
    cond = condition(obj, type_)
    return cond is not None and field(cond, "status") == "True"


def field(cond: Any, name: str) -> Any:
    """A field of one condition: a dict's key or a client object's attribute (None if absent)."""
    return cond.get(name) if isinstance(cond, Mapping) else getattr(cond, name, None)
