#!/usr/bin/env bash
# Creates .venv and installs the project with every extra (`.[all,export,dev]`: operator, the
# ONNX Runtime servers, the torch backends, the ONNX exporter and the dev tools). torch from PyPI
# is a large CUDA build: pip's cache (~/.cache/pip) keeps it, so a second setup does not download it
# again. The images install only their extra (pyproject.toml: operator, cpu or gpu).
set -euo pipefail
cd "$(dirname "$0")/.."
if [[ ! -x .venv/bin/python ]]; then
  echo "==> creating .venv with $(python3 --version)"
  python3 -m venv .venv
fi
echo "==> installing Python packages into .venv (first time: torch is ~1 GB with its CUDA libraries)"
.venv/bin/python -m pip install --progress-bar off -q --upgrade pip
.venv/bin/python -m pip install --progress-bar off -c hack/constraints.txt -e '.[all,export,dev]'  | sed -E '/^(Requirement already satisfied|  Using cached)/d'
.venv/bin/python - <<'PY'
import importlib.metadata as md
names = ("torch", "transformers", "onnxruntime", "onnx", "kopf", "fastapi", "kubernetes")
print("==> venv ready: " + ", ".join(f"{n} {md.version(n)}" for n in names))
PY
touch .venv/.stamp
