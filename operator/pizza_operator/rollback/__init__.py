"""Automatic rollback, the pure part: signals in, verdicts and the next ladder step out.

Nothing here talks to Kubernetes or Prometheus; the analysis loop gathers the signals, calls
`judge` for each component, keeps the consecutive-failure counts with `count_failures`, and asks
`decide` what to do. Every function is deterministic and unit-tested without a cluster.
"""

from pizza_operator.rollback.durations import parse_duration
from pizza_operator.rollback.ladder import Decision, LadderState, decide, may_return_to_primary
from pizza_operator.rollback.revisions import Revision, known_good, mark_outcome, prune
from pizza_operator.rollback.verdicts import (
    Check,
    KubeSignals,
    MetricSignals,
    Thresholds,
    count_failures,
    judge,
)

__all__ = [
    "Check",
    "Decision",
    "KubeSignals",
    "LadderState",
    "MetricSignals",
    "Revision",
    "Thresholds",
    "count_failures",
    "decide",
    "judge",
    "known_good",
    "mark_outcome",
    "may_return_to_primary",
    "parse_duration",
    "prune",
]
