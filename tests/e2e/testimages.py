"""The e2e tests' images, written without a registry or a build tool.

- The platform tests' image: busybox-static (Debian's /bin/busybox) with its applets, a user
  65532, a small web root for `httpd` (/www/healthz, /www/index.html, /www/cgi-bin/host printing
  the pod's hostname) and /bin/incluster (incluster/main.go, a static Go client of the in-cluster
  API).
- The wrong-model image: the shipped light serving image (pizza-serve-cpu, from `make images`) with
  one more layer holding the test-only model tests/models/wrong-pizza-net under
  /opt/pizza-test-models/, so a PMD with `spec.image` set to it can serve
  `file:///opt/pizza-test-models/wrong-pizza-net` (backend onnx, precision float32). The product
  image never holds a test model.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from pizza_devcluster.realnode.images import (
    Entry,
    list_images,
    write_docker_archive,
    write_extended_archive,
)

BUSYBOX = Path("/bin/busybox")
WEB_IMAGE = "localhost/pizza/e2e-web:1"
INCLUSTER_SRC = Path(__file__).resolve().parent / "incluster"
WRONG_MODEL_IMAGE = "localhost/pizza/e2e-wrong-model:1"
"""`spec.image` of a PMD serving WRONG_MODEL (fixture `wrong_model_image_ref` imports it)."""
WRONG_MODEL_NAME = "wrong-pizza-net"
WRONG_MODEL_DIR = Path(__file__).resolve().parents[1] / "models" / WRONG_MODEL_NAME
WRONG_MODEL_PATH = f"/opt/pizza-test-models/{WRONG_MODEL_NAME}"
WRONG_MODEL = {
    "name": WRONG_MODEL_NAME,
    "backend": "onnx",
    "source": f"file://{WRONG_MODEL_PATH}",
    "precision": "float32",
}
"""`spec.primary.model` answering confidently and wrongly; needs spec.image = WRONG_MODEL_IMAGE."""
SERVE_CPU = "pizza-serve-cpu"
HOST_CGI = b'#!/bin/sh\necho "Content-Type: text/plain"\necho\necho "host=$(hostname)"\n'


def missing_tools() -> str:
    """Why the image cannot be written here ("" when it can)."""
    if not BUSYBOX.is_file():
        return f"{BUSYBOX} missing: apt-get install busybox-static"
    dynamic = subprocess.run(["ldd", str(BUSYBOX)], capture_output=True, text=True, check=False)
    if "=>" in dynamic.stdout:
        return f"{BUSYBOX} is dynamically linked: apt-get install busybox-static"
    if shutil.which("go") is None:
        return "go is missing (it builds /bin/incluster; make binaries needs it too)"
    return ""


def build_incluster(out: Path) -> Path:
    env = {"CGO_ENABLED": "0", "GOFLAGS": "-mod=mod", "GOTOOLCHAIN": "local"}
    subprocess.run(
        ["go", "build", "-trimpath", "-ldflags", "-s -w", "-o", str(out), "."],
        cwd=INCLUSTER_SRC,
        env={**os.environ, **env},
        check=True,
        capture_output=True,
        timeout=300,
    )
    return out


def web_image(directory: Path) -> Path:
    """Write the image tar and an images.txt listing it; returns the directory."""
    incluster = build_incluster(directory / "incluster")
    applets = subprocess.run(
        [str(BUSYBOX), "--list"], capture_output=True, text=True, check=True
    ).stdout.split()
    entries = [Entry("bin/busybox", BUSYBOX.read_bytes(), 0o755)]
    entries += [Entry(f"bin/{a}", link="busybox") for a in applets if a != "busybox"]
    entries += [
        Entry("etc/passwd", b"root:x:0:0:root:/:/bin/sh\nweb:x:65532:65532:web:/tmp:/bin/sh\n"),
        Entry("etc/group", b"root:x:0:\nweb:x:65532:\n"),
        Entry("www/index.html", b"pizza e2e\n"),
        Entry("www/healthz", b"ok\n"),
        Entry("www/cgi-bin/host", HOST_CGI, 0o755),
        Entry("tmp/.keep", b""),
        Entry("bin/incluster", incluster.read_bytes(), 0o755),
    ]
    tar = write_docker_archive(
        directory / "e2e-web.tar",
        WEB_IMAGE,
        entries,
        ["/bin/busybox", "httpd", "-f", "-v", "-p", "8080", "-h", "/www"],
    )
    digest = hashlib.sha256(tar.read_bytes()).hexdigest()
    (directory / "images.txt").write_text(f"{WEB_IMAGE}\t{tar.name}\t{digest}\n")
    return directory


def serve_cpu_tar(images_dir: Path | None) -> Path | str:
    """The shipped pizza-serve-cpu tar of `images_dir` (images.txt), or why there is none."""
    if images_dir is None:
        return "no .images/ directory: make images builds the serving images"
    found = [i.path for i in list_images(images_dir) if i.name == SERVE_CPU]
    if not found or not found[0].is_file():
        return f"{images_dir} lists no {SERVE_CPU} tar: make images builds it"
    return found[0]


def wrong_model_image(directory: Path, serve_cpu: Path) -> Path:
    """Write the wrong-model image's tar (pizza-serve-cpu + the model) and an images.txt."""
    files = sorted(p for p in WRONG_MODEL_DIR.iterdir() if p.is_file())
    entries = [Entry(f"{WRONG_MODEL_PATH.lstrip('/')}/{p.name}", p.read_bytes()) for p in files]
    tar = write_extended_archive(
        serve_cpu,
        directory / "e2e-wrong-model.tar",
        WRONG_MODEL_IMAGE,
        entries,
        note=f"pizza e2e: test-only model {WRONG_MODEL_NAME} at {WRONG_MODEL_PATH}",
        labels={
            "org.opencontainers.image.title": "pizza-e2e-wrong-model",
            "org.opencontainers.image.description": "TEST ONLY: pizza-serve-cpu with the"
            f" test-only model {WRONG_MODEL_NAME} (answers wrongly on purpose)",
        },
    )
    with tar.open("rb") as stream:
        digest = hashlib.file_digest(stream, "sha256").hexdigest()
    (directory / "images.txt").write_text(f"{WRONG_MODEL_IMAGE}\t{tar.name}\t{digest}\n")
    return directory
