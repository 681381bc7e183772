"""The operator's own Deployment, from the chart and from manifests/: spread, a PDB, a bounded
/tmp, and `helm template` with helm's defaults (no --kube-version)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pizza-operator"
HELM = ROOT / ".bin" / "helm"
MANIFEST = ROOT / "manifests" / "operator.yaml"


def _template(*args: str) -> list[dict[str, Any]]:
    if not HELM.exists():
        pytest.skip(f"{HELM} not built (make binaries)")
    done = subprocess.run(
        [str(HELM), "template", "pizza", str(CHART), "-n", "pizza-system", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _one(docs: list[dict[str, Any]], kind: str) -> dict[str, Any] | None:
    found = [d for d in docs if d["kind"] == kind and "test" not in d["metadata"]["name"]]
    assert len(found) <= 1
    return found[0] if found else None


def _checks(docs: list[dict[str, Any]]) -> None:
    deployment = _one(docs, "Deployment")
    assert deployment is not None
    pod = deployment["spec"]["template"]["spec"]
    tmp = next(v for v in pod["volumes"] if v["name"] == "tmp")
    assert tmp["emptyDir"]["sizeLimit"] == "64Mi"
    (spread,) = pod["topologySpreadConstraints"]
    assert spread["topologyKey"] == "kubernetes.io/hostname"
    assert spread["whenUnsatisfiable"] == "ScheduleAnyway"  # one node must not block it
    selected = deployment["spec"]["selector"]["matchLabels"]
    assert spread["labelSelector"]["matchLabels"] == selected
    pdb = _one(docs, "PodDisruptionBudget")
    assert pdb is not None and pdb["spec"]["maxUnavailable"] == 1
    assert pdb["spec"]["selector"]["matchLabels"] == selected


def test_the_chart_renders_with_helms_defaults_and_guards_its_pods() -> None:
    _checks(_template())


def test_one_replica_gets_no_pdb_that_would_block_a_drain() -> None:
    assert _one(_template("--set", "replicaCount=1"), "PodDisruptionBudget") is None


def test_the_plain_manifests_do_the_same() -> None:
    _checks([d for d in yaml.safe_load_all(MANIFEST.read_text()) if d])
