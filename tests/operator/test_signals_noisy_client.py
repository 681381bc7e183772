"""One noisy client against real processes: it cannot fail a healthy primary for the analysis,
and a primary that fails for everyone still fails.

A primary and a fallback (`pizza-serve model`, the shipped INT8 ONNX micro-pizza-net) and a
router (`pizza-serve router` with its defaults: 100 requests a minute per client, each client's
share of the primary) as their own processes on 127.0.0.1. Four well-behaved clients and one
hostile one, each from its own loopback address (127.0.0.x: distinct clients for the router),
send real images; the hostile one sends 40-megapixel images (the pixel limit) as fast as its
rate limit lets it, without waiting for answers. The router's `/metrics` is scraped before and
after, and the window judged as the operator judges it (`router_window`, `judge`).
"""

from __future__ import annotations

import asyncio
import io
import signal
import threading
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass, field

import httpx
import numpy as np
import pytest
from PIL import Image
from pizza_inference.images import MAX_IMAGE_PIXELS
from pizza_inference.router.clients import client_group
from pizza_operator.analysis.scrape import scrape_pods
from pizza_operator.analysis.window import RouterWindow, router_window
from pizza_operator.rollback import Check, judge

from tests.operator.test_signals_scrape_router import (
    FALLBACK,
    LIMITS,
    PRIMARY,
    READY,
    model_server,
    pizza_serve,
)
from tests.support.images import image_bytes
from tests.support.servers import ServerProcess

pytestmark = [pytest.mark.unit, pytest.mark.slow]

RATE_LIMIT = 100  # the router's default, a minute per client
WINDOW_SECONDS = 20.0
NORMAL_CLIENTS = ("127.0.0.11", "127.0.0.12", "127.0.0.13", "127.0.0.14")
HOSTILE = "127.0.0.66"
SMALL = image_bytes("JPEG", (64, 64), seed=3)


def largest_image() -> bytes:
    """A JPEG at the pixel limit (8000 x 5000), about 0.7 MB: the most work one upload asks."""
    width, height = 8000, MAX_IMAGE_PIXELS // 8000
    pixels = np.empty((height, width, 3), dtype=np.uint8)
    pixels[..., 0] = np.linspace(0, 255, width).astype(np.uint8)[None, :]
    pixels[..., 1] = np.linspace(0, 255, height).astype(np.uint8)[:, None]
    pixels[..., 2] = np.random.default_rng(1).integers(0, 40, (height, width), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels).save(out, format="JPEG", quality=70)
    return out.getvalue()


@dataclass
class Plane:
    primary: ServerProcess
    router: ServerProcess


@pytest.fixture(scope="module")
def plane() -> Iterator[Plane]:
    groups = {client_group(c) for c in NORMAL_CLIENTS}
    assert client_group(HOSTILE) not in groups and len(groups) >= 2  # distinct for the router
    with ExitStack() as stack:
        primary = stack.enter_context(pizza_serve(*model_server(PRIMARY)))
        fallback = stack.enter_context(pizza_serve(*model_server(FALLBACK)))
        router = stack.enter_context(
            pizza_serve(
                "router", "--primary", primary.url, "--fallback", fallback.url,
                "--rate-limit-per-minute", str(RATE_LIMIT),
            )
        )  # fmt: skip
        yield Plane(primary, router)


@dataclass
class Traffic:
    """What each kind of client got: (status, model_used, fallback_reason) per request."""

    normal: list[tuple[int, str | None, str | None]] = field(default_factory=list)
    hostile: list[tuple[int, str | None, str | None]] = field(default_factory=list)


def _post(client: httpx.Client, url: str, image: bytes) -> tuple[int, str | None, str | None]:
    response = client.post(f"{url}/classify", files={"file": ("p.jpg", image, "image/jpeg")})
    body = response.json()
    return response.status_code, body.get("model_used"), body.get("fallback_reason")


def _normal(url: str, address: str, until: float, out: Traffic) -> None:
    """Two small images a second, one at a time."""
    transport = httpx.HTTPTransport(local_address=address)
    with httpx.Client(transport=transport, timeout=60) as client:
        while time.monotonic() < until:
            started = time.monotonic()
            out.normal.append(_post(client, url, SMALL))
            time.sleep(max(0.0, 0.5 - (time.monotonic() - started)))


