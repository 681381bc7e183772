"""The one image preprocessing used by training, evaluation and serving of MicroPizzaNet.

The prior system normalised differently in training and in serving; here every path calls
`images_to_nchw` (torch-free, what the `onnx` backend feeds ONNX Runtime) or `images_to_tensor`
(the same array as a torch tensor) with the `Normalization` saved next to the weights.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

if TYPE_CHECKING:
    import torch

RESAMPLE = Image.Resampling.BILINEAR
"""PIL's bilinear filter (antialiased when downscaling)."""


@dataclass(frozen=True)
class Normalization:
    """Per-channel mean and standard deviation of RGB values scaled to [0, 1]."""

    mean: tuple[float, float, float]
    std: tuple[float, float, float]

    def __post_init__(self) -> None:
        if len(self.mean) != 3 or len(self.std) != 3:
            raise ValueError("normalization needs three means and three standard deviations")
        if any(not s > 0 for s in self.std):
            raise ValueError(f"normalization std must be positive, got {self.std}")

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Normalization:
        try:
            mean = tuple(float(v) for v in data["mean"])
            std = tuple(float(v) for v in data["std"])
        except (KeyError, TypeError, ValueError) as exc:
            raise ValueError(f"invalid normalization {data!r}: {exc}") from exc
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f"invalid normalization {data!r}: need three values each")
        return cls(mean=(mean[0], mean[1], mean[2]), std=(std[0], std[1], std[2]))


def images_to_array(images: Sequence[Image.Image], size: int) -> np.ndarray:
    """RGB-converted, resized images as a (N, size, size, 3) float32 array in [0, 1]."""
    if size <= 0:
        raise ValueError(f"size must be positive, got {size}")
    out = np.empty((len(images), size, size, 3), dtype=np.float32)
    for i, image in enumerate(images):
        rgb = image if image.mode == "RGB" else image.convert("RGB")  # no copy of RGB pixels
        if rgb.size != (size, size):
            rgb = rgb.resize((size, size), RESAMPLE)
        out[i] = np.asarray(rgb, dtype=np.float32) / 255.0
    return out


def compute_normalization(images: Sequence[Image.Image], size: int) -> Normalization:
    """Mean and std per channel over the given images, after the same resize as serving."""
    if not images:
        raise ValueError("cannot compute a normalization from no images")
    pixels = images_to_array(images, size).reshape(-1, 3).astype(np.float64)
    mean = pixels.mean(axis=0)
    std = pixels.std(axis=0)
    return Normalization(
        mean=(float(mean[0]), float(mean[1]), float(mean[2])),
        std=(float(std[0]), float(std[1]), float(std[2])),
    )


def images_to_nchw(images: Sequence[Image.Image], norm: Normalization, size: int) -> np.ndarray:
    """(N, 3, size, size) contiguous float32 array: RGB-converted, resized, normalised."""
    if not images:
        raise ValueError("images_to_nchw needs at least one image")
    array = images_to_array(images, size)
    mean = np.asarray(norm.mean, dtype=np.float32)
    std = np.asarray(norm.std, dtype=np.float32)
    array = (array - mean) / std
    return np.ascontiguousarray(array.transpose(0, 3, 1, 2))


def images_to_tensor(
    images: Sequence[Image.Image], norm: Normalization, size: int = 48
) -> torch.Tensor:
    """`images_to_nchw` as a torch tensor (torch is imported only here)."""
    import torch  # noqa: PLC0415

    if not images:
        raise ValueError("images_to_tensor needs at least one image")
    return torch.from_numpy(images_to_nchw(images, norm, size))
