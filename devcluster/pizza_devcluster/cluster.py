"""`LocalCluster`: etcd, kube-apiserver, controller-manager, scheduler and kwok as processes."""

from __future__ import annotations

import atexit
import contextlib
import importlib.resources
import json
import logging
import shutil
import signal
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from types import FrameType, TracebackType
from typing import Any

from . import components
from .binaries import Binaries, find_binaries
from .certs import Pki, write_pki
from .kubeconfig import CONTEXT, build_kubeconfig, write_kubeconfig
from .nodes import DEFAULT_NODES, NodeSpec, node_is_ready, node_manifest
from .ports import HOST, free_ports
from .processes import ManagedProcess, ProcessExitedError, rss_bytes
from .rest import AdminClient, ApiError

log = logging.getLogger(__name__)

STAGE_FILES = (
    "node-initialize.yaml",
    "node-heartbeat-with-lease.yaml",
    "pod-ready.yaml",
    "pod-complete.yaml",
    "pod-delete.yaml",
    "pod-container-running-failed.yaml",
)
STATE_FILE = "state.json"
_PORT_IN_USE = "address already in use"


class ClusterStartError(RuntimeError):
    """The control plane did not come up; the message names the component and its log."""


class _PortTakenError(ClusterStartError):
    pass


class LocalCluster:
    """A real control plane under `data_dir` (certs, etcd data, logs, kubeconfig, state.json).

    Use as a context manager, or call start() and stop(). stop() also runs at interpreter exit,
    on SIGTERM (when no other handler is installed) and when start() fails; every component gets
    SIGKILL from the kernel if this process dies without cleaning up. That signal is tied to the
    thread that called start() (Linux PR_SET_PDEATHSIG): call it from a thread that outlives the
    cluster, normally the main thread.
    """

    def __init__(
        self,
        data_dir: Path,
        bin_dir: Path | None = None,
        nodes: Sequence[NodeSpec] = DEFAULT_NODES,
        start_timeout: float = 90.0,
        real_kubelets: bool = False,
        *,
        audit_policy: str | None = None,
    ) -> None:
        self.data_dir = Path(data_dir).resolve()
        self.bin_dir = bin_dir
        self.nodes = tuple(nodes)
        self.start_timeout = start_timeout
        self.real_kubelets = real_kubelets  # the apiserver gets its kubelet client flags
        self.kubeconfig = self.data_dir / "kubeconfig"
        self.audit_policy = audit_policy  # an audit.k8s.io/v1 Policy (YAML): the log is kept
        self.audit_log = self.data_dir / "logs" / "audit.log" if audit_policy else None
        self.context = CONTEXT
        self.ports: components.Ports | None = None
        self._processes: list[ManagedProcess] = []
        self._admin: AdminClient | None = None
        self._stopped = True

    # -- public API -----------------------------------------------------------------------------

    @property
    def server(self) -> str:
        if self.ports is None:
            raise RuntimeError("the cluster is not started")
        return f"https://{HOST}:{self.ports.apiserver}"

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self._processes if p.pid is not None}

    def exited(self) -> list[str]:
        """Names of components that are no longer running."""
        return [p.name for p in self._processes if not p.running()]

    def listening_ports(self) -> list[int]:
        if self.ports is None:
            return []
        return [self.ports.etcd_client, self.ports.etcd_peer, self.ports.apiserver]

    def rss_bytes(self) -> int:
        """Resident memory of all components together."""
        return sum(rss_bytes(pid) for pid in self.pids.values())

    def admin(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("the cluster is not started")
        return self._admin

    def start(self) -> LocalCluster:
        binaries = find_binaries(self.bin_dir)
        self._stopped = False
        atexit.register(self.stop)
        _stop_on_sigterm()
        try:
            for attempt in range(3):
                try:
                    self._start_once(binaries)
                    break
                except _PortTakenError:
                    if attempt == 2:
                        raise
                    log.warning("a port was taken while starting; retrying with new ports")
                    self._stop_processes()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop every component (SIGTERM, then SIGKILL after 10 s). Safe to call twice."""
        if self._stopped:
            return
        self._stopped = True
        atexit.unregister(self.stop)
        self._stop_processes()
        with contextlib.suppress(OSError):
            (self.data_dir / STATE_FILE).unlink()

    def __enter__(self) -> LocalCluster:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # -- start-up steps -------------------------------------------------------------------------

    def restart(self, name: str) -> None:
        """Kill one component with SIGKILL and start it again with the same command line (fault
        tests: an API server that crashed and came back); waits for /readyz after an API server."""
        old = next(p for p in self._processes if p.name == name)
        old.kill()
        new = ManagedProcess(name, old.argv, old.log_path)
        new.start()
        self._processes[self._processes.index(old)] = new
        if name == "kube-apiserver":
            deadline = time.monotonic() + self.start_timeout
            self._wait("kube-apiserver /readyz", deadline, lambda: self.admin().healthy("/readyz"))

    def _prepare_dir(self) -> tuple[Pki, Path, list[Path]]:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        for name in ("etcd", "pki", "kwok", "kubeconfigs", "logs"):
            shutil.rmtree(self.data_dir / name, ignore_errors=True)
        pki = write_pki(self.data_dir / "pki")
        admission = self.data_dir / "pki" / "admission.yaml"
        admission.write_text(components.POD_SECURITY_CONFIG)
        if self.audit_policy is not None:
            (self.data_dir / "pki" / "audit-policy.yaml").write_text(self.audit_policy)
        stage_dir = self.data_dir / "kwok"
        stage_dir.mkdir()
        stages = importlib.resources.files("pizza_devcluster.stages")
        stage_paths = []
        for name in STAGE_FILES:
            path = stage_dir / name
            path.write_bytes(stages.joinpath(name).read_bytes())
            stage_paths.append(path)
        return pki, admission, stage_paths

    def _spawn(self, name: str, argv: list[str]) -> ManagedProcess:
        process = ManagedProcess(name, argv, self.data_dir / "logs" / f"{name}.log")
        process.start()
        self._processes.append(process)
        return process

    def _start_once(self, binaries: Binaries) -> None:
        started = time.monotonic()
        deadline = started + self.start_timeout
        pki, admission, stages = self._prepare_dir()
        etcd_client, etcd_peer, apiserver = free_ports(3)
        self.ports = ports = components.Ports(etcd_client, etcd_peer, apiserver)

        self._spawn(
            "etcd", components.etcd_command(binaries.path("etcd"), self.data_dir / "etcd", ports)
        )
        self._spawn(
            "kube-apiserver",
            components.apiserver_command(
                binaries.path("kube-apiserver"),
                pki,
                ports,
                admission,
                self.data_dir / "pki" / "audit-policy.yaml" if self.audit_policy else None,
                audit_log=self.audit_log,
                real_kubelets=self.real_kubelets,
            ),
        )
        self._admin = AdminClient(
            HOST, ports.apiserver, pki.ca_cert, pki.client_cert("admin"), pki.client_key("admin")
        )
        self._wait("kube-apiserver /readyz", deadline, lambda: self.admin().healthy("/readyz"))
        log.info("apiserver ready after %.1f s", time.monotonic() - started)

        kubeconfigs = self._write_kubeconfigs(pki)
        self._spawn(
            "kube-controller-manager",
            components.controller_manager_command(
                binaries.path("kube-controller-manager"), pki, kubeconfigs["controller-manager"]
            ),
        )
        self._spawn(
            "kube-scheduler",
            components.scheduler_command(binaries.path("kube-scheduler"), kubeconfigs["scheduler"]),
        )
        self._spawn(
            "kwok", components.kwok_command(binaries.path("kwok"), kubeconfigs["kwok"], stages)
        )
        self._write_state()
        for spec in self.nodes:
            self.admin().create("/api/v1/nodes", node_manifest(spec))
        self._wait("fake nodes Ready", deadline, self._nodes_ready)
        log.info("nodes ready after %.1f s", time.monotonic() - started)
        self._wait("default ServiceAccount", deadline, self._default_service_account)
        self._write_state(ready=True)
        log.info("cluster ready after %.1f s", time.monotonic() - started)

    def _write_kubeconfigs(self, pki: Pki) -> dict[str, Path]:
        paths = {}
        for name in ("controller-manager", "scheduler", "kwok"):
            config = build_kubeconfig(
                self.server, pki.ca_cert, pki.client_cert(name), pki.client_key(name)
            )
            paths[name] = write_kubeconfig(self.data_dir / "kubeconfigs" / f"{name}.yaml", config)
        admin = build_kubeconfig(
            self.server, pki.ca_cert, pki.client_cert("admin"), pki.client_key("admin")
        )
        write_kubeconfig(self.kubeconfig, admin)
        return paths

    def _write_state(self, ready: bool = False) -> None:
        state: dict[str, Any] = {
            "ready": ready,
            "server": self.server,
            "kubeconfig": str(self.kubeconfig),
            "pids": self.pids,
            "ports": self.listening_ports(),
        }
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))

    def _nodes_ready(self) -> bool:
        items = self.admin().get_json("/api/v1/nodes").get("items", [])
        ready = {n["metadata"]["name"] for n in items if node_is_ready(n)}
        return all(spec.name in ready for spec in self.nodes)

    def _default_service_account(self) -> bool:
        try:
            self.admin().get_json("/api/v1/namespaces/default/serviceaccounts/default")
        except ApiError as error:
            if error.status == 404:
                return False
            raise
        return True

    def _wait(self, what: str, deadline: float, check: Any) -> None:
        while True:
            for process in self._processes:
                try:
                    process.check_running()
                except ProcessExitedError as error:
                    if _PORT_IN_USE in process.log_tail(50):
                        raise _PortTakenError(str(error)) from error
                    raise ClusterStartError(str(error)) from error
            with contextlib.suppress(OSError):  # the apiserver may still refuse connections
                if check():
                    return
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"timed out after {self.start_timeout:.0f} s waiting for {what}; "
                    f"logs in {self.data_dir / 'logs'}"
                )
            time.sleep(0.05)

    def _stop_processes(self) -> None:
        """Clients of the apiserver and the apiserver together, then etcd: an apiserver that
        loses etcd first spends ~10 s retrying during its shutdown."""
        processes, self._processes = self._processes, []
        clients = [p for p in reversed(processes) if p.name != "etcd"]
        for stage in (clients, [p for p in processes if p.name == "etcd"]):
            for process in stage:
                process.terminate()
            for process in stage:
                process.wait_stopped(timeout=10.0)


def _stop_on_sigterm() -> None:
    """Turn SIGTERM into KeyboardInterrupt, as Ctrl-C, so `finally` blocks, context managers,
    pytest's fixture teardown and atexit all run. Only from the main thread and only when no
    handler was installed before."""
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        return

    def _interrupt(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(f"signal {signum}")

    signal.signal(signal.SIGTERM, _interrupt)
