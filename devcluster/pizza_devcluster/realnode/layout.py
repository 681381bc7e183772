"""Where the real nodes live: names, bridges, addresses and the fixed host paths they own.

Only one real-node set may exist on a machine at a time (the bridges, cgroups and iptables rules
have fixed names), so every path here is fixed too and `cleanup` can find what a dead run left.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

from ..nodes import GPU_NODE, GPU_RESOURCE, GPU_TAINT_KEY, GPU_TAINT_VALUE

STATE_ROOT = Path("/var/lib/pizza-node")  # containerd roots, kubelet roots, configs, pki
RUN_ROOT = Path("/run/pizza-node")  # containerd state and sockets, runc state, owner file
OWNER_FILE = RUN_ROOT / "owner.json"
HOST_RECORD = STATE_ROOT / "host.json"  # host settings as they were before the first `up`
BRIDGE_PREFIX = "pizza-br"
CGROUP_PREFIX = "pizza-"
POD_CIDR = "10.244.0.0/16"
DNS_SERVICE_IP = "10.0.0.10"
APISERVER_FORWARD_PORT = 6443
REAL_NODE_LABEL = "pizza.ai/real-node"
SIMULATED_TAINT = {"key": "pizza.ai/simulated", "value": "true", "effect": "NoSchedule"}
HOSTS_MARK = "# pizza-node"


@dataclass(frozen=True)
class RealNode:
    """One real node: its own containerd, bridge, CNI network and kubelet."""

    name: str
    short: str
    index: int
    labels: dict[str, str] = field(default_factory=dict)
    taints: tuple[dict[str, str], ...] = ()
    extended: dict[str, str] = field(default_factory=dict)

    @property
    def bridge(self) -> str:
        return f"{BRIDGE_PREFIX}{self.index}"

    @property
    def subnet(self) -> str:
        return f"10.244.{self.index}.0/24"

    @property
    def ip(self) -> str:
        return f"10.244.{self.index}.1"

    @property
    def state_dir(self) -> Path:
        return STATE_ROOT / self.short

    @property
    def run_dir(self) -> Path:
        return RUN_ROOT / self.short

    @property
    def socket(self) -> Path:
        return self.run_dir / "containerd.sock"

    @property
    def cgroup_root(self) -> str:
        return f"/{CGROUP_PREFIX}{self.short}"

    @property
    def all_labels(self) -> dict[str, str]:
        return {**self.labels, REAL_NODE_LABEL: "true"}


GPU_REAL_NODE = RealNode(
    name="pizza-real-gpu-0",
    short="gpu-0",
    index=0,
    labels=dict(GPU_NODE.labels),
    taints=({"key": GPU_TAINT_KEY, "value": GPU_TAINT_VALUE, "effect": "NoSchedule"},),
    extended={GPU_RESOURCE: "2"},
)
CPU_REAL_NODE = RealNode(name="pizza-real-cpu-0", short="cpu-0", index=1)
REAL_NODES: tuple[RealNode, ...] = (GPU_REAL_NODE, CPU_REAL_NODE)


@dataclass(frozen=True)
class Owner:
    """The launcher that owns the machine's real-node set."""

    pid: int
    data_dir: str

    def alive(self) -> bool:
        try:
            cmdline = Path(f"/proc/{self.pid}/cmdline").read_bytes()
        except OSError:
            return False
        return b"pizza_devcluster" in cmdline or b"pizza-devcluster" in cmdline


def read_owner() -> Owner | None:
    try:
        raw = json.loads(OWNER_FILE.read_text())
        return Owner(int(raw["pid"]), str(raw["data_dir"]))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def write_owner(data_dir: Path) -> None:
    RUN_ROOT.mkdir(parents=True, exist_ok=True)
    OWNER_FILE.write_text(json.dumps({"pid": os.getpid(), "data_dir": str(data_dir)}))
