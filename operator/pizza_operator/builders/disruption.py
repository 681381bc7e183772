"""PodDisruptionBudgets, for the components that run more than one pod."""

from __future__ import annotations

from typing import Any

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.modes import may_run_several
from pizza_operator.builders.naming import (
    COMPONENTS,
    Component,
    child_name,
    labels,
    selector_labels,
)


def build_pdb(pmd: PizzaModelDeployment, component: Component) -> dict[str, Any]:
    """At most one pod of the component voluntarily disrupted at a time."""
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {
            "name": child_name(pmd, component),
            "namespace": pmd.metadata.namespace,
            "labels": labels(pmd, component),
        },
        "spec": {
            "maxUnavailable": 1,
            "selector": {"matchLabels": selector_labels(pmd, component)},
        },
    }


def build_pdbs(pmd: PizzaModelDeployment, mode: Mode) -> list[dict[str, Any]]:
    """One PDB per component with more than one replica in this mode."""
    return [
        build_pdb(pmd, component)
        for component in COMPONENTS
        if may_run_several(pmd, mode, component)
    ]
