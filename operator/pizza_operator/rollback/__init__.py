"""Automatic rollback, the pure part: signals in, verdicts and the next ladder step out.

Nothing here does I/O: no Kubernetes client, no HTTP (the import contracts in pyproject.toml
hold it to that). The analysis gathers the signals and calls `judge` per component
(`verdicts`; the primary's failure rate across clients: `clients`), keeps the
consecutive-failure counts with `count_failures`; `plan` decides the one next thing (an SRE's
request, a return to the primary, or the ladder's step: `ladder.decide`);
`patches` builds the status writes of a step, a return, a refusal or a record; `revisions`
keeps the history's rules (the known-good choice itself is `contract.known_good`, shared with
`kubectl pizza`). Every function is deterministic and unit-tested without a cluster.
"""

from pizza_operator.rollback.clients import ClientGroups, across_clients
from pizza_operator.rollback.durations import parse_duration
from pizza_operator.rollback.ladder import Decision, LadderState, decide, return_reason
from pizza_operator.rollback.revisions import next_outcome, prune
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
    "ClientGroups",
    "Decision",
    "KubeSignals",
    "LadderState",
    "MetricSignals",
    "Thresholds",
    "across_clients",
    "count_failures",
    "decide",
    "judge",
    "next_outcome",
    "parse_duration",
    "prune",
    "return_reason",
]
