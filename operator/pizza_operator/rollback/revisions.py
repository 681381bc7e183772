"""The revision history: what shaped the children, and whether it ever ran healthy."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Literal

Outcome = Literal["Pending", "Good", "Failed"]


@dataclass(frozen=True)
class Revision:
    """One applied shape of the children, numbered in order of first application."""

    number: int
    hash: str
    outcome: Outcome = "Pending"


def known_good(history: Sequence[Revision], current_hash: str) -> Revision | None:
    """The newest revision other than the current one that ran healthy, if any."""
    good = [r for r in history if r.outcome == "Good" and r.hash != current_hash]
    return max(good, key=lambda r: r.number, default=None)


def mark_outcome(history: Sequence[Revision], hash_: str, outcome: Outcome) -> list[Revision]:
    """The history with revision `hash_` marked; a Good revision stays Good once proven."""
    return [
        replace(r, outcome=outcome) if r.hash == hash_ and r.outcome != "Good" else r
        for r in history
    ]


def prune(history: Sequence[Revision], current_hash: str, limit: int) -> list[Revision]:
    """Keep the current revision and the `limit` newest others, known-good ones first."""
    others = sorted((r for r in history if r.hash != current_hash), key=lambda r: -r.number)
    good = [r for r in others if r.outcome == "Good"]
    rest = [r for r in others if r.outcome != "Good"]
    kept = {r.hash for r in (good + rest)[:limit]} | {current_hash}
    return sorted((r for r in history if r.hash in kept), key=lambda r: r.number)
