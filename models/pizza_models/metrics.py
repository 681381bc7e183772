"""Classification metrics from real softmax outputs: accuracy, per-class precision/recall,
confusion matrix, expected calibration error."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

ECE_BINS = 15


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Rows: true class, columns: predicted class."""
    matrix = np.zeros((num_classes, num_classes), dtype=np.int64)
    np.add.at(matrix, (labels, predictions), 1)
    return matrix


def expected_calibration_error(
    probabilities: np.ndarray, labels: np.ndarray, bins: int = ECE_BINS
) -> float:
    """Top-label ECE: sum over equal-width confidence bins of |accuracy - confidence| * weight."""
    if len(labels) == 0:
        raise ValueError("ECE of an empty set is undefined")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == labels
    edges = np.linspace(0.0, 1.0, bins + 1)
    # bin i holds confidences in (edges[i], edges[i + 1]]; confidence 0 joins the first bin
    index = np.clip(np.searchsorted(edges, confidence, side="left") - 1, 0, bins - 1)
    ece = 0.0
    for b in range(bins):
        in_bin = index == b
        if in_bin.any():
            gap = abs(float(correct[in_bin].mean()) - float(confidence[in_bin].mean()))
            ece += gap * float(in_bin.mean())
    return ece


def classification_report(
    probabilities: np.ndarray, labels: np.ndarray, classes: Sequence[str]
) -> dict[str, Any]:
    """Everything `make eval` reports for one model, as plain JSON-able values."""
    if probabilities.shape != (len(labels), len(classes)):
        expected = (len(labels), len(classes))
        raise ValueError(f"probabilities have shape {probabilities.shape}, expected {expected}")
    predictions = probabilities.argmax(axis=1)
    matrix = confusion_matrix(labels, predictions, len(classes))
    per_class: dict[str, dict[str, float | int]] = {}
    for i, name in enumerate(classes):
        predicted = int(matrix[:, i].sum())
        actual = int(matrix[i, :].sum())
        per_class[name] = {
            "precision": float(matrix[i, i] / predicted) if predicted else 0.0,
            "recall": float(matrix[i, i] / actual) if actual else 0.0,
            "support": actual,
        }
    return {
        "samples": len(labels),
        "accuracy": float((predictions == labels).mean()),
        "per_class": per_class,
        "confusion_matrix": matrix.tolist(),
        "ece": expected_calibration_error(probabilities, labels),
        "mean_confidence": float(probabilities.max(axis=1).mean()),
    }
