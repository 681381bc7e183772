"""The reconcile's side of a rollout: start one on a new primary revision, and shape the
children while it runs (the stable primary in NAME-primary, the spec's in the canary).

Starting is the one write here: `status.rollout` (before any child is applied, so a crash in
between leaves a rollout the next reconcile builds) and its Event, by name (posted once). The
steps themselves are the rollout loop's (`rollout.act`)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime

from pizza_operator.api.v1alpha1 import Mode, PizzaModelDeployment, RolloutStatus
from pizza_operator.builders import Canary
from pizza_operator.builders.images import resolve_images
from pizza_operator.builders.naming import owner_of
from pizza_operator.config import OperatorConfig
from pizza_operator.contract import format_time
from pizza_operator.history import (
    History,
    revision_hash,
    revision_name,
    serving_shape,
    shaping_spec,
)
from pizza_operator.kube import Kube
from pizza_operator.rollout import record
from pizza_operator.rollout.shape import (
    LIVE,
    begin,
    canary_runs,
    canary_weight,
    keeps_stable,
    of_revision,
    primary_shape,
    starts_canary,
    with_stable_primary,
)
from pizza_operator.status_writer import StatusWriter

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Shaped:
    """What the children are built from while a rollout runs (or not)."""

    pmd: PizzaModelDeployment  # the primary Deployment's shape: the stable one during a canary
    canary: Canary | None
    revision: str | None  # currentRevision to report; None: the spec's (as without rollouts)


class Rollouts:
    def __init__(self, kube: Kube, history: History, writer: StatusWriter) -> None:
        self.kube, self.history, self.writer = kube, history, writer

    def shape(
        self, pmd: PizzaModelDeployment, mode: Mode, new_generation: bool, config: OperatorConfig
    ) -> Shaped:
        """The resource as the mode serves it (`serving_shape`), with the rollout's shape."""
        shaped = serving_shape(self.history, pmd, mode)
        data = shaping_spec(pmd)
        revision = revision_name(pmd, revision_hash(data))
        rollout = of_revision(pmd, revision)
        stable_name = pmd.status.current_revision
        if rollout is None and new_generation and stable_name and stable_name != revision:
            rollout = self._maybe_start(pmd, mode, revision, stable_name, data)
        if rollout is None:
            return Shaped(shaped, None, None)
        if rollout.phase == "Promoted":
            return Shaped(shaped, self._canary(pmd, rollout, mode, config), rollout.revision)
        if mode == "previous" or not keeps_stable(rollout):
            return Shaped(shaped, None, rollout.stable_revision)
        stable = self.history.get(pmd, rollout.stable_revision)
        if stable is None:
            logger.warning(
                "stable revision %s of %s/%s is gone: the spec's primary is applied",
                rollout.stable_revision,
                pmd.metadata.namespace,
                pmd.metadata.name,
            )
            return Shaped(shaped, None, None)
        base = with_stable_primary(shaped, stable.data)
        return Shaped(base, self._canary(pmd, rollout, mode, config), rollout.stable_revision)

    def _canary(
        self, pmd: PizzaModelDeployment, rollout: RolloutStatus, mode: Mode, config: OperatorConfig
    ) -> Canary | None:
        if not canary_runs(rollout, mode):
            return None
        return Canary(
            pmd,
            resolve_images(pmd, config)["primary"],
            canary_weight(rollout),
            pmd.spec.rollout.agreement_sample,
            borrow=rollout.plan == "Borrow",  # until the hand-over: the canary holds the GPUs
        )

    def _maybe_start(
        self,
        pmd: PizzaModelDeployment,
        mode: Mode,
        revision: str,
        stable_name: str,
        data: dict[str, object],
    ) -> RolloutStatus | None:
        stable = self.history.get(pmd, stable_name)
        if stable is None or not starts_canary(pmd, mode, stable.data, data):
            return None
        self.history.record(pmd)  # the canary's revision, before anything names it
        ns, name = pmd.metadata.namespace, pmd.metadata.name
        running = self._carried(pmd, data)
        if running is not None:  # a change beside the primary's pods
            carried = running.model_copy(update={"revision": revision})
            self.writer.update(ns, name, lambda fresh: record.patch(carried))
            return carried
        now = datetime.now(UTC)
        rollout = begin(pmd, revision, stable_name, format_time(now), now.timestamp())
        told = record.started(rollout)
        self.kube.post_event(
            owner_of(pmd),
            told.type,
            told.reason,
            told.message,
            record.event_name(name, rollout, told),
        )
        self.writer.update(ns, name, lambda fresh: record.patch(rollout))
        logger.info("rollout started namespace=%s name=%s %s", ns, name, told.message)
        return rollout

    def _carried(self, pmd: PizzaModelDeployment, data: dict[str, object]) -> RolloutStatus | None:
        """The last rollout when the new revision's primary is its canary's: a running one goes
        on, an aborted one stays aborted (a change of the count, the fallback or the router
        does not try a failed primary again; a change of the primary does)."""
        running = pmd.status.rollout
        if running is None or running.phase not in (*LIVE, "Aborted"):
            return None
        trial = self.history.get(pmd, running.revision)
        if trial is None or primary_shape(trial.data) != primary_shape(data):
            return None
        return running
