"""Checks only the operator can make (the API server already enforced the schema and CEL rules).

Everything here runs before any child is applied, so an invalid spec never leaves half-built
children behind.
"""

from __future__ import annotations

from decimal import Decimal

from kubernetes.utils.quantity import parse_quantity

from pizza_operator.api.v1alpha1 import GPU_RESOURCE, PizzaModelDeployment, Resources
from pizza_operator.builders.naming import Component
from pizza_operator.config import OperatorConfig

LIGHT_BACKENDS = frozenset({"onnx"})
"""Backends the light CPU image serves (no torch in it)."""


def resolve_images(pmd: PizzaModelDeployment, config: OperatorConfig) -> dict[Component, str]:
    """The image each component runs: the resource's own spec.image, else the operator's
    --default-image, else the light CPU image for the router and onnx models and the torch
    image for the other backends."""
    override = (pmd.spec.image or "").strip() or config.default_image.strip()
    if override:
        return {"primary": override, "fallback": override, "router": override}

    def for_model(backend: str) -> str:
        return (config.cpu_image if backend in LIGHT_BACKENDS else config.gpu_image).strip()

    return {
        "primary": for_model(pmd.spec.primary.model.backend),
        "fallback": for_model(pmd.spec.fallback.model.backend),
        "router": config.cpu_image.strip(),
    }


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
