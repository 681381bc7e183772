# syntax=docker/dockerfile:1
# The product's images, one target each, with Docker (BuildKit builds only the stages a target
# needs) or buildah; `make images` builds them with buildah on a Debian python base made by
# debootstrap (docs/images.md):
#
#   docker build --target operator  -t pizza-operator:0.1.0  .   # pizza-operator (kopf), .[operator]
#   docker build --target serve-cpu -t pizza-serve-cpu:0.1.0 .   # pizza-serve on ONNX Runtime + router, .[cpu]
#   docker build --target serve-gpu -t pizza-serve-gpu:0.1.0 .   # pizza-serve with torch + transformers, .[gpu]
#   buildah bud --layers --target operator --build-arg PYTHON_IMAGE=localhost/pizza/python:3.11 \
#       --build-arg BUILD_IMAGE=localhost/pizza/python-build:3.11 ...
#
# Each image: a venv in /opt/venv, one dependency layer (cached while only the source changes) and
# one layer with the project; non-root (65532:65532); writes only under /tmp (HOME, caches), so it
# runs with a read-only root filesystem; no pip cache, no pip, no setuptools.

ARG PYTHON_IMAGE=python:3.11-slim
# The build stages' base: the same Python as PYTHON_IMAGE plus venv and binutils (strip). The
# runtime images copy only /opt/venv and /app out of it; `make images` makes one from the same
# debootstrap rootfs as its runtime base, which then drops these tools (and apt, dpkg, perl).
ARG BUILD_IMAGE=python:3.11

# The runtime base: the interpreter and the environment every image shares. No RUN here, so the
# images hold nothing of a build step; uid/gid 65532 need no /etc/passwd entry (the base made by
# `make images` has one, named pizza).
FROM ${PYTHON_IMAGE} AS python
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/tmp \
    HF_HOME=/tmp/hf

# A venv and pyproject.toml alone: `deps-*` install an extra's dependencies from it, so only a
# change of pyproject.toml reinstalls them. Empty package folders and an empty README stand in for
# the project; the deps-* stages remove it again, and pip and setuptools too (the runtime images
# need neither).
FROM ${BUILD_IMAGE} AS venv
ENV PATH=/opt/venv/bin:/usr/local/bin:/usr/bin:/bin \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_WARN_SCRIPT_LOCATION=1
RUN python3 -m venv /opt/venv
WORKDIR /src
# Every image installs the versions the tests ran with (hack/constraints.txt, the dev venv's pins).
COPY pyproject.toml hack/constraints.txt ./
RUN mkdir -p operator inference models devcluster && touch README.md

# Each deps-* stage also drops what never runs in the image: the packages' own test suites, the
# kubernetes client's asyncio copy (kubernetes/aio, 68 MB; the operator uses the sync client and
# kopf its own aiohttp client), ONNX Runtime's model tools (quantisation, transformers
# optimisers: the images serve, `make models` exports) and its C API library
# (capi/libonnxruntime.so.*, 35 MB: the Python binding, onnxruntime_pybind11_state, has the
# runtime built in and does not load it), numpy's f2py and C headers. It strips the shared
# objects (debug info and symbol tables; uvloop's loop.so alone is 12 MB of debug info), except
# the libraries auditwheel vendored into *.libs/ (patchelf'd: strip breaks them, "ELF load command
# address/offset not page-aligned"), then imports the native modules so a broken one fails the
# build.
FROM venv AS deps-operator
RUN pip install -c constraints.txt '.[operator]' && pip uninstall -y pizza-operator setuptools pip \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && rm -rf /opt/venv/lib/python3.11/site-packages/kubernetes/aio \
    && find /opt/venv -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
    && python -c 'import aiohttp._http_parser, cryptography.hazmat.bindings._rust, kopf, kubernetes, multidict, yaml._yaml'

FROM venv AS deps-cpu
RUN pip install -c constraints.txt '.[cpu]' && pip uninstall -y pizza-operator setuptools pip \
    && find /opt/venv -depth -type d -name tests -exec rm -rf {} + \
    && cd /opt/venv/lib/python3.11/site-packages \
    && rm -rf onnxruntime/quantization onnxruntime/transformers onnxruntime/tools \
        onnxruntime/capi/libonnxruntime.so.* numpy/f2py numpy/_core/include /opt/venv/bin/f2py \
    && find /opt/venv -type f -name '*.so*' -not -path '*.libs/*' -exec strip --strip-unneeded {} + \
    && python -c 'import aiohttp._http_parser, httptools, multidict, numpy, onnxruntime, PIL._imaging, PIL._webp, pydantic_core, uvloop, watchfiles, yaml._yaml'

FROM venv AS deps-gpu
RUN pip install -c constraints.txt '.[gpu]' && pip uninstall -y pizza-operator setuptools pip

# The project itself, installed into /app relative to / (/app/opt/venv/...), without dependencies.
FROM venv AS app
COPY README.md ./
COPY operator/ operator/
COPY inference/ inference/
COPY models/ models/
COPY devcluster/ devcluster/
RUN pip install --no-deps --root /app . && rm -rf build

FROM python AS operator
LABEL org.opencontainers.image.title="pizza-operator" \
      org.opencontainers.image.description="Kubernetes operator for the pizza classifier (kopf)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=deps-operator /opt/venv /opt/venv
COPY --from=app /app/ /
USER 65532:65532
WORKDIR /tmp
ENTRYPOINT ["pizza-operator"]
CMD ["--help"]

FROM python AS serve-cpu
LABEL org.opencontainers.image.title="pizza-serve-cpu" \
      org.opencontainers.image.description="Pizza classifier model server (ONNX Runtime, CPU) and router" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=deps-cpu /opt/venv /opt/venv
COPY --from=app /app/ /
USER 65532:65532
WORKDIR /tmp
EXPOSE 8001
ENTRYPOINT ["pizza-serve"]
CMD ["--help"]

FROM python AS serve-gpu
LABEL org.opencontainers.image.title="pizza-serve-gpu" \
      org.opencontainers.image.description="Pizza classifier model server (torch, transformers, ONNX Runtime)" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=deps-gpu /opt/venv /opt/venv
COPY --from=app /app/ /
USER 65532:65532
WORKDIR /tmp
EXPOSE 8001
ENTRYPOINT ["pizza-serve"]
CMD ["--help"]
