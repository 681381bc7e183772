"""Freeze and thaw a container of a pod on a real node: SIGSTOP / SIGCONT on its processes.

A frozen server keeps its TCP sockets open and answers nothing, which is how a hung GPU model
looks to its clients (unlike a killed one, whose connections are refused at once). The processes
are found through the container's cgroup, which runc names after the container ID:

    python -m pizza_load.freeze stop NAMESPACE/POD [--container server]
    python -m pizza_load.freeze cont NAMESPACE/POD
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path

CGROUP_ROOT = Path("/sys/fs/cgroup")


class FreezeError(RuntimeError):
    """The container or its processes cannot be found."""


def container_id(pod: dict[str, object], container: str) -> str:
    """The runtime ID of a running container, from the pod's status (`containerd://ID`)."""
    status = pod.get("status")
    statuses = status.get("containerStatuses", []) if isinstance(status, dict) else []
    for entry in statuses:
        if entry.get("name") == container and entry.get("containerID"):
            return str(entry["containerID"]).split("://", 1)[-1]
    raise FreezeError(f"container {container!r} of the pod has no container ID (not started?)")


def _cgroup_dirs(cid: str, root: Path) -> Iterator[Path]:
    for dirpath, dirnames, _ in os.walk(root):
        for name in dirnames:
            if cid in name:
                yield Path(dirpath) / name


def container_pids(cid: str, root: Path = CGROUP_ROOT) -> list[int]:
    """Every process in the container's cgroups (any hierarchy: v1 or the unified v2)."""
    pids: set[int] = set()
    for directory in _cgroup_dirs(cid, root):
        procs = directory / "cgroup.procs"
        if procs.is_file():
            pids.update(int(line) for line in procs.read_text().split())
    if not pids:
        raise FreezeError(f"no processes found in any cgroup of container {cid[:12]}")
    return sorted(pids)


def signal_container(pod: dict[str, object], container: str, sig: signal.Signals) -> list[int]:
    """Sends `sig` to every process of the container; returns their PIDs."""
    pids = container_pids(container_id(pod, container))
    for pid in pids:
        os.kill(pid, sig)
    return pids


def _get_pod(ref: str, kubectl: str) -> dict[str, object]:
    namespace, _, name = ref.rpartition("/")
    argv = [kubectl, "get", "pod", name, "-o", "json", *(["-n", namespace] if namespace else [])]
    out = subprocess.run(argv, check=True, capture_output=True, text=True).stdout
    pod: dict[str, object] = json.loads(out)
    return pod


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pizza_load.freeze", description=__doc__)
    parser.add_argument("action", choices=["stop", "cont"], help="SIGSTOP or SIGCONT")
    parser.add_argument("pod", help="NAMESPACE/POD (or POD in the current namespace)")
    parser.add_argument("--container", default="server")
    parser.add_argument("--kubectl", default="kubectl")
    args = parser.parse_args(argv)
    sig = signal.SIGSTOP if args.action == "stop" else signal.SIGCONT
    try:
        pids = signal_container(_get_pod(args.pod, args.kubectl), args.container, sig)
    except (FreezeError, subprocess.CalledProcessError, ProcessLookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    print(f"{sig.name} sent to {len(pids)} process(es) of {args.pod}/{args.container}: {pids}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
