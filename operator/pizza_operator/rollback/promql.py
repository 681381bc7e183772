"""The Prometheus metric path: documented PromQL per signal, asked through `/api/v1/query`.

Used when `spec.analysis.prometheus.address` is set. Each query is a `string.Template` over:
`$router` (label matchers that select the router pods' series, e.g.
`namespace="pizzas",pod=~"pizza-classifier-router-.+"`), `$window` (`spec.analysis.window`),
`$primary_model` and `$fallback_model` (the servers' `PIZZA_MODEL_NAME`). Any query can be
replaced (`queries={"primary_p95": "..."}`). The signals mean what the direct-scrape path
computes (`scrape.py`); rates are divided here, not in PromQL, so an idle window is 0 requests
and no rate instead of NaN. A query that fails, times out, or a selector that matches no
router target that is up, gives `requests=None` everywhere: no data, no verdict.
"""

from __future__ import annotations

import asyncio
import math
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

import aiohttp

from pizza_operator.rollback.scrape import BREAKER_SKIP, PRIMARY_FAILURE_REASONS, RouterWindow
from pizza_operator.rollback.verdicts import MetricSignals

_FAILED = "|".join(sorted(PRIMARY_FAILURE_REASONS))

DEFAULT_QUERIES: Mapping[str, str] = {
    # router targets Prometheus scrapes successfully; none -> the source has no data
    "targets": "count(up{$router} == 1)",
    "primary_failures": (
        f'sum(increase(pizza_api_fallback_total{{$router,reason=~"{_FAILED}"}}[$window]))'
        " or vector(0)"
    ),
    "primary_answered": (
        'sum(increase(pizza_api_inference_total{$router,model="$primary_model"}[$window]))'
        " or vector(0)"
    ),
    "primary_p95": (
        "histogram_quantile(0.95, sum by (le) (rate(pizza_api_inference_duration_seconds_bucket"
        '{$router,model="$primary_model"}[$window])))'
    ),
    "fallback_failures": (
        "sum(increase(pizza_api_model_errors_total"
        '{$router,model=~"$fallback_model|fallback"}[$window])) or vector(0)'
    ),
    "fallback_answered": (
        'sum(increase(pizza_api_inference_total{$router,model="$fallback_model"}[$window]))'
        " or vector(0)"
    ),
    "fallback_p95": (
        "histogram_quantile(0.95, sum by (le) (rate(pizza_api_inference_duration_seconds_bucket"
        '{$router,model="$fallback_model"}[$window])))'
    ),
    "client_requests": (
        'sum(increase(pizza_api_requests_total{$router,endpoint!~".*health.*"}[$window]))'
        " or vector(0)"
    ),
    "client_errors": (
        "sum(increase(pizza_api_requests_total"
        '{$router,endpoint!~".*health.*",status=~"5.."}[$window])) or vector(0)'
    ),
    "fallback_reasons": "sum by (reason) (increase(pizza_api_fallback_total{$router}[$window]))",
}
"""The PromQL of every signal (see docs/rollback.md)."""


@dataclass(frozen=True)
class QueryContext:
    """What the templates are filled with."""

    router: str
    window: str
    primary_model: str
    fallback_model: str


def render_queries(
    context: QueryContext, overrides: Mapping[str, str] | None = None
) -> dict[str, str]:
    """Every query with its placeholders filled; unknown override names are an error."""
    unknown = set(overrides or {}) - set(DEFAULT_QUERIES)
    if unknown:
        raise ValueError(f"unknown PromQL signal(s): {sorted(unknown)}")
    values = {
        "router": context.router,
        "window": context.window,
        "primary_model": context.primary_model,
        "fallback_model": context.fallback_model,
    }
    templates = {**DEFAULT_QUERIES, **(overrides or {})}
    return {name: Template(text).substitute(values) for name, text in templates.items()}


class PrometheusError(Exception):
    """Prometheus did not answer, or answered something that is not a query result."""


def _value(sample: Mapping[str, Any]) -> float:
    return float(sample["value"][1])


async def query(session: aiohttp.ClientSession, address: str, expr: str) -> list[dict[str, Any]]:
    """One instant query; the result vector (a scalar result is one sample)."""
    url = f"{address.rstrip('/')}/api/v1/query"
    try:
        async with session.get(url, params={"query": expr}) as response:
            body = await response.json(content_type=None)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PrometheusError(f"{url}: {type(exc).__name__}: {exc}") from exc
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else body
        raise PrometheusError(f"{url}: query {expr!r} failed: {error}")
    data = body.get("data", {})
    if data.get("resultType") == "scalar":
        return [{"metric": {}, "value": data["result"]}]
    result: list[dict[str, Any]] = data.get("result", [])
    return result


def _number(samples: list[dict[str, Any]]) -> float | None:
    if not samples:
        return None
    value = _value(samples[0])
    return None if math.isnan(value) or math.isinf(value) else value


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return min(1.0, max(0.0, part / whole))


async def router_window_from_prometheus(
    address: str,
    context: QueryContext,
    *,
    overrides: Mapping[str, str] | None = None,
    timeout_seconds: float = 5.0,
) -> RouterWindow:
    """The same `RouterWindow` as the direct-scrape path, from Prometheus' view of the window."""
    queries = render_queries(context, overrides)
    unknown = MetricSignals(None)
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    try:
        async with aiohttp.ClientSession(timeout=timeout) as session:
            results = await asyncio.gather(
                *(query(session, address, expr) for expr in queries.values())
            )
    except PrometheusError:
        return RouterWindow(unknown, unknown, unknown)
    got = dict(zip(queries, results, strict=True))
    if not _number(got["targets"]):
        return RouterWindow(unknown, unknown, unknown)

    def number(name: str) -> float:
        return _number(got[name]) or 0.0

    reasons = {
        str(s.get("metric", {}).get("reason", "")): _value(s)
        for s in got["fallback_reasons"]
        if _value(s) > 0
    }
    counted = number("primary_failures")  # breaker skips included, as the default query has them
    skipped = reasons.get(BREAKER_SKIP, 0.0)
    primary_failed = counted if counted - skipped > 0 else 0.0  # see scrape.primary_failures
    primary_meant = number("primary_answered") + primary_failed
    fallback_failed = number("fallback_failures")
    fallback_sent = number("fallback_answered") + fallback_failed
    client_total = number("client_requests")
    return RouterWindow(
        primary=MetricSignals(
            primary_meant, _ratio(primary_failed, primary_meant), _number(got["primary_p95"])
        ),
        fallback=MetricSignals(
            fallback_sent, _ratio(fallback_failed, fallback_sent), _number(got["fallback_p95"])
        ),
        client=MetricSignals(client_total, _ratio(number("client_errors"), client_total)),
        fallback_reasons=dict(sorted(reasons.items())),
        pods_compared=int(number("targets")),
    )
