"""`make models`: render the data, train MicroPizzaNet (float32 + INT8) and the primary, save
them into inference/pizza_inference/weights/, export them to ONNX beside their weights
(`pizza_models.export_onnx`), then evaluate them on the test split (`make eval`).

Deterministic: fixed generator seeds and torch seeds. CPU only: one torch thread, two processes
to render the data.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import logging
import shutil
import sys
import tempfile
import time
from pathlib import Path

import torch
from pizza_inference.cnn.checkpoint import save_cnn

from pizza_models import evaluate, export_onnx
from pizza_models.dataset import DEFAULT_PER_CLASS, SPLIT_SEEDS, Split, load_split
from pizza_models.paths import CNN_DIR, PRIMARY_DIR, TRAIN_COMMAND
from pizza_models.train_cnn import CNNTrainConfig, train_micro_pizza_net
from pizza_models.train_primary import PrimaryTrainConfig, train_primary

log = logging.getLogger("pizza_models.train_all")


def _data_description(per_class: dict[str, int]) -> dict[str, object]:
    return {
        "generator": "pizza_models.generator",
        "seeds": {name: SPLIT_SEEDS[name] for name in ("train", "val")},
        "per_class": per_class,
    }


def train_all(
    train_per_class: int,
    val_per_class: int,
    cnn_epochs: int,
    primary_epochs: int,
    *,
    only: str = "all",
    cnn_threads: int = 1,
    primary_threads: int = 2,
) -> None:
    start = time.perf_counter()
    train = load_split("train", train_per_class)
    val = load_split("val", val_per_class)
    data_seconds = time.perf_counter() - start
    log.info("rendered train=%d val=%d in %.1f s", len(train.images), len(val.images), data_seconds)
    data = _data_description({"train": train_per_class, "val": val_per_class})

    if only in ("all", "cnn"):
        torch.set_num_threads(cnn_threads)
        _train_cnn(train, val, cnn_epochs, data, data_seconds)
    if only in ("all", "primary"):
        torch.set_num_threads(primary_threads)
        _train_primary(train, val, primary_epochs, data)
    log.info("training done in %.1f s", time.perf_counter() - start)
    torch.set_num_threads(1)
    export_onnx.export_all(only, export_onnx.calibration_subset(train.images))


def _train_cnn(
    train: Split, val: Split, epochs: int, data: dict[str, object], data_seconds: float
) -> None:
    cnn_config = CNNTrainConfig(epochs=epochs)
    cnn = train_micro_pizza_net(train, val, cnn_config)
    training = {
        **dataclasses.asdict(cnn_config),
        **cnn.summary(),
        "data": data,
        "data_seconds": round(data_seconds, 1),
        "threads": torch.get_num_threads(),
        "command": TRAIN_COMMAND,
    }
    if CNN_DIR.exists():
        shutil.rmtree(CNN_DIR)
    save_cnn(CNN_DIR, cnn.model, cnn.normalization, cnn.int8_model, {"training": training})
    log.info("saved MicroPizzaNet to %s: %s", CNN_DIR, cnn.summary())


def _train_primary(train: Split, val: Split, epochs: int, data: dict[str, object]) -> None:
    primary_config = PrimaryTrainConfig(epochs=epochs)
    with tempfile.TemporaryDirectory() as staging:
        primary = train_primary(train, val, primary_config, Path(staging))
    if PRIMARY_DIR.exists():
        shutil.rmtree(PRIMARY_DIR)
    primary.model.save_pretrained(PRIMARY_DIR)
    primary.processor.save_pretrained(PRIMARY_DIR)
    for path in PRIMARY_DIR.iterdir():
        path.chmod(0o644)  # readable by the serving image's non-root user
    primary_training = {
        **dataclasses.asdict(primary_config),
        **primary.summary(),
        "parameters": sum(p.numel() for p in primary.model.parameters()),
        "threads": torch.get_num_threads(),
        "data": data,
        "command": TRAIN_COMMAND,
    }
    (PRIMARY_DIR / "training.json").write_text(
        json.dumps(primary_training, indent=2, sort_keys=True) + "\n", encoding="utf-8"
    )
    log.info("saved %s to %s: %s", PRIMARY_DIR.name, PRIMARY_DIR, primary.summary())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m pizza_models.train_all", description=__doc__)
    parser.add_argument("--train-per-class", type=int, default=DEFAULT_PER_CLASS["train"])
    parser.add_argument("--val-per-class", type=int, default=DEFAULT_PER_CLASS["val"])
    parser.add_argument("--cnn-epochs", type=int, default=CNNTrainConfig.epochs)
    parser.add_argument("--primary-epochs", type=int, default=PrimaryTrainConfig.epochs)
    parser.add_argument("--only", choices=["all", "cnn", "primary"], default="all")
    parser.add_argument(
        "--cnn-threads",
        type=int,
        default=1,
        help="torch threads for MicroPizzaNet (default 1, as the shipped weights were trained)",
    )
    parser.add_argument(
        "--primary-threads",
        type=int,
        default=2,
        help="torch threads for the primary (default 2, as the shipped weights were trained)",
    )
    parser.add_argument("--threads", type=int, help="torch threads for both (overrides the two)")
    parser.add_argument("--skip-eval", action="store_true", help="do not run `make eval` after")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train_all(
        args.train_per_class,
        args.val_per_class,
        args.cnn_epochs,
        args.primary_epochs,
        only=args.only,
        cnn_threads=args.threads or args.cnn_threads,
        primary_threads=args.threads or args.primary_threads,
    )
    if not args.skip_eval:
        return evaluate.main([])
    return 0


if __name__ == "__main__":
    sys.exit(main())
