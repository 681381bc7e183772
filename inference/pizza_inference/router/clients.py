"""Who sent a request (pure), and the group its failures are counted in.

A client is the peer address of the connection. `X-Forwarded-For` is read only when the peer is
a trusted proxy (`--trusted-proxies`, none by default): then the client is the right-most
address of the header that is not itself a trusted proxy (each proxy appends the address it saw;
the left part of the header is whatever the client wrote, so it is never believed).

The router counts the primary's requests and failures per client group (`client_group`): the
client hashed into `CLIENT_GROUPS` groups, the same on every router pod, so the operator can sum
the groups over pods and judge the primary across clients (docs/rollback.md) without one series
per client address.
"""

from __future__ import annotations

import hashlib
import ipaddress
from collections.abc import Iterable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass

CLIENT_GROUPS = 16
"""Groups the clients are hashed into (bounded label values: `"0"` to `"15"`)."""

UNKNOWN_CLIENT = "unknown"
"""The client of a request without a peer address (a Unix socket, a test transport)."""

MAX_FORWARDED_HOPS = 32
"""The most `X-Forwarded-For` entries read (the header is the client's to write)."""

Network = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose `X-Forwarded-For` is believed: networks in CIDR form."""

    networks: tuple[Network, ...] = ()

    @classmethod
    def parse(cls, text: str | None) -> TrustedProxies:
        """`"10.0.0.0/8, 192.168.1.7"` (comma- or space-separated); empty or None: none.
        Raises ValueError naming an entry that is not an address or a network."""
        entries = [e for e in (text or "").replace(",", " ").split() if e]
        networks = []
        for entry in entries:
            try:
                networks.append(ipaddress.ip_network(entry, strict=False))
            except ValueError as exc:
                raise ValueError(f"trusted proxy {entry!r} is not an address or network") from exc
        return cls(tuple(networks))

    def trusts(self, address: str) -> bool:
        try:
            ip = ipaddress.ip_address(address)
        except ValueError:
            return False
        return any(ip in network for network in self.networks)


def _forwarded(values: Iterable[str]) -> list[str]:
    """The addresses of `X-Forwarded-For` header values, in order (several headers joined)."""
    hops = [h.strip() for value in values for h in value.split(",")]
    return [h for h in hops if h][-MAX_FORWARDED_HOPS:]


def identify(peer: str | None, forwarded_for: Sequence[str], trusted: TrustedProxies) -> str:
    """The client of a request from `peer` carrying the `X-Forwarded-For` values `forwarded_for`.

    Untrusted peer (the default for every peer): the peer. Trusted peer: walk the header from the
    right, past trusted proxies, to the first address that is not one; a header naming only
    trusted proxies gives its left-most address, an empty or missing header the peer."""
    if not peer:
        return UNKNOWN_CLIENT
    if not trusted.networks or not trusted.trusts(peer):
        return peer
    hops = _forwarded(forwarded_for)
    for hop in reversed(hops):
        if not trusted.trusts(hop):
            return _normal(hop)
    return _normal(hops[0]) if hops else peer


def _normal(address: str) -> str:
    """An address in one spelling (a forwarded one may be written any way); else cut short."""
    try:
        return str(ipaddress.ip_address(address))
    except ValueError:
        return address[:64]


def client_group(client: str) -> int:
    """The client's group, 0 to 15 (the label is its decimal): a hash of the client, the same
    in every process and pod."""
    digest = hashlib.blake2b(client.encode(), digest_size=4).digest()
    return int.from_bytes(digest, "big") % CLIENT_GROUPS


CURRENT_CLIENT: ContextVar[str] = ContextVar("pizza_router_client", default=UNKNOWN_CLIENT)
"""The client of the request being handled: set by the router's client middleware
(`ratelimit.ClientMiddleware`), read by `RouterPlane` when it sends to the primary."""
