"""The train / validation / test splits: disjoint seeds of the procedural generator."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from PIL import Image

from pizza_models.generator import RENDER_SIZE, samples

SPLIT_SEEDS = {"train": 1001, "val": 2002, "test": 3003}
"""One generator stream per split. The test split is used for reporting only, never for choices."""

DEFAULT_PER_CLASS = {"train": 2500, "val": 250, "test": 500}
"""Images per class in each split as `make models` / `make eval` use them."""


@dataclass
class Split:
    name: str
    images: list[Image.Image]
    labels: np.ndarray  # int64 class indices into pizza_inference.CLASSES


def split_seed(name: str) -> int:
    try:
        return SPLIT_SEEDS[name]
    except KeyError:
        raise ValueError(f"unknown split {name!r}; splits are {', '.join(SPLIT_SEEDS)}") from None


def load_split(name: str, per_class: int | None = None, size: int = RENDER_SIZE) -> Split:
    """Renders a split in memory (`per_class` images of each class; default as `make models`)."""
    count = DEFAULT_PER_CLASS[name] if per_class is None else per_class
    images: list[Image.Image] = []
    labels: list[int] = []
    for label, image in samples(split_seed(name), count, size):
        images.append(image)
        labels.append(label)
    return Split(name=name, images=images, labels=np.asarray(labels, dtype=np.int64))
