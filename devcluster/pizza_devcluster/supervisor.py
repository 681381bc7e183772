"""Run a LocalCluster in the foreground, detach it into the background, find and stop it."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

from .binaries import find_binaries
from .cluster import STATE_FILE, LocalCluster
from .nodes import DEFAULT_NODES
from .processes import pid_alive, rss_bytes, wait_gone
from .realnode import cleanup
from .realnode.cleanup import shim_pids
from .realnode.layout import read_owner
from .realnode.nodeset import STATE_FILE as REAL_STATE
from .realnode.nodeset import RealNodeSet, read_real_state, simulated_nodes

PID_FILE = "supervisor.pid"
SUPERVISOR_LOG = "supervisor.log"


class SupervisorError(RuntimeError):
    pass


@dataclass(frozen=True)
class ClusterState:
    """What `state.json` and `supervisor.pid` in a data dir say about a running cluster."""

    supervisor_pid: int | None
    ready: bool
    server: str
    kubeconfig: str
    pids: dict[str, int]
    ports: list[int]

    @property
    def supervisor_alive(self) -> bool:
        """The recorded supervisor still runs (and its pid was not reused by another program)."""
        pid = self.supervisor_pid
        if pid is None or not pid_alive(pid):
            return False
        cmdline = _cmdline(pid)
        return b"pizza_devcluster" in cmdline or b"pizza-devcluster" in cmdline


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
    except OSError:
        return b""


def read_state(data_dir: Path) -> ClusterState:
    pid: int | None = None
    with contextlib.suppress(OSError, ValueError):
        pid = int((data_dir / PID_FILE).read_text().strip())
    raw: dict[str, Any] = {}
    with contextlib.suppress(OSError, ValueError):
        raw = json.loads((data_dir / STATE_FILE).read_text())
    return ClusterState(
        supervisor_pid=pid,
        ready=bool(raw.get("ready")),
        server=str(raw.get("server", "")),
        kubeconfig=str(raw.get("kubeconfig", "")),
        pids={str(k): int(v) for k, v in raw.get("pids", {}).items()},
        ports=[int(p) for p in raw.get("ports", [])],
    )


def _raise_keyboard_interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def run_foreground(
    data_dir: Path, timeout: float, real_nodes: bool = False, images_dir: Path | None = None
) -> int:
    """Start the cluster, print how to use it, and keep it up until SIGTERM/SIGINT.

    With `real_nodes`, two real nodes (realnode/) start after the control plane and the kwok
    nodes get the `pizza.ai/simulated` taint; their pieces are restarted when they die.
    Returns 1 when a control-plane component dies on its own (everything else is stopped then).
    """
    data_dir = data_dir.resolve()
    state = read_state(data_dir)
    if state.supervisor_alive and state.supervisor_pid != os.getpid():
        raise SupervisorError(
            f"a cluster already runs from {data_dir} (pid {state.supervisor_pid}); "
            f"stop it with `pizza-devcluster down --dir {data_dir}`"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    (data_dir / PID_FILE).write_text(f"{os.getpid()}\n")
    for signum in (signal.SIGTERM, signal.SIGHUP, signal.SIGINT):  # SIGINT: even if inherited
        signal.signal(signum, _raise_keyboard_interrupt)  # as ignored (`cmd &` in a script)
    nodes = (
        RealNodeSet(data_dir, find_binaries().dir, images_dir.resolve() if images_dir else None)
        if real_nodes
        else None
    )
    cluster = LocalCluster(
        data_dir,
        nodes=simulated_nodes(DEFAULT_NODES) if real_nodes else DEFAULT_NODES,
        start_timeout=timeout,
        real_kubelets=real_nodes,
    )
    started = time.monotonic()
    try:
        if nodes is not None:
            nodes.claim()
        cluster.start()
        if nodes is not None:
            nodes.start(cluster, timeout)
        print(
            f"cluster ready in {time.monotonic() - started:.1f} s: "
            f"export KUBECONFIG={cluster.kubeconfig}",
            flush=True,
        )
        while True:
            time.sleep(0.5)
            dead = cluster.exited()
            if dead:
                print(f"component(s) exited: {', '.join(dead)}; stopping", file=sys.stderr)
                return 1
            if nodes is not None:
                nodes.supervise()
    except KeyboardInterrupt:
        return 0
    finally:
        if nodes is not None:
            nodes.stop()
        cluster.stop()
        with contextlib.suppress(OSError):
            (data_dir / PID_FILE).unlink()


def start_background(
    data_dir: Path, timeout: float, real_nodes: bool = False, images_dir: Path | None = None
) -> float:
    """Detach a supervisor (`up` in the foreground, new session) and wait until it is ready.

    Returns the seconds it took. Raises SupervisorError with the supervisor's log when it fails.
    """
    data_dir = data_dir.resolve()
    state = read_state(data_dir)
    if state.supervisor_alive:
        raise SupervisorError(
            f"a cluster already runs from {data_dir} (pid {state.supervisor_pid}); "
            f"stop it with `pizza-devcluster down --dir {data_dir}`"
        )
    data_dir.mkdir(parents=True, exist_ok=True)
    with contextlib.suppress(OSError):
        (data_dir / STATE_FILE).unlink()
    log_path = data_dir / SUPERVISOR_LOG
    started = time.monotonic()
    with log_path.open("wb") as log:
        child = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "pizza_devcluster",
                "up",
                "--dir",
                str(data_dir),
                "--timeout",
                str(timeout),
                *(["--real-nodes"] if real_nodes else []),
                *(["--images", str(images_dir.resolve())] if images_dir else []),
            ],
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    deadline = started + timeout + 15
    while True:
        if child.poll() is not None:
            raise SupervisorError(
                f"the cluster supervisor exited with code {child.returncode}; "
                f"its log ({log_path}):\n{_tail(log_path)}"
            )
        state = read_state(data_dir)
        if (
            state.ready
            and state.supervisor_pid == child.pid
            and (not real_nodes or _real_nodes_ready(data_dir))
        ):
            return time.monotonic() - started
        if time.monotonic() > deadline:
            stop(data_dir)
            raise SupervisorError(f"the cluster was not ready in {timeout:.0f} s; see {log_path}")
        time.sleep(0.05)


def _real_nodes_ready(data_dir: Path) -> bool:
    return bool(read_real_state(data_dir).get("ready"))


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def _belongs_to(pid: int, data_dir: Path) -> bool:
    """True when `pid`'s command line mentions `data_dir` (guards against reused pids)."""
    return str(data_dir).encode() in _cmdline(pid)


