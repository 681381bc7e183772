#!/usr/bin/env bash
# Creates .venv and installs the project with its dev tools. torch from PyPI is a large CUDA build:
# pip's cache (~/.cache/pip) keeps it, so a second machine setup does not download it again.
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $(python3 --version)"
  python3 -m venv .venv
fi
echo "==> installing Python packages into .venv (first time: torch is ~1 GB with its CUDA libraries)"
.venv/bin/python -m pip install --progress-bar off -q --upgrade pip
.venv/bin/python -m pip install --progress-bar off -c hack/constraints.txt -e '.[dev]'  | sed -E '/^(Requirement already satisfied|  Using cached)/d'
.venv/bin/python - <<'PY'
import importlib.metadata as md
names = ("torch", "transformers", "kopf", "fastapi", "kubernetes")
print("==> venv ready: " + ", ".join(f"{n} {md.version(n)}" for n in names))
PY
touch .venv/.stamp
