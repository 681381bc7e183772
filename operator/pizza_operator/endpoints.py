"""Which Services a client can reach: the ready endpoints their EndpointSlices list (pure).

kube-proxy builds a Service's rules from the EndpointSlices labelled with its name
(`kubernetes.io/service-name`) and sends new connections only to ready endpoints; a Service with
none is refused. So Ready waits until the Service of every component that runs pods lists one
(`status.desired_conditions`). Read as kube-proxy reads them: an endpoint with no `ready`
condition counts as ready (the API says consumers should take the unknown state as ready),
`FQDN` slices and endpoints without an address are skipped, and an address listed in two slices
(a move between slices) counts once. The slices come from the API server, so nothing in them is
trusted to have the expected shape.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pizza_operator.builders.naming import COMPONENTS, Component
from pizza_operator.contract import SERVICE_NAME_LABEL

ADDRESS_TYPES = ("IPv4", "IPv6")
"""The slices kube-proxy programs rules from."""


def _ready_address(endpoint: Any) -> str | None:
    """The first address of a ready endpoint (None: not ready, or no address)."""
    if not isinstance(endpoint, Mapping):
        return None
    conditions = endpoint.get("conditions")
    ready = conditions.get("ready") if isinstance(conditions, Mapping) else None
    if ready is False:
        return None
    addresses = endpoint.get("addresses")
    if not isinstance(addresses, list) or not addresses or not isinstance(addresses[0], str):
        return None
    return addresses[0]


def ready_endpoints(slices: Iterable[Any]) -> dict[str, int]:
    """Service name -> how many distinct ready endpoints its EndpointSlices list."""
    seen: dict[str, set[str]] = {}
    for piece in slices:
        if not isinstance(piece, Mapping) or piece.get("addressType") not in ADDRESS_TYPES:
            continue
        meta = piece.get("metadata")
        labels = meta.get("labels") if isinstance(meta, Mapping) else None
        service = labels.get(SERVICE_NAME_LABEL) if isinstance(labels, Mapping) else None
        endpoints = piece.get("endpoints")
        if not isinstance(service, str) or not isinstance(endpoints, list):
            continue
        addresses = seen.setdefault(service, set())
        for endpoint in endpoints:
            address = _ready_address(endpoint)
            if address is not None:
                addresses.add(address)
    return {service: len(addresses) for service, addresses in seen.items()}


def endpoints_by_component(
    slices: Iterable[Any], services: Mapping[Component, str]
) -> dict[Component, int]:
    """Ready endpoints of each component's Service (`services`: component -> Service name)."""
    counts = ready_endpoints(slices)
    return {c: counts.get(services[c], 0) for c in COMPONENTS}
