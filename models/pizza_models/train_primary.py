"""Training the primary `image-classifier` model: a small transformers ConvNeXt, from scratch."""

from __future__ import annotations

import copy
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from pizza_inference import CLASSES
from pizza_inference.cnn.preprocess import compute_normalization
from torch import nn
from transformers import (
    AutoImageProcessor,
    ConvNextConfig,
    ConvNextForImageClassification,
    PreTrainedModel,
    ViTImageProcessor,
)

from pizza_models.augment import random_dihedral
from pizza_models.dataset import Split
from pizza_models.history import history_summary
from pizza_models.train_cnn import fit_temperature

log = logging.getLogger(__name__)

PRIMARY_INPUT_SIZE = 64


@dataclass(frozen=True)
class PrimaryTrainConfig:
    epochs: int = 12
    train_per_class: int = 2500  # the whole training split (2500 per class)
    batch_size: int = 64
    learning_rate: float = 2e-3
    weight_decay: float = 0.05
    seed: int = 0
    hidden_sizes: tuple[int, ...] = (24, 48, 96, 192)
    depths: tuple[int, ...] = (1, 1, 2, 1)
    patch_size: int = 4
    device: str = "cpu"


@dataclass
class PrimaryTrainResult:
    model: PreTrainedModel
    processor: ViTImageProcessor
    temperature: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return history_summary(self.history, self.temperature, self.seconds)


def build_model(config: PrimaryTrainConfig) -> ConvNextForImageClassification:
    model_config = ConvNextConfig(  # type: ignore[call-arg]
        num_channels=3,
        patch_size=config.patch_size,
        num_stages=len(config.hidden_sizes),
        hidden_sizes=list(config.hidden_sizes),
        depths=list(config.depths),
        image_size=PRIMARY_INPUT_SIZE,
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={name: i for i, name in enumerate(CLASSES)},
    )
    return ConvNextForImageClassification(model_config)


def build_processor(train: Split) -> ViTImageProcessor:
    """Resize to 64x64 (bilinear), scale to [0, 1], normalise with the training set's statistics."""
    norm = compute_normalization(train.images, PRIMARY_INPUT_SIZE)
    return ViTImageProcessor(
        do_resize=True,
        size={"height": PRIMARY_INPUT_SIZE, "width": PRIMARY_INPUT_SIZE},
        resample=2,  # PIL bilinear
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=list(norm.mean),
        image_std=list(norm.std),
    )


def pixel_values(processor: Any, split: Split, chunk: int = 512) -> torch.Tensor:
    """The split's images through the image processor exactly as serving runs it."""
    parts = [
        processor(images=split.images[i : i + chunk], return_tensors="pt")["pixel_values"]
        for i in range(0, len(split.images), chunk)
    ]
    return torch.cat(parts).to(torch.float32)


def primary_logits(model: nn.Module, x: torch.Tensor, batch: int = 256) -> torch.Tensor:
    model.eval()
    device = next(model.parameters()).device
    with torch.no_grad():
        return torch.cat(
            [
                model(pixel_values=x[i : i + batch].to(device)).logits.cpu()
                for i in range(0, len(x), batch)
            ]
        )


def fold_temperature(model: ConvNextForImageClassification, temperature: float) -> None:
    with torch.no_grad():
        model.classifier.weight.div_(temperature)
        model.classifier.bias.div_(temperature)


def train_primary(
    train: Split, val: Split, config: PrimaryTrainConfig, staging: Path
) -> PrimaryTrainResult:
    """Trains from scratch, keeps the best validation epoch, folds in a validation temperature.

    The processor is saved to `staging` and read back with AutoImageProcessor, so training sees
    the very preprocessing that serving will load.
    """
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    # Splits are interleaved class by class, so a prefix holds the first N of every class.
    keep = config.train_per_class * len(CLASSES)
    train = Split(train.name, train.images[:keep], train.labels[:keep])
    build_processor(train).save_pretrained(staging)
    processor = AutoImageProcessor.from_pretrained(staging)  # type: ignore[no-untyped-call]
    x_train, y_train = pixel_values(processor, train), torch.from_numpy(train.labels)
    x_val, y_val = pixel_values(processor, val), torch.from_numpy(val.labels)
    log.info("primary data ready: train=%d val=%d", len(x_train), len(x_val))

    model = build_model(config)
    module: nn.Module = model  # transformers' stubs type .to()/.eval() oddly
    module.to(config.device)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps = config.epochs * ((len(x_train) + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=steps, pct_start=0.15
    )
    loss_fn = nn.CrossEntropyLoss()
    best_state, best_accuracy = copy.deepcopy(model.state_dict()), -1.0
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        order = torch.randperm(len(x_train), generator=generator)
        for i in range(0, len(order), config.batch_size):
            index = order[i : i + config.batch_size]
            xb = random_dihedral(x_train[index], generator).to(config.device)
            loss = loss_fn(model(pixel_values=xb).logits, y_train[index].to(config.device))
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
            seen += len(index)
        logits = primary_logits(model, x_val).cpu()
        accuracy = float((logits.argmax(1) == y_val).float().mean())
        history.append({"epoch": epoch, "train_loss": total / seen, "val_accuracy": accuracy})
        log.info("primary epoch %d loss=%.4f val_accuracy=%.4f", epoch, total / seen, accuracy)
        if accuracy > best_accuracy:
            best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())
    model.load_state_dict(best_state)
    module.to("cpu")
    temperature = fit_temperature(primary_logits(model, x_val), y_val)
    fold_temperature(model, temperature)
    module.eval()
    return PrimaryTrainResult(
        model=model,
        processor=processor,
        temperature=temperature,
        history=history,
        seconds=time.perf_counter() - start,
    )
