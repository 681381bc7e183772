"""MODEL_CARD.md of each shipped weights folder, written from measured evaluation results."""

from __future__ import annotations

from typing import Any

from pizza_models.dataset import DEFAULT_PER_CLASS, SPLIT_SEEDS
from pizza_models.paths import CNN_DIR, EVAL_COMMAND, PRIMARY_DIR, TRAIN_COMMAND

DATA = (
    "Procedural images from `pizza_models.generator` (numpy + PIL, no real photographs), drawn "
    "at 96x96 and downscaled by each model's own preprocessing. Splits come from disjoint "
    f"generator streams: train seed {SPLIT_SEEDS['train']} ({DEFAULT_PER_CLASS['train']} per "
    f"class), validation seed {SPLIT_SEEDS['val']} ({DEFAULT_PER_CLASS['val']} per class, used for "
    "choosing the epoch and the softmax temperature), test seed "
    f"{SPLIT_SEEDS['test']} (reporting only). Class definitions: `docs/pizza-classes.md`."
)

LIMITS = (
    "Trained on synthetic images only: these numbers say how well the model separates the "
    "generator's six classes, not how it does on photographs of real pizzas."
)


def _metrics_table(report: dict[str, Any]) -> list[str]:
    lines = ["| class | precision | recall | support |", "|---|---|---|---|"]
    for name, row in report["per_class"].items():
        lines.append(
            f"| {name} | {row['precision']:.3f} | {row['recall']:.3f} | {row['support']} |"
        )
    return lines


def _latency_line(report: dict[str, Any]) -> str:
    lat = report["latency"]
    return (
        f"p50 {lat['p50_ms']:.3f} ms, p90 {lat['p90_ms']:.3f} ms ({lat['includes']}); forward "
        f"alone p50 {lat['forward_only']['p50_ms']:.3f} ms (batch 1, {lat['threads']} thread, "
        f"{lat['runs']} runs, in-process)"
    )


def _summary(report: dict[str, Any]) -> str:
    return (
        f"accuracy **{report['accuracy']:.4f}** on {report['samples']} test images, "
        f"expected calibration error {report['ece']:.4f} (15 bins)"
    )


def cnn_card(results: dict[str, Any]) -> str:
    f32, i8 = results["models"]["cnn-float32"], results["models"]["cnn-int8"]
    training = results["training"]["cnn"]
    machine = results["machine"]
    lines = [
        "# MicroPizzaNet (CPU fallback): float32 and INT8",
        "",
        "48x48 RGB -> logits over `basic, burnt, combined, mixed, progression, segment` "
        "(architecture: `pizza_inference/cnn/micro_pizza_net.py`, about 600 parameters). "
        "Load with `pizza_inference.cnn.checkpoint.load_cnn(path, 'float32' | 'int8')`; "
        "preprocess with `pizza_inference.cnn.preprocess.images_to_tensor` and the normalisation "
        "stored in `checkpoint.json` (mean/std of the training set).",
        "",
        "## Data",
        DATA,
        "",
        "## Training",
        f"- command: `{TRAIN_COMMAND}`",
        f"- {training.get('epochs', '?')} epochs, AdamW + one-cycle, batch "
        f"{training.get('batch_size', '?')}, flips/quarter turns; best validation epoch "
        f"{training.get('best_epoch', '?')} (validation accuracy "
        f"{training.get('val_accuracy', float('nan')):.4f}); softmax temperature "
        f"{training.get('temperature', float('nan')):.3f} fitted on validation and folded into "
        "the last layer",
        f"- training time {training.get('training_seconds', '?')} s on CPU with "
        f"{training.get('threads', '?')} torch thread(s) (data rendering "
        f"{training.get('data_seconds', '?')} s more)",
        "- INT8: post-training static quantisation, eager `torch.ao.quantization`, engine "
        f"`{machine['quantized_engine']}`, per-channel weights, calibrated on "
        f"{training.get('calibration_images', '?')} training images (why this API: "
        "`docs/models.md`)",
        "",
        f"## Test split ({EVAL_COMMAND})",
        f"- float32: {_summary(f32)}",
        f"- int8: {_summary(i8)}",
        "",
        "float32:",
        "",
        *_metrics_table(f32),
        "",
        "int8:",
        "",
        *_metrics_table(i8),
        "",
        "## Size and latency (measured)",
        f"- `float32.pt` {f32['weights_bytes']} bytes, `int8.pt` {i8['weights_bytes']} bytes "
        "(state dicts; most of each file is serialisation overhead for ~600 parameters)",
        f"- float32: {_latency_line(f32)}",
        f"- int8: {_latency_line(i8)}",
        f"- machine: {machine['processor']}, torch {machine['torch']}",
        "",
        "## Limits",
        LIMITS,
        "",
    ]
    return "\n".join(lines)


def primary_card(results: dict[str, Any]) -> str:
    report = results["models"]["primary"]
    cnn = results["models"]["cnn-float32"]
    training = results["training"]["primary"]
    machine = results["machine"]
    better = all(
        report["per_class"][c]["recall"] >= cnn["per_class"][c]["recall"]
        for c in results["classes"]
    )
    lines = [
        f"# {PRIMARY_DIR.name}: the image-classifier primary",
        "",
        "A small ConvNeXt (`transformers.ConvNextForImageClassification`, hidden sizes "
        f"{training.get('hidden_sizes', '?')}, depths {training.get('depths', '?')}, "
        f"{training.get('parameters', '?')} parameters) trained from scratch here, 64x64 input. "
        "Load with `AutoModelForImageClassification.from_pretrained(dir)` and "
        "`AutoImageProcessor.from_pretrained(dir)` (resize to 64x64, rescale, normalise with "
        "the training set's mean/std: the same processor produced the training tensors). "
        "`id2label` is the six classes in order. Served as `builtin://" + PRIMARY_DIR.name + "`.",
        "",
        "## Data",
        DATA,
        "",
        "## Training",
        f"- command: `{TRAIN_COMMAND}`",
        f"- {training.get('epochs', '?')} epochs, AdamW + one-cycle, batch "
        f"{training.get('batch_size', '?')}, flips/quarter turns; best validation epoch "
        f"{training.get('best_epoch', '?')} (validation accuracy "
        f"{training.get('val_accuracy', float('nan')):.4f}); softmax temperature "
        f"{training.get('temperature', float('nan')):.3f} fitted on validation and folded into "
        "the classifier",
        f"- trained on the first {training.get('train_per_class', '?')} training images of "
        "each class",
        f"- training time {training.get('training_seconds', '?')} s on CPU with "
        f"{training.get('threads', '?')} torch thread(s)",
        "",
        f"## Test split ({EVAL_COMMAND})",
        f"- {_summary(report)}",
        f"- per-class recall at least MicroPizzaNet float32's on every class: {better}",
        "",
        *_metrics_table(report),
        "",
        "## Size and latency (measured)",
        f"- `model.safetensors` {report['weights_bytes']} bytes (float32)",
        f"- CPU: {_latency_line(report)}",
        f"- machine: {machine['processor']}, torch {machine['torch']}",
        "",
        "## Limits",
        LIMITS,
        "",
    ]
    return "\n".join(lines)


def write_model_cards(results: dict[str, Any]) -> None:
    (CNN_DIR / "MODEL_CARD.md").write_text(cnn_card(results), encoding="utf-8")
    (PRIMARY_DIR / "MODEL_CARD.md").write_text(primary_card(results), encoding="utf-8")
