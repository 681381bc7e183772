"""The test tiers: every test carries exactly one of the markers in `TIERS` (pyproject.toml
registers them; `slow` is an extra marker, not a tier). tests/conftest.py calls `check_tiers` on
every collected test before `-m` deselects any, so a test without a tier, or with two, fails the
collection whatever is selected.

- `unit`: no cluster: pure functions, and real servers on loopback (in the test process or as
  subprocesses); what needs a tool or built images that are absent skips.
- `cluster`: the local control plane (the kube_cluster, kube_api, test_namespace fixtures, or
  helm/kubectl against it).
- `e2e`: real nodes, the whole system.
- `gpu`: needs CUDA.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pytest

TIERS = ("unit", "cluster", "e2e", "gpu")


def tier_problems(nodeid: str, marker_names: Iterable[str]) -> str | None:
    """What is wrong with the tier markers of test `nodeid` (None: exactly one tier). A tier
    marker given twice (on the module and on the test) is one tier."""
    tiers = sorted(set(marker_names) & set(TIERS), key=TIERS.index)
    if len(tiers) == 1:
        return None
    if not tiers:
        return f"{nodeid}: no tier marker (one of {', '.join(TIERS)})"
    return f"{nodeid}: more than one tier marker ({', '.join(tiers)})"


def check_tiers(items: Sequence[pytest.Item]) -> None:
    """Raise `pytest.UsageError` naming every test that has no tier or more than one."""
    problems = [
        problem
        for item in items
        if (problem := tier_problems(item.nodeid, (m.name for m in item.iter_markers())))
        is not None
    ]
    if problems:
        raise pytest.UsageError(
            "every test needs exactly one tier marker (pytest.mark.unit, cluster, e2e or gpu; "
            "see tests/support/tiers.py):\n  " + "\n  ".join(problems)
        )
