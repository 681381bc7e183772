"""The platform tests' image, written without a registry or a build tool: busybox-static
(Debian's /bin/busybox) with its applets, a user 65532, a small web root for `httpd`
(/www/healthz, /www/index.html, /www/cgi-bin/host printing the pod's hostname) and
/bin/incluster (incluster/main.go, a static Go client of the in-cluster API)."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from pizza_devcluster.realnode.images import Entry, write_docker_archive

BUSYBOX = Path("/bin/busybox")
WEB_IMAGE = "localhost/pizza/e2e-web:1"
INCLUSTER_SRC = Path(__file__).resolve().parent / "incluster"
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
