"""Supervised host processes: started in order, health-checked, restarted with backoff."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..processes import ManagedProcess, rss_bytes

log = logging.getLogger(__name__)

MAX_BACKOFF = 30.0
STABLE_AFTER = 60.0  # a piece that ran this long starts again from the shortest backoff


@dataclass
class Piece:
    """One node process. `after` names the piece it needs (a kubelet needs its containerd):
    it is not restarted while that one is down. `before_start` runs before every (re)start."""

    name: str
    argv: list[str]
    log_path: Path
    healthy: Callable[[], bool]
    after: str | None = None
    env: dict[str, str] | None = None
    before_start: Callable[[], None] | None = None
    on_healthy: Callable[[], None] | None = None
    process: ManagedProcess | None = None
    restarts: int = 0
    started_at: float = 0.0
    next_start: float = 0.0
    pending_healthy: bool = field(default=False)

    def start(self) -> None:
        if self.before_start is not None:
            self.before_start()
        self.process = ManagedProcess(self.name, self.argv, self.log_path)
        self.process.start(env=self.env)
        self.started_at = time.monotonic()
        self.pending_healthy = self.on_healthy is not None

    def running(self) -> bool:
        return self.process is not None and self.process.running()

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process is not None else None

    def rss(self) -> int:
        return rss_bytes(self.pid) if self.pid is not None else 0

    def stop(self, timeout: float = 10.0) -> None:
        if self.process is not None:
            self.process.stop(timeout)


class Pieces:
    """The pieces in start order."""

    def __init__(self) -> None:
        self.items: list[Piece] = []

    def add(self, piece: Piece) -> Piece:
        self.items.append(piece)
        return piece

    def get(self, name: str) -> Piece:
        return next(p for p in self.items if p.name == name)

    @property
    def pids(self) -> dict[str, int]:
        return {p.name: p.pid for p in self.items if p.pid is not None}

    def supervise(self) -> list[str]:
        """Restart pieces that died (backoff 1, 2, 4 ... 30 s; not while the piece they need is
        down); run `on_healthy` once after each start. Returns the names restarted."""
        now = time.monotonic()
        restarted = []
        for piece in self.items:
            if piece.running():
                if piece.pending_healthy and piece.on_healthy is not None:
                    with contextlib.suppress(Exception):
                        if piece.healthy():
                            piece.on_healthy()
                            piece.pending_healthy = False
                if now - piece.started_at > STABLE_AFTER:
                    piece.restarts = 0
                continue
            if piece.process is None:
                continue  # never started (start-up still under way)
            if piece.after is not None and not self.get(piece.after).running():
                continue
            if piece.next_start == 0.0:
                delay = min(MAX_BACKOFF, 2.0**piece.restarts)
                piece.next_start = now + delay
                log.warning(
                    "%s exited (code %s); restarting in %.0f s; log %s",
                    piece.name,
                    piece.process.returncode,
                    delay,
                    piece.log_path,
                )
                continue
            if now >= piece.next_start:
                piece.next_start = 0.0
                piece.restarts += 1
                piece.start()
                restarted.append(piece.name)
        return restarted

    def stop(self, timeout: float = 10.0) -> None:
        """Stop in reverse start order."""
        for piece in reversed(self.items):
            piece.stop(timeout)
