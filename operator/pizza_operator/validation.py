"""Checks only the operator can make (the API server already enforced the schema and CEL rules).

Everything here runs before any child is applied, so an invalid spec never leaves half-built
children behind.
"""

from __future__ import annotations

from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from pizza_operator.api.v1alpha1 import GPU_RESOURCE, PizzaModelDeployment, Resources
from pizza_operator.builders.images import resolve_images
from pizza_operator.config import OperatorConfig


def find_problems(pmd: PizzaModelDeployment, config: OperatorConfig) -> list[str]:
    """Human-readable problems, each naming the field; empty when the spec can be built."""
    problems: list[str] = []
    for component, image in resolve_images(pmd, config).items():
        if not image:
            problems.append(
                f"spec.image: empty, and the operator has no image for the {component} "
                "(--cpu-image, --gpu-image or --default-image)"
            )
    components: list[tuple[str, Resources]] = [
        ("spec.primary.resources", pmd.spec.primary.resources),
        ("spec.fallback.resources", pmd.spec.fallback.resources),
        ("spec.router.resources", pmd.spec.router.resources),
    ]
    for path, resources in components:
        problems.extend(_resource_problems(path, resources))
    if GPU_RESOURCE in (pmd.spec.primary.resources.limits or {}) or GPU_RESOURCE in (
        pmd.spec.primary.resources.requests or {}
    ):
        problems.append(f"spec.primary.resources: set {GPU_RESOURCE} with spec.primary.gpu")
    return problems


def _resource_problems(path: str, resources: Resources) -> list[str]:
    problems: list[str] = []
    parsed: dict[str, dict[str, Decimal]] = {"requests": {}, "limits": {}}
    for kind in ("requests", "limits"):
        for name, value in (getattr(resources, kind) or {}).items():
            try:
                parsed[kind][name] = parse_quantity(value)  # type: ignore[no-untyped-call]
            except ValueError:
                problems.append(f"{path}.{kind}.{name}: {value!r} is not a quantity")
                continue
            if parsed[kind][name] < 0:
                problems.append(f"{path}.{kind}.{name}: must not be negative")
    for name, request in parsed["requests"].items():
        limit = parsed["limits"].get(name)
        if limit is not None and request > limit:
            problems.append(
                f"{path}.requests.{name}: request {resources.requests[name]!r} "  # type: ignore[index]
                f"exceeds limit {resources.limits[name]!r}"  # type: ignore[index]
            )
    return problems
