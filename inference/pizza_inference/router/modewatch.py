"""The router follows its mode live from one ConfigMap, watched through the Kubernetes API.

No Kubernetes client library (the router image stays light): aiohttp, which the router already
uses for the model servers, speaks to the apiserver directly. Only two requests are made, both
allowed by a Role with get/list/watch on `configmaps` and `resourceNames: [NAME]`:

- GET  /api/v1/namespaces/NS/configmaps/NAME
- GET  /api/v1/namespaces/NS/configmaps?fieldSelector=metadata.name%3DNAME&watch=true&...
  (the apiserver authorizes a list/watch whose field selector pins `metadata.name` as a request
  for that resourceName; without the selector, the same Role is refused with 403)

The ConfigMap is the router's routing table: `mode`, `primary` (awake, asleep, or lent: its
pods lent to the canary) and the canary's
three keys (`canaryUrl`, `canaryWeight`, `agreementSample`: `router.canary`). A malformed canary
entry is logged and ignored (the last good one stays); a missing or empty `canaryUrl` is no
canary.

The loop: GET the ConfigMap and apply its `mode`; watch from its resourceVersion, applying each
ADDED/MODIFIED; BOOKMARKs move the resourceVersion on; a watch the apiserver ends (timeout) is
resumed from the last resourceVersion; 410 Gone (the version was compacted away) starts over with
a GET; a missing ConfigMap (404), refused access, a bad answer or a broken connection is retried
with a capped backoff (0.5 s doubling to 5 s). Throughout, the router keeps serving with the last
mode it knew; the watch never touches readiness and never waits in a request's path.
"""

from __future__ import annotations

import asyncio
import json
import logging
import random
import ssl
import time
from typing import Any, Protocol
from urllib.parse import quote, urlencode

import aiohttp

from pizza_inference.config import ModeWatchConfig
from pizza_inference.router.canary import CanaryTable, parse_canary

log = logging.getLogger(__name__)

MODE_KEY = "mode"
PRIMARY_KEY = "primary"
"""`asleep` while the operator keeps the primary at zero for idleness, else `awake` (or absent)."""
SOURCE = "configmap"
REQUEST_TIMEOUT_SECONDS = 10.0
"""For the GET, and for connecting (and each TLS handshake) of the watch."""
WATCH_READ_SLACK_SECONDS = 15.0
"""A watch silent for timeoutSeconds plus this long is taken as a dead connection."""
SHORT_WATCH_SECONDS = 1.0
"""A watch ending cleanly sooner than this, without an event, counts as a failure (backoff)."""


class ModeTarget(Protocol):
    """What the watch changes (the RouterPlane)."""

    mode: str

    def set_mode(self, mode: str, *, source: str) -> bool: ...

    def set_primary_asleep(self, asleep: bool, *, source: str) -> bool: ...

    def set_primary_lent(self, lent: bool, *, source: str) -> bool: ...

    def set_canary(self, table: CanaryTable, *, source: str) -> bool: ...


