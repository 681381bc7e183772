"""Where the shipped weights, the evaluation results and the figures live in the repository."""

from __future__ import annotations

from pathlib import Path

import pizza_inference

WEIGHTS_DIR = Path(pizza_inference.__file__).parent / "weights"
CNN_DIR = WEIGHTS_DIR / "micro-pizza-net"
PRIMARY_NAME = "pizza-convnext-tiny"
PRIMARY_DIR = WEIGHTS_DIR / PRIMARY_NAME
REPO_ROOT = Path(pizza_inference.__file__).resolve().parents[2]
EVAL_JSON = REPO_ROOT / "bench" / "results" / "model-eval.json"
DOCS_DIR = REPO_ROOT / "docs"
TRAIN_COMMAND = "make models  (python -m pizza_models.train_all)"
EVAL_COMMAND = "make eval  (python -m pizza_models.evaluate)"
