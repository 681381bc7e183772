"""A bounded, open-loop load generator for the router: real pizza images, every request recorded.

`LoadGenerator` POSTs images to the router's `/classify` the way real clients do (multipart field
`file`, a JPEG or PNG with its content type, no other form fields: the router prefers the primary
and falls back per request). It sends at a fixed rate whatever the latency (open loop), with at
most `concurrency` requests in flight: a request due while the cap is reached is not queued but
recorded as `skipped`. Each request is one `Record`; `summary()` counts them.

From sync test code::

    gen = LoadGenerator("http://10.0.0.123:8000", rate=10, images=pizza_images(12)).start()
    ...  # inject a fault, wait
    records = gen.stop()

or `gen.run_for(3.0)`, or from async code ``async with LoadGenerator(...) as gen: ...`` (the
records are in `gen.records` after the block).

Network rule: only local addresses. The URL's host is resolved first; every address must be
loopback, in 10.0.0.0/16 (Service IPs) or in 10.244.0.0/16 (pod IPs), else `ValueError` and
nothing is sent.

Rate limit: the router limits each client to `rate_limit_per_minute` POSTs (token bucket, burst
= the limit; default 100), keyed by the TCP peer address it sees (uvicorn only rewrites that from
`X-Forwarded-For` when the peer is a trusted proxy, by default 127.0.0.1). Every request of one
generator comes from one address, so above 100 a minute set the limit where the router is
configured: `spec.router.rateLimitPerMinute` of the PizzaModelDeployment (1..1000000), the
router's `--rate-limit-per-minute` / `PIZZA_RATE_LIMIT_PER_MINUTE` (0 disables it), or
`RouterConfig(rate_limit_per_minute=...)` in tests. This generator sends no forwarding headers:
requests over the limit are recorded as status 429 (they count as unanswered).

records.jsonl (`write_records`, or `records_path=`: one JSON object a line, appended as each
request ends)::

    {"t": 1764692400.123, "latency_s": 0.042, "status": 200, "model_used": "primary-cnn",
     "fallback_reason": null, "error": null}

`t` is the send time (time.time()); `latency_s` is null for skipped requests; `status` is the
HTTP status (int) or one of "conn-error", "timeout", "skipped"; `error` is the router's error
reason for a non-200 answer or the exception's text.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import TracebackType
from typing import IO, Any
from urllib.parse import urlsplit

import aiohttp

CLASSIFY_PATH = "/classify"
FILE_FIELD = "file"
CONN_ERROR = "conn-error"
TIMEOUT = "timeout"
SKIPPED = "skipped"
ALLOWED_NETWORKS = (
    ipaddress.ip_network("10.0.0.0/16"),  # Service IPs
    ipaddress.ip_network("10.244.0.0/16"),  # pod IPs
)
LOAD_SEED = 5005
"""The generator stream of `pizza_images`: not a training, validation or test split."""

Status = int | str


@dataclass(frozen=True)
class Record:
    """One request: send time (time.time()), latency, HTTP status or a failure word, the answer."""

    t: float
    latency_s: float | None
    status: Status
    model_used: str | None = None
    fallback_reason: str | None = None
    error: str | None = None

    @property
    def answered(self) -> bool:
        return self.status == 200

    @property
    def sent(self) -> bool:
        return self.status != SKIPPED

    def to_json(self) -> str:
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Record:
        return cls(
            t=float(data["t"]),
            latency_s=None if data.get("latency_s") is None else float(data["latency_s"]),
            status=data["status"],
            model_used=data.get("model_used"),
            fallback_reason=data.get("fallback_reason"),
            error=data.get("error"),
        )


def write_records(records: Iterable[Record], path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(r.to_json() + "\n" for r in records))
    return path


def read_records(path: Path) -> list[Record]:
    lines = path.read_text().splitlines()
    return [Record.from_dict(json.loads(line)) for line in lines if line.strip()]


@dataclass(frozen=True)
class Summary:
    """Counts of the records sent in [start, end). `unanswered`: sent, but no 200."""

    start: float
    end: float
    total: int
    sent: int
    skipped: int
    answered: int
    unanswered: int
    server_errors: int
    by_status: dict[str, int] = field(default_factory=dict)
    by_model: dict[str, int] = field(default_factory=dict)
    by_fallback_reason: dict[str, int] = field(default_factory=dict)

    @property
    def sent_per_second(self) -> float:
        return self.sent / (self.end - self.start) if self.end > self.start else 0.0

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "sent_per_second": self.sent_per_second}


def summary(
    records: Iterable[Record], start: float | None = None, end: float | None = None
) -> Summary:
    """Counts by status, by answering model and by fallback reason; 5xx and unanswered counts.

    `start`/`end` (time.time()) select the records sent in [start, end); they default to the
    first and last send time (end then inclusive)."""
    chosen = sorted(records, key=lambda r: r.t)
    lo = start if start is not None else (chosen[0].t if chosen else 0.0)
    hi = end if end is not None else (chosen[-1].t if chosen else lo)
    if end is None:
        chosen = [r for r in chosen if lo <= r.t <= hi]
    else:
        chosen = [r for r in chosen if lo <= r.t < hi]
    sent = [r for r in chosen if r.sent]
    answered = [r for r in sent if r.answered]
    return Summary(
        start=lo,
        end=hi,
        total=len(chosen),
        sent=len(sent),
        skipped=len(chosen) - len(sent),
        answered=len(answered),
        unanswered=len(sent) - len(answered),
        server_errors=sum(1 for r in sent if isinstance(r.status, int) and r.status >= 500),
        by_status=dict(Counter(str(r.status) for r in chosen)),
        by_model=dict(Counter(r.model_used or "?" for r in answered)),
        by_fallback_reason=dict(Counter(r.fallback_reason for r in answered if r.fallback_reason)),
    )


def check_local_url(url: str) -> str:
    """The URL without a trailing slash, if its host resolves only to local addresses.

    Raises ValueError (before anything is sent) for another scheme, no host, a name that does
    not resolve, or any address that is not loopback, 10.0.0.0/16 or 10.244.0.0/16."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https"):
        raise ValueError(f"{url!r}: only http:// and https:// URLs are accepted")
    host = parts.hostname
    if not host:
        raise ValueError(f"{url!r} has no host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except (OSError, ValueError) as error:
        raise ValueError(f"{url!r}: cannot resolve {host!r}: {error}") from None
    addresses = {ipaddress.ip_address(str(info[4][0]).split("%", 1)[0]) for info in infos}
    for address in addresses:
        mapped = getattr(address, "ipv4_mapped", None)
        checked = mapped or address
        local = checked.is_loopback or any(checked in net for net in ALLOWED_NETWORKS)
        if not local:
            raise ValueError(
                f"{url!r}: {host} resolves to {address}, which is not a local address "
                "(loopback, 10.0.0.0/16 Service IPs or 10.244.0.0/16 pod IPs)"
            )
    return url.rstrip("/")


def content_type_of(image: bytes) -> tuple[str, str]:
    """(content type, file name) of a JPEG or PNG by its magic bytes."""
    if image.startswith(b"\xff\xd8\xff"):
        return "image/jpeg", "pizza.jpg"
    if image.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png", "pizza.png"
    raise ValueError("images must be JPEG or PNG bytes")


def pizza_images(
    n: int, *, seed: int = LOAD_SEED, fmt: str = "JPEG", size: int | None = None
) -> list[bytes]:
    """`n` real pizza images from the project's generator (pizza_models), classes interleaved,
    encoded as JPEG (quality 90) or PNG. Deterministic per seed."""
    if n < 1:
        raise ValueError(f"n must be at least 1, got {n}")
    import io  # noqa: PLC0415
    from itertools import islice  # noqa: PLC0415

    from pizza_inference import CLASSES  # noqa: PLC0415
    from pizza_models.generator import RENDER_SIZE, samples  # noqa: PLC0415

    per_class = -(-n // len(CLASSES))
    out: list[bytes] = []
    for _, image in islice(samples(seed, per_class, size or RENDER_SIZE), n):
        buffer = io.BytesIO()
        if fmt.upper() in ("JPEG", "JPG"):
            image.save(buffer, format="JPEG", quality=90)
        else:
            image.save(buffer, format=fmt.upper())
        out.append(buffer.getvalue())
    return out


class LoadGenerator:
    """Open-loop load on `base_url` + `path`: `rate` requests a second, `concurrency` at most in
    flight (the rest `skipped`), images sent in turn, each request bounded by `timeout_s`."""

    def __init__(
        self,
        base_url: str,
        *,
        rate: float = 10.0,
        concurrency: int = 8,
        images: Sequence[bytes],
        timeout_s: float = 15.0,
        path: str = CLASSIFY_PATH,
        records_path: Path | None = None,
    ) -> None:
        if rate <= 0:
            raise ValueError(f"rate must be positive, got {rate}")
        if concurrency < 1:
            raise ValueError(f"concurrency must be at least 1, got {concurrency}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        if not images:
            raise ValueError("at least one image is needed")
        self.url = check_local_url(base_url) + "/" + path.lstrip("/")
        self.rate = float(rate)
        self.concurrency = concurrency
        self.timeout_s = float(timeout_s)
        self.images = [(image, *content_type_of(image)) for image in images]
        self.records_path = records_path
        self.started_at: float | None = None
        self.stopped_at: float | None = None
        self._records: list[Record] = []
        self._lock = threading.Lock()
        self._stopping: asyncio.Event | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._task: asyncio.Task[None] | None = None
        self._error: BaseException | None = None
        self._out: IO[str] | None = None

    @property
    def records(self) -> list[Record]:
        """The records so far, by send time."""
        with self._lock:
            return sorted(self._records, key=lambda r: r.t)

    def summary(self) -> Summary:
        return summary(self.records, self.started_at, self.stopped_at)

    def write_records(self, path: Path) -> Path:
        return write_records(self.records, path)

    # --- sync use: a background thread with its own event loop ------------------------------

    def start(self, timeout: float = 10.0) -> LoadGenerator:
        if self._thread is not None or self._task is not None:
            raise RuntimeError("this LoadGenerator was already started")
        running = threading.Event()

        def main() -> None:
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self._run(running.set))
            except BaseException as error:  # reported by stop()
                self._error = error
            finally:
                running.set()
                loop.close()

        self._thread = threading.Thread(target=main, name="pizza-loadgen", daemon=True)
        self._thread.start()
        if not running.wait(timeout):
            raise RuntimeError("the load generator did not start")
        if self._error is not None:
            raise RuntimeError("the load generator failed to start") from self._error
        return self

    def stop(self) -> list[Record]:
        """Stops sending, waits for the requests in flight (each bounded by timeout_s), returns
        the records."""
        if self._thread is None:
            raise RuntimeError("start() was not called")
        loop, stopping = self._loop, self._stopping
        if loop is not None and stopping is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop ended meanwhile
                loop.call_soon_threadsafe(stopping.set)
        self._thread.join(timeout=self.timeout_s + 10)
        if self._thread.is_alive():
            raise RuntimeError("the load generator did not stop")
        if self._error is not None:
            raise RuntimeError("the load generator failed") from self._error
        return self.records

    def run_for(self, seconds: float) -> list[Record]:
        """start(), `seconds` of load, stop()."""
        self.start()
        time.sleep(seconds)
        return self.stop()

    # --- async use -----------------------------------------------------------------------------

    async def __aenter__(self) -> LoadGenerator:
        if self._thread is not None or self._task is not None:
            raise RuntimeError("this LoadGenerator was already started")
        running = asyncio.Event()
        self._task = asyncio.create_task(self._run(running.set))
        waiter = asyncio.create_task(running.wait())
        await asyncio.wait({self._task, waiter}, return_when=asyncio.FIRST_COMPLETED)
        if self._task.done():
            waiter.cancel()
            self._task.result()  # raises the failure
            raise RuntimeError("the load generator ended at once")
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._stopping is not None:
            self._stopping.set()
        if self._task is not None:
            await self._task

    # --- the loop ------------------------------------------------------------------------------

    async def _run(self, on_started: Callable[[], object]) -> None:
        self._stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        connector = aiohttp.TCPConnector(limit=self.concurrency)
        in_flight: set[asyncio.Task[None]] = set()
        if self.records_path:
            self.records_path.parent.mkdir(parents=True, exist_ok=True)
        out = self.records_path.open("a") if self.records_path else None
        self._out = out
        try:
            async with aiohttp.ClientSession(
                connector=connector, timeout=timeout, trust_env=False
            ) as session:
                t0 = loop.time()
                self.started_at = time.time()
                on_started()
                n = 0
                while not self._stopping.is_set():
                    delay = t0 + n / self.rate - loop.time()
                    if delay > 0:
                        with contextlib.suppress(TimeoutError):
                            await asyncio.wait_for(self._stopping.wait(), delay)
                        if self._stopping.is_set():
                            break
                    image = self.images[n % len(self.images)]
                    n += 1
                    if len(in_flight) >= self.concurrency:
                        self._add(Record(t=time.time(), latency_s=None, status=SKIPPED))
                        continue
                    task = asyncio.create_task(self._one(session, *image))
                    in_flight.add(task)
                    task.add_done_callback(in_flight.discard)
                self.stopped_at = time.time()
                if in_flight:
                    await asyncio.gather(*in_flight)
        finally:
            self._out = None
            if out is not None:
                out.close()
            if self.stopped_at is None:
                self.stopped_at = time.time()

    def _add(self, record: Record) -> None:
        with self._lock:
            self._records.append(record)
            if self._out is not None:
                self._out.write(record.to_json() + "\n")
                self._out.flush()

    async def _one(
        self, session: aiohttp.ClientSession, image: bytes, content_type: str, name: str
    ) -> None:
        form = aiohttp.FormData()
        form.add_field(FILE_FIELD, image, filename=name, content_type=content_type)
        t = time.time()
        start = time.perf_counter()
        try:
            async with session.post(self.url, data=form) as response:
                body = await response.read()
            latency = time.perf_counter() - start
            record = _record_of(t, latency, response.status, body)
        except TimeoutError:
            record = Record(t, time.perf_counter() - start, TIMEOUT, error="timeout")
        except aiohttp.ClientError as error:
            text = f"{type(error).__name__}: {error}"[:300]
            record = Record(t, time.perf_counter() - start, CONN_ERROR, error=text)
        self._add(record)


def _record_of(t: float, latency: float, status: int, body: bytes) -> Record:
    try:
        data = json.loads(body)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        return Record(t, latency, status, error=None if status == 200 else "non-JSON answer")
    if status == 200:
        return Record(
            t,
            latency,
            status,
            model_used=data.get("model_used"),
            fallback_reason=data.get("fallback_reason"),
        )
    return Record(t, latency, status, error=str(data.get("error") or data.get("detail") or ""))
