"""`python -m pizza_models.export_onnx`: the shipped models as ONNX files beside their weights.

    micro-pizza-net/      float32.onnx, int8.onnx (static QDQ INT8), onnx.json
    pizza-convnext-tiny/  model.onnx (float32), onnx.json

The `onnx` backend serves them on ONNX Runtime without torch. Export is torch's `torch.export`
based exporter (`torch.onnx.export(dynamo=True)`, needs onnxscript) with a dynamic batch axis.
MicroPizzaNet's INT8 file is ONNX Runtime's post-training *static* quantisation in QDQ format
(int8 weights per channel, uint8 activations), calibrated with MinMax ranges on images of the
training split, preprocessed as serving preprocesses them. `onnx.json` holds the classes and the
preprocessing (input size, mean, std), so serving needs neither torch nor transformers.
`make models` (`pizza_models.train_all`) runs this after training.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import sys
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime import quantization as ortq
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.backends.onnx_info import OnnxInfo, write_onnx_info
from pizza_inference.cnn.checkpoint import WEIGHT_FILES, load_cnn
from pizza_inference.cnn.preprocess import Normalization, images_to_nchw
from torch import nn

from pizza_models.dataset import load_split
from pizza_models.paths import CNN_DIR, PRIMARY_DIR

log = logging.getLogger(__name__)

EXPORT_COMMAND = "python -m pizza_models.export_onnx  (make models runs it)"
INPUT_NAME, OUTPUT_NAME = "pixel_values", "logits"
CNN_FILES = {"float32": "float32.onnx", "int8": "int8.onnx"}
PRIMARY_FILES = {"float32": "model.onnx"}
CALIBRATION_PER_CLASS = 128
"""768 training images: the torch INT8 model was calibrated on 1024."""
CALIBRATION_BATCH = 64
MAX_FLOAT_DIFFERENCE = 1e-4
"""Largest probability difference torch vs ONNX float32 accepted at export (float rounding)."""


class _Logits(nn.Module):
    """A transformers classifier as pixel_values -> logits (one tensor out)."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.model(pixel_values=pixel_values).logits  # type: ignore[no-any-return]


def sha256(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


QUIET_LOGGERS = {
    "onnxscript": logging.WARNING,
    "onnx_ir": logging.WARNING,
    "torch.onnx": logging.ERROR,
}
"""The exporter's pass-by-pass INFO lines and its notes on torchvision ops we do not use."""


def export_float(model: nn.Module, size: int, path: Path) -> None:
    """`model` (N, 3, size, size) -> (N, classes) as one self-contained ONNX file."""
    for name, level in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(level)
    model.eval()
    example = torch.zeros(2, 3, size, size)
    batch = torch.export.Dim("batch", min=1, max=4096)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(
            model,
            (example,),
            input_names=[INPUT_NAME],
            output_names=[OUTPUT_NAME],
            dynamic_shapes=({0: batch},),
            dynamo=True,
            external_data=False,
            verbose=False,
        )
    if program is None:
        raise RuntimeError("torch.onnx.export returned no program")
    program.save(str(path), external_data=False)
    onnx.checker.check_model(str(path), full_check=True)


class _Calibration(ortq.CalibrationDataReader):  # type: ignore[misc]
    """Preprocessed calibration batches as ONNX Runtime's quantiser reads them."""

    def __init__(self, batches: Sequence[np.ndarray]) -> None:
        self._batches = iter(batches)

    def get_next(self) -> dict[str, np.ndarray] | None:
        batch = next(self._batches, None)
        return None if batch is None else {INPUT_NAME: batch}


def quantize_static_int8(float_path: Path, path: Path, batches: Sequence[np.ndarray]) -> None:
    """Static QDQ INT8 of `float_path`: per-channel int8 weights, uint8 activations, MinMax."""
    with tempfile.TemporaryDirectory() as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        ortq.quant_pre_process(str(float_path), str(prepared), skip_symbolic_shape=True)
        ortq.quantize_static(
            str(prepared),
            str(path),
            _Calibration(batches),
            quant_format=ortq.QuantFormat.QDQ,
            per_channel=True,
            activation_type=ortq.QuantType.QUInt8,
            weight_type=ortq.QuantType.QInt8,
            calibrate_method=ortq.CalibrationMethod.MinMax,
        )
    onnx.checker.check_model(str(path), full_check=True)


def onnx_probabilities(path: Path, batch: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (logits,) = session.run([OUTPUT_NAME], {INPUT_NAME: batch})
    return torch.softmax(torch.from_numpy(logits), dim=1).numpy()


def _check_float(model: nn.Module, path: Path, batch: np.ndarray) -> float:
    """Max probability difference torch vs ONNX on `batch`; raises above MAX_FLOAT_DIFFERENCE."""
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(batch)), dim=1).numpy()
    difference = float(np.abs(onnx_probabilities(path, batch) - expected).max())
    if difference > MAX_FLOAT_DIFFERENCE:
        raise RuntimeError(f"{path}: ONNX differs from torch by {difference:.2e} in probability")
    return difference


