"""Model sources: `hf://ID[@REV]`, `pvc://CLAIM/PATH`, `builtin://NAME`, `file:///PATH`.

Parsing is pure; `resolve` turns a source into a local folder. `hf://` reads only the local Hugging
Face cache when `HF_HUB_OFFLINE` is set, and otherwise downloads with a bounded timeout: it fails
with a `SourceError` instead of hanging when there is no network.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

WEIGHTS_ROOT = Path(__file__).resolve().parent / "weights"
"""Folder of the shipped weights (`builtin://NAME` -> `WEIGHTS_ROOT/NAME`)."""

MODELS_ROOT = Path("/models")
"""Where the operator mounts volume claims (`pvc://CLAIM/PATH` -> `/models/CLAIM/PATH`)."""

SCHEMES = ("hf", "pvc", "builtin", "file")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
_HF_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)?$")


class SourceError(ValueError):
    """A source that cannot be parsed or resolved to a local folder."""


@dataclass(frozen=True)
class Source:
    scheme: str
    location: str
    """hf: repo id; pvc: CLAIM/PATH; builtin: NAME; file: absolute path."""
    revision: str | None = None

    def __str__(self) -> str:
        if self.scheme == "file":
            return f"file://{self.location}"
        rev = f"@{self.revision}" if self.revision else ""
        return f"{self.scheme}://{self.location}{rev}"


def _check_relative(path: str, what: str) -> None:
    parts = path.split("/")
    if any(p in ("", ".", "..") for p in parts):
        raise SourceError(f"{what} {path!r} must be a relative path without '.', '..' or '//'")


def parse_source(text: str) -> Source:
    """Parses a source string; raises `SourceError` naming what is wrong."""
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in SCHEMES:
        raise SourceError(
            f"source {text!r} must start with one of {', '.join(s + '://' for s in SCHEMES)}"
        )
    if scheme == "hf":
        repo, _, revision = rest.partition("@")
        if not _HF_ID.match(repo):
            raise SourceError(f"hf source {text!r}: {repo!r} is not a Hugging Face repo id")
        if "@" in rest and not revision:
            raise SourceError(f"hf source {text!r}: empty revision after '@'")
        return Source("hf", repo, revision or None)
    if scheme == "pvc":
        claim, _, path = rest.partition("/")
        if not _NAME.match(claim):
            raise SourceError(f"pvc source {text!r}: {claim!r} is not a claim name")
        if path:
            _check_relative(path, "pvc path")
        return Source("pvc", rest.rstrip("/"))
    if scheme == "builtin":
        if not _NAME.match(rest):
            raise SourceError(f"builtin source {text!r}: {rest!r} is not a builtin model name")
        return Source("builtin", rest)
    if not rest.startswith("/"):
        raise SourceError(f"file source {text!r} must be absolute: file:///PATH")
    return Source("file", rest)


def local_path(
    source: Source, *, models_root: Path = MODELS_ROOT, weights_root: Path = WEIGHTS_ROOT
) -> Path:
    """The local folder of a non-hf source (no I/O)."""
    if source.scheme == "pvc":
        return models_root / source.location
    if source.scheme == "builtin":
        return weights_root / source.location
    if source.scheme == "file":
        return Path(source.location)
    raise SourceError(f"{source} is not a local source")


def resolve(
    source: Source | str,
    *,
    models_root: Path = MODELS_ROOT,
    weights_root: Path = WEIGHTS_ROOT,
    download_timeout_s: float = 30.0,
) -> Path:
    """A local folder holding the model of `source`; `SourceError` when there is none."""
    if isinstance(source, str):
        source = parse_source(source)
    if source.scheme == "hf":
        return _resolve_hf(source, download_timeout_s)
    path = local_path(source, models_root=models_root, weights_root=weights_root)
    if not path.exists():
        raise SourceError(f"{source}: {path} does not exist")
    return path


def _resolve_hf(source: Source, timeout_s: float) -> Path:
    os.environ.setdefault("HF_HOME", "/tmp/hf")
    os.environ.setdefault("HF_HUB_ETAG_TIMEOUT", str(int(timeout_s)))
    os.environ.setdefault("HF_HUB_DOWNLOAD_TIMEOUT", str(int(timeout_s)))
    offline = os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes", "on")
    try:
        from huggingface_hub import snapshot_download  # noqa: PLC0415
    except ImportError as exc:  # the light image (extra cpu) has no hub client
        raise SourceError(
            f"{source}: huggingface_hub is not installed (the gpu extra brings it); serve"
            " builtin://, pvc:// or file:// sources from the light image"
        ) from exc
    try:
        folder = snapshot_download(
            repo_id=source.location, revision=source.revision, local_files_only=offline
        )
    except Exception as exc:
        mode = (
            "offline (HF_HUB_OFFLINE set): not in the local cache" if offline else "download failed"
        )
        raise SourceError(f"{source}: {mode}: {type(exc).__name__}: {exc}") from exc
    return Path(folder)
