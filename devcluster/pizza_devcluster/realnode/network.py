"""Pod networking on the host, safety first.

Order (see `setup`): the DROP rules exist before any bridge does, then the bridges, routes and
only then IP forwarding. What the rules and routes guarantee:

* forwarded traffic that comes in from a pod bridge may leave only through a pod bridge
  (mangle FORWARD `-i pizza-br+ ! -o pizza-br+ -j DROP`, IPv4 and IPv6; kube-proxy never
  touches the mangle table);
* the pod range and the Service range are routed onto the first bridge, so no address of
  either ever goes to the host's default route (a blackhole route for the Service range would
  make the host's own connect() fail before kube-proxy's OUTPUT DNAT runs);
* the CNI config (configs.py) gives pods no default route and no masquerading.
"""

from __future__ import annotations

from collections.abc import Sequence

from ..components import SERVICE_CIDR
from .host import ok, run, write_sysctl
from .layout import BRIDGE_PREFIX, POD_CIDR, RealNode

SAFETY_COMMENT = "pizza-no-egress"
IPTABLES = ("iptables", "ip6tables")


def safety_rule() -> list[str]:
    """The mangle FORWARD rule (without the -A/-I/-C/-D verb)."""
    bridges = f"{BRIDGE_PREFIX}+"
    return [
        "FORWARD", "-i", bridges, "!", "-o", bridges,
        "-m", "comment", "--comment", SAFETY_COMMENT, "-j", "DROP",
    ]  # fmt: skip


def apply_safety_rules() -> None:
    for ipt in IPTABLES:
        if not ok([ipt, "-w", "-t", "mangle", "-C", *safety_rule()]):
            run([ipt, "-w", "-t", "mangle", "-I", *safety_rule()])


def safety_rules_present() -> bool:
    return all(ok([ipt, "-w", "-t", "mangle", "-C", *safety_rule()]) for ipt in IPTABLES)


def setup_bridge(node: RealNode) -> None:
    if not ok(["ip", "link", "show", node.bridge]):
        run(["ip", "link", "add", node.bridge, "type", "bridge"])
    run(["ip", "addr", "replace", f"{node.ip}/24", "dev", node.bridge])
    run(["ip", "link", "set", node.bridge, "up"])


def setup(nodes: Sequence[RealNode]) -> None:
    """Safety rules, bridges, routes, then forwarding (in that order)."""
    apply_safety_rules()
    for node in nodes:
        setup_bridge(node)
    first = nodes[0]
    for cidr in (POD_CIDR, SERVICE_CIDR):  # the /24 of each bridge is more specific and wins
        run(["ip", "route", "replace", cidr, "dev", first.bridge, "src", first.ip])
    write_sysctl("net/bridge/bridge-nf-call-iptables", "1")
    write_sysctl("net/bridge/bridge-nf-call-ip6tables", "1")
    write_sysctl("net/ipv4/ip_forward", "1")
