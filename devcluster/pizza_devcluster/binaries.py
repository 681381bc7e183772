"""Where the control-plane binaries are (`make binaries` builds them into `.bin/`)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

BIN_DIR_ENV = "PIZZA_DEVCLUSTER_BIN_DIR"
REQUIRED = ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok")


class BinariesMissingError(FileNotFoundError):
    """Raised with a message telling the user to run `make binaries`."""


@dataclass(frozen=True)
class Binaries:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name


def _candidates() -> list[Path]:
    dirs: list[Path] = []
    if env := os.environ.get(BIN_DIR_ENV):
        return [Path(env)]
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        dirs.extend(parent / ".bin" for parent in (start, *start.parents))
    return dirs


def find_binaries(bin_dir: Path | None = None) -> Binaries:
    """The first directory holding every required binary: `bin_dir`, $PIZZA_DEVCLUSTER_BIN_DIR,
    or a `.bin/` in the current directory, the package's checkout or one of their parents."""
    candidates = [bin_dir] if bin_dir is not None else _candidates()
    for directory in candidates:
        if all(os.access(directory / name, os.X_OK) for name in REQUIRED):
            return Binaries(directory)
    looked = ", ".join(str(d) for d in dict.fromkeys(candidates))
    raise BinariesMissingError(
        f"control-plane binaries ({', '.join(REQUIRED)}) not found in: {looked}. "
        "Run `make binaries` in the repository root to build them into .bin/ "
        f"(or set {BIN_DIR_ENV})."
    )
