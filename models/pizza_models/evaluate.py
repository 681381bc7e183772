"""`make eval`: the shipped models on the held-out test split, loaded as serving loads them.

Prints accuracy, per-class precision/recall, ECE and latency for MicroPizzaNet float32 and INT8
and for the primary; writes bench/results/model-eval.json, docs/confusion-matrix-*.png and the
MODEL_CARD.md of each shipped folder.
"""

from __future__ import annotations

import argparse
import functools
import json
import logging
import platform
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.cnn.checkpoint import WEIGHT_FILES, load_cnn
from pizza_inference.cnn.preprocess import images_to_tensor
from transformers import AutoImageProcessor, AutoModelForImageClassification

from pizza_models import latency
from pizza_models.confusion_png import draw_confusion_matrix
from pizza_models.dataset import DEFAULT_PER_CLASS, load_split, split_seed
from pizza_models.metrics import classification_report
from pizza_models.model_card import write_model_cards
from pizza_models.paths import CNN_DIR, DOCS_DIR, EVAL_COMMAND, EVAL_JSON, PRIMARY_DIR

log = logging.getLogger(__name__)

Probabilities = Callable[[Sequence[Image.Image]], np.ndarray]
LATENCY_THREADS = 1


def cnn_probabilities(directory: Path, precision: str) -> tuple[Probabilities, Any]:
    checkpoint = load_cnn(directory, precision)

    def run(images: Sequence[Image.Image]) -> np.ndarray:
        x = images_to_tensor(images, checkpoint.normalization, checkpoint.input_size)
        with torch.no_grad():
            return torch.softmax(checkpoint.model(x), dim=1).numpy()

    return run, checkpoint


def primary_probabilities(directory: Path) -> tuple[Probabilities, Any, Any]:
    processor = AutoImageProcessor.from_pretrained(directory)  # type: ignore[no-untyped-call]
    model = AutoModelForImageClassification.from_pretrained(directory).eval()
    labels = [model.config.id2label[i] for i in range(len(CLASSES))]
    if tuple(labels) != CLASSES:
        raise ValueError(f"{directory}: id2label {labels} is not {list(CLASSES)}")

    def run(images: Sequence[Image.Image]) -> np.ndarray:
        x = processor(images=list(images), return_tensors="pt")["pixel_values"]
        with torch.no_grad():
            return torch.softmax(model(pixel_values=x).logits, dim=1).numpy()

    return run, model, processor


def predict_all(run: Probabilities, images: Sequence[Image.Image], chunk: int = 500) -> np.ndarray:
    return np.concatenate([run(images[i : i + chunk]) for i in range(0, len(images), chunk)])


def _latency(
    run: Probabilities, forward: Callable[[], Any], image: Image.Image, runs: int
) -> dict[str, Any]:
    """Batch 1, one thread: PIL image in, probabilities out; and the model's forward alone."""
    threads = torch.get_num_threads()
    torch.set_num_threads(LATENCY_THREADS)
    try:
        with torch.no_grad():
            forward_only = latency.measure(forward, runs=runs)
        result = latency.measure(lambda: run([image]), runs=runs)
    finally:
        torch.set_num_threads(threads)
    return {
        **result,
        "forward_only": forward_only,
        "threads": LATENCY_THREADS,
        "batch": 1,
        "includes": "preprocess + forward + softmax",
    }


def _size(paths: Sequence[Path]) -> int:
    return sum(p.stat().st_size for p in paths)


