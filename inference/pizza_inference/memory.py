"""The memory a server lets requests hold: per-request limits and the budget in flight.

Pure arithmetic and accounting, no I/O (standard library only). A process gets one budget in
bytes (`--memory-budget-bytes`, `PIZZA_MEMORY_BUDGET_BYTES`; the operator derives it from the
pod's memory limit, see inference/README.md). It is split into pools:

- **bodies**: request bodies and what parsing them copies. A request reserves `BODY_COPIES`
  times its body (the body, the image bytes cut out of it, and the decoded JSON text or a
  socket-buffer copy on the way to a model server), when it arrives (its Content-Length) and as
  its bytes (or, compressed, its inflated bytes) come in. A body that does not fit is refused at
  once (503, Retry-After): nothing waits for body memory.
- **images** (model servers only): decoded pixels, `BYTES_PER_PIXEL` per pixel, from just
  before an image is decoded until its prediction is done (so the images waiting in the
  batcher's queue are counted). An image that does not fit waits, at most `IMAGE_WAIT_SECONDS`,
  for the images ahead of it (the images of one large batch request go through in turns).

Each endpoint's body limit is what the endpoint needs, but never more than one request may
reserve (`body pool / BODY_COPIES`), so any request within its limit can be served alone.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

MIB = 1024 * 1024

MAX_IMAGE_BYTES = 10 * MIB
"""Upload limit of the prior system, kept: 10 MB (an encoded JPEG or PNG)."""

FORM_OVERHEAD_BYTES = 64 * 1024
"""Room in a multipart body, beyond the image, for the part headers and the small form fields."""

INFER_OVERHEAD_BYTES = 64 * 1024
"""Room in an infer body, beyond its images, for the JSON request around them."""

BASE64_IMAGE_BYTES = 4 * MAX_IMAGE_BYTES // 3 + 8
"""One image at the limit in an infer body: base64 (4/3) plus its quotes and comma (JSON), or
its 4-byte length (binary)."""

OTHER_BODY_BYTES = 64 * 1024
"""Any other endpoint's body limit (none of them reads a body)."""

BODY_COPIES = 3
"""Bytes of memory one body byte costs while its request is handled (see the module doc)."""

BYTES_PER_PIXEL = 8
"""Memory one decoded pixel costs: Pillow keeps RGB as 4 bytes a pixel, and decoding a CMYK
JPEG or an RGBA PNG, or the model's input conversion, holds a second copy (measured, see
inference/README.md)."""

MODEL_BODY_SHARE = 4
"""A model server gives 1/4 of its budget to bodies and the rest to decoded images."""

IMAGE_WAIT_SECONDS = 5.0
"""The longest a decoded image waits for room in the image pool before the request gets 503."""

DEFAULT_ROUTER_BUDGET_BYTES = 80 * MIB
"""The router's budget without `PIZZA_MEMORY_BUDGET_BYTES`: what the operator derives from the
router's default memory limit (256 MiB)."""

DEFAULT_MODEL_BUDGET_BYTES = 512 * MIB
"""A model server's budget without `PIZZA_MEMORY_BUDGET_BYTES` (a run by hand): room for one
40-megapixel image and a full-size upload."""

MIN_BUDGET_BYTES = 16 * MIB
"""The smallest budget a server takes (a smaller number is more likely MiB meant as bytes)."""

RETRY_AFTER_SECONDS = 1
"""What a 503 for a full budget asks the client to wait."""


@dataclass(frozen=True)
class MemoryLimits:
    """The limits of one server process, all derived from its budget (`memory_limits`)."""

    budget_bytes: int
    body_pool_bytes: int
    """Request bodies in flight, each counted `BODY_COPIES` times."""
    image_pool_bytes: int
    """Decoded images in flight (0 on the router, which decodes none)."""
    upload_bytes: int
    """A multipart body (/classify, /predict/*, /ab-test/compare)."""
    infer_bytes: int
    """An Open Inference Protocol infer body, as sent and after decompression."""
    other_bytes: int = OTHER_BODY_BYTES

    @property
    def max_image_pixels(self) -> int:
        """The largest image (width x height) whose decoding fits the image pool alone."""
        return self.image_pool_bytes // BYTES_PER_PIXEL

    def describe(self) -> dict[str, int]:
        return {
            "budget_bytes": self.budget_bytes,
            "body_pool_bytes": self.body_pool_bytes,
            "image_pool_bytes": self.image_pool_bytes,
            "upload_bytes": self.upload_bytes,
            "infer_bytes": self.infer_bytes,
            "max_image_pixels": self.max_image_pixels,
        }


