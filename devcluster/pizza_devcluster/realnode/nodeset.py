"""`RealNodeSet`: the two real nodes and the shared host pieces, started in order.

Order: claim the machine (fail if a live launcher owns a real-node set, clear what a dead one
left), network safety, bridges, containerd of each node (own root, state, socket), images, RBAC
and Services, kubelets (wait for Ready, then advertise the GPU node's extended resource), then
the NetworkPolicy engine, kube-proxy, CoreDNS and the apiserver forwarder. `supervise()`
restarts pieces that die.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import urllib.request
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..certs import Pki
from ..cluster import ClusterStartError, LocalCluster
from ..components import SERVICE_CIDR
from ..nodes import NodeSpec, node_is_ready
from ..ports import free_ports
from ..rest import AdminClient, ApiError
from . import cleanup, configs, images, manifests, network
from .host import record_host, run
from .layout import (
    APISERVER_FORWARD_PORT,
    REAL_NODES,
    RUN_ROOT,
    SIMULATED_TAINT,
    STATE_ROOT,
    RealNode,
    read_owner,
    write_owner,
)
from .pieces import Piece, Pieces
from .pki import write_host_pki, write_node_pki
from .requirements import real_nodes_missing

log = logging.getLogger(__name__)

STATE_FILE = "realnodes.json"
CAPACITY_CHECK_EVERY = 10.0
# Registry proxies for containerd: even a pull from a registry without a hosts.toml goes nowhere.
NO_PULL_ENV = {"HTTP_PROXY": configs.NOWHERE, "HTTPS_PROXY": configs.NOWHERE, "NO_PROXY": ""}
REGISTRIES = ("_default", "docker.io", "registry.k8s.io", "ghcr.io", "quay.io", "localhost")


class RealNodesBusyError(ClusterStartError):
    """Another live launcher owns the machine's real-node set."""


