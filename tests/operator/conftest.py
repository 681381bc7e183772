"""Fixtures of the operator tests: typed resources (unit) and a real operator process (cluster)."""

from __future__ import annotations

import copy
import uuid
from pathlib import Path
from typing import Any

import pytest
import yaml
from pizza_operator.api.v1alpha1 import PizzaModelDeployment

from tests.support.waiting import eventually

from .helpers import ROOT, SAMPLE, OperatorProcess, kubectl, kubectl_json


def sample_body(name: str = "pizza-classifier", namespace: str = "pizzas") -> dict[str, Any]:
    body: dict[str, Any] = copy.deepcopy(yaml.safe_load(SAMPLE.read_text()))
    body["metadata"] = {"name": name, "namespace": namespace, "uid": "uid-1", "generation": 1}
    return body


@pytest.fixture
def body() -> dict[str, Any]:
    return sample_body()


@pytest.fixture
def pmd(body: dict[str, Any]) -> PizzaModelDeployment:
    return PizzaModelDeployment.from_body(body)


# ---- cluster fixtures (real control plane from pizza_devcluster, real operator process) --------


@pytest.fixture(scope="session")
def crds_installed(kube_cluster: Any) -> Path:
    """The generated CRDs applied to the real API server and Established."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for crd in ("pizzamodeldeployments.pizza.ai",):
        # kubectl wait fails at once while the CRD has no status yet (a busy apiserver)
        eventually(
            lambda crd=crd: kubectl_json("get", "crd", crd).get("status", {}).get("conditions"),
            timeout=60,
            what=f"{crd} has conditions",
            ignoring=AssertionError,
        )
        kubectl("wait", "--for=condition=Established", f"crd/{crd}", "--timeout=60s")
    return ROOT / "crds"


@pytest.fixture(scope="module")
def operator(crds_installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """One real `pizza-operator` process per test module (all namespaces, short resync)."""
    log_dir = tmp_path_factory.mktemp("operator")
    proc = OperatorProcess(log_dir, f"test-{uuid.uuid4().hex[:8]}").start()
    try:
        yield proc
    finally:
        proc.stop()
