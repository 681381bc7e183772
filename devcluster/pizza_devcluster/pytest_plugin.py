"""pytest fixtures for tests against a real control plane.

Load with `pytest_plugins = ["pizza_devcluster.pytest_plugin"]`.

- `kube_cluster` (session): starts one LocalCluster in a temporary directory, or with
  `USE_EXISTING_CLUSTER=1` uses the cluster of `$KUBECONFIG`. Sets `os.environ["KUBECONFIG"]` for
  the session. Refuses any kube context other than `pizza-local` and `kind-*`. Its API server
  keeps an audit log of ServiceAccounts' calls (`kube_cluster.local.audit_log`).
- `kube_api` (session): a `kubernetes.client.ApiClient` for that cluster.
- `test_namespace` (function): a fresh namespace enforcing Pod Security `restricted`.
- `real_cluster` (session): a cluster WITH the two real nodes (`up --real-nodes`, detached
  supervisor) in a temporary directory, images of `$PIZZA_IMAGES_DIR` or the checkout's
  `.images/` imported; `.kubeconfig` is its kubeconfig. Mark tests that use it with
  `requires_real_nodes`: they are skipped, with the reason, when not root or when the Debian
  packages or node binaries are missing. Only one real-node set may exist on the machine: when
  a live launcher owns one, the fixture fails and names that launcher's directory.
"""

from __future__ import annotations

import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from kubernetes import client, config

from .binaries import BinariesMissingError, find_binaries
from .cluster import LocalCluster
from .components import AUDIT_SERVICE_ACCOUNTS
from .kubeconfig import current_context, is_local_test_context
from .realnode.host import SHARED_DIRS, TOUCHED_SYSCTLS, read_sysctl
from .realnode.layout import read_owner
from .realnode.requirements import real_nodes_missing
from .supervisor import SupervisorError, start_background, stop

USE_EXISTING_ENV = "USE_EXISTING_CLUSTER"
IMAGES_ENV = "PIZZA_IMAGES_DIR"
requires_real_nodes = pytest.mark.skipif(
    bool(real_nodes_missing()), reason=real_nodes_missing() or "real nodes available"
)


@dataclass(frozen=True)
class RealCluster:
    """What tests get from `real_cluster`."""

    kubeconfig: Path
    data_dir: Path
    images_dir: Path | None
    context: str
    sysctls_before: dict[str, str | None]  # host settings before `up` (down must restore them)
    shared_dirs_before: tuple[str, ...]  # of realnode.host.SHARED_DIRS: those that existed


def _default_images_dir() -> Path | None:
    if env := os.environ.get(IMAGES_ENV):
        return Path(env)
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for parent in (start, *start.parents):
            if (parent / ".images").is_dir():
                return parent / ".images"
    return None


@pytest.fixture(scope="session")
def real_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RealCluster]:
    reason = real_nodes_missing()
    if reason:
        pytest.skip(reason)
    owner = read_owner()
    if owner is not None and owner.alive():
        pytest.fail(
            f"real nodes already run from {owner.data_dir} (launcher pid {owner.pid}); only one "
            f"real-node set can exist on a machine: `pizza-devcluster down --dir {owner.data_dir}`",
            pytrace=False,
        )
    data_dir = tmp_path_factory.mktemp("real-cluster")
    images_dir = _default_images_dir()
    sysctls = {name: read_sysctl(name) for name in TOUCHED_SYSCTLS}
    dirs = tuple(d for d in SHARED_DIRS if Path(d).exists())
    try:
        try:
            start_background(data_dir, 600.0, real_nodes=True, images_dir=images_dir)
        except SupervisorError as error:
            pytest.fail(str(error), pytrace=False)
        kubeconfig = data_dir / "kubeconfig"
        context = guard_context(kubeconfig)
        # os.environ["KUBECONFIG"] stays the kwok cluster's (kube_cluster): the two clusters live
        # side by side in one session, so e2e tests pass this kubeconfig explicitly
        yield RealCluster(kubeconfig, data_dir, images_dir, context, sysctls, dirs)
    finally:
        stop(data_dir)


@dataclass(frozen=True)
class KubeCluster:
    """What tests get from `kube_cluster`. `local` is None for an existing cluster."""

    kubeconfig: Path
    context: str
    local: LocalCluster | None = None


def guard_context(kubeconfig: Path) -> str:
    """Fail unless the kubeconfig's current context is a local test cluster; return the context."""
    if not kubeconfig.is_file():
        pytest.fail(f"kubeconfig {kubeconfig} does not exist", pytrace=False)
    context = current_context(kubeconfig)
    if not is_local_test_context(context):
        pytest.fail(
            f"refusing to run cluster tests against kube context {context!r} from {kubeconfig}: "
            "only `pizza-local` (our local control plane) and `kind-*` contexts are allowed",
            pytrace=False,
        )
    return context


@pytest.fixture(scope="session")
def kube_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[KubeCluster]:
    previous = os.environ.get("KUBECONFIG")
    if os.environ.get(USE_EXISTING_ENV) == "1":
        if not previous:
            pytest.fail(f"{USE_EXISTING_ENV}=1 needs KUBECONFIG to be set", pytrace=False)
        kubeconfig = Path(previous.split(os.pathsep)[0]).expanduser()
        yield KubeCluster(kubeconfig, guard_context(kubeconfig))
        return
    missing = ""
    try:
        find_binaries()
    except BinariesMissingError as error:
        missing = str(error)
    if missing:
        pytest.fail(missing, pytrace=False)
    cluster = LocalCluster(
        tmp_path_factory.mktemp("kube-cluster"), audit_policy=AUDIT_SERVICE_ACCOUNTS
    )
    cluster.start()
    try:
        context = guard_context(cluster.kubeconfig)
        os.environ["KUBECONFIG"] = str(cluster.kubeconfig)
        yield KubeCluster(cluster.kubeconfig, context, cluster)
    finally:
        cluster.stop()
        if previous is None:
            os.environ.pop("KUBECONFIG", None)
        else:
            os.environ["KUBECONFIG"] = previous


@pytest.fixture(scope="session")
def kube_api(kube_cluster: KubeCluster) -> Iterator[Any]:
    api = config.new_client_from_config(  # type: ignore[no-untyped-call]
        config_file=str(kube_cluster.kubeconfig), context=kube_cluster.context
    )
    try:
        yield api
    finally:
        api.close()


def _namespace_name(node_name: str) -> str:
    base = re.sub(r"[^a-z0-9-]+", "-", node_name.lower()).strip("-")[:40].strip("-")
    return f"t-{base}-{uuid.uuid4().hex[:6]}"


@pytest.fixture
def test_namespace(kube_api: Any, request: pytest.FixtureRequest) -> Iterator[str]:
    """A namespace for one test, enforcing Pod Security `restricted`; deleted afterwards.

    Waits for its `default` ServiceAccount, so pods can be created right away.
    """
    core = client.CoreV1Api(kube_api)
    name = _namespace_name(request.node.name)
    labels = {
        "pizza.ai/test-namespace": "true",
        "pod-security.kubernetes.io/enforce": "restricted",
        "pod-security.kubernetes.io/enforce-version": "latest",
    }
    core.create_namespace(
        client.V1Namespace(metadata=client.V1ObjectMeta(name=name, labels=labels))
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            accounts = core.list_namespaced_service_account(
                name, field_selector="metadata.name=default"
            )
            if accounts.items:
                break
            if time.monotonic() > deadline:
                pytest.fail(f"namespace {name} got no default ServiceAccount in 30 s")
            time.sleep(0.1)
        yield name
    finally:
        core.delete_namespace(name, propagation_policy="Background")