def evaluate(per_class: int, latency_runs: int, write: bool = True) -> dict[str, Any]:
    start = time.perf_counter()
    test = load_split("test", per_class)
    log.info("test split rendered: %d images (seed %d)", len(test.images), split_seed("test"))
    models: dict[str, dict[str, Any]] = {}
    cnn_metadata: dict[str, Any] = {}
    for precision in ("float32", "int8"):
        run, checkpoint = cnn_probabilities(CNN_DIR, precision)
        cnn_metadata = checkpoint.metadata
        report = classification_report(predict_all(run, test.images), test.labels, CLASSES)
        x1 = images_to_tensor(test.images[:1], checkpoint.normalization, checkpoint.input_size)
        forward = functools.partial(checkpoint.model, x1)
        report["latency"] = _latency(run, forward, test.images[0], latency_runs)
        report["weights_bytes"] = _size([CNN_DIR / WEIGHT_FILES[precision]])
        models[f"cnn-{precision}"] = report
    primary, primary_model, processor = primary_probabilities(PRIMARY_DIR)
    report = classification_report(predict_all(primary, test.images), test.labels, CLASSES)
    p1 = processor(images=test.images[:1], return_tensors="pt")["pixel_values"]
    report["latency"] = _latency(
        primary,
        lambda: primary_model(pixel_values=p1),
        test.images[0],
        max(latency_runs // 4, 20),
    )
    report["weights_bytes"] = _size(list(PRIMARY_DIR.glob("*.safetensors")))
    models["primary"] = report
    results = {
        "command": EVAL_COMMAND,
        "split": {"name": "test", "seed": split_seed("test"), "per_class": per_class},
        "classes": list(CLASSES),
        "models": models,
        "primary_name": PRIMARY_DIR.name,
        "training": {
            "cnn": cnn_metadata.get("training", {}),
            "primary": _read_json(PRIMARY_DIR / "training.json"),
        },
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "quantized_engine": torch.backends.quantized.engine,
        },
        "seconds": round(time.perf_counter() - start, 1),
    }
    if write:
        EVAL_JSON.parent.mkdir(parents=True, exist_ok=True)
        EVAL_JSON.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
        for name, model_report in models.items():
            draw_confusion_matrix(
                model_report["confusion_matrix"],
                CLASSES,
                f"{name}: test split, accuracy {model_report['accuracy']:.3f}",
                DOCS_DIR / f"confusion-matrix-{name}.png",
            )
        write_model_cards(results)
    return results


def _read_json(path: Path) -> dict[str, Any]:
    if not path.is_file():
        return {}
    data = json.loads(path.read_text(encoding="utf-8"))
    return data if isinstance(data, dict) else {}


def format_results(results: dict[str, Any]) -> str:
    lines = [
        f"test split: seed {results['split']['seed']}, {results['split']['per_class']} per class",
        f"{'model':<14}{'accuracy':>9}{'ECE':>8}{'p50 ms':>9}{'fwd ms':>9}{'size KB':>9}",
    ]
    for name, report in results["models"].items():
        lines.append(
            f"{name:<14}{report['accuracy']:>9.4f}{report['ece']:>8.4f}"
            f"{report['latency']['p50_ms']:>9.3f}"
            f"{report['latency']['forward_only']['p50_ms']:>9.3f}"
            f"{report['weights_bytes'] / 1024:>9.1f}"
        )
    lines.append("")
    lines.append(f"{'recall / precision':<20}" + "".join(f"{n:>16}" for n in results["models"]))
    for name in results["classes"]:
        cells = "".join(
            f"{r['per_class'][name]['recall']:>8.3f}{r['per_class'][name]['precision']:>8.3f}"
            for r in results["models"].values()
        )
        lines.append(f"{name:<20}{cells}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pizza_models.evaluate", description=__doc__)
    parser.add_argument("--per-class", type=int, default=DEFAULT_PER_CLASS["test"])
    parser.add_argument("--latency-runs", type=int, default=400)
    parser.add_argument("--no-write", action="store_true", help="print only")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    torch.set_num_threads(2)
    results = evaluate(args.per_class, args.latency_runs, write=not args.no_write)
    print(format_results(results))
    if not args.no_write:
        print(f"wrote {EVAL_JSON}, docs/confusion-matrix-*.png and the MODEL_CARD.md files")
    return 0


if __name__ == "__main__":
    sys.exit(main())
