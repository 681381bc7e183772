"""Fixtures shared by every test area: the local control plane (kube_cluster, kube_api,
test_namespace). Area-specific fixtures live in tests/<area>/conftest.py.

Every test has exactly one tier marker (unit, cluster, e2e, gpu): the collection fails otherwise
(tests/support/tiers.py)."""

from __future__ import annotations

import pytest

from tests.support.tiers import check_tiers

pytest_plugins = ["pizza_devcluster.pytest_plugin", "pytester"]


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects: an untiered test fails every run
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    check_tiers(items)
