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
    return set(_versions(present)), present


def _versions(entries: set[str]) -> dict[str, str]:
    """Distribution -> version, from the `NAME-VERSION.dist-info` folders."""
    pairs = (
        e.removesuffix(".dist-info").rsplit("-", 1) for e in entries if e.endswith(".dist-info")
    )
    return {normalized(name): version for name, version in pairs}


def constraints() -> dict[str, str]:
    """The pins the test suite ran with (hack/constraints.txt)."""
    pins = {}
    for line in (REPO / "hack" / "constraints.txt").read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            name, _, version = line.partition("==")
            pins[normalized(name)] = version.strip()
    return pins


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


@pytest.mark.parametrize("image", ["pizza-operator", "pizza-serve-cpu"])
def test_every_package_in_the_image_is_the_version_the_tests_ran_with(image: str) -> None:
    _, entries = site_packages(image)
    installed = _versions(entries)
    installed.pop("pizza-operator")  # the project itself
    pins = constraints()
    differ = {n: (v, pins.get(n)) for n, v in installed.items() if pins.get(n) != v}
    assert installed and not differ, f"image version vs hack/constraints.txt: {differ}"


def test_operator_has_kopf_and_no_ml_library() -> None:
    dists, entries = site_packages("pizza-operator")
    assert {"kopf", "kubernetes"} <= dists
    assert not dists & (GPU_STACK | {"onnxruntime", "numpy"}), dists
    assert not {"torch", "onnxruntime"} & entries


DPKG_STATUS = re.compile(r"^(?:\./)?var/lib/dpkg/status$")
BASE_LOCK = REPO / "hack" / "base-packages.lock"


def dpkg_packages(image: str) -> dict[str, str]:
    """Package -> version from the image's /var/lib/dpkg/status (the last layer that has it)."""
    listing = dict(
        (line.split("\t")[0], IMAGES / line.split("\t")[1])
        for line in (IMAGES / "images.txt").read_text().splitlines()
    )
    status = b""
    with tarfile.open(listing[image]) as archive:
        manifest_file = archive.extractfile("manifest.json")
        assert manifest_file is not None
        for layer_name in json.load(manifest_file)[0]["Layers"]:
            layer_file = archive.extractfile(layer_name)
            assert layer_file is not None
            with tarfile.open(fileobj=layer_file, mode="r|*") as layer:
                for member in layer:
                    if DPKG_STATUS.match(member.name) and member.isfile():
                        found = layer.extractfile(member)
                        assert found is not None
                        status = found.read()
    packages: dict[str, str] = {}
    for stanza in status.decode().split("\n\n"):
        fields = dict(
            line.split(": ", 1) for line in stanza.splitlines() if ": " in line and line[0] != " "
        )
        if "Package" in fields and "installed" in fields.get("Status", ""):
            packages[fields["Package"]] = fields["Version"]
    return packages


@pytest.mark.parametrize("image", ["pizza-serve-cpu", "pizza-operator"])
def test_the_base_packages_are_the_locked_versions(image: str) -> None:
    """Every Debian package in the image is in hack/base-packages.lock at the locked version (the
    build refuses a base that differs; this checks what was shipped)."""
    locked = dict(
        line.split(" ", 1)
        for line in BASE_LOCK.read_text().splitlines()
        if not line.startswith("#")
    )
    found = dpkg_packages(image)
    assert "python3.11" in found
    assert {p: v for p, v in found.items() if locked.get(p) != v} == {}
