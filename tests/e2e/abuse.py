"""Helpers of the abuse suite (test_abuse.py): hostile bodies, the judging of each answer, slow
senders over raw sockets, and the memory of a pod's container read from its cgroup.

The real nodes run on this machine with cgroup v1 and the kubelet's cgroupfs driver: a
container's memory cgroup is `/sys/fs/cgroup/memory/pizza-NODE/kubepods/.../pod<UID>/<ID>`.
Its `memory.max_usage_in_bytes` is the peak the kernel charged it (what its memory limit is
judged against); writing 0 there starts the peak afresh."""

from __future__ import annotations

import functools
import io
import json
import os
import re
import socket
import struct
import time
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import httpx
from PIL import Image
from pizza_load.freeze import container_id

MIB = 1024 * 1024
MEMORY_CGROUPS = Path("/sys/fs/cgroup/memory")
BOMB_BYTES = 850 * 1000 * 1000
"""What each compressed bomb inflates to (the incident: about 850 MB from about 1 MB)."""
PLAIN_BYTES = 300 * 1000 * 1000


@dataclass
class Answer:
    """One hostile request and what came back: a status, the JSON reason, or the failure."""

    case: str
    target: str
    status: int | None
    reason: str | None
    seconds: float
    failure: str | None = None
    closed: bool | None = None
    """Slow senders: whether the server closed the connection (`seconds`: until then)."""

    @property
    def proper(self) -> bool:
        """200, or a 4xx/429/503 with a JSON reason; never a 5xx other than 503, nor a reset."""
        if self.status == 200:
            return True
        refused = self.status is not None and (400 <= self.status < 500 or self.status == 503)
        return refused and self.reason is not None


def judge(case: str, target: str, started: float, result: httpx.Response | Exception) -> Answer:
    took = time.monotonic() - started
    if isinstance(result, Exception):
        return Answer(case, target, None, None, took, f"{type(result).__name__}: {result}")
    reason = None
    if result.status_code != 200:
        try:
            body = result.json()
            reason = body.get("error") if isinstance(body, dict) else None
        except ValueError:
            reason = None
    return Answer(case, target, result.status_code, reason, took)


def post(
    case: str, target: str, url: str, content: Any, headers: dict[str, str], *, timeout: float = 120
) -> Answer:
    started = time.monotonic()
    try:
        response = httpx.post(url, content=content, headers=headers, timeout=timeout)
    except httpx.HTTPError as exc:
        return judge(case, target, started, exc)
    return judge(case, target, started, response)


