"""The Lease, read and written: wait to lead, renew while leading, fence every write.

`acquire()` blocks until this replica holds the Lease; `keep()` then renews it in a thread and
calls `on_lost` once it is gone (another replica holds it: this one was frozen or cut off past its
term). `fence()` is the API door's check before each write: it passes while the term is
confirmed, waits a little for a renewal otherwise, and raises `UnreachableError` when none comes,
so a replica that wakes after a freeze writes nothing before it has learnt where it stands.
"""

from __future__ import annotations

import datetime
import logging
import threading
import time
from collections.abc import Callable

from pizza_operator.kube import ConflictError, Kube, KubeError, UnreachableError
from pizza_operator.leadership.lease import (
    Seen,
    Timing,
    confirmed,
    lease_body,
    may_take,
    observe,
    released,
)

logger = logging.getLogger(__name__)


class Elector:
    def __init__(
        self,
        kube: Kube,
        namespace: str,
        name: str,
        *,
        identity: str,
        timing: Timing,
        beat: Callable[[], None] = lambda: None,
    ) -> None:
        self.kube, self.namespace, self.name = kube, namespace, name
        self.identity, self.timing, self.beat = identity, timing, beat
        self.seen: Seen | None = None
        self.last_renewed: float | None = None
        self.lost = threading.Event()
        self.renewed = threading.Condition()
        self._stop = threading.Event()
        self._unreadable = False

    @property
    def leading(self) -> bool:
        now = time.monotonic()
        return confirmed(self.last_renewed, now, self.timing) and not self.lost.is_set()

    def acquire(self, stop: threading.Event) -> bool:
        """Block until this replica holds the Lease (True) or `stop` is set (False)."""
        logger.info("waiting for the lease %s/%s as %s", self.namespace, self.name, self.identity)
        while not stop.is_set():
            if self._try_once(taking=True):
                self.lost.clear()
                logger.info("leading: took the lease %s/%s", self.namespace, self.name)
                return True
            stop.wait(self.timing.retry_every)
        return False

    def keep(self, on_lost: Callable[[], None]) -> threading.Thread:
        """Renew in a thread until `release()` or the Lease is lost (then `on_lost()`)."""

        def run() -> None:
            while not self._stop.wait(self.timing.renew_every):
                self._try_once(taking=False)
                if self.lost.is_set():
                    logger.warning("lost the lease %s/%s: stopping", self.namespace, self.name)
                    on_lost()
                    return

        self._stop.clear()
        thread = threading.Thread(target=run, name="lease-renew", daemon=True)
        thread.start()
        return thread

    def fence(self) -> None:
        """Pass while the term is confirmed; else wait up to a renew period for one renewal."""
        if self.leading:
            return
        deadline = time.monotonic() + self.timing.renew_every * 2
        with self.renewed:
            while not self.leading and not self.lost.is_set():
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self.renewed.wait(left)
        if not self.leading:
            why = "lost" if self.lost.is_set() else "not renewed within its deadline"
            raise UnreachableError(0, "NotLeading", f"lease {self.name}: {why}; write refused")

    def release(self) -> None:
        """Stop renewing and hand the Lease back, so that a standby takes over at once."""
        self._stop.set()
        if self.lost.is_set() or self.last_renewed is None:
            return
        try:
            live = self.kube.read_lease(self.namespace, self.name)
            body = released(live, self.identity) if live is not None else None
            if body is not None:
                self.kube.write_lease(body)
                logger.info("released the lease %s/%s", self.namespace, self.name)
        except KubeError as exc:  # the next replica waits one lease duration instead
            logger.warning("lease not released: %s", exc)
        self.last_renewed = None

    def _try_once(self, *, taking: bool) -> bool:
        """One look at the Lease; write it when we hold it or may take it. True when written."""
        now = time.monotonic()
        self.beat()
        try:
            live = self.kube.read_lease(self.namespace, self.name)
        except KubeError as exc:
            self._unreadable = True
            logger.debug("lease unreadable: %s", exc)
            return False
        self.seen = observe(self.seen, live, now, gap=self._unreadable)
        self._unreadable = False
        if not taking and self.seen.holder != self.identity:
            self.lost.set()  # someone else holds it: our term ended while we did not look
            with self.renewed:
                self.renewed.notify_all()
            return False
        if taking and not may_take(self.seen, self.identity, now, self.timing):
            return False
        body = lease_body(
            self.name,
            self.namespace,
            me=self.identity,
            timing=self.timing,
            now=_micro_time(),
            previous=live,
        )
        try:
            self.kube.write_lease(body)
        except ConflictError:  # another replica wrote first: look again next round
            return False
        except KubeError as exc:
            self._unreadable = isinstance(exc, UnreachableError)
            logger.warning("lease not written: %s", exc)
            return False
        with self.renewed:
            self.last_renewed = now
            self.renewed.notify_all()
        return True


def _micro_time() -> str:
    """A Lease's times are MicroTime: RFC 3339 with microseconds."""
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
