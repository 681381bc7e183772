"""Smoke test of the cost-curve benchmark (bench/operator/cost_curve.py): two resources.

The benchmark starts its own control plane and operator; this runs it at its smallest and checks
that every figure the README's table is made of came out of the run.
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
ROOT = Path(__file__).resolve().parents[2]


def test_two_resources_measured(tmp_path: Path) -> None:
    out = tmp_path / "smoke"
    proc = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench/operator/cost_curve.py"),
            *(
                "--counts",
                "2",
                "--window",
                "12",
                "--settle",
                "3",
                "--idle-window",
                "3",
                "--out",
                str(out),
            ),
        ],
        capture_output=True,
        text=True,
        timeout=240,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    steady = json.loads(Path(f"{out}.json").read_text())["counts"]["2"]["steady"]
    assert steady["ticks"] >= 2  # both resources analysed at least once in 12 s
    assert steady["tick_lag"]["count"] >= 2
    assert steady["checks_by_verdict"]["Inconclusive"] == 2 * steady["ticks"]  # no servers
    assert steady["operator_cpu_s"] > 0
    assert 30 < steady["operator_rss_mb_max"] < 400
    assert {"kube-apiserver", "etcd", "kwok"} <= set(steady["control_plane_cores"])
    assert steady["apiserver_requests_per_s_by"].get("GET pizzamodeldeployments", 0) > 0
    rows = list(csv.DictReader(Path(f"{out}.csv").read_text().splitlines()))
    assert [r["resources"] for r in rows] == ["2"]
    samples = Path(f"{out}.samples.jsonl").read_text().splitlines()
    assert any(json.loads(s)["phase"] == "steady" for s in samples)
