"""Small host helpers: run a command, read and write sysctls, remember host settings."""

from __future__ import annotations

import contextlib
import json
import logging
import subprocess
from collections.abc import Sequence
from pathlib import Path

from .layout import HOST_RECORD

log = logging.getLogger(__name__)

SYSCTL_ROOT = Path("/proc/sys")
# Settings the launcher (ip_forward, bridge netfilter) or the kubelet (its kernel tunables) change.
# Their values from before the first `up` are written to HOST_RECORD and restored by cleanup.
TOUCHED_SYSCTLS = (
    "net/ipv4/ip_forward",
    "net/bridge/bridge-nf-call-iptables",
    "net/bridge/bridge-nf-call-ip6tables",
    "vm/overcommit_memory",
    "vm/panic_on_oom",
    "kernel/panic",
    "kernel/panic_on_oops",
    "kernel/keys/root_maxkeys",
    "kernel/keys/root_maxbytes",
)
# Host directories that other software may also own: removed by cleanup only if `up` made them.
# /var/lib/kubelet/device-plugins is fixed in the kubelet (not under --root-dir); /run/netns is
# where CNI pins pod network namespaces.
SHARED_DIRS = (
    "/var/log/containers",
    "/var/lib/cni",
    "/run/containerd",
    "/var/lib/kubelet",
    "/run/netns",
)


def run(
    argv: Sequence[str], check: bool = True, timeout: float = 60.0
) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(list(argv), capture_output=True, text=True, timeout=timeout, check=False)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {proc.returncode}: {proc.stderr.strip()}")
    return proc


def ok(argv: Sequence[str]) -> bool:
    return run(argv, check=False).returncode == 0


def read_sysctl(name: str) -> str | None:
    try:
        return (SYSCTL_ROOT / name).read_text().strip()
    except OSError:
        return None


def write_sysctl(name: str, value: str) -> None:
    try:
        (SYSCTL_ROOT / name).write_text(f"{value}\n")
    except OSError as error:
        log.warning("could not set %s=%s: %s", name, value, error)


def record_host() -> None:
    """Remember the host's settings, unless a record of an earlier (dead) run already exists:
    that one holds the values from before any run."""
    if HOST_RECORD.exists():
        return
    HOST_RECORD.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "sysctls": {name: read_sysctl(name) for name in TOUCHED_SYSCTLS},
        "existing_dirs": [d for d in SHARED_DIRS if Path(d).exists()],
    }
    HOST_RECORD.write_text(json.dumps(record, indent=2))


def read_record() -> dict[str, object]:
    with contextlib.suppress(OSError, ValueError):
        data: dict[str, object] = json.loads(HOST_RECORD.read_text())
        return data
    return {}
