"""The revision history's rules: which revisions to keep, and how an outcome may change.

Revisions are `contract.RevisionRef`s (name, number, outcome); the known-good choice itself is
`contract.known_good`, shared with `kubectl pizza`.
"""

from __future__ import annotations

from collections.abc import Sequence

from pizza_operator.contract import RevisionOutcome, RevisionRef


def next_outcome(
    before: RevisionOutcome | None, outcome: RevisionOutcome
) -> RevisionOutcome | None:
    """The outcome to record when a revision is marked `outcome` (None: nothing to write).
    A Good revision stays Good once proven."""
    if before in ("Good", outcome):
        return None
    return outcome


def prune(history: Sequence[RevisionRef], current: str, limit: int) -> list[RevisionRef]:
    """Keep the current revision and the `limit` newest others, known-good ones first."""
    others = sorted((r for r in history if r.name != current), key=lambda r: -r.number)
    good = [r for r in others if r.outcome == "Good"]
    rest = [r for r in others if r.outcome != "Good"]
    kept = {r.name for r in (good + rest)[:limit]} | {current}
    return sorted((r for r in history if r.name in kept), key=lambda r: r.number)
