"""The router's data plane: decide primary or fallback, forward, fall back per request.

A request meant for the primary goes there only within its client's share (`router.shares`);
what it meets there is counted by client group (`router.clients`) beside the prior system's
counters, so the operator can tell a primary that fails for everyone from one that fails for
one client (docs/rollback.md).

While a new primary revision is a canary (`router.canary`), a primary-bound request goes to it
first with probability `canaryWeight`/100; a canary that fails (or whose own breaker is open)
hands the request to the stable primary, then the fallback. The canary's failures are its own:
they open neither the stable primary's breaker nor count in its client groups."""

from __future__ import annotations

import asyncio
import json
import logging
import random
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import aiohttp

from pizza_inference import CLASSES, metrics
from pizza_inference.config import ROUTER_MODES, RouterConfig
from pizza_inference.errors import (
    InferenceError,
    ModelNotReadyError,
    UpstreamBusyError,
    UpstreamRejectedError,
)
from pizza_inference.router.breaker import CircuitBreaker
from pizza_inference.router.canary import AgreementSampler, CanaryTable
from pizza_inference.router.clients import CLIENT_GROUPS, CURRENT_CLIENT, client_group
from pizza_inference.router.shares import PrimaryShares
from pizza_inference.service import (
    ABStatus,
    Comparison,
    Health,
    HealthState,
    ImageUpload,
    MetricsSummary,
    ModelInfo,
    Prediction,
    ServiceStatus,
    Target,
)

if TYPE_CHECKING:
    from pizza_inference.router.modewatch import ModeWatcher

log = logging.getLogger(__name__)

ROUTER_MODEL_NAME = "pizza-classifier"
"""The name the router answers to on the Open Inference Protocol (it routes to real models)."""


UPSTREAM_KEEPALIVE_SECONDS = 4.0
"""Idle time after which the router closes a pooled connection to a model server: under uvicorn's
default keep-alive timeout (5 s), so that the router never sends on a connection the server is
closing (a POST is not retried, and the request would fall back)."""


