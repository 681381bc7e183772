"""The Prometheus metric path: documented PromQL per signal, asked through `/api/v1/query`.

Used when `spec.analysis.prometheus.address` is set. Each query is a `string.Template` over:
`$router` (label matchers that select the router pods' series, e.g.
`namespace="pizzas",pod=~"pizza-classifier-router-.+"`), `$window` (`spec.analysis.window`),
`$primary_model` and `$fallback_model` (the servers' `PIZZA_MODEL_NAME`, escaped for a PromQL
string: use them inside `"..."` with `=`), `$fallback_model_re` (the same, escaped as a regular
expression too: use it inside `"..."` with `=~`). Any query can be replaced
(`queries={"primary_p95": "..."}`). Label values are data, never PromQL: every value is escaped
before it is put into a query, and every answer is checked for its shape and capped in size
(`MAX_ANSWER_BYTES`); a malformed answer is no data, with the reason in `RouterWindow.error`.
The signals mean what the direct-scrape path computes (`window.py`); rates are divided here,
not in PromQL, so an idle window is 0 requests and no rate instead of NaN. A query that fails,
times out, or a selector that matches no router target that is up, gives `requests=None`
everywhere: no data, no verdict.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Mapping
from dataclasses import dataclass
from string import Template
from typing import Any

import aiohttp

from pizza_operator.analysis.bodies import read_capped
from pizza_operator.analysis.window import BREAKER_SKIP, PRIMARY_FAILURE_REASONS, RouterWindow
from pizza_operator.rollback.clients import ClientGroups
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
        '{$router,model=~"$fallback_model_re|fallback"}[$window])) or vector(0)'
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
    # per client group (rollback.clients): no series from a router that does not count them
    "primary_client_requests": (
        "sum by (client_group) "
        "(increase(pizza_router_primary_client_requests_total{$router}[$window]))"
    ),
    "primary_client_failures": (
        "sum by (client_group) "
        "(increase(pizza_router_primary_client_failures_total{$router}[$window]))"
    ),
}
"""The PromQL of every signal (see docs/rollback.md)."""


MAX_ANSWER_BYTES = 1 << 20
"""The largest Prometheus answer read (1 MiB): each query returns one or a few samples."""
_RE2_SPECIAL = frozenset("\\.+*?()|[]{}^$")


def promql_string(value: str) -> str:
    """`value` escaped for the inside of a double-quoted PromQL string."""
    escaped = value.replace("\\", "\\\\").replace('"', '\\"')
    return escaped.replace("\n", "\\n").replace("\r", "\\r")


def regex_literal(value: str) -> str:
    """`value` as a regular expression (RE2) that matches exactly it."""
    return "".join("\\" + c if c in _RE2_SPECIAL else c for c in value)


def router_selector(namespace: str, router: str) -> str:
    """The label matchers of the router pods' series: namespace and the Deployment's pods."""
    pods = promql_string(regex_literal(router) + "-.*")
    return f'namespace="{promql_string(namespace)}",pod=~"{pods}"'


@dataclass(frozen=True)
class QueryContext:
    """What the templates are filled with (`router` is PromQL already: `router_selector`)."""

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
        "primary_model": promql_string(context.primary_model),
        "fallback_model": promql_string(context.fallback_model),
        "fallback_model_re": promql_string(regex_literal(context.fallback_model)),
    }
    templates = {**DEFAULT_QUERIES, **(overrides or {})}
    return {name: Template(text).substitute(values) for name, text in templates.items()}


class PrometheusError(Exception):
    """Prometheus did not answer, or answered something that is not a query result."""


Sample = tuple[dict[str, str], float]
"""One sample of an instant query's answer: its labels and its value."""


def samples_of(body: Any) -> list[Sample]:
    """The samples of an `/api/v1/query` answer (vector or scalar); PrometheusError naming what
    is wrong with any other shape (the answer is data, never trusted)."""
    if not isinstance(body, dict) or body.get("status") != "success":
        error = body.get("error") if isinstance(body, dict) else type(body).__name__
        raise PrometheusError(f"the query failed: {str(error)[:200]}")
    data = body.get("data")
    if not isinstance(data, dict):
        raise PrometheusError("malformed answer: 'data' is not an object")
    kind, result = data.get("resultType"), data.get("result")
    if kind == "scalar":
        return [({}, _float(result))]
    if kind != "vector" or not isinstance(result, list):
        raise PrometheusError(f"malformed answer: resultType {str(kind)[:40]!r} with no vector")
    samples = []
    for item in result:
        labels = item.get("metric") if isinstance(item, dict) else None
        if not isinstance(labels, dict):
            raise PrometheusError("malformed answer: a sample without 'metric' labels")
        samples.append(({str(k): str(v) for k, v in labels.items()}, _float(item.get("value"))))
    return samples


def _float(pair: Any) -> float:
    """The value of a `[time, "value"]` pair."""
    if not isinstance(pair, list) or len(pair) != 2:
        raise PrometheusError("malformed answer: a value is not a [time, value] pair")
    try:
        return float(pair[1])
    except (TypeError, ValueError) as exc:
        raise PrometheusError(f"malformed answer: value {str(pair[1])[:40]!r}") from exc


async def query(session: aiohttp.ClientSession, address: str, expr: str) -> list[Sample]:
    """One instant query; its samples (a scalar result is one sample)."""
    url = f"{address.rstrip('/')}/api/v1/query"
    try:
        async with session.get(url, params={"query": expr}) as response:
            raw = await read_capped(response, MAX_ANSWER_BYTES)
        body = json.loads(raw)
    except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
        raise PrometheusError(f"{url}: {type(exc).__name__}: {exc}") from exc
    try:
        return samples_of(body)
    except PrometheusError as exc:
        raise PrometheusError(f"{url}: query {expr[:80]!r}: {exc}") from exc


def _number(samples: list[Sample]) -> float | None:
    if not samples:
        return None
    value = samples[0][1]
    return None if math.isnan(value) or math.isinf(value) else value


def _ratio(part: float | None, whole: float | None) -> float | None:
    if part is None or whole is None or whole <= 0:
        return None
    return min(1.0, max(0.0, part / whole))


def _by_group(samples: list[Sample]) -> dict[str, float]:
    return {
        labels.get("client_group", ""): value
        for labels, value in samples
        if math.isfinite(value) and value >= 0
    }


def _groups(requests: list[Sample], failures: list[Sample]) -> ClientGroups | None:
    """The client groups of the window (`rollback.clients`); None when the router has none."""
    by_group = _by_group(requests)
    return ClientGroups(by_group, _by_group(failures)) if by_group else None


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
    except PrometheusError as exc:
        return RouterWindow(unknown, unknown, unknown, error=str(exc)[:300])
    got = dict(zip(queries, results, strict=True))
    if not _number(got["targets"]):
        return RouterWindow(unknown, unknown, unknown, error="no router target is up")

    def number(name: str) -> float:
        return _number(got[name]) or 0.0

    reasons = {
        labels.get("reason", ""): value
        for labels, value in got["fallback_reasons"]
        if value > 0 and math.isfinite(value)
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
            primary_meant,
            _ratio(primary_failed, primary_meant),
            _number(got["primary_p95"]),
            _groups(got["primary_client_requests"], got["primary_client_failures"]),
        ),
        fallback=MetricSignals(
            fallback_sent, _ratio(fallback_failed, fallback_sent), _number(got["fallback_p95"])
        ),
        client=MetricSignals(client_total, _ratio(number("client_errors"), client_total)),
        fallback_reasons=dict(sorted(reasons.items())),
        pods_compared=int(number("targets")),
    )
