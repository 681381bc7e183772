# pizza-operator: every target sets up what it needs (.venv, Go-built control-plane binaries).
SHELL := /bin/bash
PY := .venv/bin/python
# make cluster-up REAL_NODES=0: kwok nodes only (real nodes need root and the Debian packages)
REAL_NODES ?= 1
export PATH := $(CURDIR)/.bin:$(CURDIR)/.venv/bin:$(PATH)

.PHONY: help venv binaries system-deps images image-gpu cluster-up cluster-down test test-unit lint demo demo-down models eval bench clean

help:  ## list targets
	@grep -E '^[a-z-]+:.*##' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-14s %s\n", $$1, $$2}'

venv: .venv/.stamp  ## Python virtual environment in .venv with the project installed (editable)
.venv/.stamp: pyproject.toml hack/setup-venv.sh hack/constraints.txt
	@bash hack/setup-venv.sh

binaries:  ## build the control plane, kwok, helm, kubelet, kube-proxy, kubectl, CoreDNS and pause into .bin/ (cached)
	@bash hack/build-binaries.sh

system-deps:  ## Debian packages: prometheus, containerd, runc, CNI plugins, buildah, debootstrap... (root; skipped otherwise)
	@bash hack/install-system-deps.sh

images: venv binaries system-deps  ## build the images with buildah into .images/*.tar (cached by inputs; GPU_IMAGE=1 adds serve-gpu)
	@if [ "$$(id -u)" = 0 ]; then GPU_IMAGE=$(GPU_IMAGE) bash hack/build-images.sh; \
	 else echo "==> not root: no images built (buildah needs root; the e2e tier is skipped)"; fi

image-gpu: venv binaries system-deps  ## also build pizza-serve-gpu (torch + transformers, about 6 GB; not needed by the local cluster)
	@$(MAKE) --no-print-directory images GPU_IMAGE=1

cluster-up: venv binaries  ## start the control plane and (REAL_NODES=1, the default; root only) two real nodes; kubeconfig in .cluster/kubeconfig
	@$(PY) -m pizza_devcluster up --dir .cluster --background $(if $(filter 1,$(REAL_NODES)),--real-nodes)

cluster-down:  ## stop the cluster; with real nodes, clear the host of everything they put there
	@if [ -x $(PY) ]; then $(PY) -m pizza_devcluster down --dir .cluster; fi

test: venv binaries system-deps images  ## the whole test suite: unit, cluster (kwok) and e2e (real nodes, root) tiers; starts its own clusters
	@echo "==> running the test suite"
	@$(PY) -m pytest $(PYTEST_ARGS)

test-unit: venv  ## only the unit tests (no cluster)
	@$(PY) -m pytest -m unit $(PYTEST_ARGS)

lint: venv  ## ruff, mypy and the import contracts (pyproject.toml [tool.importlinter])
	@.venv/bin/ruff check .
	@.venv/bin/ruff format --check .
	@.venv/bin/mypy
	@.venv/bin/lint-imports --no-cache

demo: venv binaries system-deps  ## the main job: cluster with real nodes, images, the operator by Helm, the local sample, classify, freeze the primary
	@bash hack/demo.sh

demo-down:  ## stop what the demo started: the sample, the operator, the nodes and the control plane
	@bash hack/demo.sh down
	@$(MAKE) --no-print-directory cluster-down

models: venv  ## regenerate the data set and retrain the shipped models (as they were trained)
	@$(PY) -m pizza_models.train_all

eval: venv  ## evaluate the shipped models on the held-out test split
	@$(PY) -m pizza_models.evaluate

clean:  ## remove the cluster state (keeps .venv and .bin caches)
	rm -rf .cluster