def _hostile(url: str, until: float, out: Traffic, image: bytes) -> None:
    """The largest images at the rate limit, each sent without waiting for the ones before."""
    transport = httpx.HTTPTransport(local_address=HOSTILE)
    limits = httpx.Limits(max_connections=200)
    with httpx.Client(transport=transport, timeout=60, limits=limits) as client:
        senders, due = [], time.monotonic()
        while due < until:
            sender = threading.Thread(target=lambda: out.hostile.append(_post(client, url, image)))
            sender.start()
            senders.append(sender)
            due += 60.0 / RATE_LIMIT  # on a schedule: as fast as the rate limit lets it
            time.sleep(max(0.0, due - time.monotonic()))
        for sender in senders:
            sender.join()


def run_window(
    plane: Plane, *, hostile: bool, freeze_primary: bool
) -> tuple[RouterWindow, Traffic]:
    urls = {"router": f"{plane.router.url}/metrics"}
    before = asyncio.run(scrape_pods(urls, timeout_seconds=10))
    traffic = Traffic()
    until = time.monotonic() + WINDOW_SECONDS
    url = plane.router.url
    clients = [
        threading.Thread(target=_normal, args=(url, a, until, traffic)) for a in NORMAL_CLIENTS
    ]
    if hostile:
        clients.append(
            threading.Thread(target=_hostile, args=(url, until, traffic, largest_image()))
        )
    if freeze_primary:
        plane.primary.popen.send_signal(signal.SIGSTOP)
    try:
        for client in clients:
            client.start()
        for client in clients:
            client.join()
    finally:
        plane.primary.popen.send_signal(signal.SIGCONT)
    after = asyncio.run(scrape_pods(urls, timeout_seconds=10))
    window = router_window(before, after, primary_model=PRIMARY, fallback_model=FALLBACK)
    return window, traffic


def _show(check: Check, window: RouterWindow, traffic: Traffic) -> str:
    return (
        f"{check}\nreasons={window.fallback_reasons}\nclients={window.primary.clients}\n"
        f"normal={Counter(traffic.normal)}\nhostile={Counter(traffic.hostile)}"
    )


def test_one_hostile_client_does_not_fail_a_healthy_primary(plane: Plane) -> None:
    window, traffic = run_window(plane, hostile=True, freeze_primary=False)
    check = judge("primary", READY, window.primary, LIMITS)
    shown = _show(check, window, traffic)
    # at the rate limit (a loaded host starts the sender threads late: three quarters at least)
    assert len(traffic.hostile) >= 0.75 * WINDOW_SECONDS * RATE_LIMIT / 60, shown
    # the others were served by the primary, every one of them
    assert traffic.normal and all(t == (200, PRIMARY, None) for t in traffic.normal), shown
    assert window.primary.requests is not None and window.primary.requests >= LIMITS.min_requests
    # the failure rate judged stays under the threshold: one client's timeouts and 503s do not
    # fail the primary. (Its p95 is not judged across clients, docs/rollback.md: on a host whose
    # two CPUs also decode the hostile images for the fallback, it was once over 5 s in 5 runs.)
    assert "FailureRate" not in check.reasons, shown
    assert check.values["failureRate"] is not None and check.values["failureRate"] <= 0.05, shown
    assert check.verdict == "Healthy" or check.reasons == ("LatencyP95",), shown


def test_a_primary_that_fails_for_everyone_still_fails(plane: Plane) -> None:
    window, traffic = run_window(plane, hostile=True, freeze_primary=True)
    check = judge("primary", READY, window.primary, LIMITS)
    shown = _show(check, window, traffic)
    assert all(t[1] != PRIMARY for t in traffic.normal), shown  # nobody got the primary
    assert check.verdict == "Failed" and "FailureRate" in check.reasons, shown
    assert check.values["failingClientGroups"] is not None
    assert check.values["failingClientGroups"] >= 2, shown
    # judged across clients: the hostile client's group set aside, the others still fail
    assert check.values["failureRate"] is not None and check.values["failureRate"] > 0.5, shown
