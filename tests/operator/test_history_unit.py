"""The revision history's pure parts: what shapes the children, its hash, a revision put back."""

from __future__ import annotations

from typing import Any, cast

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import build_children
from pizza_operator.contract import RevisionRef
from pizza_operator.history import (
    History,
    StoredRevision,
    revision_hash,
    revision_name,
    serving_shape,
    shaping_spec,
    with_revision,
)

pytestmark = pytest.mark.unit
IMAGES = {"primary": "i:1", "fallback": "i:1", "router": "i:1"}


def test_only_the_parts_that_shape_children_make_a_revision(body: dict[str, Any]) -> None:
    pmd = PizzaModelDeployment.from_body(body)
    before = revision_hash(shaping_spec(pmd))
    body["spec"]["analysis"] = {"interval": "30s", "window": "2m"}
    body["spec"]["rollback"] = {"automatic": False}
    assert revision_hash(shaping_spec(PizzaModelDeployment.from_body(body))) == before
    body["spec"]["primary"]["model"]["source"] = "builtin://other"
    changed = revision_hash(shaping_spec(PizzaModelDeployment.from_body(body)))
    assert changed != before and len(changed) == 10


def test_a_stored_revision_gives_back_its_children(body: dict[str, Any]) -> None:
    good = PizzaModelDeployment.from_body(body)
    hash_ = revision_hash(shaping_spec(good))
    name = revision_name(good, hash_)
    stored = StoredRevision(
        name=name, revision=RevisionRef(name, 1, "Good"), hash=hash_, data=shaping_spec(good)
    )
    body["spec"]["primary"]["model"]["source"] = "builtin://broken"
    body["spec"]["analysis"] = {"interval": "5s", "window": "20s"}
    bad = PizzaModelDeployment.from_body(body)
    restored = with_revision(bad, stored)
    assert build_children(restored, IMAGES, "previous") == build_children(good, IMAGES, "previous")
    assert restored.spec.analysis.interval == "5s"  # settings stay the current ones
    assert bad.spec.primary.model.source == "builtin://broken"  # the spec itself is untouched


class _Stored:
    """Stands in for `History`: one stored revision, and the names asked for."""

    def __init__(self, stored: StoredRevision | None) -> None:
        self.stored = stored
        self.asked: list[str] = []

    def get(self, pmd: PizzaModelDeployment, name: str) -> StoredRevision | None:
        self.asked.append(name)
        return self.stored


class TestServingShape:
    def _previous(self, body: dict[str, Any]) -> tuple[PizzaModelDeployment, StoredRevision]:
        good = PizzaModelDeployment.from_body(body)
        hash_ = revision_hash(shaping_spec(good))
        name = revision_name(good, hash_)
        stored = StoredRevision(name, RevisionRef(name, 1, "Good"), hash_, shaping_spec(good))
        body["spec"]["primary"]["model"]["source"] = "builtin://broken"
        body["status"] = {"mode": "previous", "servingRevision": name, "currentRevision": "new"}
        return PizzaModelDeployment.from_body(body), stored

    def test_previous_serves_the_known_good_shape(self, body: dict[str, Any]) -> None:
        pmd, stored = self._previous(body)
        history = _Stored(stored)
        shaped = serving_shape(cast(History, history), pmd, "previous")
        assert shaped.spec.primary.model.source != "builtin://broken"
        assert history.asked == [stored.name]

    def test_other_modes_and_the_current_revision_serve_the_spec(
        self, body: dict[str, Any]
    ) -> None:
        pmd, stored = self._previous(body)
        history = _Stored(stored)
        assert serving_shape(cast(History, history), pmd, "primary") is pmd
        current = pmd.model_copy(
            update={"status": pmd.status.model_copy(update={"current_revision": stored.name})}
        )
        assert serving_shape(cast(History, history), current, "previous") is current
        assert history.asked == []

    def test_a_gone_revision_serves_the_spec(
        self, body: dict[str, Any], caplog: pytest.LogCaptureFixture
    ) -> None:
        pmd, stored = self._previous(body)
        assert serving_shape(cast(History, _Stored(None)), pmd, "previous") is pmd
        assert f"serving revision {stored.name} of pizzas/pizza-classifier is gone" in caplog.text
