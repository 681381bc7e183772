"""Scraping the router pods' `/metrics` (I/O): every pod at once, a short timeout each.

What the counters mean and how two scrapes become a window is in `window` (pure).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping, Sequence
from typing import Any

import aiohttp

from pizza_operator.analysis.bodies import read_capped
from pizza_operator.analysis.window import Scrape, parse_router_metrics
from pizza_operator.builders.naming import PORT

MAX_METRICS_BYTES = 4 << 20
"""The largest `/metrics` page read (4 MiB; a router's is about 30 KB): a pod that sends more
counts as not answering."""


def metrics_urls(pods: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """The `/metrics` URL of every running router pod that has an IP, by pod name."""
    return {
        p["metadata"]["name"]: f"http://{p['status']['podIP']}:{PORT}/metrics"
        for p in pods
        if (p.get("status") or {}).get("podIP")
        and p["status"].get("phase") == "Running"
        and not p["metadata"].get("deletionTimestamp")
    }


async def _scrape_one(session: aiohttp.ClientSession, url: str) -> Scrape | None:
    try:
        async with session.get(url, headers={"Accept": "text/plain"}) as response:
            if response.status != 200:
                return None
            raw = await read_capped(response, MAX_METRICS_BYTES)
        return parse_router_metrics(raw.decode())
    except (aiohttp.ClientError, TimeoutError, ValueError, UnicodeDecodeError):
        return None


async def scrape_pods(
    urls: Mapping[str, str] | Sequence[str], *, timeout_seconds: float = 2.0
) -> dict[str, Scrape | None]:
    """GETs every `/metrics` URL at once; None for a pod that did not answer in time.

    `urls` maps a pod key (its name or uid) to its metrics URL, for example
    `{"router-7d9f-abc": "http://10.244.0.12:8080/metrics"}`; a plain list is keyed by URL.
    """
    targets = dict(urls) if isinstance(urls, Mapping) else {u: u for u in urls}
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        results = await asyncio.gather(*(_scrape_one(session, u) for u in targets.values()))
    return dict(zip(targets, results, strict=True))
