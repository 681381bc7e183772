"""Which image each component runs: the resource's, the operator's default, or by backend."""

from __future__ import annotations

from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders.naming import Component
from pizza_operator.config import OperatorConfig

LIGHT_BACKENDS = frozenset({"onnx"})
"""Backends the light CPU image serves (no torch in it)."""


def resolve_images(pmd: PizzaModelDeployment, config: OperatorConfig) -> dict[Component, str]:
    """The image each component runs: the resource's own spec.image, else the operator's
    --default-image, else the light CPU image for the router and onnx models and the torch
    image for the other backends. An empty image is a problem `validation` reports."""
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
