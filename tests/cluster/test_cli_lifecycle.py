"""`pizza-devcluster up --background` / `status` / `down` on a cluster of its own: after `down`
no process is left and every port is free; a killed supervisor takes its components with it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from pizza_devcluster.binaries import BinariesMissingError, find_binaries
from pizza_devcluster.ports import port_is_free
from pizza_devcluster.processes import pid_alive, wait_gone
from pizza_devcluster.supervisor import read_state

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

COMPONENTS = {"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}


@pytest.fixture(autouse=True)
def _needs_binaries() -> None:
    try:
        find_binaries()
    except BinariesMissingError as error:
        pytest.fail(str(error), pytrace=False)


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
                "/usr/bin/kubectl",
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
        ready = {
            n["metadata"]["name"]
            for n in items
            if any(
                c["type"] == "Ready" and c["status"] == "True" for c in n["status"]["conditions"]
            )
        }
        assert ready == {"pizza-gpu-0", "pizza-cpu-0", "pizza-cpu-1"}
    finally:
        down = _cli("down", "--dir", str(data_dir))
    assert down.returncode == 0, down.stderr
    assert "stopped" in down.stdout
    assert wait_gone(list(pids.values()), 5) == []
    assert all(port_is_free(p) for p in ports)
    assert _cli("status", "--dir", str(data_dir)).returncode == 3
    assert "no cluster was running" in _cli("down", "--dir", str(data_dir)).stdout


def test_killed_supervisor_takes_its_components_along(tmp_path: Path) -> None:
    data_dir = tmp_path / "cluster"
    pids = _up(data_dir)
    try:
        os.kill(pids["supervisor"], signal.SIGKILL)
        assert wait_gone(list(pids.values()), 15) == []
    finally:
        _cli("down", "--dir", str(data_dir))
