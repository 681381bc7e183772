"""Remove everything a real-node set puts on the host; idempotent, safe to run at any time
when no live launcher owns the set (`layout.read_owner`).

What it removes, in order: processes (node daemons by their command lines naming our fixed
paths, container processes by our cgroups, containerd shims), kube-proxy's, the kubelet's and
the NetworkPolicy engine's iptables chains and our DROP rules, the engine's ipsets, mounts
under our paths and CNI netns, veths and bridges and their routes, our cgroups in every
hierarchy, /etc/hosts lines, our entries in shared host directories, then the host settings
recorded before the first `up` are restored and the state directories deleted.
`leftovers()` lists what remains (empty after `clean`).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import shlex
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path

from ..components import SERVICE_CIDR
from ..processes import pid_alive
from .host import SHARED_DIRS, TOUCHED_SYSCTLS, ok, read_record, run, write_sysctl
from .layout import (
    BRIDGE_PREFIX,
    CGROUP_PREFIX,
    HOST_RECORD,
    HOSTS_MARK,
    POD_CIDR,
    RUN_ROOT,
    STATE_ROOT,
    read_owner,
)
from .network import IPTABLES, SAFETY_COMMENT

log = logging.getLogger(__name__)

CGROUP_FS = Path("/sys/fs/cgroup")
NETNS_DIR = Path("/run/netns")
OUR_PATHS = (str(STATE_ROOT), str(RUN_ROOT))
TABLES = ("mangle", "nat", "filter")
IPSET_PREFIXES = ("KUBE-SRC-", "KUBE-DST-")
"""The ipsets of kube-router's network policy controller (pods a policy selects)."""


# -- finding -------------------------------------------------------------------------------------


def _cmdline(pid: int) -> str:
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return ""


def daemon_pids() -> list[int]:
    """Processes whose command line names one of our fixed paths (containerd, shims, kubelets,
    kube-proxy, CoreDNS, the forwarder), kubelets first: they restart what dies."""
    me = {os.getpid(), os.getppid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) in me:
            continue
        cmd = _cmdline(int(entry.name))
        if any(f"{p}/" in cmd for p in OUR_PATHS):
            found.append((0 if "kubelet" in cmd.split(" ")[0] else 1, int(entry.name)))
    return [pid for _, pid in sorted(found)]


def shim_pids() -> list[int]:
    return [p for p in daemon_pids() if "containerd-shim" in _cmdline(p).split(" ")[0]]


def cgroup_dirs() -> list[Path]:
    """Our cgroup directories in every hierarchy (v1 controllers, named ones, unified), deepest
    first."""
    dirs: list[Path] = []
    if not CGROUP_FS.is_dir():
        return dirs
    for hierarchy in CGROUP_FS.iterdir():
        if not hierarchy.is_dir():
            continue
        for top in hierarchy.glob(f"{CGROUP_PREFIX}*"):
            if top.is_dir():
                dirs.extend(Path(d) for d, _, _ in os.walk(top))
    return sorted(dirs, key=lambda p: len(p.parts), reverse=True)


def cgroup_pids() -> set[int]:
    pids: set[int] = set()
    for directory in cgroup_dirs():
        with contextlib.suppress(OSError, ValueError):
            pids.update(int(x) for x in (directory / "cgroup.procs").read_text().split())
    return pids


def _unescape(path: str) -> str:
    return path.encode().decode("unicode_escape") if "\\" in path else path


def our_mounts() -> list[str]:
    """Mount points under our paths or of CNI netns, deepest first."""
    points = []
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/mountinfo").read_text().splitlines():
            point = _unescape(line.split()[4])
            if point.startswith(OUR_PATHS) or point.startswith(f"{NETNS_DIR}/cni-"):
                points.append(point)
    return sorted(set(points), key=lambda p: (p.count("/"), p), reverse=True)


