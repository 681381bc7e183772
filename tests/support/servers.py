"""Servers for tests and benchmarks: an ASGI app under uvicorn in a thread of this process, or a
Python server as its own process; both on 127.0.0.1 and a free port, waited for and stopped."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import httpx
import uvicorn
from fastapi import FastAPI

from tests.support.net import free_port
from tests.support.waiting import eventually

REPO = Path(__file__).resolve().parents[2]


class ServerThread:
    """uvicorn serving `app` on 127.0.0.1:<free port> in a daemon thread."""

    def __init__(self, app: FastAPI, port: int | None = None, http: type | str = "auto") -> None:
        """`http`: uvicorn's HTTP protocol (pizza-serve's is `api.protocol.BoundedProtocol`)."""
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app,
            host="127.0.0.1",
            port=self.port,
            log_level="warning",
            access_log=False,
            http=http,  # type: ignore[arg-type]
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def start(self, timeout: float = 20.0) -> ServerThread:
        self.thread.start()

        def started() -> bool:
            if not self.thread.is_alive():
                raise RuntimeError(f"server on {self.url} did not start")
            return bool(self.server.started)

        eventually(started, timeout, f"the server on {self.url} to start", every=0.01)
        return self

    def stop(self) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=10)


@contextmanager
def serve(app: FastAPI, http: type | str = "auto") -> Iterator[ServerThread]:
    server = ServerThread(app, http=http).start()
    try:
        yield server
    finally:
        server.stop()


def wait_ready(url: str, timeout: float = 60.0) -> None:
    """Until GET {url}/v2/health/ready answers 200."""
    eventually(
        lambda: httpx.get(f"{url}/v2/health/ready", timeout=2).status_code == 200,
        timeout,
        f"{url} ready",
        every=0.05,
        ignoring=httpx.HTTPError,
    )


@dataclass
class ServerProcess:
    url: str
    popen: subprocess.Popen[bytes]

    @property
    def pid(self) -> int:
        return self.popen.pid


def _tail(log: IO[bytes], chars: int = 3000) -> str:
    log.seek(0)
    return log.read().decode(errors="replace")[-chars:]


@contextmanager
def server_process(
    args: list[str],
    ready_path: str,
    *,
    any_answer: bool = False,
    timeout: float = 60.0,
    every: float = 0.1,
    env: dict[str, str] | None = None,
    python: str | None = None,
    port: int | None = None,
    log_path: Path | None = None,
) -> Iterator[ServerProcess]:
    """`python ARGS` ("{port}" in ARGS replaced by a free port, or `port`) as its own process,
    with inference/ on PYTHONPATH; yields once GET `ready_path` answers 200 (with `any_answer`:
    answers at all); stopped afterwards (thawed first, should a test have frozen it).

    Its output goes to `log_path` when given (for tests that read the log), else a temporary file:
    a pipe nobody reads could fill up and block a chatty server."""
    port = port or free_port()
    full_env = {**os.environ, "PYTHONPATH": str(REPO / "inference"), **(env or {})}
    argv = [python or sys.executable, *[a.replace("{port}", str(port)) for a in args]]
    log = log_path.open("w+b") if log_path else tempfile.TemporaryFile()  # noqa: SIM115
    popen = subprocess.Popen(argv, env=full_env, stdout=log, stderr=subprocess.STDOUT)
    server = ServerProcess(f"http://127.0.0.1:{port}", popen)

    def ready() -> bool:
        if popen.poll() is not None:
            raise RuntimeError(f"{args} exited {popen.returncode}: {_tail(log)}")
        status = httpx.get(f"{server.url}{ready_path}", timeout=1).status_code
        return any_answer or status == 200

    try:
        try:
            eventually(ready, timeout, f"{args} ready", every=every, ignoring=httpx.HTTPError)
        except AssertionError as exc:
            raise TimeoutError(f"{exc}: {_tail(log)}") from None
        yield server
    finally:
        popen.send_signal(signal.SIGCONT)
        popen.terminate()
        try:
            popen.wait(timeout=10)
        except subprocess.TimeoutExpired:
            popen.kill()
            popen.wait()
        log.close()


@contextmanager
def serve_subprocess(
    args: list[str], env: dict[str, str] | None = None, log_path: Path | None = None
) -> Iterator[str]:
    """`pizza-serve ARGS --port P` as a real process; yields its URL once it answers."""
    argv = ["-m", "pizza_inference.cli", *args, "--port", "{port}", "--host", "127.0.0.1"]
    with server_process(
        argv, "/v2/health/live", any_answer=True, env=env, log_path=log_path
    ) as server:
        yield server.url
