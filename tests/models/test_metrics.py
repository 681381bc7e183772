"""Evaluation metrics and the confusion-matrix figure."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pizza_models.confusion_png import draw_confusion_matrix
from pizza_models.metrics import (
    classification_report,
    confusion_matrix,
    expected_calibration_error,
)

pytestmark = pytest.mark.unit


def test_confusion_matrix_rows_are_true_classes() -> None:
    matrix = confusion_matrix(np.array([0, 0, 1, 2]), np.array([0, 1, 1, 1]), 3)
    assert matrix.tolist() == [[1, 1, 0], [0, 1, 0], [0, 1, 0]]


def test_ece_is_zero_when_confidence_matches_accuracy() -> None:
    # confidence 0.75 everywhere, three of four right
    probabilities = np.array([[0.75, 0.25]] * 4)
    labels = np.array([0, 0, 0, 1])
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.0)


def test_ece_of_an_overconfident_model() -> None:
    probabilities = np.array([[0.9, 0.1]] * 10)
    labels = np.array([0] * 5 + [1] * 5)  # right half the time at 0.9 confidence
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.4)


def test_ece_weights_bins_by_their_share() -> None:
    probabilities = np.array([[1.0, 0.0], [1.0, 0.0], [0.55, 0.45], [0.55, 0.45]])
    labels = np.array([0, 0, 1, 1])
    # bin at 1.0: gap 0, weight 1/2; bin at 0.55: accuracy 0, gap 0.55, weight 1/2
    assert expected_calibration_error(probabilities, labels) == pytest.approx(0.275)


def test_classification_report_per_class_precision_and_recall() -> None:
    probabilities = np.array([[0.9, 0.1], [0.4, 0.6], [0.2, 0.8], [0.3, 0.7]])
    labels = np.array([0, 0, 1, 1])
    report = classification_report(probabilities, labels, ["a", "b"])
    assert report["accuracy"] == 0.75
    assert report["per_class"]["a"] == {"precision": 1.0, "recall": 0.5, "support": 2}
    assert report["per_class"]["b"]["precision"] == pytest.approx(2 / 3)
    assert report["per_class"]["b"]["recall"] == 1.0
    assert report["confusion_matrix"] == [[1, 1], [0, 2]]


def test_classification_report_checks_shapes() -> None:
    with pytest.raises(ValueError, match="shape"):
        classification_report(np.zeros((3, 2)), np.array([0, 1]), ["a", "b"])


def test_confusion_matrix_png(tmp_path: Path) -> None:
    path = tmp_path / "cm.png"
    draw_confusion_matrix([[5, 1], [0, 6]], ["basic", "burnt"], "test", path)
    with Image.open(path) as image:
        assert image.format == "PNG"
        assert image.width > 100
        assert image.height > 100