def our_links() -> list[str]:
    out = run(["ip", "-j", "link", "show"], check=False).stdout or "[]"
    links = []
    for link in json.loads(out):
        name = str(link.get("ifname", ""))
        if name.startswith(BRIDGE_PREFIX) or str(link.get("master", "")).startswith(BRIDGE_PREFIX):
            links.append(name)
    return links


def our_routes() -> list[str]:
    out = run(["ip", "-4", "route", "show"], check=False).stdout
    return [
        line
        for line in out.splitlines()
        if BRIDGE_PREFIX in line
        or line.split(" ")[:2] in (["blackhole", POD_CIDR],)
        or line.startswith((f"{POD_CIDR} ", f"{SERVICE_CIDR} "))
    ]


def _is_ours(rule: str) -> bool:
    return "KUBE-" in rule or SAFETY_COMMENT in rule or "CNI-" in rule


def iptables_rules(ipt: str, table: str) -> tuple[list[str], list[str]]:
    """(our rules as `-A ...` lines, our chains) of one table."""
    out = run([f"{ipt}-save", "-t", table], check=False).stdout
    rules, chains = [], []
    for line in out.splitlines():
        if line.startswith(":") and line[1:].startswith(("KUBE-", "CNI-")):
            chains.append(line[1:].split()[0])
        elif line.startswith("-A ") and _is_ours(line):
            rules.append(line)
    return rules, chains


def our_ipsets() -> list[str]:
    """The NetworkPolicy engine's ipsets (none when ipset is not installed)."""
    if shutil.which("ipset") is None:
        return []
    out = run(["ipset", "list", "-n"], check=False).stdout
    return [name for name in out.split() if name.startswith(IPSET_PREFIXES)]


def _shared_entries() -> Iterator[Path]:
    """Our entries in host directories that others may share."""
    logs = Path("/var/log/containers")
    if logs.is_dir():
        for link in logs.iterdir():
            with contextlib.suppress(OSError):
                if link.is_symlink() and os.readlink(link).startswith(OUR_PATHS):
                    yield link
    for name in ("results", "networks"):
        directory = Path("/var/lib/cni") / name
        if directory.is_dir():
            yield from directory.glob("pizza-*")


def leftovers() -> dict[str, list[str]]:
    """Everything of a real-node set still on the host, by kind (all empty when clean)."""
    found: dict[str, list[str]] = {
        "processes": [f"{pid} {_cmdline(pid)[:120]}" for pid in daemon_pids() if pid_alive(pid)],
        "container processes": [str(p) for p in sorted(cgroup_pids())],
        "mounts": our_mounts(),
        "links": our_links(),
        "routes": our_routes(),
        "iptables": [],
        "ipsets": our_ipsets(),
        "cgroups": [str(d) for d in cgroup_dirs()],
        "hosts lines": [
            line for line in _read("/etc/hosts").splitlines() if line.endswith(HOSTS_MARK)
        ],
        "paths": [p for p in (*OUR_PATHS, *_netns_files()) if Path(p).exists()],
        "shared entries": [str(p) for p in _shared_entries()],
    }
    for ipt in IPTABLES:
        for table in TABLES:
            rules, chains = iptables_rules(ipt, table)
            found["iptables"] += [f"{ipt} -t {table} {r}" for r in rules]
            found["iptables"] += [f"{ipt} -t {table} chain {c}" for c in chains]
    record = read_record()
    sysctls = record.get("sysctls")
    if isinstance(sysctls, dict):
        found["paths"].append(f"{HOST_RECORD} (host settings not restored yet)")
    return found


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _netns_files() -> list[str]:
    return [str(p) for p in NETNS_DIR.glob("cni-*")] if NETNS_DIR.is_dir() else []


# -- removing ------------------------------------------------------------------------------------


