"""The one preprocessing shared by training, evaluation and serving."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from pizza_inference.cnn.preprocess import (
    Normalization,
    compute_normalization,
    images_to_tensor,
)

pytestmark = pytest.mark.unit

IDENTITY = Normalization(mean=(0.0, 0.0, 0.0), std=(1.0, 1.0, 1.0))


def test_shape_dtype_and_rgb_conversion() -> None:
    images = [
        Image.new("RGB", (96, 96), (255, 0, 0)),
        Image.new("L", (30, 50), 128),
        Image.new("RGBA", (64, 64), (0, 0, 255, 10)),
    ]
    tensor = images_to_tensor(images, IDENTITY, size=48)
    assert tensor.shape == (3, 3, 48, 48)
    assert tensor.dtype == torch.float32
    assert torch.allclose(tensor[0, 0], torch.ones(48, 48))
    assert torch.allclose(tensor[0, 1:], torch.zeros(2, 48, 48))
    assert torch.allclose(tensor[1], torch.full((3, 48, 48), 128 / 255))
    assert torch.allclose(tensor[2, 2], torch.ones(48, 48))


def test_normalization_is_applied_per_channel() -> None:
    norm = Normalization(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 2.0))
    tensor = images_to_tensor([Image.new("RGB", (48, 48), (255, 255, 255))], norm)
    assert tensor[0, :, 0, 0].tolist() == pytest.approx([1.0, 3.0, 0.5])


def test_layout_is_channels_first_rows_then_columns() -> None:
    array = np.zeros((48, 48, 3), dtype=np.uint8)
    array[5, 7] = (10, 20, 30)
    tensor = images_to_tensor([Image.fromarray(array)], IDENTITY)
    assert tensor[0, :, 5, 7].tolist() == pytest.approx([10 / 255, 20 / 255, 30 / 255])


def test_compute_normalization_matches_numpy() -> None:
    rng = np.random.default_rng(0)
    images = [Image.fromarray(rng.integers(0, 256, (48, 48, 3), dtype=np.uint8)) for _ in range(4)]
    norm = compute_normalization(images, 48)
    pixels = np.stack([np.asarray(i, dtype=np.float64) / 255 for i in images]).reshape(-1, 3)
    assert norm.mean == pytest.approx(tuple(pixels.mean(axis=0)))
    assert norm.std == pytest.approx(tuple(pixels.std(axis=0)))
    normalized = images_to_tensor(images, norm)
    assert normalized.mean(dim=(0, 2, 3)).tolist() == pytest.approx([0, 0, 0], abs=1e-5)


def test_normalization_round_trips_through_dict() -> None:
    norm = Normalization(mean=(0.1, 0.2, 0.3), std=(0.4, 0.5, 0.6))
    assert Normalization.from_dict(norm.to_dict()) == norm


@pytest.mark.parametrize(
    "data",
    [{"mean": [0.1, 0.2]}, {"mean": [0, 0, 0], "std": [1, 0, 1]}, {"mean": "x", "std": [1, 1, 1]}],
)
def test_bad_normalization_is_rejected(data: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        Normalization.from_dict(data)


def test_empty_input_is_rejected() -> None:
    with pytest.raises(ValueError, match="at least one image"):
        images_to_tensor([], IDENTITY)
