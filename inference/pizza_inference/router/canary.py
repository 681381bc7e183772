"""The canary of a new primary revision, as the router sees it: its routing table entry (pure) and
the bounded agreement comparisons that run beside the client's request.

The operator writes three optional keys into the routing ConfigMap (`router.modewatch` reads them
live): `canaryUrl` (the canary model server's base URL), `canaryWeight` (0..100: percent of the
primary-bound requests sent to the canary first) and `agreementSample` (0..1: share of the
canary's answers also asked of the stable primary, off the client's path). A missing or empty
`canaryUrl` means no canary, whatever the other keys say.

An agreement comparison holds the client's request body until the stable primary answers (or its
timeout passes): at most `AGREEMENT_MAX_IN_FLIGHT` of them at once per router process, so their
memory is bounded by that many request bodies (the router's per-request body limit each); a
comparison offered while all are busy is dropped and counted, never waited for.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from pizza_inference import metrics

log = logging.getLogger(__name__)

CANARY_URL_KEY = "canaryUrl"
CANARY_WEIGHT_KEY = "canaryWeight"
AGREEMENT_SAMPLE_KEY = "agreementSample"
CANARY_KEYS = (CANARY_URL_KEY, CANARY_WEIGHT_KEY, AGREEMENT_SAMPLE_KEY)

MAX_URL_CHARS = 2048
AGREEMENT_MAX_IN_FLIGHT = 4
"""Comparisons with the stable primary in flight at once, per router process."""

AGREE, DISAGREE, ERROR = "agree", "disagree", "error"


@dataclass(frozen=True)
class CanaryTable:
    """The canary's routing entry; the default (no URL) is no canary."""

    url: str = ""
    weight: int = 0
    """Percent of the primary-bound requests sent to the canary first (0..100)."""
    sample: float = 0.0
    """Share of the canary's answers also asked of the stable primary (0..1)."""

    @property
    def active(self) -> bool:
        """Does any request go to the canary?"""
        return bool(self.url) and self.weight > 0

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url or None, "weight": self.weight, "sample": self.sample}


NO_CANARY = CanaryTable()


def _text(data: Mapping[str, object], key: str) -> str:
    value = data.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise ValueError(f"{key} must be a string, got {type(value).__name__}")
    return value.strip()


def parse_url(text: str) -> str:
    """An http(s) base URL with a host, no query or fragment; the trailing slash dropped."""
    if len(text) > MAX_URL_CHARS:
        raise ValueError(f"{CANARY_URL_KEY} is longer than {MAX_URL_CHARS} characters")
    try:
        parts = urlsplit(text)
        _ = parts.port  # a bad port raises ValueError here
    except ValueError as exc:
        raise ValueError(f"{CANARY_URL_KEY} {text[:100]!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"{CANARY_URL_KEY} {text[:100]!r} must be http(s)://HOST[:PORT]")
    if parts.query or parts.fragment or any(c.isspace() for c in text):
        raise ValueError(f"{CANARY_URL_KEY} {text[:100]!r} must carry no query or fragment")
    return text.rstrip("/")


def parse_weight(text: str) -> int:
    if not text:
        return 0
    if not (text.isascii() and text.isdigit()) or len(text) > 3 or int(text) > 100:
        raise ValueError(f"{CANARY_WEIGHT_KEY} must be an integer from 0 to 100, got {text[:20]!r}")
    return int(text)


def parse_sample(text: str) -> float:
    if not text:
        return 0.0
    try:
        value = float(text) if len(text) <= 32 else math.nan
    except ValueError:
        value = math.nan
    if not 0.0 <= value <= 1.0:  # NaN fails too
        raise ValueError(f"{AGREEMENT_SAMPLE_KEY} must be a number from 0 to 1, got {text[:20]!r}")
    return value


def parse_canary(data: Mapping[str, object]) -> CanaryTable:
    """The canary table in a routing ConfigMap's `data`; ValueError names a malformed key.

    No (or an empty) `canaryUrl`: no canary, and the other keys are not read."""
    url = _text(data, CANARY_URL_KEY)
    if not url:
        return NO_CANARY
    return CanaryTable(
        url=parse_url(url),
        weight=parse_weight(_text(data, CANARY_WEIGHT_KEY)),
        sample=parse_sample(_text(data, AGREEMENT_SAMPLE_KEY)),
    )


def agreement_of(canary_class: str, stable_class: str | None) -> str:
    """`agree`, `disagree`, or `error` when the stable primary gave no class."""
    if stable_class is None:
        return ERROR
    return AGREE if canary_class == stable_class else DISAGREE


class AgreementSampler:
    """Runs the comparisons as background tasks, at most `max_in_flight` at once; counts them
    (since `reset`, for status; the metric counts for the process's life)."""

    def __init__(self, max_in_flight: int = AGREEMENT_MAX_IN_FLIGHT) -> None:
        self.max_in_flight = max_in_flight
        self._tasks: set[asyncio.Task[None]] = set()
        self.counts: dict[str, int] = {}
        self.reset()

    def reset(self) -> None:
        """Counts from zero (a new canary URL); comparisons in flight still count when done."""
        self.counts = {AGREE: 0, DISAGREE: 0, ERROR: 0, "dropped": 0}

    @property
    def in_flight(self) -> int:
        return len(self._tasks)

    def offer(self, canary_class: str, ask_stable: Callable[[], Awaitable[str]]) -> bool:
        """Starts a comparison of `canary_class` with the class `ask_stable()` gives (called only
        when there is room); False when it was dropped because `max_in_flight` are running."""
        if len(self._tasks) >= self.max_in_flight:
            self.counts["dropped"] += 1
            metrics.CANARY_AGREEMENT_DROPPED.inc()
            return False
        task = asyncio.get_running_loop().create_task(self._compare(canary_class, ask_stable))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return True

    async def _compare(self, canary_class: str, ask_stable: Callable[[], Awaitable[str]]) -> None:
        stable_class: str | None
        try:
            stable_class = await ask_stable()
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # whatever the stable call met: an `error` comparison
            log.info("agreement comparison: the stable primary failed: %s", exc)
            stable_class = None
        result = agreement_of(canary_class, stable_class)
        self.counts[result] += 1
        metrics.CANARY_AGREEMENT.labels(result).inc()

    async def close(self) -> None:
        """Cancels the comparisons in flight (the router stops)."""
        tasks = list(self._tasks)
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def snapshot(self) -> dict[str, int]:
        return {**self.counts, "in_flight": self.in_flight, "max_in_flight": self.max_in_flight}
