"""`onnx.json`: what the `onnx` backend needs to serve an exported classifier without torch.

Written by `pizza_models.export_onnx` beside the `.onnx` files:

    format        "pizza-onnx/1"
    classes       output order of the logits
    input         tensor name, NCHW size, resample filter, mean and std of RGB in [0, 1]
    output        tensor name; the values are logits (the backend applies softmax)
    files         precision -> file name in the folder ("float32", optionally "int8")

Other keys (source weights and their hash, exporter, quantisation) are provenance, kept as read.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pizza_inference.cnn.preprocess import Normalization

FORMAT = "pizza-onnx/1"
INFO_FILE = "onnx.json"
RESAMPLE = "bilinear"
"""The only filter the preprocessing uses (PIL's bilinear, as `images_to_array`)."""


@dataclass(frozen=True)
class OnnxInfo:
    classes: tuple[str, ...]
    input_name: str
    input_size: int
    normalization: Normalization
    output_name: str
    files: dict[str, str]
    """Precision -> file name, relative to the folder."""
    extra: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "format": FORMAT,
            "classes": list(self.classes),
            "input": {
                "name": self.input_name,
                "layout": "NCHW",
                "size": self.input_size,
                "resample": RESAMPLE,
                "scale": "1/255",
                **self.normalization.to_dict(),
            },
            "output": {"name": self.output_name, "values": "logits"},
            "files": dict(self.files),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any], where: str = INFO_FILE) -> OnnxInfo:
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            found = data.get("format") if isinstance(data, dict) else type(data).__name__
            raise ValueError(f"{where} has format {found!r}, expected {FORMAT!r}")
        try:
            inp, out = data["input"], data["output"]
            if inp.get("layout", "NCHW") != "NCHW" or inp.get("resample", RESAMPLE) != RESAMPLE:
                raise ValueError(f"input must be NCHW with {RESAMPLE} resampling, got {inp}")
            if out.get("values", "logits") != "logits":
                raise ValueError(f"output values must be logits, got {out.get('values')!r}")
            files = {str(k): str(v) for k, v in data["files"].items()}
            info = cls(
                classes=tuple(str(c) for c in data["classes"]),
                input_name=str(inp["name"]),
                input_size=int(inp["size"]),
                normalization=Normalization.from_dict(inp),
                output_name=str(out["name"]),
                files=files,
                extra={k: v for k, v in data.items() if k not in _OWN_KEYS},
            )
        except (KeyError, TypeError, AttributeError) as exc:
            raise ValueError(f"{where} is incomplete: {type(exc).__name__}: {exc}") from exc
        if not info.classes or info.input_size <= 0 or not info.files:
            raise ValueError(f"{where} needs classes, a positive input size and files")
        if any("/" in name or name.startswith(".") for name in files.values()):
            raise ValueError(f"{where}: file names must be plain names in the folder: {files}")
        return info


_OWN_KEYS = frozenset({"format", "classes", "input", "output", "files"})


def read_onnx_info(directory: Path) -> OnnxInfo:
    """The `onnx.json` of a folder; `FileNotFoundError` or `ValueError` saying what is wrong."""
    directory = Path(directory)
    path = directory / INFO_FILE
    if not directory.is_dir():
        raise FileNotFoundError(f"ONNX model folder {directory} does not exist")
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} is missing: not an exported ONNX model folder"
            " (python -m pizza_models.export_onnx writes it)"
        )
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not valid JSON: {exc}") from exc
    return OnnxInfo.from_dict(data, where=str(path))


def write_onnx_info(directory: Path, info: OnnxInfo) -> Path:
    path = Path(directory) / INFO_FILE
    path.write_text(json.dumps(info.to_dict(), indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path
