# syntax=docker/dockerfile:1
# One image for the whole product: `pizza-serve` (model and router pods, the entrypoint) and
# `pizza-operator` (the operator Deployment sets `command: ["pizza-operator"]`).
#
#   docker build -t pizza-operator:0.1.0 .
#   docker build --build-arg TORCH_INDEX_URL=https://download.pytorch.org/whl/cpu -t pizza-operator:0.1.0-cpu .
#
# Torch comes from PyPI by default (CUDA-enabled on linux/amd64, large); the CPU index gives a
# much smaller image for CPU-only fallback and router pods.

ARG PYTHON_IMAGE=python:3.11-slim

FROM ${PYTHON_IMAGE} AS build
ARG TORCH_INDEX_URL=""
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
# Dependencies first (cached while only the source changes).
COPY pyproject.toml README.md ./
RUN if [ -n "$TORCH_INDEX_URL" ]; then pip install --index-url "$TORCH_INDEX_URL" torch; fi \
 && python - <<'PY' > /tmp/requirements.txt
import tomllib
print("\n".join(tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]))
PY
RUN pip install -r /tmp/requirements.txt
COPY operator/ operator/
COPY inference/ inference/
COPY models/ models/
COPY devcluster/ devcluster/
RUN pip install --no-deps . && python -c "import pizza_operator, pizza_inference"

FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="pizza-operator" \
      org.opencontainers.image.description="Pizza classifier: inference server, router and Kubernetes operator" \
      org.opencontainers.image.licenses="Apache-2.0"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HF_HOME=/tmp/hf \
    HOME=/tmp
RUN groupadd --system --gid 65532 pizza \
 && useradd --system --uid 65532 --gid 65532 --home-dir /tmp --no-create-home --shell /usr/sbin/nologin pizza
COPY --from=build /opt/venv /opt/venv
# Read-only root filesystem in the cluster: the servers write only under /tmp (an emptyDir).
USER 65532:65532
WORKDIR /tmp
EXPOSE 8001
ENTRYPOINT ["pizza-serve"]
CMD ["--help"]