class UpstreamFailureError(Exception):
    """The model server could not answer; `reason` is a fallback reason, `retry_after_s` the
    Retry-After of a model server that sheds load (429, 503), if it sent one."""

    def __init__(self, reason: str, message: str, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.retry_after_s = retry_after_s


def retry_after_seconds(value: str | None) -> int | None:
    """A Retry-After header in seconds (the HTTP-date form is not used by our servers)."""
    if value is None or not value.strip().isdigit():
        return None
    return int(value.strip())


@dataclass
class UpstreamStats:
    url: str
    role: str = "primary"
    """primary (the stable one), canary or fallback: the `upstream` label of its metrics."""
    requests: int = 0
    successes: int = 0
    total_seconds: float = 0.0
    failures: dict[str, int] = field(default_factory=dict)
    model_name: str | None = None

    def as_dict(self) -> dict[str, Any]:
        mean = self.total_seconds / self.successes if self.successes else None
        return {
            "url": self.url,
            "model_name": self.model_name,
            "inference_count": self.successes,
            "mean_latency_seconds": mean,
            "errors": sum(self.failures.values()),
            "errors_by_reason": dict(self.failures),
            "requests": self.requests,
        }


LENT = "primary_lent"
"""The fallback reason of a primary-bound request while the stable primary's pods are lent."""


@dataclass(frozen=True)
class CanaryRoute:
    """The canary as one request sees it (read once, before any await): its table entry, its
    statistics and its own circuit breaker (both kept while its URL stays)."""

    table: CanaryTable
    upstream: UpstreamStats
    breaker: CircuitBreaker


@dataclass(frozen=True)
class Decision:
    use_primary: bool
    reason: str | None
    group: str | None


class RouterPlane:
    role = "router"

    def __init__(
        self, config: RouterConfig, *, rng: random.Random | None = None, forward_raw: bool = True
    ) -> None:
        self.config = config
        self.forwards_raw_body = forward_raw
        """True: an upload's request body goes to the model server as it came (the API keeps it,
        see `api.uploads.keep_raw_body`). False: a new multipart form is encoded for each forward,
        the way the router worked before (kept only so bench/inference/router_overhead.py can
        measure both in one run)."""
        self.mode = config.mode
        """primary, stable or emergency: read per request, changed live only by `set_mode`."""
        self.primary_asleep = False
        """The operator keeps the primary at zero for idleness (`set_primary_asleep`): what was
        meant for it is answered by the fallback at once, reason `primary_idle`."""
        self.primary_lent = False
        """The stable primary's pods are lent to the canary (no GPU spare, `set_primary_lent`):
        a primary-bound request drawn for the canary goes there, the others (and a canary
        failure) to the fallback at once, reason `primary_lent`; the stable primary is not
        tried, and the canary's agreement is judged against the fallback."""
        self._show_mode()
        self.mode_watcher: ModeWatcher | None = None
        """Set by the app when the mode follows a ConfigMap (shown in `status`)."""
        self.breaker = CircuitBreaker(
            config.circuit_failure_threshold, config.circuit_reset_seconds
        )
        self.shares = PrimaryShares(config.primary_shares)
        """Each client's share of the primary's requests in flight (`router.shares`)."""
        self._group_counters = [
            (
                metrics.PRIMARY_CLIENT_REQUESTS.labels(str(group)),
                metrics.PRIMARY_CLIENT_FAILURES.labels(str(group)),
            )
            for group in range(CLIENT_GROUPS)
        ]
        self._session: aiohttp.ClientSession | None = None
        self._rng = rng or random.Random()
        self.primary = UpstreamStats(config.primary_url.rstrip("/"), role="primary")
        self.fallback = UpstreamStats(config.fallback_url.rstrip("/"), role="fallback")
        self.canary: CanaryRoute | None = None
        """The canary of a new primary revision, if any (`set_canary`)."""
        self.agreement = AgreementSampler()
        """The canary-versus-stable comparisons running beside the clients' requests."""
        self.groups: dict[str, dict[str, int]] = {"A": {}, "B": {}}
        self.started = time.time()
        self._ready_cache: tuple[float, bool] = (0.0, False)

    # -- lifecycle -------------------------------------------------------------------------
    @property
    def session(self) -> aiohttp.ClientSession:
        """The pooled HTTP client to the model servers (created on first use, in the event loop).

        aiohttp rather than httpx: on this project's 2-CPU machine, forwarding one upload cost
        about 1 ms of CPU with aiohttp and about 3 ms with httpx (bench/inference/client_cpu.py).
        Connections are kept alive and reused (every response body is read to its end, no
        `Connection: close` is sent); an idle one is closed after `UPSTREAM_KEEPALIVE_SECONDS`,
        before the model server (uvicorn: 5 s) would close it under a request being sent.
        """
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=256, keepalive_timeout=UPSTREAM_KEEPALIVE_SECONDS
                ),
                timeout=aiohttp.ClientTimeout(total=self.config.fallback_timeout_seconds),
            )
        return self._session

    async def stop(self) -> None:
        await self.agreement.close()
        if self._session is not None:
            await self._session.close()
            self._session = None

    # -- mode ------------------------------------------------------------------------------
    def set_mode(self, mode: str, *, source: str) -> bool:
        """Switches the serving mode live; True when it changed.

        One attribute assignment in the event loop: a request reads `mode` once when it decides,
        so requests in flight finish the way they started and the next ones use the new mode.
        An unknown mode is logged and ignored (the current mode stays).
        """
        if mode not in ROUTER_MODES:
            log.warning(
                "ignoring unknown mode %r source=%s (known: %s); keeping mode %s",
                mode,
                source,
                ", ".join(ROUTER_MODES),
                self.mode,
            )
            return False
        previous = self.mode
        if mode == previous:
            return False
        self.mode = mode
        self._show_mode()
        metrics.ROUTER_MODE_CHANGES.inc()
        log.info("mode changed from %s to %s source=%s", previous, mode, source)
        return True

    def set_primary_asleep(self, asleep: bool, *, source: str) -> bool:
        """The primary sleeps (or woke): True when it changed."""
        if asleep == self.primary_asleep:
            return False
        self.primary_asleep = asleep
        log.info("primary %s source=%s", "asleep" if asleep else "awake", source)
        return True

    def set_primary_lent(self, lent: bool, *, source: str) -> bool:
        """The stable primary's pods are lent to the canary (or back): True when it changed."""
        if lent == self.primary_lent:
            return False
        self.primary_lent = lent
        log.info("primary %s source=%s", "lent to the canary" if lent else "own", source)
        return True

    def set_canary(self, table: CanaryTable, *, source: str) -> bool:
        """Applies the canary's routing entry live; True when it changed. A new URL starts a
        new canary (statistics, breaker and agreement counts from zero); a new weight or sample
        keeps them. Requests in flight finish with the canary they picked."""
        current = self.canary
        if (current.table if current is not None else CanaryTable()) == table:
            return False
        if not table.url:
            self.canary = None
        elif current is not None and current.upstream.url == table.url:
            self.canary = CanaryRoute(table, current.upstream, current.breaker)
        else:
            self.canary = CanaryRoute(
                table,
                UpstreamStats(table.url, role="canary"),
                CircuitBreaker(
                    self.config.circuit_failure_threshold, self.config.circuit_reset_seconds
                ),
            )
            self.agreement.reset()
        log.info(
            "canary url=%s weight=%d sample=%g source=%s",
            table.url or "-",
            table.weight,
            table.sample,
            source,
        )
        return True

    def _show_mode(self) -> None:
        for known in ROUTER_MODES:
            metrics.ROUTER_MODE.labels(known).set(1.0 if known == self.mode else 0.0)

    # -- routing ---------------------------------------------------------------------------
    def decide(self, target: Target, ab_test_group: str | None) -> Decision:
        """Where a request goes first; one meant for a sleeping primary goes to the fallback."""
        decision = self._route(target, ab_test_group)
        if decision.use_primary and self.primary_asleep:
            return Decision(False, "primary_idle", decision.group)
        return decision

    def _route(self, target: Target, ab_test_group: str | None) -> Decision:
        if self.mode == "emergency":
            return Decision(False, "mode_emergency", ab_test_group)
        if self.mode == "stable":
            return Decision(False, "mode_stable", ab_test_group)
        if ab_test_group == "A":
            return Decision(True, None, "A")
        if ab_test_group == "B":
            return Decision(False, "ab_test", "B")
        if target is Target.FALLBACK:
            return Decision(False, "requested", None)
        if target is Target.PRIMARY or self.config.ab_primary_percent >= 100:
            return Decision(True, None, None)
        if self._rng.random() * 100 < self.config.ab_primary_percent:
            return Decision(True, None, "A")
        return Decision(False, "ab_test", "B")

    async def classify(
        self, upload: ImageUpload, *, target: Target = Target.AUTO, ab_test_group: str | None = None
    ) -> Prediction:
        decision = self.decide(target, ab_test_group)
        reason = decision.reason
        if decision.use_primary or reason == "primary_idle":  # what wakes a sleeping primary
            metrics.PRIMARY_DEMAND.inc()
        if decision.use_primary:
            outcome = await self._try_primary(upload, CURRENT_CLIENT.get())
            if isinstance(outcome, Prediction):
                return self._finish(outcome, None, decision.group)
            reason = outcome
        assert reason is not None
        if reason != "requested":
            metrics.FALLBACKS.labels(reason).inc()
        try:
            prediction = await self._forward(
                self.fallback, upload, self.config.fallback_timeout_seconds
            )
        except UpstreamRejectedError:
            metrics.UPSTREAM_REQUESTS.labels("fallback", "ok").inc()
            raise
        except UpstreamFailureError as exc:
            message = (
                f"no model could answer: primary skipped or failed ({reason}), fallback failed "
                f"({exc.reason}: {exc})"
            )
            if exc.retry_after_s is not None:  # the fallback sheds load: say when to come back
                raise UpstreamBusyError(message, retry_after_s=exc.retry_after_s) from exc
            raise ModelNotReadyError(message, reason="no_model_available") from exc
        return self._finish(prediction, reason, decision.group)

    async def _try_primary(self, upload: ImageUpload, client: str) -> Prediction | str:
        """The primary's answer (the canary's, for a share of the requests while there is one),
        or why the request goes to the fallback instead: the client holds its whole share of the
        primary (`client_share`, no failure of the primary), the stable primary's breaker is
        open, or the stable primary failed (both counted against it, in the client's group)."""
        if not self.shares.acquire(client):
            return "client_share"
        metrics.PRIMARY_IN_FLIGHT.inc()
        try:
            route = self.canary  # one canary for the whole request
            drawn = route is not None and self._to_canary(route.table)
            if self.primary_lent:  # no stable primary: the canary or the fallback
                if route is None or not drawn:
                    return LENT
                lent = await self._try_canary(route, upload, client)
                return lent if isinstance(lent, Prediction) else LENT
            if route is None or not drawn:
                return await self._try_stable(upload, client)
            answer = await self._try_canary(route, upload, client)
            if isinstance(answer, Prediction):
                return answer
            try:
                outcome = await self._try_stable(upload, client)
            except UpstreamRejectedError:
                if answer is not None:  # both refused the input: the canary was right
                    route.breaker.record_success(client)
                    metrics.UPSTREAM_REQUESTS.labels("canary", "ok").inc()
                raise
            if answer is not None:  # the canary refused what the stable primary took (or could
                # not judge): the canary's failure
                self._canary_failed(route, client, "error", f"refused the input: {answer}")
            return outcome
        finally:
            metrics.PRIMARY_IN_FLIGHT.dec()
            self.shares.release(client)

    def _to_canary(self, table: CanaryTable) -> bool:
        """Does this primary-bound request go to the canary first (probability weight/100)?"""
        return table.active and self._rng.random() * 100 < table.weight

    async def _try_stable(self, upload: ImageUpload, client: str) -> Prediction | str:
        requests, failures = self._group_counters[client_group(client)]
        if not self.breaker.allow():
            requests.inc()
            failures.inc()
            metrics.UPSTREAM_REQUESTS.labels("primary", "unavailable").inc()
            return "circuit_open"
        try:
            prediction = await self._forward(
                self.primary, upload, self.config.primary_timeout_seconds
            )
        except UpstreamRejectedError:
            self.breaker.record_success(client)  # the primary works; the input was bad
            metrics.UPSTREAM_REQUESTS.labels("primary", "ok").inc()
            raise
        except UpstreamFailureError as exc:
            self.breaker.record_failure(client)
            requests.inc()
            failures.inc()
            log.warning("primary failed reason=%s error=%s", exc.reason, exc)
            return exc.reason
        self.breaker.record_success(client)
        requests.inc()
        return prediction

    async def _try_canary(
        self, route: CanaryRoute, upload: ImageUpload, client: str
    ) -> Prediction | UpstreamRejectedError | None:
        """The canary's answer; its refusal of the input (judged by what the stable primary
        says of the same input); or None when it failed or its breaker is open (the stable
        primary answers then)."""
        if not route.breaker.allow():
            metrics.UPSTREAM_REQUESTS.labels("canary", "unavailable").inc()
            return None
        try:
            prediction = await self._forward(
                route.upstream, upload, self.config.primary_timeout_seconds
            )
        except UpstreamRejectedError as exc:
            return exc
        except UpstreamFailureError as exc:
            self._canary_failed(route, client, exc.reason, str(exc), counted=True)
            return None
        route.breaker.record_success(client)
        sample = route.table.sample
        if sample > 0 and self._rng.random() < sample and self.mode == "primary":
            reference = self.fallback if self.primary_lent else self.primary
            self.agreement.offer(
                prediction.predicted_class, lambda: self._reference_class(reference, upload)
            )
        return prediction

    def _canary_failed(
        self, route: CanaryRoute, client: str, reason: str, message: str, *, counted: bool = False
    ) -> None:
        route.breaker.record_failure(client)
        if not counted:
            metrics.UPSTREAM_REQUESTS.labels("canary", reason).inc()
        log.warning("canary failed reason=%s url=%s error=%s", reason, route.upstream.url, message)

    async def _reference_class(self, reference: UpstreamStats, upload: ImageUpload) -> str:
        """The stable primary's class (the fallback's while the primary is lent) for an
        agreement comparison, off the client's path: its breaker and client groups are left
        alone; its metrics count the call."""
        timeout = (
            self.config.fallback_timeout_seconds
            if reference is self.fallback
            else self.config.primary_timeout_seconds
        )
        prediction = await self._forward(reference, upload, timeout)
        return prediction.predicted_class

    def _finish(self, prediction: Prediction, reason: str | None, group: str | None) -> Prediction:
        prediction.fallback_reason = reason
        prediction.ab_test_group = group
        if group in self.groups:
            counts = self.groups[group]
            counts[prediction.model_used] = counts.get(prediction.model_used, 0) + 1
        return prediction

    async def _forward(
        self, upstream: UpstreamStats, upload: ImageUpload, timeout: float
    ) -> Prediction:
        """POSTs the upload to a model server's /classify.

        The client's own request body and Content-Type when the API kept them (`upload.raw`):
        the same bytes object, not re-encoded, so the model server parses the very form the client
        sent. Otherwise (an upload from decoded bytes, or `forward_raw=False`) a new multipart form
        with the image as `file`."""
        upstream.requests += 1
        in_flight = metrics.UPSTREAM_IN_FLIGHT.labels(upstream.role)
        in_flight.inc()
        try:
            return await self._post(upstream, upload, timeout)
        finally:
            in_flight.dec()

    async def _post(
        self, upstream: UpstreamStats, upload: ImageUpload, timeout: float
    ) -> Prediction:
        start = time.perf_counter()
        data: bytes | aiohttp.FormData
        headers: dict[str, str] | None = None
        if self.forwards_raw_body and upload.raw is not None and upload.raw_content_type:
            data, headers = upload.raw, {"Content-Type": upload.raw_content_type}
        else:
            data = aiohttp.FormData()
            data.add_field(
                "file",
                upload.data,
                filename=upload.filename or "image",
                content_type=upload.content_type or "application/octet-stream",
            )
        try:
            async with self.session.post(
                f"{upstream.url}/classify",
                data=data,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=timeout),
            ) as response:
                status = response.status
                retry_after = retry_after_seconds(response.headers.get("Retry-After"))
                raw = await response.read()
        except TimeoutError as exc:
            raise self._failure(upstream, "timeout", f"no answer within {timeout}s") from exc
        except aiohttp.ClientError as exc:
            raise self._failure(upstream, "unavailable", f"{type(exc).__name__}: {exc}") from exc
        elapsed = time.perf_counter() - start
        try:
            body = json.loads(raw)
        except ValueError:
            body = {"error": "upstream_error", "detail": raw[:200].decode(errors="replace")}
        if status == 200:
            try:
                prediction = Prediction(
                    predicted_class=str(body["predicted_class"]),
                    confidence=float(body["confidence"]),
                    # null when the client's own form (forwarded as it came) said
                    # return_probabilities=false; the router's answer leaves them out then too
                    probabilities={
                        str(k): float(v) for k, v in (body["probabilities"] or {}).items()
                    },
                    model_used=str(body["model_used"]),
                    inference_time=float(body["inference_time"]),
                )
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise self._failure(upstream, "error", f"invalid response: {exc}") from exc
            upstream.successes += 1
            upstream.total_seconds += elapsed
            upstream.model_name = prediction.model_used
            metrics.INFERENCES.labels(prediction.model_used).inc()
            metrics.INFERENCE_DURATION.labels(prediction.model_used).observe(elapsed)
            metrics.UPSTREAM_REQUESTS.labels(upstream.role, "ok").inc()
            metrics.UPSTREAM_DURATION.labels(upstream.role).observe(elapsed)
            return prediction
        if not isinstance(body, dict):
            body = {"error": "upstream_error", "detail": str(body)[:200]}
        if 400 <= status < 500 and status != 429:
            raise UpstreamRejectedError(status, body)
        reason = "unavailable" if status in (429, 503) else "error"
        message = f"HTTP {status}: {body.get('detail', '')}"
        raise self._failure(upstream, reason, message, retry_after if reason != "error" else None)

    def _failure(
        self, upstream: UpstreamStats, reason: str, message: str, retry_after_s: int | None = None
    ) -> UpstreamFailureError:
        upstream.failures[reason] = upstream.failures.get(reason, 0) + 1
        metrics.MODEL_ERRORS.labels(upstream.model_name or upstream.role, reason).inc()
        metrics.UPSTREAM_REQUESTS.labels(upstream.role, reason).inc()
        return UpstreamFailureError(reason, message, retry_after_s)

    async def compare(self, upload: ImageUpload) -> Comparison:
        calls: dict[str, UpstreamStats] = {"fallback": self.fallback}
        errors: dict[str, str] = {}
        if self.mode == "emergency":
            errors["primary"] = "emergency mode: the primary is not called"
        else:
            calls = {"primary": self.primary, **calls}
        outcomes = await asyncio.gather(
            *(
                self._forward(
                    u,
                    upload,
                    self.config.primary_timeout_seconds
                    if n == "primary"
                    else self.config.fallback_timeout_seconds,
                )
                for n, u in calls.items()
            ),
            return_exceptions=True,
        )
        results: list[Prediction] = []
        for name, outcome in zip(calls, outcomes, strict=True):
            if isinstance(outcome, InferenceError):
                raise outcome  # bad input: the same 4xx the model server gave
            if isinstance(outcome, BaseException):
                errors[name] = f"{getattr(outcome, 'reason', 'error')}: {outcome}"
            else:
                outcome.ab_test_group = "A" if name == "primary" else "B"
                results.append(outcome)
        if not results:
            raise ModelNotReadyError(
                f"no model could answer: {errors}", reason="no_model_available"
            )
        agreement = len({p.predicted_class for p in results}) == 1 if len(results) > 1 else None
        return Comparison(results=results, errors=errors, agreement=agreement)

    # -- state -----------------------------------------------------------------------------
    async def _upstream_ready(self, upstream: UpstreamStats, timeout: float) -> bool:
        try:
            async with self.session.get(
                f"{upstream.url}/v2/health/ready", timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                await response.read()
                return response.status == 200
        except (TimeoutError, aiohttp.ClientError):
            return False

    async def is_ready(self) -> bool:
        """Ready when the fallback is ready (cached for `readiness_cache_seconds`)."""
        checked_at, ready = self._ready_cache
        now = time.monotonic()
        if now - checked_at < self.config.readiness_cache_seconds:
            return ready
        ready = await self._upstream_ready(self.fallback, 1.0)
        self._ready_cache = (now, ready)
        return ready

    async def _primary_ready(self, mode: str) -> bool | None:
        if mode == "emergency":
            return None
        return await self._upstream_ready(
            self.primary, min(1.0, self.config.primary_timeout_seconds)
        )

    async def health(self) -> Health:
        mode = self.mode  # one mode for the whole answer (it may change while we wait)
        fallback_ready, primary_ready = await asyncio.gather(
            self.is_ready(), self._primary_ready(mode)
        )
        status: HealthState
        if not fallback_ready:
            status = "unhealthy"
        elif primary_ready is False and mode == "primary":
            status = "degraded"
        else:
            status = "healthy"
        return Health(
            ready=fallback_ready,
            status=status,
            role=self.role,
            mode=mode,
            models={
                "primary": {
                    "ready": primary_ready,
                    "url": self.primary.url,
                    "model_name": self.primary.model_name,
                },
                "fallback": {
                    "ready": fallback_ready,
                    "url": self.fallback.url,
                    "model_name": self.fallback.model_name,
                },
            },
        )

    async def status(self) -> ServiceStatus:
        return ServiceStatus(
            role=self.role,
            uptime_seconds=time.time() - self.started,
            models={"primary": self.primary.as_dict(), "fallback": self.fallback.as_dict()},
            router={
                "mode": self.mode,
                "mode_watch": None if self.mode_watcher is None else self.mode_watcher.snapshot(),
                "ab_primary_percent": self.config.ab_primary_percent,
                "primary_timeout_seconds": self.config.primary_timeout_seconds,
                "rate_limit_per_minute": self.config.rate_limit_per_minute,
                "circuit_breaker": self.breaker.snapshot(),
                "primary_shares": self.shares.snapshot(),
                "canary": self._canary_status(),
                "trusted_proxies": [str(n) for n in self.config.trusted_proxies.networks],
            },
        )

    def _canary_status(self) -> dict[str, Any]:
        """The canary table (url None: no canary), its breaker and statistics, and the
        agreement counts since its URL was set."""
        route = self.canary
        table = CanaryTable() if route is None else route.table
        return {
            **table.as_dict(),
            "circuit_breaker": None if route is None else route.breaker.snapshot(),
            "upstream": None if route is None else route.upstream.as_dict(),
            "agreement": self.agreement.snapshot(),
        }

    def ab_status(self) -> ABStatus:
        return ABStatus(
            enabled=self.mode == "primary" and self.config.ab_primary_percent < 100,
            mode=self.mode,
            primary_percent=self.config.ab_primary_percent,
            groups={
                group: {"requests": sum(counts.values()), "by_model": dict(counts)}
                for group, counts in self.groups.items()
            },
            detail='group "A" is the primary model, group "B" the fallback',
        )

    async def models(self) -> list[ModelInfo]:
        return [
            ModelInfo(
                name=ROUTER_MODEL_NAME,
                platform="pizza-router",
                ready=await self.is_ready(),
                classes=CLASSES,
                details={"primary": self.primary.url, "fallback": self.fallback.url},
            )
        ]

    def metrics_summary(self) -> MetricsSummary:
        return MetricsSummary(
            role=self.role,
            uptime_seconds=time.time() - self.started,
            models={"primary": self.primary.as_dict(), "fallback": self.fallback.as_dict()},
            memory_usage_bytes=metrics.resident_memory_bytes(),
            mode=self.mode,
        )
