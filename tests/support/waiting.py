"""Polling until something holds."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def eventually(
    check: Callable[[], T | None],
    timeout: float,
    what: str,
    *,
    every: float = 0.5,
    ignoring: type[Exception] | tuple[type[Exception], ...] = (),
) -> T:
    """Call `check` every `every` s until it returns something truthy, and return that.

    It is called at least once, and once more after `timeout` s have passed; exceptions of the
    `ignoring` types (e.g. AssertionError) count as a falsy answer, any other propagates. On
    timeout it raises AssertionError naming `what` and the last answer (or exception)."""
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = check()
        except ignoring as exc:
            last = exc
        else:
            if value:
                return value
            last = value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"timed out after {timeout:g} s waiting for {what} (last: {last!r})"
            )
        time.sleep(every)