def simulated_nodes(nodes: Sequence[NodeSpec]) -> tuple[NodeSpec, ...]:
    """The kwok nodes with `pizza.ai/simulated=true:NoSchedule`, so that while real nodes are
    up, pods land on the real ones (a pod must tolerate the taint to go to a fake node)."""
    return tuple(replace(spec, taints=(*spec.taints, SIMULATED_TAINT)) for spec in nodes)


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def _tcp_ok(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _mem_total() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


def prepare_cgroups(node: RealNode) -> None:
    """The kubelet's cgroupRoot in every hierarchy (cgroup v1 hybrid here)."""
    for hierarchy in cleanup.CGROUP_FS.iterdir():
        if not hierarchy.is_dir():
            continue
        directory = hierarchy / node.cgroup_root.lstrip("/")
        directory.mkdir(exist_ok=True)
        if (hierarchy / "cpuset.cpus").exists():
            for name in ("cpuset.cpus", "cpuset.mems"):
                (directory / name).write_text((hierarchy / name).read_text())


class RealNodeSet:
    def __init__(
        self,
        data_dir: Path,
        bin_dir: Path,
        images_dir: Path | None = None,
        nodes: Sequence[RealNode] = REAL_NODES,
    ) -> None:
        self.data_dir = data_dir.resolve()
        self.bin_dir = bin_dir
        self.images_dir = images_dir
        self.nodes = tuple(nodes)
        self.pieces = Pieces()
        self._admin: AdminClient | None = None
        self._claimed = False
        self._last_capacity_check = 0.0

    # -- life cycle -----------------------------------------------------------------------------

    def claim(self) -> None:
        """Fail if a live launcher owns the real-node set; clear what a dead run left."""
        missing = real_nodes_missing(self.bin_dir)
        if missing:
            raise ClusterStartError(f"cannot start real nodes: {missing}")
        owner = read_owner()
        if owner is not None and owner.alive() and owner.pid != os.getpid():
            raise RealNodesBusyError(
                f"real nodes already run from {owner.data_dir} (launcher pid {owner.pid}); "
                f"stop them with `pizza-devcluster down --dir {owner.data_dir}`"
            )
        left = {k: v for k, v in cleanup.leftovers().items() if v}
        if left:
            log.warning("clearing what an earlier real-node run left: %s", sorted(left))
            still = cleanup.clean(self.bin_dir / "kube-proxy")
            if still:
                raise ClusterStartError(f"could not clear an earlier real-node run: {still}")
        write_owner(self.data_dir)
        self._claimed = True
        self._write_state(ready=False)

    def start(self, cluster: LocalCluster, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        started = time.monotonic()
        self._admin = cluster.admin()
        pki = Pki(cluster.data_dir / "pki")
        record_host()
        network.setup(self.nodes)
        log.info("network safety rules and bridges in place")
        for node in self.nodes:
            self._write_node_files(node)
            self.pieces.add(self._containerd(node))
            self.pieces.get(f"containerd-{node.short}").start()
        for node in self.nodes:
            self._wait(
                f"containerd-{node.short}",
                deadline,
                self.pieces.get(f"containerd-{node.short}").healthy,
            )
        log.info("containerd up after %.1f s", time.monotonic() - started)
        self.import_images()
        log.info("images imported after %.1f s", time.monotonic() - started)
        for path, body in manifests.rbac() + manifests.services(self.nodes[0]):
            self.admin.create_or_keep(path, body)
        ca_cert = pki.ca_cert
        reserved = configs.system_reserved(_mem_total(), os.cpu_count() or 1, len(self.nodes))
        for node, port in zip(self.nodes, free_ports(len(self.nodes)), strict=True):
            kubeconfig = write_node_pki(pki, cluster.server, node)
            config = node.state_dir / "kubelet" / "config.yaml"
            config.write_text(configs.kubelet_config(node, ca_cert, port, reserved))
            piece = self.pieces.add(self._kubelet(node, config, kubeconfig))
            piece.start()
        for node in self.nodes:
            self._wait(f"node {node.name} Ready", deadline, self._node_ready(node))
            log.info("node %s Ready after %.1f s", node.name, time.monotonic() - started)
        self.ensure_capacity(force=True)
        self._start_host_pieces(pki, cluster, deadline)
        self._write_state(ready=True)
        log.info("real nodes ready after %.1f s", time.monotonic() - started)

    def supervise(self) -> None:
        if self.pieces.supervise():
            self._write_state(ready=True)
        if time.monotonic() - self._last_capacity_check > CAPACITY_CHECK_EVERY:
            with contextlib.suppress(OSError, ApiError):
                self.ensure_capacity()

    def stop(self) -> None:
        """Stop every piece, then clear the host (see cleanup.py). Safe to call twice."""
        if not self._claimed:
            return
        self.pieces.stop(timeout=10.0)
        left = cleanup.clean(self.bin_dir / "kube-proxy")
        if left:
            log.warning("left on the host after cleanup: %s", left)
        with contextlib.suppress(OSError):
            (self.data_dir / STATE_FILE).unlink()
        self._claimed = False

    # -- pieces ---------------------------------------------------------------------------------

    @property
    def admin(self) -> AdminClient:
        if self._admin is None:
            raise RuntimeError("the real nodes are not started")
        return self._admin

    def _log(self, name: str) -> Path:
        return self.data_dir / "logs" / f"{name}.log"

    def _write_node_files(self, node: RealNode) -> None:
        state = node.state_dir
        for sub in ("containerd", "cni/net.d", "cni/ipam", "kubelet", "pki", "pod-logs"):
            (state / sub).mkdir(parents=True, exist_ok=True)
        node.run_dir.mkdir(parents=True, exist_ok=True)
        (state / "containerd" / "config.toml").write_text(configs.containerd_config(node))
        for registry in REGISTRIES:
            hosts = state / "containerd" / "certs.d" / registry / "hosts.toml"
            hosts.parent.mkdir(parents=True, exist_ok=True)
            hosts.write_text(configs.registry_hosts())
        (state / "cni" / "net.d" / "10-pizza.conflist").write_text(configs.cni_conflist(node))
        (state / "kubelet" / "resolv.conf").write_text("")
        prepare_cgroups(node)

    def _containerd(self, node: RealNode) -> Piece:
        env = {**os.environ, **NO_PULL_ENV}
        return Piece(
            name=f"containerd-{node.short}",
            argv=["containerd", "--config", str(node.state_dir / "containerd" / "config.toml")],
            log_path=self._log(f"containerd-{node.short}"),
            healthy=lambda: (
                run(["ctr", "-a", str(node.socket), "version"], check=False).returncode == 0
            ),
            env=env,
        )

    def _kubelet(self, node: RealNode, config: Path, kubeconfig: Path) -> Piece:
        labels = ",".join(f"{k}={v}" for k, v in node.all_labels.items())
        argv = [
            str(self.bin_dir / "kubelet"),
            f"--config={config}",
            f"--kubeconfig={kubeconfig}",
            f"--hostname-override={node.name}",
            f"--node-ip={node.ip}",
            f"--root-dir={node.state_dir / 'kubelet'}",
            f"--cert-dir={node.state_dir / 'pki'}",
            f"--node-labels={labels}",
            "--v=1",
        ]
        return Piece(
            name=f"kubelet-{node.short}",
            argv=argv,
            log_path=self._log(f"kubelet-{node.short}"),
            healthy=self._node_ready(node),
            after=f"containerd-{node.short}",
            before_start=lambda: prepare_cgroups(node),
            on_healthy=lambda: self.ensure_capacity(force=True),
        )

    def _start_host_pieces(self, pki: Pki, cluster: LocalCluster, deadline: float) -> None:
        host_dir = STATE_ROOT / "host"
        kubeconfigs = write_host_pki(pki, cluster.server, host_dir)
        proxy_health, proxy_metrics, dns_ready, netpol_health = free_ports(4)
        proxy_config = host_dir / "kube-proxy.yaml"
        proxy_config.write_text(
            configs.kube_proxy_config(
                kubeconfigs["kube-proxy"],
                self.nodes[-1].name,
                self.nodes,
                proxy_health,
                proxy_metrics,
            )
        )
        corefile = host_dir / "Corefile"
        corefile.write_text(
            configs.corefile(self.nodes, kubeconfigs["coredns"], cluster.context, dns_ready)
        )
        first = self.nodes[0]
        apiserver_port = cluster.server.rsplit(":", 1)[1]
        lock = RUN_ROOT / "forwarder.lock"
        pieces = [
            self._netpol(kubeconfigs["netpol"], netpol_health),
            Piece(
                name="kube-proxy",
                argv=[str(self.bin_dir / "kube-proxy"), f"--config={proxy_config}", "--v=1"],
                log_path=self._log("kube-proxy"),
                healthy=lambda: _http_ok(f"http://127.0.0.1:{proxy_health}/healthz"),
            ),
            Piece(
                name="coredns",
                argv=[str(self.bin_dir / "coredns"), "-conf", str(corefile)],
                log_path=self._log("coredns"),
                healthy=lambda: _http_ok(f"http://127.0.0.1:{dns_ready}/ready"),
            ),
            Piece(  # pods reach the apiserver (127.0.0.1 only) through the `kubernetes` Service
                name="apiserver-forwarder",
                argv=[
                    "socat",
                    f"-L{lock}",  # names our run dir, so cleanup finds it
                    f"TCP-LISTEN:{APISERVER_FORWARD_PORT},bind={first.ip},fork,reuseaddr",
                    f"TCP:127.0.0.1:{apiserver_port}",
                ],
                log_path=self._log("apiserver-forwarder"),
                healthy=lambda: _tcp_ok(first.ip, APISERVER_FORWARD_PORT),
                before_start=lambda: lock.unlink(missing_ok=True),
            ),
        ]
        for piece in pieces:
            self.pieces.add(piece).start()
        for piece in pieces:
            self._wait(piece.name, deadline, piece.healthy)

    def _netpol(self, kubeconfig: Path, health_port: int) -> Piece:
        """kube-router's network policy controller: one process for every real node (they share
        this host's netfilter), named after the first node, enforcing for the pods of all."""
        first, others = self.nodes[0], self.nodes[1:]
        return Piece(
            name="netpol",
            argv=[
                str(self.bin_dir / "kube-router-netpol"),
                f"--kubeconfig={kubeconfig}",
                f"--hostname-override={first.name}",
                f"--local-node-ips={','.join(n.ip for n in others)}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                f"--health-addr=127.0.0.1:{health_port}",
                "--v=1",
            ],
            log_path=self._log("netpol"),
            healthy=lambda: _http_ok(f"http://127.0.0.1:{health_port}/healthz"),
        )

    # -- images, capacity -----------------------------------------------------------------------

    def image_tars(self) -> list[images.ImageTar]:
        found = (
            images.list_images(self.images_dir)
            if self.images_dir and self.images_dir.is_dir()
            else []
        )
        if not images.has_pause(found):
            found.insert(0, images.pause_archive(self.bin_dir / "pause", STATE_ROOT / "images"))
        return found

    def import_images(self, tars: list[images.ImageTar] | None = None) -> dict[str, list[str]]:
        tars = self.image_tars() if tars is None else tars
        with ThreadPoolExecutor(len(self.nodes)) as pool:  # one containerd each: in parallel
            done = pool.map(lambda node: images.import_images(node, tars), self.nodes)
            return dict(zip((n.name for n in self.nodes), done, strict=True))

    def ensure_capacity(self, force: bool = False) -> None:
        """Advertise each node's extended resources unless its status already has them."""
        self._last_capacity_check = time.monotonic()
        for node in self.nodes:
            if not node.extended:
                continue
            path = f"/api/v1/nodes/{node.name}/status"
            capacity = self.admin.get_json(f"/api/v1/nodes/{node.name}")["status"].get(
                "capacity", {}
            )
            if force or any(capacity.get(k) != v for k, v in node.extended.items()):
                self.admin.json_patch(path, manifests.gpu_capacity_patch(node))

    # -- waiting, state -------------------------------------------------------------------------

    def _node_ready(self, node: RealNode) -> Callable[[], bool]:
        def check() -> bool:
            try:
                return node_is_ready(self.admin.get_json(f"/api/v1/nodes/{node.name}"))
            except ApiError:
                return False

        return check

    def _wait(self, what: str, deadline: float, check: Callable[[], bool]) -> None:
        while True:
            for piece in self.pieces.items:
                if piece.process is not None and not piece.running():
                    raise ClusterStartError(
                        f"{piece.name} exited (code {piece.process.returncode}) while waiting "
                        f"for {what}; last lines of {piece.log_path}:\n{piece.process.log_tail()}"
                    )
            with contextlib.suppress(OSError):
                if check():
                    return
            if time.monotonic() > deadline:
                raise ClusterStartError(
                    f"timed out waiting for {what}; logs in {self.data_dir / 'logs'}"
                )
            time.sleep(0.2)

    def _write_state(self, ready: bool) -> None:
        state: dict[str, Any] = {"ready": ready, "pids": self.pieces.pids}
        (self.data_dir / STATE_FILE).write_text(json.dumps(state, indent=2))


def read_real_state(data_dir: Path) -> dict[str, Any]:
    with contextlib.suppress(OSError, ValueError):
        data: dict[str, Any] = json.loads((data_dir / STATE_FILE).read_text())
        return data
    return {}
