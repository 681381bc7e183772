"""Fixtures of the e2e tests: the cluster with real nodes (`real_cluster`, from
pizza_devcluster.pytest_plugin), the busybox test image and the wrong-model image (the light
serving image plus the test-only model) imported into its nodes, kubectl.

`test_down_leaves_nothing_behind` stops the session's real cluster and
`test_up_after_a_killed_run_clears_what_it_left` starts its own, so both are moved to the end
of the run, in that order."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.platform import Kube
from tests.e2e.product import Kubectl, helm_install_operator, restricted_namespace
from tests.e2e.testimages import (
    WEB_IMAGE,
    WRONG_MODEL_IMAGE,
    missing_tools,
    serve_cpu_tar,
    web_image,
    wrong_model_image,
)

LAST = ("test_down_leaves_nothing_behind", "test_up_after_a_killed_run_clears_what_it_left")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=lambda item: LAST.index(item.name) + 1 if item.name in LAST else 0)


@pytest.fixture(scope="session")
def kube(real_cluster: Any) -> Kube:
    return Kube(Path(real_cluster.kubeconfig))


@pytest.fixture(scope="session")
def test_image_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A directory with the busybox test image's tar and images.txt."""
    if reason := missing_tools():
        pytest.skip(reason)
    return web_image(tmp_path_factory.mktemp("e2e-images"))


@pytest.fixture(scope="session")
def test_image(real_cluster: Any, test_image_dir: Path) -> str:
    """The busybox test image, imported into both real nodes."""
    _import_images(test_image_dir)
    return WEB_IMAGE


def _import_images(directory: Path) -> None:
    """Imports the images of `directory` (its images.txt) into both real nodes."""
    subprocess.run(
        [sys.executable, "-m", "pizza_devcluster", "import-images", "--images", str(directory)],
        check=True,
        capture_output=True,
        timeout=900,
    )


@pytest.fixture(scope="session")
def wrong_model_image_ref(real_cluster: Any, tmp_path_factory: pytest.TempPathFactory) -> str:
    """pizza-serve-cpu with the test-only wrong model (tests/models/wrong-pizza-net) added under
    /opt/pizza-test-models/, imported into both real nodes; use it as a PMD's spec.image."""
    base = serve_cpu_tar(real_cluster.images_dir)
    if isinstance(base, str):
        pytest.skip(base)
    _import_images(wrong_model_image(tmp_path_factory.mktemp("e2e-wrong-model"), base))
    return WRONG_MODEL_IMAGE


@pytest.fixture(scope="session")
def kubectl(real_cluster: Any) -> Kubectl:
    return Kubectl(Path(real_cluster.kubeconfig))


@pytest.fixture(scope="session")
def operator_release(kubectl: Kubectl) -> Iterator[str]:
    """The operator installed by its chart in pizza-system (restricted), for the whole session."""
    namespace = "pizza-system"
    restricted_namespace(kubectl, namespace)
    yield helm_install_operator(kubectl, namespace)
    kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)
