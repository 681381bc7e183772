"""The API door bounds every call: an API server that does not answer is an error in time."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import pytest
from kubernetes import client
from pizza_operator.kube import Kube, UnreachableError

from tests.support.net import free_port

pytestmark = pytest.mark.unit


def _door(port: int) -> Kube:
    configuration = client.Configuration()
    configuration.host = f"http://127.0.0.1:{port}"
    configuration.retries = 0
    return Kube(client.ApiClient(configuration), timeout=(0.5, 0.5))


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A TCP server that accepts connections and never answers (a frozen API server)."""
    server = socket.create_server(("127.0.0.1", 0))
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    yield server.getsockname()[1]
    stop.set()
    thread.join()
    for conn in held:
        conn.close()
    server.close()


def test_a_frozen_api_server_is_an_error_within_the_timeout(silent_port: int) -> None:
    started = time.monotonic()
    with pytest.raises(UnreachableError, match="no answer") as caught:
        _door(silent_port).get("ConfigMap", "default", "x")
    assert caught.value.status == 0 and not caught.value.gone
    assert time.monotonic() - started < 5


def test_a_closed_port_is_an_error_too() -> None:
    with pytest.raises(UnreachableError, match="GET /api/v1/namespaces/default/configmaps/x"):
        _door(free_port()).get("ConfigMap", "default", "x")
