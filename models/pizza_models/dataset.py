"""The train / validation / test splits: disjoint seeds of the procedural generator."""

from __future__ import annotations

import multiprocessing
import os
from dataclasses import dataclass

import numpy as np
from PIL import Image

from pizza_models.generator import RENDER_SIZE, samples

SPLIT_SEEDS = {"train": 1001, "val": 2002, "test": 3003}
"""One generator stream per split. The test split is used for reporting only, never for choices."""

FRESH_SEED = 4004
"""A stream no model saw and no choice used: tests check the shipped weights on it."""

DEFAULT_PER_CLASS = {"train": 2500, "val": 250, "test": 500}
"""Images per class in each split as `make models` / `make eval` use them."""

DEFAULT_WORKERS = min(2, os.cpu_count() or 1)


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


def _render_range(job: tuple[int, int, int, int]) -> list[tuple[int, Image.Image]]:
    seed, start, count, size = job
    return list(samples(seed, count, size, start=start))


def render(
    seed: int, per_class: int, size: int = RENDER_SIZE, workers: int = DEFAULT_WORKERS
) -> tuple[list[Image.Image], np.ndarray]:
    """`per_class` images of each class from stream `seed`; the same result for any `workers`."""
    step = max(1, (per_class + 4 * workers - 1) // (4 * workers))
    jobs = [(seed, s, min(step, per_class - s), size) for s in range(0, per_class, step)]
    if workers > 1 and len(jobs) > 1:
        # forkserver, not fork: a fork of a process with threads (a test run's servers, torch's
        # pools) can inherit a held lock and hang for good (seen in CI: a 900 s timeout)
        with multiprocessing.get_context("forkserver").Pool(workers) as pool:
            parts = pool.map(_render_range, jobs)
    else:
        parts = [_render_range(job) for job in jobs]
    pairs = [pair for part in parts for pair in part]
    return [image for _, image in pairs], np.asarray([c for c, _ in pairs], dtype=np.int64)


def load_split(
    name: str, per_class: int | None = None, size: int = RENDER_SIZE, workers: int = DEFAULT_WORKERS
) -> Split:
    """Renders a split in memory (`per_class` images of each class; default as `make models`)."""
    count = DEFAULT_PER_CLASS[name] if per_class is None else per_class
    images, labels = render(split_seed(name), count, size, workers)
    return Split(name=name, images=images, labels=labels)