def _kill(pids: list[int] | set[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGCONT)  # a frozen (SIGSTOPped) process dies on SIGKILL too
            os.kill(pid, signal.SIGKILL)


def kill_processes(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pids = [p for p in daemon_pids() if pid_alive(p)] + sorted(cgroup_pids())
        if not pids:
            return
        _kill(pids)
        time.sleep(0.2)
    log.warning("processes still alive after %.0f s: %s", timeout, daemon_pids())


def clean_iptables(kube_proxy: Path | None = None) -> None:
    if kube_proxy is not None and os.access(kube_proxy, os.X_OK):
        run([str(kube_proxy), "--cleanup", "--v=0"], check=False, timeout=60)
    for ipt in IPTABLES:
        for table in TABLES:
            rules, chains = iptables_rules(ipt, table)
            for rule in rules:
                args = shlex.split(rule)
                run([ipt, "-w", "-t", table, "-D", *args[1:]], check=False)
            for chain in chains:
                run([ipt, "-w", "-t", table, "-F", chain], check=False)
            for chain in chains:
                run([ipt, "-w", "-t", table, "-X", chain], check=False)


def destroy_ipsets() -> None:
    """After the iptables rules that reference them are gone."""
    for name in our_ipsets():
        run(["ipset", "destroy", name], check=False)


def unmount_all() -> None:
    for _ in range(3):
        points = our_mounts()
        if not points:
            break
        for point in points:
            if not ok(["umount", point]):
                run(["umount", "-l", point], check=False)
    for name in _netns_files():
        with contextlib.suppress(OSError):
            Path(name).unlink()


def clean_network() -> None:
    for line in our_routes():
        run(["ip", "route", "del", *line.split()], check=False)
    links = our_links()
    for name in sorted(links, key=lambda n: n.startswith(BRIDGE_PREFIX)):  # veths first
        run(["ip", "link", "del", name], check=False)


def remove_cgroups(timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while True:
        for directory in cgroup_dirs():
            with contextlib.suppress(OSError):
                directory.rmdir()
        if not cgroup_dirs() or time.monotonic() > deadline:
            return
        _kill(cgroup_pids())
        time.sleep(0.2)


def clean_files() -> None:
    hosts = Path("/etc/hosts")
    text = _read(str(hosts))
    if HOSTS_MARK in text:
        kept = [line for line in text.splitlines() if not line.endswith(HOSTS_MARK)]
        hosts.write_text("\n".join(kept) + "\n")
    for entry in list(_shared_entries()):
        with contextlib.suppress(OSError):
            if entry.is_dir() and not entry.is_symlink():
                shutil.rmtree(entry)
            else:
                entry.unlink()
    record = read_record()
    existing = record.get("existing_dirs")
    if isinstance(existing, list):
        for directory in SHARED_DIRS:
            if directory not in existing and Path(directory).exists():
                shutil.rmtree(directory, ignore_errors=True)
    sysctls = record.get("sysctls")
    if isinstance(sysctls, dict):
        for name in TOUCHED_SYSCTLS:
            value = sysctls.get(name)
            if isinstance(value, str):
                write_sysctl(name, value)
    for path in (RUN_ROOT, STATE_ROOT):  # HOST_RECORD goes with STATE_ROOT, last
        shutil.rmtree(path, ignore_errors=True)


class OwnedByLiveLauncherError(RuntimeError):
    """The real-node set belongs to a launcher that still runs: leave it alone."""


def clean(kube_proxy: Path | None = None) -> dict[str, list[str]]:
    """Remove everything; returns what is left (empty lists when all went). Refuses while
    another live launcher owns the set (its own launcher may clean)."""
    owner = read_owner()
    if owner is not None and owner.alive() and owner.pid != os.getpid():
        raise OwnedByLiveLauncherError(
            f"real nodes run from {owner.data_dir} (launcher pid {owner.pid}); "
            f"use `pizza-devcluster down --dir {owner.data_dir}`"
        )
    kill_processes()
    clean_iptables(kube_proxy)
    destroy_ipsets()
    unmount_all()
    clean_network()
    remove_cgroups()
    clean_iptables()  # a kubelet killed late may have re-added its canary chains
    clean_files()
    return {kind: items for kind, items in leftovers().items() if items}
