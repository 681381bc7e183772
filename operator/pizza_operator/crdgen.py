"""Generate the PizzaModelDeployment CRD from the typed API models.

    python -m pizza_operator.crdgen > crds/pizza.ai_pizzamodeldeployments.yaml

pydantic's JSON Schema is turned into a Kubernetes structural schema: references inlined, titles
and nulls dropped, `exclusiveMinimum` in OpenAPI 3.0 form, and defaults of nested objects written
as `{}` when the nested defaults already produce them (so `kubectl explain` and the API server
show one source of truth).
"""

from __future__ import annotations

import copy
import sys
from typing import Any

import yaml
from pydantic import BaseModel

from pizza_operator.api import v1alpha1 as api

PRINTER_COLUMNS = [
    {
        "name": "Mode",
        "type": "string",
        "jsonPath": ".status.mode",
        "description": "Serving mode: primary, previous, stable or emergency.",
    },
    {
        "name": "Ready",
        "type": "string",
        "jsonPath": '.status.conditions[?(@.type=="Ready")].status',
        "description": "The Ready condition.",
    },
    {
        "name": "Primary",
        "type": "string",
        "jsonPath": ".status.primary.summary",
        "description": "Ready/desired primary pods.",
    },
    {
        "name": "Fallback",
        "type": "string",
        "jsonPath": ".status.fallback.summary",
        "description": "Ready/desired fallback pods.",
    },
    {
        "name": "Error-Rate",
        "type": "number",
        "jsonPath": ".status.errorRate",
        "description": "Latest observed error rate.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]

# Children are named NAME-primary / NAME-fallback / NAME-router; Services need DNS-1035 labels.
MAX_NAME_LENGTH = 63 - len("-fallback")
ROOT_RULES = [
    {
        "rule": f"self.metadata.name.size() <= {MAX_NAME_LENGTH}",
        "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters "
        "(children are named NAME-fallback)",
    }
]

_DROP = {"title"}


def _model_classes() -> dict[str, type[BaseModel]]:
    return {
        name: obj
        for name, obj in vars(api).items()
        if isinstance(obj, type) and issubclass(obj, BaseModel) and obj is not api.ApiModel
    }


def _object_default(model_name: str, wire_name: str) -> Any:
    """The default of a default_factory field, `{}` when nested defaults give the same value."""
    cls = _model_classes().get(model_name)
    if cls is None:
        return None
    for field_name, field in cls.model_fields.items():
        alias = field.alias or field_name
        if alias != wire_name or field.default_factory is None:
            continue
        value = field.default_factory()  # type: ignore[call-arg]
        if isinstance(value, api.ApiModel):
            empty = type(value)().to_wire() if _constructible(type(value)) else None
            dumped = value.to_wire()
            return {} if dumped == empty else dumped
        if isinstance(value, list):
            return [v.to_wire() if isinstance(v, api.ApiModel) else copy.deepcopy(v) for v in value]
        return copy.deepcopy(value)
    return None


def _constructible(cls: type[BaseModel]) -> bool:
    return all(not f.is_required() for f in cls.model_fields.values())


def _convert(node: Any, defs: dict[str, Any], owner: str | None = None) -> Any:
    if isinstance(node, list):
        return [_convert(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = dict(node)
    if "$ref" in node:
        ref_name = node.pop("$ref").split("/")[-1]
        target = copy.deepcopy(defs[ref_name])
        rules = target.get("x-kubernetes-validations", []) + node.pop(
            "x-kubernetes-validations", []
        )
        target.update(node)
        if rules:
            target["x-kubernetes-validations"] = rules
        return _convert(target, defs, ref_name)
    if "anyOf" in node:
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        rest = {k: v for k, v in node.items() if k != "anyOf"}
        if node.get("x-kubernetes-int-or-string") or {v.get("type") for v in variants} == {
            "integer",
            "string",
        }:
            rest["x-kubernetes-int-or-string"] = True
            return _convert(rest, defs)
        if len(variants) == 1:
            merged = dict(variants[0])
            merged.update(rest)
            return _convert(merged, defs)
        raise ValueError(f"cannot express anyOf {node['anyOf']} in a structural schema")
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROP or key == "$defs":
            continue
        if key == "default" and value is None:
            continue
        if key == "exclusiveMinimum":
            out["minimum"] = value
            out["exclusiveMinimum"] = True
            continue
        if key == "exclusiveMaximum":
            out["maximum"] = value
            out["exclusiveMaximum"] = True
            continue
        if key == "properties":
            props: dict[str, Any] = {}
            for prop_name, prop in value.items():
                converted = _convert(prop, defs)
                if "default" not in converted and owner is not None:
                    default = _object_default(owner, prop_name)
                    if default is not None:
                        converted["default"] = default
                props[prop_name] = converted
            out["properties"] = props
            continue
        out[key] = _convert(value, defs)
    if node.get("type") is None and "properties" in out:
        out["type"] = "object"
    return out


def _schema_of(model: type[BaseModel]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, ref_template="#/$defs/{model}")
    defs = raw.get("$defs", {})
    return dict(_convert(raw, defs, model.__name__))


def openapi_schema() -> dict[str, Any]:
    """The structural OpenAPI v3 schema of the whole resource."""
    spec = _schema_of(api.PizzaModelDeploymentSpec)
    status = _schema_of(api.PizzaModelDeploymentStatus)
    return {
        "type": "object",
        "description": "A pizza classifier served by a GPU primary, a CPU fallback and a router "
        "that falls back per request.",
        "required": ["spec"],
        "x-kubernetes-validations": ROOT_RULES,
        "properties": {
            "apiVersion": {
                "type": "string",
                "description": "Versioned schema of this object (pizza.ai/v1alpha1).",
            },
            "kind": {"type": "string", "description": "PizzaModelDeployment."},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd() -> dict[str, Any]:
    """The CustomResourceDefinition object."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{api.PLURAL}.{api.GROUP}",
            "labels": {"app.kubernetes.io/name": "pizza-operator"},
        },
        "spec": {
            "group": api.GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": api.KIND,
                "listKind": f"{api.KIND}List",
                "plural": api.PLURAL,
                "singular": api.SINGULAR,
                "shortNames": api.SHORT_NAMES,
                "categories": ["pizza"],
            },
            "versions": [
                {
                    "name": api.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def render() -> str:
    """The CRD as YAML, the exact text committed in crds/."""
    header = "# Generated by `python -m pizza_operator.crdgen`: do not edit by hand.\n"
    return header + yaml.safe_dump(crd(), sort_keys=False, width=100)


def main() -> None:
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