def _provenance(source: Path, **more: Any) -> dict[str, Any]:
    return {
        "source": {"file": source.name, "sha256": sha256(source)},
        "exporter": f"torch.onnx.export(dynamo=True), torch {torch.__version__}",
        "onnxruntime_version": ort.__version__,
        "command": EXPORT_COMMAND,
        **more,
    }


def _opset(path: Path) -> int:
    model = onnx.load(str(path), load_external_data=False)
    return next(int(o.version) for o in model.opset_import if o.domain in ("", "ai.onnx"))


def calibration_images(per_class: int = CALIBRATION_PER_CLASS) -> list[Image.Image]:
    """The first `per_class` images of each class of the training split (seed 1001)."""
    return load_split("train", per_class).images


def export_cnn(
    directory: Path = CNN_DIR, calibration: Sequence[Image.Image] | None = None
) -> OnnxInfo:
    """float32.onnx and a static INT8 int8.onnx of the MicroPizzaNet checkpoint in `directory`."""
    checkpoint = load_cnn(directory, "float32")
    images = list(calibration) if calibration is not None else calibration_images()
    size, norm = checkpoint.input_size, checkpoint.normalization
    batches = [
        images_to_nchw(images[i : i + CALIBRATION_BATCH], norm, size)
        for i in range(0, len(images), CALIBRATION_BATCH)
    ]
    float_path, int8_path = directory / CNN_FILES["float32"], directory / CNN_FILES["int8"]
    export_float(checkpoint.model, size, float_path)
    difference = _check_float(checkpoint.model, float_path, batches[0])
    quantize_static_int8(float_path, int8_path, batches)
    agreement = float(
        (
            onnx_probabilities(int8_path, batches[0]).argmax(1)
            == onnx_probabilities(float_path, batches[0]).argmax(1)
        ).mean()
    )
    info = OnnxInfo(
        classes=checkpoint.classes,
        input_name=INPUT_NAME,
        input_size=size,
        normalization=norm,
        output_name=OUTPUT_NAME,
        files=dict(CNN_FILES),
        extra=_provenance(
            directory / WEIGHT_FILES["float32"],
            architecture="MicroPizzaNet",
            opset=_opset(float_path),
            quantization={
                "api": "onnxruntime.quantization.quantize_static",
                "format": "QDQ",
                "weights": "int8, per channel",
                "activations": "uint8",
                "calibration": "MinMax",
                "calibration_images": len(images),
                "calibration_data": "training split (pizza_models.generator, seed 1001)",
            },
            export_check={
                "images": int(batches[0].shape[0]),
                "float32_max_probability_difference_vs_torch": difference,
                "int8_top1_agreement_vs_float32": agreement,
            },
        ),
    )
    write_onnx_info(directory, info)
    log.info(
        "exported %s: float32 %d B, int8 %d B, float32 vs torch max diff %.1e, int8 top-1"
        " agreement %.3f",
        directory.name,
        float_path.stat().st_size,
        int8_path.stat().st_size,
        difference,
        agreement,
    )
    return info


