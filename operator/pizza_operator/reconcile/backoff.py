"""How long to wait before retrying a reconcile the API server failed (not refused): a pure rule
the handler feeds kopf's retry count into."""

from __future__ import annotations

FIRST_DELAY = 5.0
"""Seconds before the first retry."""
MAX_DELAY = 300.0
"""The longest wait between two tries."""


def retry_delay(retry: int) -> float:
    """Seconds before the next try after `retry` earlier retries (kopf counts from 0) of one
    resource's reconcile, each failed: 5, 10, 20, 40, ... doubling, at most 300."""
    doublings = min(max(retry, 0), 16)  # 5 * 2**16 is far above the cap; no float overflow
    return min(MAX_DELAY, FIRST_DELAY * 2.0**doublings)