class ApiStatusError(Exception):
    """The apiserver answered with an error status (HTTP, or a watch ERROR event)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"HTTP {status}: {message}")
        self.status = status


class WatchExpiredError(Exception):
    """410 Gone: the resourceVersion is too old to watch from; GET again."""


def _status_message(raw: bytes) -> str:
    try:
        body = json.loads(raw)
    except ValueError:
        return raw[:200].decode(errors="replace")
    if isinstance(body, dict):
        return str(body.get("message") or body.get("reason") or body)[:300]
    return str(body)[:300]


class ModeWatcher:
    """Runs (`run`, as a task) until cancelled; never raises out of the loop otherwise."""

    def __init__(
        self,
        config: ModeWatchConfig,
        target: ModeTarget,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self.config = config
        self.target = target
        self._rng = rng or random.Random()
        self.resource_version: str | None = None
        """The last resourceVersion seen (None: GET first)."""
        self.synced = False
        """True once the ConfigMap was read at least once."""
        self.watching = False
        """True while a watch stream is open."""
        self.last_error: str | None = None
        self._opened = False  # this attempt's watch stream opened (200)
        ns, name = quote(config.namespace, safe=""), quote(config.configmap, safe="")
        self._object_url = f"{config.api_url}/api/v1/namespaces/{ns}/configmaps/{name}"
        self._list_url = f"{config.api_url}/api/v1/namespaces/{ns}/configmaps"
        self._where = f"{config.namespace}/{config.configmap}"

    # -- state -----------------------------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        return {
            "configmap": self._where,
            "synced": self.synced,
            "watching": self.watching,
            "resource_version": self.resource_version,
            "last_error": self.last_error,
        }

    # -- loop ------------------------------------------------------------------------------
    async def run(self) -> None:
        backoff = self.config.min_backoff_seconds
        async with aiohttp.ClientSession(
            # one connection at a time; none kept when the watch ends (the token may have rotated)
            connector=aiohttp.TCPConnector(limit=1, force_close=True),
            headers={"Accept": "application/json"},
        ) as session:
            while True:
                started = time.monotonic()
                self._opened = False
                events = 0
                try:
                    if self.resource_version is None:
                        self.resource_version = await self._get(session)
                        backoff = self.config.min_backoff_seconds
                    events = await self._watch(session, self.resource_version)
                except WatchExpiredError:
                    log.info("mode watch of %s expired (410); reading it again", self._where)
                    self.resource_version = None
                    continue  # GET again at once
                except asyncio.CancelledError:
                    raise
                except Exception as exc:
                    if self._opened:  # the watch had worked: this is a new run of failures
                        backoff = self.config.min_backoff_seconds
                    delay = self._jitter(backoff)
                    self._note_failure(exc, delay)
                    await asyncio.sleep(delay)
                    backoff = min(backoff * 2, self.config.max_backoff_seconds)
                    continue
                # the apiserver ended the watch (timeoutSeconds): resume from the last version
                if events == 0 and time.monotonic() - started < SHORT_WATCH_SECONDS:
                    await asyncio.sleep(self._jitter(backoff))  # ended at once: do not spin
                    backoff = min(backoff * 2, self.config.max_backoff_seconds)
                else:
                    backoff = self.config.min_backoff_seconds

    def _note_failure(self, exc: Exception, delay: float) -> None:
        if isinstance(exc, ApiStatusError) and exc.status == 404:
            message = f"ConfigMap {self._where} not found"
            self.resource_version = None
        elif isinstance(exc, ApiStatusError) and exc.status in (401, 403):
            message = f"access to ConfigMap {self._where} refused ({exc}); check the token and Role"
        elif isinstance(exc, ApiStatusError | aiohttp.ClientError | OSError | TimeoutError):
            message = f"{type(exc).__name__}: {exc}"
        else:  # a bug or a malformed answer: log it in full, but keep the loop alive
            log.exception("mode watch of %s failed", self._where)
            message = f"{type(exc).__name__}: {exc}"
        self.last_error = message
        log.warning(
            "mode watch: %s; keeping mode %s, retrying in %.1fs", message, self.target.mode, delay
        )

    def _jitter(self, backoff: float) -> float:
        """Between 80 % and 100 % of `backoff`, floored at the minimum (router pods spread out)."""
        return max(self.config.min_backoff_seconds, backoff * self._rng.uniform(0.8, 1.0))

    # -- requests --------------------------------------------------------------------------
    def _credentials(self) -> tuple[dict[str, str], ssl.SSLContext | bool]:
        """Read on every (re)connect: projected tokens rotate, so does (rarely) the CA bundle."""
        token = self.config.token_file.read_text(encoding="utf-8").strip()
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        if not self.config.api_url.startswith("https://"):
            return headers, False
        context = ssl.create_default_context(cafile=str(self.config.ca_file))
        return headers, context

    async def _get(self, session: aiohttp.ClientSession) -> str:
        headers, tls = self._credentials()
        async with session.get(
            self._object_url,
            headers=headers,
            ssl=tls,
            timeout=aiohttp.ClientTimeout(total=REQUEST_TIMEOUT_SECONDS),
        ) as response:
            raw = await response.read()
            if response.status != 200:
                raise ApiStatusError(response.status, _status_message(raw))
        configmap = json.loads(raw)
        self._apply(configmap, "read")
        if not self.synced:
            log.info("mode ConfigMap %s read; mode %s", self._where, self.target.mode)
        self.synced = True
        self.last_error = None
        return str(configmap["metadata"]["resourceVersion"])

    async def _watch(self, session: aiohttp.ClientSession, resource_version: str) -> int:
        """Follows one watch stream to its end; returns how many events it brought."""
        headers, tls = self._credentials()
        query = urlencode(
            {
                "fieldSelector": f"metadata.name={self.config.configmap}",
                "watch": "true",
                "resourceVersion": resource_version,
                "allowWatchBookmarks": "true",
                "timeoutSeconds": str(self.config.watch_timeout_seconds),
            }
        )
        timeout = aiohttp.ClientTimeout(
            total=None,
            connect=REQUEST_TIMEOUT_SECONDS,
            sock_read=self.config.watch_timeout_seconds + WATCH_READ_SLACK_SECONDS,
        )
        events = 0
        async with session.get(
            f"{self._list_url}?{query}", headers=headers, ssl=tls, timeout=timeout
        ) as response:
            if response.status == 410:
                raise WatchExpiredError(_status_message(await response.read()))
            if response.status != 200:
                raise ApiStatusError(response.status, _status_message(await response.read()))
            self.watching = self._opened = True
            self.last_error = None
            try:
                buffer = bytearray()
                async for chunk in response.content.iter_any():
                    buffer.extend(chunk)
                    while (end := buffer.find(b"\n")) >= 0:
                        line = bytes(buffer[:end])
                        del buffer[: end + 1]
                        if line.strip():
                            self._event(json.loads(line))
                            events += 1
            finally:
                self.watching = False
        return events

    # -- events ----------------------------------------------------------------------------
    def _event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        obj = event.get("object") or {}
        if kind == "ERROR":
            code = int(obj.get("code") or 0)
            if code == 410:
                raise WatchExpiredError(str(obj.get("message", "")))
            raise ApiStatusError(code, str(obj.get("message") or obj.get("reason") or obj))
        version = (obj.get("metadata") or {}).get("resourceVersion")
        if version:
            self.resource_version = str(version)
        if kind in ("ADDED", "MODIFIED"):
            self._apply(obj, kind.lower())
        elif kind == "DELETED":
            log.warning(
                "mode ConfigMap %s was deleted; keeping mode %s until it is back",
                self._where,
                self.target.mode,
            )

    def _apply(self, configmap: dict[str, Any], how: str) -> None:
        data = configmap.get("data") or {}
        primary = data.get(PRIMARY_KEY)
        state = primary.strip() if isinstance(primary, str) else ""
        self.target.set_primary_asleep(state == "asleep", source=SOURCE)
        self.target.set_primary_lent(state == "lent", source=SOURCE)
        try:
            canary = parse_canary(data)
        except ValueError as exc:
            log.warning(
                "routing ConfigMap %s (%s): %s; keeping the canary entry as it was",
                self._where,
                how,
                exc,
            )
        else:
            self.target.set_canary(canary, source=SOURCE)
        mode = data.get(MODE_KEY)
        if not isinstance(mode, str):
            log.warning(
                "mode ConfigMap %s (%s) has no key %r; keeping mode %s",
                self._where,
                how,
                MODE_KEY,
                self.target.mode,
            )
            return
        if not self.target.set_mode(mode.strip(), source=SOURCE):
            log.debug("mode ConfigMap %s (%s): mode %s", self._where, how, self.target.mode)