@functools.cache
def bomb(encoding: str) -> bytes:
    """`BOMB_BYTES` of one byte repeated, compressed (gzip, or zlib framing for deflate)."""
    wbits = 16 + zlib.MAX_WBITS if encoding == "gzip" else zlib.MAX_WBITS
    packer = zlib.compressobj(9, zlib.DEFLATED, wbits)
    block = b"0" * MIB
    parts = [packer.compress(block) for _ in range(BOMB_BYTES // MIB)]
    return b"".join([*parts, packer.flush()])


def plain_chunks(total: int = PLAIN_BYTES, chunk: bytes = b"0" * MIB) -> Any:
    for _ in range(total // len(chunk)):
        yield chunk


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


@functools.cache
def pixel_bomb_png(width: int, height: int) -> bytes:
    """A valid grayscale PNG of `width` x `height` zero pixels, compressed row by row (a 30000 x
    30000 one is about 0.9 MB and decodes to 900 MB); built without holding its pixels."""
    packer = zlib.compressobj(9)
    row = b"\x00" * (width + 1)  # filter byte + pixels
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", idat)
        + _png_chunk(b"IEND", b"")
    )


@functools.cache
def large_png(megapixels: float) -> bytes:
    """A real RGB PNG of about `megapixels` (one colour: small to send, large to decode)."""
    side = int((megapixels * 1e6) ** 0.5)
    buffer = io.BytesIO()
    Image.new("RGB", (side, side), (200, 120, 40)).save(buffer, "PNG")
    return buffer.getvalue()


def multipart(data: bytes, filename: str, content_type: str) -> tuple[bytes, dict[str, str]]:
    body = (
        b"--x\r\n"
        + f'Content-Disposition: form-data; name="file"; filename="{filename}"\r\n'.encode()
        + f"Content-Type: {content_type}\r\n\r\n".encode()
        + data
        + b"\r\n--x--\r\n"
    )
    return body, {"Content-Type": "multipart/form-data; boundary=x"}


def slow_sender(
    target: str, url: str, path: str, length: int | None, *, every: float, until: float
) -> Answer:
    """A request whose head declares `length` body bytes (None: sends no head at all) and that
    then trickles a byte every `every` s, for at most `until` s, reading what the server says."""
    host, port = url.removeprefix("http://").split(":")
    case = "slow head (idle connection)" if length is None else f"slow body {path}"
    started = time.monotonic()
    answer = b""
    closed = False
    try:
        with socket.create_connection((host, int(port)), timeout=until + 10) as sock:
            if length is not None:
                sock.sendall(
                    f"POST {path} HTTP/1.1\r\nHost: x\r\n".encode()
                    + b"Content-Type: multipart/form-data; boundary=x\r\n"
                    + f"Content-Length: {length}\r\n\r\n--x\r\n".encode()
                )
            sock.settimeout(every)
            while time.monotonic() - started < until:
                try:
                    chunk = sock.recv(65536)
                except TimeoutError:
                    if length is not None:
                        sock.sendall(b"a")
                    continue
                if not chunk:
                    closed = True
                    break
                answer += chunk
    except OSError as exc:
        closed = True  # reset by the server
        if not answer:
            return Answer(case, target, None, None, time.monotonic() - started, repr(exc))
    took = time.monotonic() - started
    status_line = re.match(rb"HTTP/1\.1 (\d{3}) ", answer)
    if status_line is None:
        return Answer(case, target, None, None, took, f"no answer in {took:.0f} s: {answer[:80]!r}")
    reason = re.search(rb'"error":"([a-z_]+)"', answer)
    error = reason.group(1).decode() if reason else None
    return Answer(case, target, int(status_line.group(1)), error, took, closed=closed)


def memory_cgroup(pod: dict[str, Any], container: str = "server") -> Path:
    """The memory cgroup directory of the pod's container on its real node."""
    cid = container_id(pod, container)
    for dirpath, dirnames, _ in os.walk(MEMORY_CGROUPS):
        for name in dirnames:
            if cid in name:
                return Path(dirpath) / name
    raise AssertionError(f"no memory cgroup of container {cid[:12]} under {MEMORY_CGROUPS}")


def reset_peak(cgroup: Path) -> bool:
    """Starts the cgroup's peak afresh from its usage now; False where the kernel refuses."""
    try:
        (cgroup / "memory.max_usage_in_bytes").write_text("0")
    except OSError:
        return False
    return True


def memory_reading(cgroup: Path) -> dict[str, int]:
    """usage, peak and limit (bytes) and the OOM-kill count where the kernel has one."""

    def read(name: str) -> int:
        return int((cgroup / name).read_text().split()[0])

    reading = {
        "usage_bytes": read("memory.usage_in_bytes"),
        "peak_bytes": read("memory.max_usage_in_bytes"),
        "limit_bytes": read("memory.limit_in_bytes"),
        "failcnt": read("memory.failcnt"),
    }
    control = (cgroup / "memory.oom_control").read_text()
    kills = re.search(r"^oom_kill (\d+)$", control, re.M)
    if kills:
        reading["oom_kill"] = int(kills.group(1))
    stat = dict(line.split() for line in (cgroup / "memory.stat").read_text().splitlines())
    reading["rss_bytes"] = int(stat.get("rss", 0))
    reading["cache_bytes"] = int(stat.get("cache", 0))
    return reading


def restarts(pod: dict[str, Any]) -> dict[str, tuple[int, str | None]]:
    """Per container: its restart count and the reason it last terminated (OOMKilled...)."""
    out = {}
    for status in pod["status"].get("containerStatuses", []):
        last = status.get("lastState", {}).get("terminated") or {}
        out[status["name"]] = (int(status.get("restartCount", 0)), last.get("reason"))
    return out


def write_results(path: Path, record: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=1, default=_plain) + "\n")


def _plain(value: Any) -> Any:
    if isinstance(value, Answer):
        return asdict(value)
    raise TypeError(type(value))
