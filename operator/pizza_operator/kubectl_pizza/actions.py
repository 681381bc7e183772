"""What each changing command patches, and the plain kubectl command that does the same.

Every change is a JSON merge patch of the resource (annotations or `spec.paused`); none writes
the status. The operator acts on the annotations (`pizza_operator.contract`): `RETRY_ANNOTATION`
(back to the primary), `PROMOTE_ANNOTATION` and `ABORT_ANNOTATION` (the running canary) and
`ROLLBACK_ANNOTATION`, a `RollbackRequest` (`TO[:REVISIONNAME]@TOKEN`:
a step to previous, stable or emergency).
"""

from __future__ import annotations

import dataclasses
import json
import shlex
import time
from dataclasses import dataclass, field
from typing import Any

from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.contract import (
    ABORT_ANNOTATION,
    PROMOTE_ANNOTATION,
    RETRY_ANNOTATION,
    ROLLBACK_ANNOTATION,
    RollbackRequest,
    known_good,
)
from pizza_operator.kubectl_pizza.api import CliError
from pizza_operator.kubectl_pizza.view import revision_refs


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


def steer_canary(pmd: PizzaModelDeployment, verb: str, stamp: str) -> Change:
    """`promote` (skip the remaining steps) or `abort` the running canary; refused when none
    runs (the annotation would wait for the next one otherwise)."""
    ns, name = pmd.metadata.namespace, pmd.metadata.name
    rollout = pmd.status.rollout
    if rollout is None or rollout.phase not in ("Progressing", "Paused"):
        state = "none" if rollout is None else f"the last one is {rollout.phase}"
        raise CliError(f"no canary of {ns}/{name} is running ({state}): nothing to {verb}")
    key = PROMOTE_ANNOTATION if verb == "promote" else ABORT_ANNOTATION
    what = "promote" if verb == "promote" else "abort"
    return annotate(
        ns, name, key, stamp, f"asked {ns}/{name} to {what} revision {rollout.revision}"
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


def rollback_request(
    pmd: PizzaModelDeployment,
    revisions: list[dict[str, Any]],
    to: str,
    revision: int | None,
    stamp: str,
) -> RollbackRequest:
    """The request the annotation carries: `revision` (a number) becomes the revision's name;
    without it, the operator picks (`--to previous` then needs a known-good revision).

    The target is checked with `RollbackRequest.problem`, as the operator checks it."""
    where = f"{pmd.metadata.namespace}/{pmd.metadata.name}"
    asked = RollbackRequest(to=to, revision=None, token=stamp)
    problem = asked.problem()
    if problem is not None:
        raise CliError(f"cannot roll back {where}: {problem}")
    if revision is not None and to != "previous":  # the operator would read no revision
        raise CliError(f"--revision goes with --to previous only, not --to {to}")
    refs = revision_refs(pmd, revisions)
    if revision is not None:
        named = next((r for r in refs if r.number == revision), None)
        if named is None:
            known = ", ".join(str(r.number) for r in refs) or "none"
            raise CliError(f"unknown revision {revision} of {where} (revisions: {known})")
        return dataclasses.replace(asked, revision=named.name)
    if to == "previous" and known_good(refs, pmd.status.current_revision) is None:
        raise CliError(
            f"no known-good revision: no revision of {where} other than the current one is "
            "marked Good in status.revisionOutcomes; name one with --revision N, or use --to stable"
        )
    return asked


def rollback(namespace: str, name: str, request: RollbackRequest) -> Change:
    target = f"{request.to} ({request.revision})" if request.revision else request.to
    return annotate(
        namespace,
        name,
        ROLLBACK_ANNOTATION,
        request.encode(),
        f"asked {namespace}/{name} to roll back to {target}",
    )
