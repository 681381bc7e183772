"""The procedural pizza generator and the `pizza-data` command."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pizza_inference import CLASSES
from pizza_models.cli import main as pizza_data
from pizza_models.dataset import SPLIT_SEEDS, render
from pizza_models.generator import RENDER_SIZE, image_rng, samples
from pizza_models.generator import render as render_one

pytestmark = pytest.mark.unit


def _digest(images: list[Image.Image]) -> str:
    h = hashlib.sha256()
    for image in images:
        h.update(image.tobytes())
    return h.hexdigest()


def test_same_seed_gives_the_same_bytes() -> None:
    first = [image for _, image in samples(7, 2)]
    second = [image for _, image in samples(7, 2)]
    assert _digest(first) == _digest(second)


def test_another_seed_gives_other_images() -> None:
    a = [image for _, image in samples(7, 1)]
    b = [image for _, image in samples(8, 1)]
    for x, y in zip(a, b, strict=True):
        assert x.tobytes() != y.tobytes()


def test_every_class_in_order_as_rgb_at_render_size() -> None:
    pairs = list(samples(0, 2))
    assert [label for label, _ in pairs] == list(range(len(CLASSES))) * 2
    for _, image in pairs:
        assert image.mode == "RGB"
        assert image.size == (RENDER_SIZE, RENDER_SIZE)
        pixels = np.asarray(image)
        assert pixels.std() > 10  # not a blank picture


def test_images_depend_only_on_seed_class_and_index() -> None:
    late = [image for _, image in samples(5, 1, start=3)]
    direct = [render_one(name, image_rng(5, i, 3)) for i, name in enumerate(CLASSES)]
    assert _digest(late) == _digest(direct)


def test_parallel_rendering_gives_the_same_split() -> None:
    one_images, one_labels = render(11, 3, workers=1)
    two_images, two_labels = render(11, 3, workers=2)
    assert _digest(one_images) == _digest(two_images)
    assert one_labels.tolist() == two_labels.tolist()


def test_split_seeds_are_disjoint() -> None:
    assert len(set(SPLIT_SEEDS.values())) == len(SPLIT_SEEDS)


def test_unknown_class_and_tiny_size_are_rejected() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="unknown class"):
        render_one("hawaii", rng)
    with pytest.raises(ValueError, match="at least 32"):
        render_one("basic", rng, size=8)


def test_pizza_data_generate_writes_one_folder_per_class(tmp_path: Path) -> None:
    assert pizza_data(["generate", "--seed", "3", "--count", "2", "--out", str(tmp_path)]) == 0
    for index, name in enumerate(CLASSES):
        files = sorted((tmp_path / name).glob("*.png"))
        assert [f.name for f in files] == ["0000.png", "0001.png"]
        with Image.open(files[1]) as image:
            expected = render_one(name, image_rng(3, index, 1))
            assert image.tobytes() == expected.tobytes()


def test_pizza_data_rejects_a_bad_count(tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exc:
        pizza_data(["generate", "--seed", "3", "--count", "0", "--out", str(tmp_path)])
    assert exc.value.code == 2
