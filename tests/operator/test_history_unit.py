"""The revision history's pure parts: what shapes the children, its hash, a revision put back."""

from __future__ import annotations

from typing import Any

import pytest
from pizza_operator.api.v1alpha1 import PizzaModelDeployment
from pizza_operator.builders import build_children
from pizza_operator.history import (
    StoredRevision,
    revision_hash,
    revision_name,
    shaping_spec,
    with_revision,
)
from pizza_operator.rollback import Revision

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
    stored = StoredRevision(
        name=revision_name(good, revision_hash(shaping_spec(good))),
        revision=Revision(1, revision_hash(shaping_spec(good)), "Good"),
        data=shaping_spec(good),
    )
    body["spec"]["primary"]["model"]["source"] = "builtin://broken"
    body["spec"]["analysis"] = {"interval": "5s", "window": "20s"}
    bad = PizzaModelDeployment.from_body(body)
    restored = with_revision(bad, stored)
    assert build_children(restored, IMAGES, "previous") == build_children(good, IMAGES, "previous")
    assert restored.spec.analysis.interval == "5s"  # settings stay the current ones
    assert bad.spec.primary.model.source == "builtin://broken"  # the spec itself is untouched
