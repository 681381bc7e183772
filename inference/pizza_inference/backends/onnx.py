"""The `onnx` backend: an exported classifier on ONNX Runtime, no torch (the light CPU image).

The folder holds `onnx.json` (classes, input size, mean/std; see `onnx_info`) and one `.onnx`
file per precision: `float32`, and `int8` for MicroPizzaNet's statically quantised model.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from pizza_inference.backends.base import ModelBackend, ModelLoadError, check_probabilities
from pizza_inference.backends.onnx_info import OnnxInfo, read_onnx_info
from pizza_inference.cnn.preprocess import images_to_nchw

ONNX_PRECISIONS = ("float32", "int8")
DEFAULT_THREADS = 1
"""Intra-op threads: the shipped models are small; one thread leaves the rest to the HTTP server."""
CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float64 (stable: the row maximum is subtracted first)."""
    shifted = logits.astype(np.float64) - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)  # type: ignore[no-any-return]


class OnnxBackend(ModelBackend):
    kind = "onnx"

    def __init__(
        self, path: Path, *, precision: str, device: str = "auto", threads: int | None = None
    ) -> None:
        super().__init__(path, precision=precision, device=device)
        self.threads = DEFAULT_THREADS if threads is None else threads
        if self.threads < 1:
            raise ModelLoadError(f"threads must be at least 1, got {self.threads}")
        self._session: Any = None
        self._info: OnnxInfo | None = None

    def _providers(self, available: Sequence[str]) -> list[str]:
        if self.requested_device == "cuda":
            if CUDA not in available:
                raise ModelLoadError(
                    "device cuda requested but this ONNX Runtime has no CUDA provider"
                    f" (available: {', '.join(available)}); use device cpu or auto"
                )
            return [CUDA, CPU]
        if self.requested_device == "auto" and CUDA in available and self.precision == "float32":
            return [CUDA, CPU]
        return [CPU]

    def load(self) -> None:
        import onnxruntime as ort  # noqa: PLC0415

        if self.precision not in ONNX_PRECISIONS:
            raise ModelLoadError(
                f"the onnx backend serves precision float32 or int8, not {self.precision!r}"
            )
        try:
            info = read_onnx_info(self.path)
        except (FileNotFoundError, ValueError) as exc:
            raise ModelLoadError(str(exc)) from exc
        if self.precision not in info.files:
            raise ModelLoadError(
                f"{self.path} has ONNX files for {', '.join(info.files)}, not {self.precision}"
            )
        model_file = self.path / info.files[self.precision]
        if not model_file.is_file():
            raise ModelLoadError(f"{model_file} is missing (listed in onnx.json)")
        options = ort.SessionOptions()
        options.intra_op_num_threads = self.threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # Idle worker threads sleep instead of spinning: the server shares small CPU quotas.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        providers = self._providers(ort.get_available_providers())
        session = ort.InferenceSession(str(model_file), sess_options=options, providers=providers)
        self._check_signature(session, info)
        self._session, self._info = session, info
        self.classes = info.classes
        self.device = "cuda" if session.get_providers()[0] == CUDA else "cpu"
        self._loaded = True

    def _check_signature(self, session: Any, info: OnnxInfo) -> None:
        inputs = {i.name: i.shape for i in session.get_inputs()}
        outputs = {o.name: o.shape for o in session.get_outputs()}
        if list(inputs) != [info.input_name] or info.output_name not in outputs:
            raise ModelLoadError(
                f"{self.path}: the model has inputs {list(inputs)} and outputs {list(outputs)},"
                f" onnx.json names input {info.input_name!r} and output {info.output_name!r}"
            )
        shape, size = inputs[info.input_name], info.input_size
        if len(shape) != 4 or list(shape[1:]) != [3, size, size]:
            raise ModelLoadError(
                f"{self.path}: input shape {shape}, expected [N, 3, {size}, {size}]"
            )
        classes = outputs[info.output_name][-1]
        if isinstance(classes, int) and classes != len(info.classes):
            raise ModelLoadError(
                f"{self.path}: the model outputs {classes} logits, onnx.json lists"
                f" {len(info.classes)} classes"
            )

    @property
    def info(self) -> OnnxInfo:
        if self._info is None:
            raise RuntimeError("model not loaded")
        return self._info

    def predict(self, images: Sequence[Image.Image]) -> np.ndarray:
        info = self.info
        batch = images_to_nchw(images, info.normalization, info.input_size)
        (logits,) = self._session.run([info.output_name], {info.input_name: batch})
        return check_probabilities(softmax(logits), len(images), len(self.classes))

    def describe(self) -> dict[str, str]:
        out = super().describe()
        out["runtime"] = "onnxruntime"
        out["threads"] = str(self.threads)
        if self._info is not None:
            out["file"] = self._info.files[self.precision]
        return out