def _primary_normalization(directory: Path) -> tuple[int, Normalization]:
    """Input size and mean/std of the primary's image processor, checked to be what we replay."""
    config = json.loads((directory / "preprocessor_config.json").read_text(encoding="utf-8"))
    size = config.get("size", {})
    replayable = (
        config.get("do_resize") is True
        and config.get("do_rescale") is True
        and config.get("do_normalize") is True
        and config.get("resample") == int(Image.Resampling.BILINEAR)
        and abs(float(config.get("rescale_factor", 0)) - 1 / 255) < 1e-12
        and size.get("height") == size.get("width")
    )
    if not replayable:
        raise ValueError(
            f"{directory}/preprocessor_config.json is not resize (bilinear, square) + rescale"
            f" 1/255 + normalize: {config}"
        )
    norm = Normalization.from_dict({"mean": config["image_mean"], "std": config["image_std"]})
    return int(size["height"]), norm


def export_primary(
    directory: Path = PRIMARY_DIR, check_images: Sequence[Image.Image] | None = None
) -> OnnxInfo:
    """model.onnx (float32) of the transformers image classifier in `directory`."""
    from transformers import AutoModelForImageClassification  # noqa: PLC0415

    model = AutoModelForImageClassification.from_pretrained(directory).eval()
    classes = tuple(str(model.config.id2label[i]) for i in range(len(model.config.id2label)))
    if classes != CLASSES:
        raise ValueError(f"{directory}: id2label {classes} is not {CLASSES}")
    size, norm = _primary_normalization(directory)
    wrapped = _Logits(model).eval()
    path = directory / PRIMARY_FILES["float32"]
    export_float(wrapped, size, path)
    images = list(check_images) if check_images is not None else calibration_images(8)
    batch = images_to_nchw(images[:CALIBRATION_BATCH], norm, size)
    difference = _check_float(wrapped, path, batch)
    weights = sorted(directory.glob("*.safetensors"))
    if len(weights) != 1:
        raise ValueError(f"{directory}: expected one .safetensors file, found {len(weights)}")
    info = OnnxInfo(
        classes=classes,
        input_name=INPUT_NAME,
        input_size=size,
        normalization=norm,
        output_name=OUTPUT_NAME,
        files=dict(PRIMARY_FILES),
        extra=_provenance(
            weights[0],
            architecture=str(model.config.architectures[0]),
            opset=_opset(path),
            preprocessing="replays preprocessor_config.json (resize bilinear, 1/255, mean/std)",
            export_check={
                "images": int(batch.shape[0]),
                "float32_max_probability_difference_vs_torch": difference,
            },
        ),
    )
    write_onnx_info(directory, info)
    log.info(
        "exported %s: model.onnx %d B, max diff vs torch %.1e",
        directory.name,
        path.stat().st_size,
        difference,
    )
    return info


def export_all(
    only: str = "all", calibration: Sequence[Image.Image] | None = None
) -> dict[str, OnnxInfo]:
    """Exports the shipped models (`only`: all, cnn or primary); returns their onnx.json."""
    images = list(calibration) if calibration is not None else calibration_images()
    out: dict[str, OnnxInfo] = {}
    if only in ("all", "cnn"):
        out["cnn"] = export_cnn(CNN_DIR, images)
    if only in ("all", "primary"):
        out["primary"] = export_primary(PRIMARY_DIR, images)
    return out


def calibration_subset(
    images: Sequence[Image.Image], per_class: int = CALIBRATION_PER_CLASS
) -> list[Image.Image]:
    """The first `per_class` of each class from a class-interleaved split (as the generator)."""
    return list(images[: per_class * len(CLASSES)])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pizza_models.export_onnx", description=__doc__)
    parser.add_argument("--only", choices=["all", "cnn", "primary"], default="all")
    parser.add_argument(
        "--calibration-per-class",
        type=int,
        default=CALIBRATION_PER_CLASS,
        help="training images per class to calibrate the INT8 model",
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(1)
    export_all(args.only, calibration_images(args.calibration_per_class))
    return 0


if __name__ == "__main__":
    sys.exit(main())
