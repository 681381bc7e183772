"""The training code runs end to end on a tiny sample (the real run is `make models`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from pizza_inference.cnn.quantize import quantized_module_names
from pizza_models.dataset import Split, render
from pizza_models.train_cnn import CNNTrainConfig, fit_temperature, train_micro_pizza_net
from pizza_models.train_primary import PrimaryTrainConfig, train_primary
from transformers import AutoImageProcessor

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def tiny() -> Split:
    images, labels = render(99, 4, workers=1)
    return Split("tiny", images, labels)


def test_fit_temperature_cools_an_overconfident_model() -> None:
    labels = torch.tensor([0, 1] * 50)
    logits = torch.zeros(100, 2)
    logits[:, 0] = 5.0  # always says class 0 with ~99% confidence, right half the time
    assert fit_temperature(logits, labels) > 3.0


@pytest.mark.slow
def test_cnn_training_gives_float_and_int8_models(tiny: Split) -> None:
    result = train_micro_pizza_net(tiny, tiny, CNNTrainConfig(epochs=2, calibration_images=16))
    assert len(result.history) == 2
    assert quantized_module_names(result.int8_model)
    assert not quantized_module_names(result.model)
    assert all(s > 0 for s in result.normalization.std)


@pytest.mark.slow
def test_primary_training_saves_a_loadable_processor(tiny: Split, tmp_path: Path) -> None:
    config = PrimaryTrainConfig(epochs=1, hidden_sizes=(8, 16, 32, 64))
    result = train_primary(tiny, tiny, config, tmp_path)
    processor = AutoImageProcessor.from_pretrained(tmp_path)  # type: ignore[no-untyped-call]
    assert processor.image_mean == result.processor.image_mean
    id2label: Any = result.model.config.id2label
    assert id2label[0] == "basic"
