"""What real nodes need on the host: root, the Debian packages and the node binaries."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from ..binaries import BinariesMissingError, find_binaries

REAL_NODE_COMMANDS = ("containerd", "containerd-shim-runc-v2", "ctr", "runc", "iptables",
                      "ip6tables", "ipset", "conntrack", "socat", "ip", "mount")  # fmt: skip
REAL_NODE_FILES = ("/usr/lib/cni/bridge", "/usr/lib/cni/host-local", "/usr/lib/cni/loopback")
REAL_NODE_BINARIES = ("kubelet", "kube-proxy", "coredns", "pause", "kube-router-netpol")
DEBIAN_PACKAGES = "containerd runc containernetworking-plugins iptables ipset conntrack socat"


def real_nodes_missing(bin_dir: Path | None = None) -> str:
    """Why real nodes cannot start here ("" when they can)."""
    if os.geteuid() != 0:
        return "real nodes need root (network, cgroups, mounts)"
    missing = [c for c in REAL_NODE_COMMANDS if shutil.which(c) is None]
    missing += [f for f in REAL_NODE_FILES if not Path(f).exists()]
    if missing:
        return f"missing {', '.join(missing)}: apt-get install {DEBIAN_PACKAGES}"
    try:
        bins = find_binaries(bin_dir)
    except BinariesMissingError as error:
        return str(error)
    absent = [b for b in REAL_NODE_BINARIES if not os.access(bins.path(b), os.X_OK)]
    if absent:
        return f"node binaries {', '.join(absent)} missing in {bins.dir}: run `make binaries`"
    return ""
