"""Fixtures shared by every test area: the local control plane (kube_cluster, kube_api,
test_namespace). Area-specific fixtures live in tests/<area>/conftest.py."""

pytest_plugins = ["pizza_devcluster.pytest_plugin"]