def stop(data_dir: Path, timeout: float = 30.0) -> list[int]:
    """Stop the supervisor (it stops its components); kill any component it left behind.

    Returns the pids that were stopped.
    """
    data_dir = data_dir.resolve()
    state = read_state(data_dir)
    stopped: list[int] = []
    if state.supervisor_alive and state.supervisor_pid is not None:
        os.kill(state.supervisor_pid, signal.SIGTERM)
        stopped.append(state.supervisor_pid)
        if wait_gone([state.supervisor_pid], timeout):
            os.kill(state.supervisor_pid, signal.SIGKILL)
            wait_gone([state.supervisor_pid], 5.0)
    leftovers = [
        pid for pid in state.pids.values() if pid_alive(pid) and _belongs_to(pid, data_dir)
    ]
    _clean_real_nodes(data_dir)
    for pid in leftovers:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)
    wait_gone(leftovers, 5.0)
    stopped.extend(leftovers)
    for name in (PID_FILE, STATE_FILE):
        with contextlib.suppress(OSError):
            (data_dir / name).unlink()
    return stopped


def _clean_real_nodes(data_dir: Path) -> None:
    """After the supervisor is gone: clear the host of a real-node set this dir owned (a
    supervisor killed with SIGKILL cannot do it itself)."""
    owner = read_owner()
    ours = owner is not None and Path(owner.data_dir) == data_dir
    if not ours and not (data_dir / REAL_STATE).exists():
        return
    if owner is not None and owner.alive() and not ours:
        return  # another launcher's real nodes
    kube_proxy = None
    with contextlib.suppress(OSError):
        kube_proxy = find_binaries().path("kube-proxy")
    try:
        left = cleanup.clean(kube_proxy)
    except cleanup.OwnedByLiveLauncherError as error:
        print(f"real nodes not cleared: {error}", file=sys.stderr)
        return
    if left:
        print(f"left on the host after cleanup: {left}", file=sys.stderr)
    with contextlib.suppress(OSError):
        (data_dir / REAL_STATE).unlink()


def describe(data_dir: Path) -> tuple[bool, str]:
    """(running, human-readable status) of the cluster in `data_dir`."""
    state = read_state(data_dir.resolve())
    if not state.supervisor_alive:
        return False, f"no cluster runs from {data_dir}"
    lines = [
        f"supervisor pid {state.supervisor_pid} ({'ready' if state.ready else 'starting'})",
        f"server {state.server}",
        f"kubeconfig {state.kubeconfig}",
    ]
    total = 0
    pids = {**state.pids, **read_real_state(data_dir.resolve()).get("pids", {})}
    for name, pid in pids.items():
        rss = rss_bytes(pid)
        total += rss
        status = "running" if pid_alive(pid) else "EXITED"
        lines.append(f"  {name:<24} pid {pid:<8} {status:<8} rss {rss / 2**20:7.1f} MiB")
    shims = shim_pids()
    if shims:
        rss = sum(rss_bytes(pid) for pid in shims)
        total += rss
        label = f"containerd shims ({len(shims)})"
        lines.append(f"  {label:<24} {'':<21} rss {rss / 2**20:7.1f} MiB")
    lines.append(f"  {'total':<24} {'':<21} rss {total / 2**20:7.1f} MiB")
    return True, "\n".join(lines)
