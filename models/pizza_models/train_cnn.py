"""Training MicroPizzaNet on CPU, then INT8 post-training quantisation."""

from __future__ import annotations

import copy
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from pizza_inference.cnn.micro_pizza_net import INPUT_SIZE, MicroPizzaNet
from pizza_inference.cnn.preprocess import Normalization, compute_normalization, images_to_tensor
from pizza_inference.cnn.quantize import quantize_int8
from torch import nn

from pizza_models.augment import random_dihedral
from pizza_models.dataset import Split
from pizza_models.history import history_summary

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class CNNTrainConfig:
    epochs: int = 80
    batch_size: int = 64
    learning_rate: float = 0.02
    weight_decay: float = 1e-4
    seed: int = 0
    calibration_images: int = 1024


@dataclass
class CNNTrainResult:
    model: MicroPizzaNet
    int8_model: nn.Module
    normalization: Normalization
    temperature: float
    history: list[dict[str, float]] = field(default_factory=list)
    seconds: float = 0.0

    def summary(self) -> dict[str, Any]:
        return history_summary(self.history, self.temperature, self.seconds)


def to_tensor(split: Split, norm: Normalization) -> torch.Tensor:
    """The split's images through the serving preprocessing, in chunks to bound memory."""
    chunks = [
        images_to_tensor(split.images[i : i + 1024], norm, INPUT_SIZE)
        for i in range(0, len(split.images), 1024)
    ]
    return torch.cat(chunks)


def _batches(n: int, size: int, generator: torch.Generator) -> Iterator[torch.Tensor]:
    order = torch.randperm(n, generator=generator)
    for i in range(0, n, size):
        yield order[i : i + size]


def predict_logits(model: nn.Module, x: torch.Tensor, batch: int = 1024) -> torch.Tensor:
    model.eval()
    with torch.no_grad():
        return torch.cat([model(x[i : i + batch]) for i in range(0, len(x), batch)])


def fit_temperature(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Temperature minimising validation NLL (grid search, then it is folded into the weights)."""
    grid = torch.exp(torch.linspace(np.log(0.3), np.log(5.0), 120))
    losses = [nn.functional.cross_entropy(logits / t, labels).item() for t in grid]
    return float(grid[int(np.argmin(losses))])


def fold_temperature(model: MicroPizzaNet, temperature: float) -> None:
    """Divides the classifier's weights and bias by T: logits / T, with no extra layer to serve."""
    with torch.no_grad():
        model.classifier.weight.div_(temperature)
        model.classifier.bias.div_(temperature)


def train_micro_pizza_net(train: Split, val: Split, config: CNNTrainConfig) -> CNNTrainResult:
    start = time.perf_counter()
    torch.manual_seed(config.seed)
    generator = torch.Generator().manual_seed(config.seed)
    norm = compute_normalization(train.images, INPUT_SIZE)
    x_train, y_train = to_tensor(train, norm), torch.from_numpy(train.labels)
    x_val, y_val = to_tensor(val, norm), torch.from_numpy(val.labels)
    log.info("cnn data ready: train=%d val=%d norm=%s", len(x_train), len(x_val), norm)

    model = MicroPizzaNet()
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    steps = config.epochs * ((len(x_train) + config.batch_size - 1) // config.batch_size)
    schedule = torch.optim.lr_scheduler.OneCycleLR(
        optimizer, max_lr=config.learning_rate, total_steps=steps
    )
    loss_fn = nn.CrossEntropyLoss()
    best_state, best_accuracy = copy.deepcopy(model.state_dict()), -1.0
    history: list[dict[str, float]] = []
    for epoch in range(1, config.epochs + 1):
        model.train()
        total, seen = 0.0, 0
        for index in _batches(len(x_train), config.batch_size, generator):
            xb = random_dihedral(x_train[index], generator)
            loss = loss_fn(model(xb), y_train[index])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item() * len(index)
            seen += len(index)
        val_logits = predict_logits(model, x_val)
        accuracy = float((val_logits.argmax(1) == y_val).float().mean())
        history.append({"epoch": epoch, "train_loss": total / seen, "val_accuracy": accuracy})
        log.info("cnn epoch %d loss=%.4f val_accuracy=%.4f", epoch, total / seen, accuracy)
        if accuracy > best_accuracy:
            best_accuracy, best_state = accuracy, copy.deepcopy(model.state_dict())

    model.load_state_dict(best_state)
    model.eval()
    temperature = fit_temperature(predict_logits(model, x_val), y_val)
    fold_temperature(model, temperature)
    calibration = x_train[
        torch.randperm(len(x_train), generator=generator)[: config.calibration_images]
    ]
    int8_model = quantize_int8(model, torch.split(calibration, 128))
    return CNNTrainResult(
        model=model,
        int8_model=int8_model,
        normalization=norm,
        temperature=temperature,
        history=history,
        seconds=time.perf_counter() - start,
    )
