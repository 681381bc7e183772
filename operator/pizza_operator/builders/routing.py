"""How the mode reaches the router without a rollout: a ConfigMap the router pods watch.

The operator writes the router's mode into ConfigMap NAME-routing (key `mode`); the router
pods watch that one ConfigMap through the API with their own ServiceAccount NAME-router, whose
Role can read nothing else. A mode change is then a ConfigMap update, seen by every router pod
within a second, and not a change of the router's pod template (no restart, no dropped request).
"""

from __future__ import annotations

from typing import Any

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment
from pizza_operator.builders.naming import child_name, labels

MODE_KEY = "mode"
CANARY_URL_KEY = "canaryUrl"
CANARY_WEIGHT_KEY = "canaryWeight"
AGREEMENT_SAMPLE_KEY = "agreementSample"
"""The canary's entry (the router's `router.canary`): absent while no canary runs."""
PRIMARY_KEY = "primary"
LENT = "lent"
"""`asleep` while the autoscaler keeps the primary at zero for idleness: the router answers what
was meant for the primary from the fallback at once (reason `primary_idle`) without trying it."""


def routing_name(pmd: PizzaModelDeployment) -> str:
    """NAME-routing: the ConfigMap holding the router's mode."""
    return f"{pmd.metadata.name}-routing"


def router_account(pmd: PizzaModelDeployment) -> str:
    """NAME-router: the router pods' ServiceAccount, Role and RoleBinding."""
    return child_name(pmd, "router")


def router_mode(mode: Mode) -> str:
    """The router knows primary, stable and emergency; previous serves like primary."""
    return "primary" if mode == "previous" else mode


def primary_state(pmd: PizzaModelDeployment, mode: Mode) -> str:
    """`asleep` or `awake` (the router's view of the primary in the primary modes)."""
    scaled = pmd.status.autoscaling.primary if pmd.status.autoscaling else None
    asleep = scaled is not None and scaled.asleep and mode in ("primary", "previous")
    return "asleep" if asleep else "awake"


def _meta(pmd: PizzaModelDeployment, name: str) -> dict[str, Any]:
    return {"name": name, "namespace": pmd.metadata.namespace, "labels": labels(pmd, "router")}


def build_routing_configmap(
    pmd: PizzaModelDeployment,
    mode: Mode,
    canary: tuple[str, int, float] | None = None,
    *,
    lent: bool = False,
) -> dict[str, Any]:
    """The routing table: the mode, the primary's state and, while one runs, the canary
    (`canary`: its URL, weight in percent and agreement sample). `lent`: the stable primary's
    pods are all lent to the canary (`lent`: the router sends the canary its share and the
    fallback the rest, without trying the stable primary)."""
    state = LENT if lent and canary is not None else primary_state(pmd, mode)
    data = {MODE_KEY: router_mode(mode), PRIMARY_KEY: state}
    if canary is not None:
        url, weight, sample = canary
        data[CANARY_URL_KEY] = url
        data[CANARY_WEIGHT_KEY] = str(weight)
        data[AGREEMENT_SAMPLE_KEY] = f"{sample:g}"
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": _meta(pmd, routing_name(pmd)),
        "data": data,
    }


def build_router_rbac(pmd: PizzaModelDeployment) -> list[dict[str, Any]]:
    """ServiceAccount, Role (read the one routing ConfigMap) and RoleBinding of the router."""
    name = router_account(pmd)
    return [
        {
            "apiVersion": "v1",
            "kind": "ServiceAccount",
            "metadata": _meta(pmd, name),
            "automountServiceAccountToken": False,
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "Role",
            "metadata": _meta(pmd, name),
            "rules": [
                {
                    "apiGroups": [""],
                    "resources": ["configmaps"],
                    "resourceNames": [routing_name(pmd)],
                    "verbs": ["get", "list", "watch"],
                }
            ],
        },
        {
            "apiVersion": "rbac.authorization.k8s.io/v1",
            "kind": "RoleBinding",
            "metadata": _meta(pmd, name),
            "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
            "subjects": [
                {"kind": "ServiceAccount", "name": name, "namespace": pmd.metadata.namespace}
            ],
        },
    ]
