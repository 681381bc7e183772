"""The shipped `builtin://` weights load and serve (skipped if absent)."""

from __future__ import annotations

import numpy as np
import pytest
from pizza_inference import CLASSES
from pizza_inference.backends import create_backend
from pizza_inference.images import decode_image
from pizza_inference.sources import SourceError, resolve

from tests.support.images import image_bytes

pytestmark = [pytest.mark.unit, pytest.mark.slow]


@pytest.mark.parametrize(
    ("backend", "source", "precision"),
    [
        ("cnn", "builtin://micro-pizza-net", "int8"),
        ("cnn", "builtin://micro-pizza-net", "float32"),
        ("image-classifier", "builtin://pizza-convnext-tiny", "float32"),
        ("onnx", "builtin://micro-pizza-net", "int8"),
        ("onnx", "builtin://micro-pizza-net", "float32"),
        ("onnx", "builtin://pizza-convnext-tiny", "float32"),
    ],
)
def test_builtin_weights_serve(backend: str, source: str, precision: str) -> None:
    try:
        path = resolve(source)
    except SourceError:
        pytest.skip(f"{source} is not shipped in this tree")
    model = create_backend(backend, path, precision=precision, device="cpu")
    model.load()
    assert model.classes == CLASSES
    probabilities = model.predict(
        [decode_image(image_bytes("JPEG", (128, 128), seed=s)) for s in range(3)]
    )
    assert probabilities.shape == (3, len(CLASSES))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-4)
