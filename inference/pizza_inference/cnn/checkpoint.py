"""Saving and loading MicroPizzaNet weights (float32 and INT8) with their normalisation.

Layout of a checkpoint folder (no pickled modules; `torch.load(weights_only=True)` reads it):

    checkpoint.json   classes, normalisation, input size, quantisation engine, training metadata
    float32.pt        state dict of MicroPizzaNet
    int8.pt           state dict of the quantised QuantizableMicroPizzaNet (optional)
"""

from __future__ import annotations

import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from pizza_inference import CLASSES
from pizza_inference.cnn.micro_pizza_net import INPUT_SIZE, MicroPizzaNet
from pizza_inference.cnn.preprocess import Normalization
from pizza_inference.cnn.quantize import (
    int8_skeleton,
    quantize_int8,
    quantized_engine,
    quantized_module_names,
)

FORMAT = "pizza-cnn/1"
METADATA_FILE = "checkpoint.json"
WEIGHT_FILES = {"float32": "float32.pt", "int8": "int8.pt"}
PRECISIONS = tuple(WEIGHT_FILES)


@dataclass
class CNNCheckpoint:
    """A loaded MicroPizzaNet, ready for `model(images_to_tensor(...))`."""

    model: nn.Module
    precision: str
    normalization: Normalization
    classes: tuple[str, ...]
    metadata: dict[str, Any] = field(default_factory=dict)

    @property
    def input_size(self) -> int:
        return int(self.metadata.get("input_size", INPUT_SIZE))


def save_cnn(
    directory: Path,
    float_model: MicroPizzaNet,
    normalization: Normalization,
    int8_model: nn.Module | None,
    metadata: dict[str, Any],
) -> None:
    """Writes the float (and INT8, when given) state dicts and checkpoint.json into `directory`."""
    if int8_model is not None and not quantized_module_names(int8_model):
        raise ValueError("int8_model holds no quantized modules; build it with quantize_int8")
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    torch.save(float_model.state_dict(), directory / WEIGHT_FILES["float32"])
    precisions = ["float32"]
    if int8_model is not None:
        torch.save(int8_model.state_dict(), directory / WEIGHT_FILES["int8"])
        precisions.append("int8")
    else:
        (directory / WEIGHT_FILES["int8"]).unlink(missing_ok=True)
    document = {
        **metadata,
        "format": FORMAT,
        "architecture": "MicroPizzaNet",
        "classes": list(CLASSES),
        "input_size": INPUT_SIZE,
        "normalization": normalization.to_dict(),
        "precisions": precisions,
        "quantization": {
            "api": "torch.ao.quantization eager post-training static",
            "engine": quantized_engine(),
        },
        "torch_version": torch.__version__,
    }
    text = json.dumps(document, indent=2, sort_keys=True) + "\n"
    (directory / METADATA_FILE).write_text(text, encoding="utf-8")


def read_metadata(directory: Path) -> dict[str, Any]:
    """checkpoint.json of a checkpoint folder, checked for format."""
    path = Path(directory) / METADATA_FILE
    if not Path(directory).is_dir():
        raise FileNotFoundError(f"CNN checkpoint folder {directory} does not exist")
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing: not a MicroPizzaNet checkpoint folder")
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise ValueError(f"{path} has format {document.get('format')!r}, expected {FORMAT!r}")
    return document


def load_cnn(directory: Path, precision: str) -> CNNCheckpoint:
    """Loads the MicroPizzaNet in `directory` at `precision` ("float32" or "int8"), in eval mode."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    directory = Path(directory)
    metadata = read_metadata(directory)
    weights = directory / WEIGHT_FILES[precision]
    if not weights.is_file():
        raise FileNotFoundError(f"{weights} is missing: this checkpoint has no {precision} weights")
    classes = tuple(str(c) for c in metadata["classes"])
    normalization = Normalization.from_dict(metadata["normalization"])
    if precision == "int8" and len(classes) != len(CLASSES):
        raise ValueError(
            f"{directory}: INT8 MicroPizzaNet has {len(CLASSES)} classes, "
            f"checkpoint.json lists {len(classes)}"
        )
    model: nn.Module
    with warnings.catch_warnings():
        # Rebuilding quantized tensors goes through deprecated TypedStorage and qint8 creation
        # internally (docs/models.md says why we still use this path).
        warnings.filterwarnings("ignore", message=r".*TypedStorage is deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        state = torch.load(weights, map_location="cpu", weights_only=True)
        model = (
            MicroPizzaNet(num_classes=len(classes)) if precision == "float32" else int8_skeleton()
        )
        model.load_state_dict(state)
    model.eval()
    return CNNCheckpoint(
        model=model,
        precision=precision,
        normalization=normalization,
        classes=classes,
        metadata=metadata,
    )


def make_random_checkpoint(directory: Path, seed: int = 0) -> Path:
    """A random-weight MicroPizzaNet checkpoint, both precisions, for tests of the serving side.

    Deterministic for a seed; it predicts nothing meaningful (its metadata says so).
    """
    generator = torch.Generator().manual_seed(seed)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = MicroPizzaNet().eval()
    shape = (16, 3, INPUT_SIZE, INPUT_SIZE)
    calibration = [torch.randn(shape, generator=generator) for _ in range(4)]
    int8_model = quantize_int8(model, calibration)
    normalization = Normalization(mean=(0.5, 0.5, 0.5), std=(0.25, 0.25, 0.25))
    metadata = {"random_weights": True, "seed": seed, "note": "random weights, for tests only"}
    save_cnn(Path(directory), model, normalization, int8_model, metadata)
    return Path(directory)
