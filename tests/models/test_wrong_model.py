"""The test-only wrong model (tests/models/wrong-pizza-net, `pizza_models.wrong_model`): loaded by
the `onnx` backend as serving loads it, it answers a wrong class on every fresh image, with the
source model's (high) confidence, and almost never the stable primary's class either."""

from __future__ import annotations

from typing import Any

import numpy as np
import onnx
import pytest
from pizza_inference.backends.onnx import OnnxBackend
from pizza_inference.backends.onnx_info import read_onnx_info
from pizza_models.dataset import FRESH_SEED, SPLIT_SEEDS, render
from pizza_models.paths import CNN_DIR, PRIMARY_DIR
from pizza_models.wrong_model import (
    OUT_DIR,
    agreements,
    build,
    choose_derangement,
    derangements,
    differences,
    permute_head,
)

pytestmark = pytest.mark.unit

PER_CLASS = 50
MIN_MEAN_CONFIDENCE = 0.9
"""MicroPizzaNet's mean confidence on the test split is 0.958 (docs/models.md)."""
MAX_PRIMARY_AGREEMENT = 0.02
"""Bounded by MicroPizzaNet's disagreement with the primary (about 6%); the chosen derangement
avoids its common confusions, so a canary gate at any sane threshold (0.5 and up) fails."""


def _served(path: Any) -> OnnxBackend:
    backend = OnnxBackend(path, precision="float32", device="cpu")
    backend.load()
    return backend


@pytest.fixture(scope="module")
def answers() -> dict[str, np.ndarray]:
    assert FRESH_SEED not in SPLIT_SEEDS.values()  # not the stream the derangement was chosen on
    images, labels = render(FRESH_SEED, PER_CLASS)
    return {
        "wrong": _served(OUT_DIR).predict(images),
        "source": _served(CNN_DIR).predict(images),
        "primary": _served(PRIMARY_DIR).predict(images),
        "labels": labels,
    }


class TestServedModel:
    def test_every_answer_differs_from_the_source(self, answers: dict[str, np.ndarray]) -> None:
        wrong, source = answers["wrong"].argmax(axis=1), answers["source"].argmax(axis=1)
        assert len(wrong) == 6 * PER_CLASS
        assert not np.any(wrong == source), np.flatnonzero(wrong == source)

    def test_answers_follow_the_recorded_derangement(self, answers: dict[str, np.ndarray]) -> None:
        perm = read_onnx_info(OUT_DIR).extra["derangement"]["perm"]
        wrong, source = answers["wrong"].argmax(axis=1), answers["source"].argmax(axis=1)
        assert np.array_equal(np.asarray(perm)[wrong], source)

    def test_confidence_is_the_sources_and_high(self, answers: dict[str, np.ndarray]) -> None:
        wrong, source = answers["wrong"].max(axis=1), answers["source"].max(axis=1)
        np.testing.assert_allclose(wrong, source, atol=1e-6)
        assert wrong.mean() >= MIN_MEAN_CONFIDENCE, wrong.mean()

    def test_it_is_almost_never_right_nor_the_primarys_answer(
        self, answers: dict[str, np.ndarray]
    ) -> None:
        wrong = answers["wrong"].argmax(axis=1)
        primary = answers["primary"].argmax(axis=1)
        assert np.mean(wrong == primary) <= MAX_PRIMARY_AGREEMENT
        assert np.mean(wrong == answers["labels"]) <= MAX_PRIMARY_AGREEMENT
        assert np.mean(primary == answers["labels"]) >= 0.95  # the comparison is meaningful

    def test_metadata_says_test_only(self) -> None:
        info = read_onnx_info(OUT_DIR)
        assert info.extra["test_only"] is True
        assert info.files == {"float32": "float32.onnx"}
        model = onnx.load(str(OUT_DIR / "float32.onnx"))
        assert {p.key: p.value for p in model.metadata_props}["pizza.test_only"] == "true"


class TestDerangement:
    def test_derangements_of_six_have_no_fixed_point(self) -> None:
        found = derangements(6)
        assert len(found) == 265  # !6
        assert all(p[i] != i for p in found for i in range(6))

    def test_agreements_count_where_the_permuted_answer_is_the_others(self) -> None:
        source, other = np.array([0, 1, 2]), np.array([1, 1, 0])
        # perm (1, 2, 0): the source's 0 becomes 2, 1 becomes 0, 2 becomes 1
        assert agreements((1, 2, 0), source, other) == 0
        # perm (2, 0, 1): the source's 0 becomes 1 and its 2 becomes 0, as the other says
        assert agreements((2, 0, 1), source, other) == 2

    def test_the_choice_avoids_the_others_classes(self) -> None:
        # the source says 0 where the other says 1 (twice): (2, 0, 1) sends 0 to 1 and loses
        source, other = np.array([0, 0, 1, 2]), np.array([1, 1, 1, 2])
        assert agreements((2, 0, 1), source, other) == 2
        perm = choose_derangement(source, other, 3)
        assert agreements(perm, source, other) == 0
        assert perm == (1, 2, 0)

    def test_permute_head_moves_the_logits(self) -> None:
        model = onnx.load(str(CNN_DIR / "float32.onnx"))
        with pytest.raises(ValueError, match="rows"):
            permute_head(model, (1, 0))
        model.graph.node[-1].op_type = "MatMul"
        with pytest.raises(ValueError, match="Gemm"):
            permute_head(model, (1, 0, 3, 4, 5, 2))


@pytest.mark.slow
def test_the_committed_files_are_what_the_script_writes(tmp_path: Any) -> None:
    build(tmp_path)
    assert differences(tmp_path, OUT_DIR) == []
