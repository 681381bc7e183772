"""A real Prometheus (the Debian package) for the tests, and its HTTP query API."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from pizza_devcluster.prometheus import PrometheusMissingError, prometheus_server, static_config

from tests.support.net import free_port
from tests.support.waiting import eventually


@contextmanager
def prometheus(targets: list[str], workdir: Path, job: str = "pizza") -> Iterator[str]:
    """Prometheus on a free port scraping `targets` (host:port) every second; yields its URL.
    Skips the test where Prometheus is not installed."""
    try:
        listen = f"127.0.0.1:{free_port()}"
        with prometheus_server(static_config(targets, job=job), workdir, listen) as url:
            yield url
    except PrometheusMissingError as exc:
        pytest.skip(f"{exc}; hack/install-system-deps.sh")


def query(prom: str, expr: str) -> list[dict[str, Any]]:
    """The samples of an instant query."""
    response = httpx.get(f"{prom}/api/v1/query", params={"query": expr}, timeout=5)
    response.raise_for_status()
    result: list[dict[str, Any]] = response.json()["data"]["result"]
    return result


def instant(prom: str, expr: str) -> float | None:
    """The value of the first sample of an instant query (None when there is none)."""
    samples = query(prom, expr)
    return float(samples[0]["value"][1]) if samples else None


def wait_for_value(prom: str, expr: str, expected: float, timeout: float = 20.0) -> None:
    """Until Prometheus answers `expr` with `expected` (polled every 0.3 s)."""
    eventually(
        lambda: instant(prom, expr) == expected,
        timeout,
        f"prometheus to see {expr} == {expected}",
        every=0.3,
    )
