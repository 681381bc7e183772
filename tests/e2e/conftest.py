"""Fixtures of the e2e tests: the cluster with real nodes (`real_cluster`, from
pizza_devcluster.pytest_plugin), the busybox test image imported into its nodes, kubectl.

`test_down_leaves_nothing_behind` stops the session's real cluster, so it is moved to the end
of the run."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.platform import Kube
from tests.e2e.testimages import WEB_IMAGE, web_image

LAST = "test_down_leaves_nothing_behind"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: item.name == LAST)


@pytest.fixture(scope="session")
def kube(real_cluster: Any) -> Kube:
    return Kube(Path(real_cluster.kubeconfig))


@pytest.fixture(scope="session")
def test_image(real_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The busybox test image, written and imported into both real nodes."""
    directory = web_image(tmp_path_factory.mktemp("e2e-images"))
    subprocess.run(
        [sys.executable, "-m", "pizza_devcluster", "import-images", "--images", str(directory)],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return WEB_IMAGE
