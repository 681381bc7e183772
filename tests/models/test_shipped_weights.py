"""The shipped weights load as serving loads them and reproduce the reported test accuracy.

Checked on a fresh sample (a generator stream no model saw and no choice used), 50 per class.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest
import torch
from pizza_inference import CLASSES
from pizza_inference.cnn.checkpoint import load_cnn
from pizza_inference.cnn.preprocess import images_to_tensor
from pizza_inference.cnn.quantize import quantized_module_names
from pizza_models.dataset import FRESH_SEED, SPLIT_SEEDS, render
from pizza_models.paths import CNN_DIR, EVAL_JSON, PRIMARY_DIR
from transformers import AutoImageProcessor, AutoModelForImageClassification

pytestmark = [pytest.mark.unit, pytest.mark.slow]

FRESH_PER_CLASS = 50
TOLERANCE = 0.05  # 300 images: one standard error is about 1.5 points at 90-95% accuracy


@pytest.fixture(scope="module")
def fresh() -> tuple[list[Any], np.ndarray]:
    assert FRESH_SEED not in SPLIT_SEEDS.values()
    return render(FRESH_SEED, FRESH_PER_CLASS)


@pytest.fixture(scope="module")
def reported() -> dict[str, Any]:
    models: dict[str, Any] = json.loads(EVAL_JSON.read_text(encoding="utf-8"))["models"]
    return models


@pytest.mark.parametrize("precision", ["float32", "int8"])
def test_cnn_reproduces_reported_accuracy(
    precision: str, fresh: tuple[list[Any], np.ndarray], reported: dict[str, Any]
) -> None:
    images, labels = fresh
    checkpoint = load_cnn(CNN_DIR, precision)
    assert checkpoint.classes == CLASSES
    x = images_to_tensor(images, checkpoint.normalization, checkpoint.input_size)
    with torch.no_grad():
        probabilities = torch.softmax(checkpoint.model(x), dim=1).numpy()
    accuracy = float((probabilities.argmax(1) == labels).mean())
    assert accuracy == pytest.approx(reported[f"cnn-{precision}"]["accuracy"], abs=TOLERANCE)
    assert len(np.unique(probabilities.max(1).round(4))) > 10  # real, varied confidences


def test_shipped_int8_model_is_quantized() -> None:
    model = load_cnn(CNN_DIR, "int8").model
    assert len(quantized_module_names(model)) == 4
    for name in ("float32.pt", "int8.pt"):
        assert isinstance(torch.load(CNN_DIR / name, weights_only=True), dict)


def test_reported_numbers_meet_the_targets(reported: dict[str, Any]) -> None:
    f32, i8, primary = reported["cnn-float32"], reported["cnn-int8"], reported["primary"]
    assert f32["accuracy"] >= 0.90
    assert i8["accuracy"] >= f32["accuracy"] - 0.02
    assert primary["accuracy"] >= 0.97
    for name in CLASSES:
        assert primary["per_class"][name]["recall"] >= f32["per_class"][name]["recall"]


def test_primary_loads_with_auto_classes_and_reproduces_accuracy(
    fresh: tuple[list[Any], np.ndarray], reported: dict[str, Any]
) -> None:
    images, labels = fresh
    processor = AutoImageProcessor.from_pretrained(PRIMARY_DIR)  # type: ignore[no-untyped-call]
    model = AutoModelForImageClassification.from_pretrained(PRIMARY_DIR).eval()
    assert [model.config.id2label[i] for i in range(len(CLASSES))] == list(CLASSES)
    assert processor.size == {"height": 64, "width": 64}
    assert processor.image_mean != [0.5, 0.5, 0.5]  # the training set's own statistics
    weights = list(PRIMARY_DIR.glob("*.safetensors"))
    assert len(weights) == 1
    assert weights[0].stat().st_size < 10 * 1024 * 1024
    assert not list(PRIMARY_DIR.glob("*.bin"))
    x = processor(images=images, return_tensors="pt")["pixel_values"]
    with torch.no_grad():
        logits = model(pixel_values=x).logits
    accuracy = float((logits.argmax(1).numpy() == labels).mean())
    assert accuracy == pytest.approx(reported["primary"]["accuracy"], abs=TOLERANCE)