def check_budget(budget_bytes: int) -> None:
    if budget_bytes < MIN_BUDGET_BYTES:
        raise ValueError(
            f"the memory budget must be at least {MIN_BUDGET_BYTES} bytes (16 MiB), got"
            f" {budget_bytes}"
        )


def infer_need_bytes(images: int) -> int:
    """An infer body of `images` images at the upload limit, with its JSON around them."""
    return images * BASE64_IMAGE_BYTES + INFER_OVERHEAD_BYTES


def memory_limits(budget_bytes: int, *, decodes_images: bool, batch_images: int) -> MemoryLimits:
    """The limits a budget allows. `decodes_images`: a model server (a share of the budget goes
    to decoded images); `batch_images`: the images an infer request is sized for (a model
    server's max batch size; the router's most images per request)."""
    check_budget(budget_bytes)
    if batch_images < 1:
        raise ValueError(f"batch_images must be at least 1, got {batch_images}")
    bodies = budget_bytes // MODEL_BODY_SHARE if decodes_images else budget_bytes
    per_request = bodies // BODY_COPIES
    return MemoryLimits(
        budget_bytes=budget_bytes,
        body_pool_bytes=bodies,
        image_pool_bytes=budget_bytes - bodies if decodes_images else 0,
        upload_bytes=min(MAX_IMAGE_BYTES + FORM_OVERHEAD_BYTES, per_request),
        infer_bytes=min(infer_need_bytes(batch_images), per_request),
        other_bytes=min(OTHER_BODY_BYTES, per_request),
    )


def image_cost(width: int, height: int) -> int:
    """The memory decoding (and predicting) one image of this size holds."""
    return max(0, width) * max(0, height) * BYTES_PER_PIXEL


class MemoryPool:
    """Bytes in flight against a capacity. Used from the event loop only (not thread-safe).

    `try_acquire` takes room now or not at all; `acquire` waits for it, first come first
    served, up to a timeout. `on_change` is told the pool after every change (metrics)."""

    def __init__(
        self,
        name: str,
        capacity: int,
        on_change: Callable[[MemoryPool], None] | None = None,
    ) -> None:
        if capacity < 0:
            raise ValueError(f"capacity must not be negative, got {capacity}")
        self.name = name
        self.capacity = capacity
        self.in_use = 0
        self._on_change = on_change
        self._waiters: deque[tuple[int, asyncio.Future[None]]] = deque()
        self._changed()

    def fits(self, size: int) -> bool:
        """Whether `size` more bytes fit now."""
        return self.in_use + size <= self.capacity

    def try_acquire(self, size: int) -> bool:
        """Takes `size` bytes if they fit and nobody waits ahead; False otherwise."""
        if size <= 0:
            return True
        if self._waiters or not self.fits(size):
            return False
        self.in_use += size
        self._changed()
        return True

    def release(self, size: int) -> None:
        if size <= 0:
            return
        if size > self.in_use:
            raise ValueError(f"releasing {size} bytes, only {self.in_use} in use ({self.name})")
        self.in_use -= size
        self._changed()
        self._wake()

    async def acquire(self, size: int, timeout: float) -> bool:
        """Takes `size` bytes, waiting up to `timeout` seconds behind earlier waiters; False when
        the time runs out (or when `size` is more than the whole pool)."""
        if size > self.capacity:
            return False
        if self.try_acquire(size):
            return True
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        entry = (size, future)
        self._waiters.append(entry)
        granted = False
        try:
            async with asyncio.timeout(timeout):
                await future
            granted = True
            return True
        except TimeoutError:
            return False
        finally:
            if not granted:
                if future.done() and not future.cancelled():
                    self.release(size)  # granted just as this waiter gave up
                else:
                    future.cancel()
                    if entry in self._waiters:
                        self._waiters.remove(entry)
                    self._wake()  # the ones behind may fit now

    def _wake(self) -> None:
        """Gives room to the waiters at the head that fit now, in order."""
        granted = False
        while self._waiters:
            size, future = self._waiters[0]
            if not future.done():
                if not self.fits(size):
                    break
                self.in_use += size
                future.set_result(None)
                granted = True
            self._waiters.popleft()
        if granted:
            self._changed()

    def _changed(self) -> None:
        if self._on_change is not None:
            self._on_change(self)


class Reservation:
    """One request's share of a pool, grown as its body arrives, released when it is done."""

    def __init__(self, pool: MemoryPool) -> None:
        self.pool = pool
        self.held = 0

    def grow_to(self, size: int) -> bool:
        """Holds at least `size` bytes; False (holding what it held) when they do not fit."""
        if size <= self.held:
            return True
        if not self.pool.try_acquire(size - self.held):
            return False
        self.held = size
        return True

    def release(self) -> None:
        self.pool.release(self.held)
        self.held = 0
