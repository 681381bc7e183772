"""Model backends (`cnn`, `vlm`, `image-classifier` on torch; `onnx` on ONNX Runtime), imported
lazily by kind: only the chosen backend's libraries are imported, so `onnx` runs without torch."""

from __future__ import annotations

from pathlib import Path

from pizza_inference.backends.base import ModelBackend, ModelLoadError

BACKENDS = ("cnn", "vlm", "image-classifier", "onnx")
DEFAULT_MODEL_NAMES = {
    "cnn": "standard-cnn",
    "vlm": "spatial-mllm",
    "image-classifier": "image-classifier",
    "onnx": "onnx-classifier",
}
"""`model_used` names by backend; the first two are the prior system's."""


def create_backend(
    kind: str, path: Path, *, precision: str, device: str = "auto", threads: int | None = None
) -> ModelBackend:
    """A not yet loaded backend of `kind`; only that backend's libraries are imported.

    `threads` sets ONNX Runtime's intra-op threads (the `onnx` backend; None: its default, 1).
    """
    if kind == "cnn":
        from pizza_inference.backends.cnn import CNNBackend  # noqa: PLC0415

        return CNNBackend(path, precision=precision, device=device)
    if kind == "vlm":
        from pizza_inference.backends.vlm import VLMBackend  # noqa: PLC0415

        return VLMBackend(path, precision=precision, device=device)
    if kind == "image-classifier":
        from pizza_inference.backends.image_classifier import ImageClassifierBackend  # noqa: PLC0415

        return ImageClassifierBackend(path, precision=precision, device=device)
    if kind == "onnx":
        from pizza_inference.backends.onnx import OnnxBackend  # noqa: PLC0415

        return OnnxBackend(path, precision=precision, device=device, threads=threads)
    raise ModelLoadError(f"backend must be one of {', '.join(BACKENDS)}, got {kind!r}")


__all__ = ["BACKENDS", "DEFAULT_MODEL_NAMES", "ModelBackend", "ModelLoadError", "create_backend"]
