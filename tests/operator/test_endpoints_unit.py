"""Reading EndpointSlices as kube-proxy does: which Services list a ready endpoint (pure)."""

from __future__ import annotations

from typing import Any

import pytest
from pizza_operator.endpoints import endpoints_by_component, ready_endpoints

pytestmark = pytest.mark.unit


def endpoint(address: str, ready: bool | None = True, **conditions: bool) -> dict[str, Any]:
    if ready is not None:
        conditions["ready"] = ready
    return {"addresses": [address], "conditions": conditions}


def piece(service: str, *endpoints: Any, address_type: str = "IPv4") -> dict[str, Any]:
    """An EndpointSlice of `service` as the API server returns it."""
    return {
        "metadata": {
            "name": f"{service}-abcde",
            "labels": {
                "kubernetes.io/service-name": service,
                "endpointslice.kubernetes.io/managed-by": "endpointslice-controller.k8s.io",
            },
        },
        "addressType": address_type,
        "endpoints": list(endpoints),
        "ports": [{"name": "http", "port": 8001, "protocol": "TCP"}],
    }


class TestReadyEndpoints:
    def test_counts_ready_endpoints_by_service(self) -> None:
        slices = [
            piece("shop", endpoint("10.244.0.5"), endpoint("10.244.1.7")),
            piece("shop-fallback", endpoint("10.244.0.9", ready=False)),
        ]
        assert ready_endpoints(slices) == {"shop": 2, "shop-fallback": 0}

    def test_terminating_and_not_ready_are_not_counted(self) -> None:
        draining = endpoint("10.244.0.5", ready=False, serving=True, terminating=True)
        starting = endpoint("10.244.0.6", ready=False, serving=False)
        assert ready_endpoints([piece("shop", draining, starting)]) == {"shop": 0}

    def test_no_ready_condition_counts_as_ready(self) -> None:
        # the API: an unknown state is to be read as ready, and kube-proxy does so
        assert ready_endpoints([piece("shop", endpoint("10.244.0.5", ready=None))]) == {"shop": 1}

    def test_an_address_in_two_slices_counts_once(self) -> None:
        moved = [piece("shop", endpoint("10.244.0.5")), piece("shop", endpoint("10.244.0.5"))]
        assert ready_endpoints(moved) == {"shop": 1}

    def test_an_empty_slice_lists_none(self) -> None:
        # the controller writes a slice with `endpoints: null` for a Service without pods
        empty = piece("shop")
        empty["endpoints"] = None
        assert ready_endpoints([empty]) == {}
        assert ready_endpoints([piece("shop")]) == {"shop": 0}

    def test_fqdn_slices_are_not_programmed_by_kube_proxy(self) -> None:
        assert ready_endpoints([piece("shop", endpoint("db.example"), address_type="FQDN")]) == {}

    def test_malformed_slices_and_endpoints_are_skipped(self) -> None:
        no_label = piece("shop", endpoint("10.244.0.5"))
        no_label["metadata"]["labels"] = {"other": "x"}
        slices: list[Any] = [
            None,
            "slice",
            {"addressType": "IPv4"},
            {"addressType": "IPv4", "metadata": {"labels": ["x"]}, "endpoints": []},
            no_label,
            piece(
                "shop",
                None,
                {"addresses": []},
                {"addresses": "10.244.0.1"},
                {"addresses": [7]},
                {"addresses": ["10.244.0.2"], "conditions": "ready"},
            ),
        ]
        # only the last endpoint has an address; its odd conditions say nothing, so ready
        assert ready_endpoints(slices) == {"shop": 1}


class TestEndpointsByComponent:
    def test_each_component_from_its_service(self) -> None:
        services = {"primary": "shop-primary", "fallback": "shop-fallback", "router": "shop"}
        slices = [
            piece("shop", endpoint("10.244.0.5")),
            piece("shop-primary", endpoint("10.244.0.6"), endpoint("10.244.0.7")),
            piece("elsewhere", endpoint("10.244.0.8")),
        ]
        counts = endpoints_by_component(slices, services)  # type: ignore[arg-type]
        assert counts == {"primary": 2, "fallback": 0, "router": 1}
