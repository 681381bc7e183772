"""What each changing command patches, and the plain kubectl command that does the same.

Every change is a JSON merge patch of the resource (annotations or `spec.paused`); none writes
the status. The operator acts on the annotations: `pizza.ai/retry` (back to the primary) and
`pizza.ai/rollback` = `TO[:REVISIONNAME]@TOKEN` (a step to previous, stable or emergency).
"""

from __future__ import annotations

import json
import shlex
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pizza_operator.kubectl_pizza.api import CliError
from pizza_operator.kubectl_pizza.view import known_good, revision_number

RETRY_ANNOTATION = "pizza.ai/retry"
ROLLBACK_ANNOTATION = "pizza.ai/rollback"
ROLLBACK_TARGETS = ("previous", "stable", "emergency")


def token() -> str:
    """A new request token: the current unix time in milliseconds."""
    return str(time.time_ns() // 1_000_000)


@dataclass(frozen=True)
class Change:
    """One merge patch of pmd/NAME, with what it says in words and as a kubectl command."""

    namespace: str
    name: str
    patch: dict[str, Any]
    summary: str
    kubectl: list[str] = field(default_factory=list)

    def command(self, prefix: tuple[str, ...] = ()) -> str:
        """The kubectl command line (`prefix`: --kubeconfig/--context, as given to us)."""
        return shlex.join(["kubectl", *prefix, "-n", self.namespace, *self.kubectl])


def annotate(namespace: str, name: str, key: str, value: str, summary: str) -> Change:
    return Change(
        namespace,
        name,
        {"metadata": {"annotations": {key: value}}},
        summary,
        ["annotate", f"pmd/{name}", f"{key}={value}", "--overwrite"],
    )


def retry(namespace: str, name: str, stamp: str) -> Change:
    return annotate(
        namespace, name, RETRY_ANNOTATION, stamp, f"asked {namespace}/{name} to retry the primary"
    )


def set_paused(namespace: str, name: str, paused: bool) -> Change:
    patch = {"spec": {"paused": paused}}
    word = "paused" if paused else "resumed"
    return Change(
        namespace,
        name,
        patch,
        f"{word} {namespace}/{name}",
        ["patch", f"pmd/{name}", "--type=merge", "-p", json.dumps(patch, separators=(",", ":"))],
    )


def rollback_target(
    pmd: Mapping[str, Any],
    revisions: list[dict[str, Any]],
    to: str,
    revision: int | None,
) -> str | None:
    """The revision name the annotation carries (None: the operator's own choice).

    `--to previous` needs a known-good revision, or `--revision N`, which must exist."""
    meta = pmd.get("metadata") or {}
    where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
    if to not in ROLLBACK_TARGETS:
        raise CliError(f"unknown rollback target {to!r}: use one of {', '.join(ROLLBACK_TARGETS)}")
    if revision is not None:
        if to != "previous":
            raise CliError(f"--revision goes with --to previous only, not --to {to}")
        by_number = {revision_number(r): str(r["metadata"]["name"]) for r in revisions}
        if revision not in by_number:
            known = ", ".join(str(n) for n in sorted(by_number)) or "none"
            raise CliError(f"unknown revision {revision} of {where} (revisions: {known})")
        return by_number[revision]
    if to == "previous":
        outcomes = (pmd.get("status") or {}).get("revisionOutcomes") or {}
        if known_good(revisions, outcomes) is None:
            raise CliError(
                f"no known-good revision: no revision of {where} is marked Good in "
                "status.revisionOutcomes; name one with --revision N, or use --to stable"
            )
    return None


def rollback(namespace: str, name: str, to: str, revision_name: str | None, stamp: str) -> Change:
    value = f"{to}:{revision_name}@{stamp}" if revision_name else f"{to}@{stamp}"
    target = f"{to} ({revision_name})" if revision_name else to
    return annotate(
        namespace,
        name,
        ROLLBACK_ANNOTATION,
        value,
        f"asked {namespace}/{name} to roll back to {target}",
    )
