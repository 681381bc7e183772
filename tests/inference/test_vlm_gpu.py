"""The vlm backend on CUDA (bfloat16, float16, float32 against CPU). Skips without CUDA.

Imports only torch, numpy, PIL and the backend (no server stack), so it also runs on a bare GPU
machine: `PYTHONPATH=inference:. python3 -m pytest --noconftest -m gpu <this file>` or
`PYTHONPATH=inference:. python3 tests/inference/test_vlm_gpu.py`.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.backends.vlm import VLMBackend
from pizza_inference.testing.vlm_checkpoint import save_tiny_qwen25vl


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [Image.fromarray(rng.integers(0, 256, (80, 96, 3), dtype=np.uint8)) for _ in range(n)]


@pytest.mark.gpu
def test_vlm_on_cuda(tmp_path: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    path = save_tiny_qwen25vl(tmp_path / "tiny-qwen2.5-vl")
    cpu = VLMBackend(path, precision="float32", device="cpu")
    cpu.load()
    reference = cpu.predict(images(3))
    for precision, tolerance in (("float32", 1e-3), ("bfloat16", 5e-2), ("float16", 2e-2)):
        backend = VLMBackend(path, precision=precision, device="cuda")
        backend.load()
        assert backend.device == "cuda" and backend._model.dtype == getattr(torch, precision)
        probabilities = backend.predict(images(3))
        assert probabilities.shape == (3, len(CLASSES))
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-3)
        np.testing.assert_allclose(probabilities, reference, atol=tolerance)
        print(precision, "max |cuda - cpu| =", float(np.abs(probabilities - reference).max()))


if __name__ == "__main__":
    with tempfile.TemporaryDirectory() as tmp:
        test_vlm_on_cuda(Path(tmp))
        print("test_vlm_on_cuda passed")
