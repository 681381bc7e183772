"""The freeze helper finds a container's processes by its cgroups (a cgroup tree laid out here)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pizza_load.freeze import FreezeError, container_id, container_pids

pytestmark = pytest.mark.unit

CID = "4f1c" + "0" * 60


def _pod(container_id: str | None) -> dict[str, object]:
    status = {"name": "server", **({"containerID": container_id} if container_id else {})}
    return {"status": {"containerStatuses": [status]}}


def test_container_id_strips_the_runtime() -> None:
    assert container_id(_pod(f"containerd://{CID}"), "server") == CID


def test_container_not_started() -> None:
    with pytest.raises(FreezeError, match="no container ID"):
        container_id(_pod(None), "server")
    with pytest.raises(FreezeError, match="'other'"):
        container_id(_pod(f"containerd://{CID}"), "other")


def test_pids_from_every_hierarchy_once(tmp_path: Path) -> None:
    for hierarchy, procs in (("pids", "12\n13\n"), ("memory", "12\n13\n"), ("unified", "14\n")):
        leaf = tmp_path / hierarchy / "pizza/kubepods/besteffort/pod-uid" / CID
        leaf.mkdir(parents=True)
        (leaf / "cgroup.procs").write_text(procs)
    other = tmp_path / "pids/pizza/kubepods/besteffort/pod-uid/ffff"
    other.mkdir(parents=True)
    (other / "cgroup.procs").write_text("99\n")
    assert container_pids(CID, tmp_path) == [12, 13, 14]


def test_no_processes(tmp_path: Path) -> None:
    (tmp_path / "pids" / CID).mkdir(parents=True)
    with pytest.raises(FreezeError, match="no processes"):
        container_pids(CID, tmp_path)
