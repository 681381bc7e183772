"""Child processes in their own process groups, with log files, that die with their parent."""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

_PR_SET_PDEATHSIG = 1


def _die_with_parent() -> None:
    """Runs in the child before exec: SIGKILL it when the process that started it dies.

    This is what keeps components from outliving a supervisor or pytest killed with SIGKILL.
    """
    libc_name = ctypes.util.find_library("c")
    if libc_name is None:
        return
    libc = ctypes.CDLL(libc_name, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


class ProcessExitedError(RuntimeError):
    """A component exited while it should have been running."""


class ManagedProcess:
    """One component: started in a new session (its own process group), output in a log file."""

    def __init__(self, name: str, argv: Sequence[str], log_path: Path) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self._popen: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    def start(self, env: dict[str, str] | None = None) -> None:
        if self._popen is not None:
            raise RuntimeError(f"{self.name} already started")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self._popen = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                preexec_fn=_die_with_parent,  # noqa: PLW1509 (prctl only; no locks taken)
                env=env,
            )

    def running(self) -> bool:
        return self._popen is not None and self._popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen is not None else None

    def check_running(self) -> None:
        """Raise ProcessExitedError with the tail of the log when the process has exited."""
        if self._popen is None:
            raise ProcessExitedError(f"{self.name} was never started")
        code = self._popen.poll()
        if code is not None:
            raise ProcessExitedError(
                f"{self.name} exited with code {code}; last lines of {self.log_path}:\n"
                + self.log_tail()
            )

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def terminate(self) -> None:
        """Send SIGTERM to the whole process group (returns at once)."""
        if self._popen is not None and self._popen.poll() is None:
            _signal_group(self._popen.pid, signal.SIGTERM)

    def wait_stopped(self, timeout: float = 10.0) -> None:
        """Wait for the child to exit, SIGKILL its group after `timeout` seconds, reap it."""
        if self._popen is None:
            return
        pgid = self._popen.pid  # start_new_session: the child leads its own group
        try:
            self._popen.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            _signal_group(pgid, signal.SIGKILL)
            self._popen.wait(timeout=timeout)
        # Anything the component forked into its group goes too.
        _signal_group(pgid, signal.SIGKILL)

    def kill(self) -> None:
        """SIGKILL the whole process group at once and reap it (a crash, for fault tests)."""
        if self._popen is not None and self._popen.poll() is None:
            _signal_group(self._popen.pid, signal.SIGKILL)
        self.wait_stopped(timeout=10.0)

    def stop(self, timeout: float = 10.0) -> None:
        self.terminate()
        self.wait_stopped(timeout)


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def pid_alive(pid: int) -> bool:
    """True when `pid` exists and is not a zombie."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            state = stat.read().rsplit(")", 1)[1].split()[0]
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return False
    return state not in ("Z", "X")


def rss_bytes(pid: int) -> int:
    """Resident set size of one process from /proc (0 when it is gone)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) * 1024
    except (FileNotFoundError, ProcessLookupError):
        return 0
    return 0


def wait_gone(pids: Sequence[int], timeout: float) -> list[int]:
    """Wait until none of `pids` is alive; return those still alive after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    alive = [pid for pid in pids if pid_alive(pid)]
    while alive and time.monotonic() < deadline:
        time.sleep(0.05)
        alive = [pid for pid in alive if pid_alive(pid)]
    return alive
