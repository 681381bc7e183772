"""The built images' Python package lists, read from the image archives `make images` leaves in
.images/ (every layer, whiteouts applied): the CPU server and the operator hold no torch and no
other GPU stack; each holds what it runs on."""

from __future__ import annotations

import json
import re
import tarfile

import pytest

from tests.support.servers import REPO

pytestmark = [pytest.mark.unit, pytest.mark.slow]

IMAGES = REPO / ".images"
SITE = re.compile(r"^(?:\./)?opt/venv/lib/python3\.\d+/site-packages/([^/]+)")
GPU_STACK = {"torch", "torchvision", "transformers", "accelerate", "triton", "safetensors"}


def normalized(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def site_packages(image: str) -> tuple[set[str], set[str]]:
    """(distributions by their dist-info, top-level entries) in the image's venv."""
    listing = {}
    for line in (IMAGES / "images.txt").read_text().splitlines():
        name, file, _ = line.split("\t")
        listing[name] = IMAGES / file
    if image not in listing:
        pytest.fail(f"{image} is not in {IMAGES / 'images.txt'}: run `make images`")
    present: set[str] = set()
    with tarfile.open(listing[image]) as archive:
        manifest_file = archive.extractfile("manifest.json")
        assert manifest_file is not None
        layers = json.load(manifest_file)[0]["Layers"]
        for layer_name in layers:
            layer_file = archive.extractfile(layer_name)
            assert layer_file is not None
            with tarfile.open(fileobj=layer_file, mode="r|*") as layer:
                for member in layer:
                    match = SITE.match(member.name)
                    if match is None:
                        continue
                    entry = match.group(1)
                    if entry.startswith(".wh."):
                        present.discard(entry.removeprefix(".wh."))
                    else:
                        present.add(entry)
    dists = {
        normalized(e.removesuffix(".dist-info").rsplit("-", 1)[0])
        for e in present
        if e.endswith(".dist-info")
    }
    return dists, present


@pytest.fixture(scope="module", autouse=True)
def images_built() -> None:
    if not (IMAGES / "images.txt").exists():
        pytest.skip("no images built here (`make images`; `make test` builds them first)")


def test_cpu_server_has_onnx_runtime_and_no_gpu_stack() -> None:
    dists, entries = site_packages("pizza-serve-cpu")
    assert {"onnxruntime", "numpy", "pillow", "fastapi", "uvicorn", "aiohttp"} <= dists
    assert "pizza-operator" in dists  # the project, with its inference package
    assert not dists & GPU_STACK, dists & GPU_STACK
    assert not {d for d in dists if d.startswith("nvidia-")}
    assert not {"torch", "transformers"} & entries  # not even files without a dist-info


def test_operator_has_kopf_and_no_ml_library() -> None:
    dists, entries = site_packages("pizza-operator")
    assert {"kopf", "kubernetes"} <= dists
    assert not dists & (GPU_STACK | {"onnxruntime", "numpy"}), dists
    assert not {"torch", "onnxruntime"} & entries
