"""Images without a registry: docker-archive tars imported into each node's containerd.

`.images/images.txt` (written by `make images`) lists `NAME<TAB>FILE<TAB>HASH`; a directory
without that list has each `*.tar` imported under the hash of its bytes. An image already
imported into a node with the same hash is skipped. When no pause image is given, one is written
here from `.bin/pause` (a docker archive is a tar of a JSON config, a manifest and layer tars).
"""

from __future__ import annotations

import hashlib
import io
import json
import logging
import tarfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .configs import PAUSE_IMAGE
from .host import run
from .layout import RealNode

log = logging.getLogger(__name__)

IMAGES_LIST = "images.txt"

NOT_IMPORTED = frozenset({"pizza-serve-gpu"})
"""Listed images the local nodes never run (`make image-gpu`'s torch image: about 6 GB per node,
and no local node has a GPU), so they are not imported."""
RECORD = "imported.json"


@dataclass(frozen=True)
class ImageTar:
    name: str
    path: Path
    digest: str


@dataclass(frozen=True)
class Entry:
    """One file of an image layer: bytes (a regular file) or a symlink target."""

    path: str
    data: bytes = b""
    mode: int = 0o644
    link: str | None = None


def _file_hash(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def list_images(directory: Path) -> list[ImageTar]:
    listing = directory / IMAGES_LIST
    if listing.is_file():
        images = []
        for line in listing.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) >= 3 and parts[0] and not line.startswith("#"):
                if parts[0] in NOT_IMPORTED:
                    continue
                path = Path(parts[1]) if Path(parts[1]).is_absolute() else directory / parts[1]
                images.append(ImageTar(parts[0], path, parts[2]))
        return images
    return [ImageTar(p.stem, p, _file_hash(p)) for p in sorted(directory.glob("*.tar"))]


def _layer(entries: Sequence[Entry]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        dirs = sorted({str(Path(e.path).parent) for e in entries} - {"."})
        for directory in dirs:
            for parent in [*reversed(Path(directory).parents[:-1]), Path(directory)]:
                if str(parent) in ("", ".") or f"./{parent}" in tar.getnames():
                    continue
                info = tarfile.TarInfo(f"./{parent}")
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                tar.addfile(info)
        for entry in entries:
            info = tarfile.TarInfo(f"./{entry.path}")
            if entry.link is not None:
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, entry.link, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(entry.data), entry.mode
                tar.addfile(info, io.BytesIO(entry.data))
    return buffer.getvalue()


def _add(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _add_top(
    tar: tarfile.TarFile, ref: str, layers: Sequence[str], layer: bytes, config: dict[str, Any]
) -> None:
    """Adds `layer` over `layers` (already in `tar`), `config` (its rootfs gains the layer) and the
    manifest naming `ref`: the last members of a docker-archive tar."""
    layer_id = hashlib.sha256(layer).hexdigest()
    config["rootfs"]["diff_ids"].append(f"sha256:{layer_id}")
    config_bytes = json.dumps(config).encode()
    config_name = f"{hashlib.sha256(config_bytes).hexdigest()}.json"
    manifest = [
        {"Config": config_name, "RepoTags": [ref], "Layers": [*layers, f"{layer_id}/layer.tar"]}
    ]
    _add(tar, f"{layer_id}/layer.tar", layer)
    _add(tar, config_name, config_bytes)
    _add(tar, "manifest.json", json.dumps(manifest).encode())


def write_docker_archive(
    path: Path,
    ref: str,
    entries: Sequence[Entry],
    entrypoint: Sequence[str],
    *,
    user: str = "",
    env: Sequence[str] = ("PATH=/bin",),
) -> Path:
    """A one-layer image as a docker-archive tar that `ctr images import` reads."""
    config = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Entrypoint": list(entrypoint), "User": user, "Env": list(env)},
        "rootfs": {"type": "layers", "diff_ids": []},
        "history": [{"created_by": "pizza-devcluster"}],
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    with tarfile.open(path, "w") as tar:
        _add_top(tar, ref, [], _layer(entries), config)
    return path


def write_extended_archive(
    base: Path,
    path: Path,
    ref: str,
    entries: Sequence[Entry],
    *,
    note: str,
    labels: Mapping[str, str] | None = None,
) -> Path:
    """A docker-archive tar of `base`'s image with one more layer holding `entries`, named `ref`,
    with `labels` over the base's (like a `FROM base` + `COPY` + `LABEL` build); the base's layers
    are streamed, not held in memory."""
    with tarfile.open(base) as source:
        (manifest,) = json.loads(_member(source, "manifest.json", base))
        config = json.loads(_member(source, manifest["Config"], base))
        config.setdefault("history", []).append({"created_by": note})
        if labels:
            config["config"]["Labels"] = {**(config["config"].get("Labels") or {}), **labels}
        path.parent.mkdir(parents=True, exist_ok=True)
        with tarfile.open(path, "w") as tar:
            for name in manifest["Layers"]:
                member = source.getmember(name)
                tar.addfile(member, source.extractfile(member))
            _add_top(tar, ref, manifest["Layers"], _layer(entries), config)
    return path


def _member(tar: tarfile.TarFile, name: str, origin: Path) -> bytes:
    try:
        stream = tar.extractfile(name)
    except KeyError:
        stream = None
    if stream is None:
        raise ValueError(f"{origin}: no file {name} (not a docker archive?)")
    return stream.read()


def has_pause(found: Sequence[ImageTar]) -> bool:
    """`make images` lists its pause image as `pause` (pause.tar); others name the reference."""
    return any(i.name in ("pause", PAUSE_IMAGE) or i.path.name == "pause.tar" for i in found)


def pause_archive(pause_binary: Path, directory: Path) -> ImageTar:
    entries = [Entry("pause", pause_binary.read_bytes(), 0o755)]
    path = write_docker_archive(
        directory / "pause.tar", PAUSE_IMAGE, entries, ["/pause"], user="65535:65535"
    )
    return ImageTar(PAUSE_IMAGE, path, _file_hash(path))


def _ctr(node: RealNode, *args: str) -> list[str]:
    return ["ctr", "-a", str(node.socket), "-n", "k8s.io", *args]


def present(node: RealNode) -> set[str]:
    out = run(_ctr(node, "images", "ls", "-q")).stdout
    return set(out.split())


def import_images(node: RealNode, images: Sequence[ImageTar]) -> list[str]:
    """Import into one node's containerd; returns the names imported (others were there)."""
    record_path = node.state_dir / RECORD
    try:
        record: dict[str, str] = json.loads(record_path.read_text())
    except (OSError, ValueError):
        record = {}
    imported = []
    for image in images:
        if record.get(image.name) == image.digest:  # the record lives with this containerd root
            continue
        if not image.path.is_file():
            log.warning("image %s: %s is missing; skipped", image.name, image.path)
            continue
        run(_ctr(node, "images", "import", str(image.path)), timeout=900)
        record[image.name] = image.digest
        imported.append(image.name)
    record_path.write_text(json.dumps(record, indent=2))
    return imported
