"""`pizza-devcluster up --background` / `status` / `down` on a cluster of its own: after `down`
no process is left and every port is free; a killed supervisor takes its components with it."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from pizza_devcluster import cluster as cluster_module
from pizza_devcluster.binaries import BinariesMissingError, find_binaries
from pizza_devcluster.cluster import ClusterStartError, LocalCluster
from pizza_devcluster.ports import port_is_free
from pizza_devcluster.processes import pid_alive, wait_gone
from pizza_devcluster.supervisor import read_state

from tests.support.conditions import is_true

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}


@pytest.fixture(autouse=True)
def _needs_binaries() -> None:
    """These tests start clusters of their own: without binaries they fail, except when the
    suite runs against an existing cluster (kind), where they are skipped."""
    missing = ""
    try:
        find_binaries()
    except BinariesMissingError as error:
        missing = str(error)
    if missing and os.environ.get("USE_EXISTING_CLUSTER") == "1":
        pytest.skip(f"USE_EXISTING_CLUSTER=1 and {missing}")
    if missing:
        pytest.fail(missing, pytrace=False)


def _processes_mentioning(data_dir: Path) -> list[str]:
    """Command lines of live processes that mention `data_dir` (components do, in their flags)."""
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit() or not pid_alive(int(proc.name)):
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if str(data_dir) in cmdline:
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def _cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pizza_devcluster", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _up(data_dir: Path) -> dict[str, int]:
    up = _cli("up", "--dir", str(data_dir), "--background")
    assert up.returncode == 0, up.stderr + up.stdout
    assert "cluster ready" in up.stdout
    state = read_state(data_dir)
    assert state.ready
    assert set(state.pids) == COMPONENTS
    assert all(pid_alive(pid) for pid in state.pids.values())
    assert state.supervisor_pid is not None
    return {"supervisor": state.supervisor_pid, **state.pids}


def test_up_status_down_leaves_no_process_and_no_port(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    pids = _up(data_dir)
    ports = read_state(data_dir).ports
    assert len(ports) == 3 and not any(port_is_free(p) for p in ports)
    try:
        again = _cli("up", "--dir", str(data_dir), "--background")
        assert again.returncode == 1 and "already runs" in again.stderr

        status = _cli("status", "--dir", str(data_dir))
        assert status.returncode == 0, status.stderr
        for name in COMPONENTS:
            assert name in status.stdout
        assert "EXITED" not in status.stdout

        nodes = subprocess.run(
            [
                KUBECTL,
                "--kubeconfig",
                str(data_dir / "kubeconfig"),
                "get",
                "nodes",
                "-o",
                "json",
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        items = json.loads(nodes.stdout)["items"]
        ready = {n["metadata"]["name"] for n in items if is_true(n, "Ready")}
        assert ready == {"pizza-gpu-0", "pizza-cpu-0", "pizza-cpu-1"}
    finally:
        down = _cli("down", "--dir", str(data_dir))
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert wait_gone(list(pids.values()), 5) == []
    assert _processes_mentioning(data_dir) == []
    assert all(port_is_free(p) for p in ports)
    assert _cli("status", "--dir", str(data_dir)).returncode == 3
    assert "no cluster was running" in _cli("down", "--dir", str(data_dir)).stdout


def test_killed_supervisor_takes_its_components_along(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    pids = _up(data_dir)
    try:
        os.kill(pids["supervisor"], signal.SIGKILL)
        assert wait_gone(list(pids.values()), 15) == []
        assert _processes_mentioning(data_dir) == []
    finally:
        _cli("down", "--dir", str(data_dir))


def test_sigterm_to_a_process_running_local_cluster_stops_everything(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    script = (
        "import sys, time\n"
        "from pathlib import Path\n"
        "from pizza_devcluster.cluster import LocalCluster\n"
        "LocalCluster(Path(sys.argv[1])).start()\n"
        "print('ready', flush=True)\n"
        "time.sleep(600)\n"
    )
    owner = subprocess.Popen(
        [sys.executable, "-c", script, str(data_dir)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert owner.stdout is not None
        assert owner.stdout.readline().strip() == "ready"
        state = read_state(data_dir)
        assert set(state.pids) == COMPONENTS
        owner.send_signal(signal.SIGTERM)
        assert owner.wait(timeout=30) != 0  # interrupted, after a clean stop
        assert wait_gone(list(state.pids.values()), 1) == []
        assert _processes_mentioning(data_dir) == []
        assert all(port_is_free(p) for p in state.ports)
        assert not (data_dir / "state.json").exists()  # removed by stop(), not by the kernel
    finally:
        owner.kill()
        owner.wait()


def test_failed_start_leaves_no_process(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    cluster = LocalCluster(data_dir, start_timeout=0.3)  # too short for the apiserver
    with pytest.raises(ClusterStartError, match="timed out"):
        cluster.start()
    log_dir = data_dir / "logs"
    assert (log_dir / "etcd.log").exists() and (log_dir / "kube-apiserver.log").exists()
    assert _processes_mentioning(data_dir) == []


def test_a_port_taken_at_start_is_retried_with_new_ports(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Another process grabs etcd's client port between the choice and the bind: the start
    retries with fresh ports instead of failing."""
    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    real_free_ports = cluster_module.free_ports
    calls: list[list[int]] = []

    def first_one_taken(count: int) -> list[int]:
        ports = real_free_ports(count)
        if not calls:
            ports[0] = taken  # etcd client port
        calls.append(ports)
        return ports

    monkeypatch.setattr(cluster_module, "free_ports", first_one_taken)
    cluster = LocalCluster(tmp_path / "cluster")
    try:
        with cluster:
            assert len(calls) == 2
            assert cluster.ports is not None and cluster.ports.etcd_client != taken
            assert cluster.admin().healthy()
    finally:
        squatter.close()
    assert _processes_mentioning(tmp_path / "cluster") == []
