"""The summary of a training run that model cards and metadata record, for every model."""

from __future__ import annotations

from typing import Any


def history_summary(
    history: list[dict[str, float]], temperature: float, seconds: float
) -> dict[str, Any]:
    """Epochs run, the best validation epoch and its accuracy, temperature and training time."""
    best = max(history, key=lambda h: h["val_accuracy"])
    return {
        "epochs": len(history),
        "best_epoch": int(best["epoch"]),
        "val_accuracy": best["val_accuracy"],
        "temperature": temperature,
        "training_seconds": round(seconds, 1),
    }
