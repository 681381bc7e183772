"""The direct-scrape path on Prometheus text: deltas, rates, resets, several pods, p95."""

from __future__ import annotations

import pytest
from pizza_operator.analysis.window import (
    histogram_quantile,
    parse_router_metrics,
    router_window,
)
from pizza_operator.rollback import MetricSignals, Thresholds, judge
from pizza_operator.rollback.verdicts import KubeSignals

pytestmark = pytest.mark.unit

# What a real router served (`pizza-serve router`, the primary down, three images), abridged.
CAPTURED = """\
# HELP pizza_api_requests_total HTTP requests by method, route template and status code
# TYPE pizza_api_requests_total counter
pizza_api_requests_total{endpoint="/classify",method="POST",status="200"} 3.0
# HELP pizza_api_request_duration_seconds HTTP request duration (whole request, server side)
# TYPE pizza_api_request_duration_seconds histogram
pizza_api_request_duration_seconds_bucket{endpoint="/classify",le="0.05",method="POST"} 3.0
pizza_api_request_duration_seconds_bucket{endpoint="/classify",le="+Inf",method="POST"} 3.0
pizza_api_request_duration_seconds_count{endpoint="/classify",method="POST"} 3.0
pizza_api_request_duration_seconds_sum{endpoint="/classify",method="POST"} 0.10918632100219838
# HELP pizza_api_inference_total Images classified, by the model that answered
# TYPE pizza_api_inference_total counter
pizza_api_inference_total{model="fb-cnn"} 3.0
# HELP pizza_api_model_errors_total Model failures by model and kind
# TYPE pizza_api_model_errors_total counter
pizza_api_model_errors_total{error_type="unavailable",model="primary"} 3.0
# HELP pizza_api_active_connections HTTP requests in flight in this process
# TYPE pizza_api_active_connections gauge
pizza_api_active_connections 0.0
# HELP pizza_api_fallback_total Requests the router answered from the fallback, by reason
# TYPE pizza_api_fallback_total counter
pizza_api_fallback_total{reason="unavailable"} 3.0
"""

LE = ("0.01", "0.05", "0.1", "0.5", "1.0", "+Inf")


def exposition(
    *,
    fallback: dict[str, float] | None = None,
    answered: dict[str, float] | None = None,
    model_errors: dict[tuple[str, str], float] | None = None,
    statuses: dict[str, float] | None = None,
    health: float = 0.0,
    buckets: dict[str, tuple[float, ...]] | None = None,
) -> str:
    """Router `/metrics` text in the exposition format `prometheus_client` writes."""
    lines = ["# TYPE pizza_api_fallback_total counter"]
    lines += [f'pizza_api_fallback_total{{reason="{r}"}} {v}' for r, v in (fallback or {}).items()]
    lines.append("# TYPE pizza_api_inference_total counter")
    lines += [f'pizza_api_inference_total{{model="{m}"}} {v}' for m, v in (answered or {}).items()]
    lines.append("# TYPE pizza_api_model_errors_total counter")
    lines += [
        f'pizza_api_model_errors_total{{error_type="{e}",model="{m}"}} {v}'
        for (m, e), v in (model_errors or {}).items()
    ]
    lines.append("# TYPE pizza_api_requests_total counter")
    lines += [
        f'pizza_api_requests_total{{endpoint="/classify",method="POST",status="{s}"}} {v}'
        for s, v in (statuses or {}).items()
    ]
    probe = 'endpoint="/v2/health/ready",method="GET",status="200"'
    lines.append(f"pizza_api_requests_total{{{probe}}} {health}")
    lines.append("# TYPE pizza_api_inference_duration_seconds histogram")
    for model, counts in (buckets or {}).items():
        lines += [
            f'pizza_api_inference_duration_seconds_bucket{{le="{le}",model="{model}"}} {c}'
            for le, c in zip(LE, counts, strict=True)
        ]
        lines.append(f'pizza_api_inference_duration_seconds_count{{model="{model}"}} {counts[-1]}')
    return "\n".join(lines) + "\n"


class TestParse:
    def test_captured_router_text(self) -> None:
        scrape = parse_router_metrics(CAPTURED)
        assert scrape.samples[("pizza_api_fallback_total", (("reason", "unavailable"),))] == 3.0
        assert scrape.samples[("pizza_api_inference_total", (("model", "fb-cnn"),))] == 3.0
        assert not any(name == "pizza_api_active_connections" for name, _ in scrape.samples)

    def test_not_prometheus_text_raises(self) -> None:
        with pytest.raises(ValueError):
            parse_router_metrics("<html>not metrics</html>\n")


class TestRouterWindow:
    def test_primary_down_everything_falls_back(self) -> None:
        before = parse_router_metrics(CAPTURED)
        after = parse_router_metrics(
            CAPTURED.replace("} 3.0", "} 43.0")  # 40 more, all answered by the fallback
        )
        result = router_window(
            {"r1": before}, {"r1": after}, primary_model="gpu-vit", fallback_model="fb-cnn"
        )
        assert result.primary.requests == 40 and result.primary.failure_rate == 1.0
        assert result.fallback_reasons == {"unavailable": 40}
        assert result.client.requests == 40 and result.client.failure_rate == 0.0
        assert result.fallback == MetricSignals(40, 0.0, None)

    def test_healthy_primary_rate_zero_and_p95(self) -> None:
        before = parse_router_metrics(exposition(answered={"gpu-vit": 10}, statuses={"200": 10}))
        after = parse_router_metrics(
            exposition(
                answered={"gpu-vit": 110},
                statuses={"200": 110},
                health=50,
                # 100 new forwards: 80 under 10 ms, 15 up to 50 ms, 5 up to 100 ms
                buckets={"gpu-vit": (80, 95, 100, 100, 100, 100)},
            )
        )
        result = router_window(
            {"r1": before}, {"r1": after}, primary_model="gpu-vit", fallback_model="fb-cnn"
        )
        assert result.primary.requests == 100 and result.primary.failure_rate == 0.0
        assert result.primary.p95_latency_seconds == pytest.approx(0.05)
        assert result.client.requests == 100  # the 50 probes are not client traffic
        assert result.fallback.requests == 0 and result.fallback.failure_rate is None

    def test_mode_and_ab_fallbacks_do_not_count_against_the_primary(self) -> None:
        before = parse_router_metrics(exposition())
        after = parse_router_metrics(
            exposition(
                fallback={"ab_test": 30, "mode_stable": 20, "timeout": 5},
                answered={"gpu-vit": 45, "fb-cnn": 55},
                statuses={"200": 100},
            )
        )
        result = router_window(
            {"r1": before}, {"r1": after}, primary_model="gpu-vit", fallback_model="fb-cnn"
        )
        assert result.primary.requests == 50
        assert result.primary.failure_rate == pytest.approx(0.1)
        assert result.fallback_reasons == {"ab_test": 30, "mode_stable": 20, "timeout": 5}

    def test_client_errors_when_both_fail(self) -> None:
        before = parse_router_metrics(exposition(statuses={"200": 5}))
        after = parse_router_metrics(
            exposition(
                fallback={"circuit_open": 19, "timeout": 1},
                model_errors={("fallback", "unavailable"): 20},
                statuses={"200": 5, "503": 20},
            )
        )
        result = router_window(
            {"r1": before}, {"r1": after}, primary_model="gpu-vit", fallback_model="fb-cnn"
        )
        assert result.primary.failure_rate == 1.0
        assert result.fallback == MetricSignals(20, 1.0, None)
        assert result.client.requests == 20 and result.client.failure_rate == 1.0

    def test_breaker_skips_alone_do_not_blame_a_recovered_primary(self) -> None:
        before = parse_router_metrics(exposition())
        after = parse_router_metrics(
            exposition(fallback={"circuit_open": 30}, answered={"gpu-vit": 70, "fb-cnn": 30})
        )
        result = router_window(
            {"r1": before}, {"r1": after}, primary_model="gpu-vit", fallback_model="fb-cnn"
        )
        assert (result.primary.requests, result.primary.failure_rate) == (70, 0.0)
        assert result.fallback_reasons == {"circuit_open": 30}

    def test_sums_pods_and_survives_a_restart(self) -> None:
        r1_before = parse_router_metrics(exposition(answered={"gpu-vit": 1000}))
        r2_before = parse_router_metrics(exposition(answered={"gpu-vit": 500}))
        r1_after = parse_router_metrics(exposition(answered={"gpu-vit": 1030}))
        # r2 restarted in between: its counters start again from zero
        r2_after = parse_router_metrics(exposition(answered={"gpu-vit": 8}, fallback={"error": 2}))
        result = router_window(
            {"r1": r1_before, "r2": r2_before},
            {"r1": r1_after, "r2": r2_after},
            primary_model="gpu-vit",
            fallback_model="fb-cnn",
        )
        assert result.primary.requests == 40
        assert result.primary.failure_rate == pytest.approx(2 / 40)
        assert result.pods_compared == 2

    def test_failed_scrape_and_new_pod_add_nothing(self) -> None:
        base = parse_router_metrics(exposition(answered={"gpu-vit": 10}))
        later = parse_router_metrics(exposition(answered={"gpu-vit": 30}))
        result = router_window(
            {"r1": base, "r2": base},
            {"r1": later, "r2": None, "r3": later},
            primary_model="gpu-vit",
            fallback_model="fb-cnn",
        )
        assert result.primary.requests == 20
        assert (result.pods_compared, result.pods_missing) == (1, 2)

    def test_no_pod_answered_is_no_data(self) -> None:
        base = parse_router_metrics(exposition())
        result = router_window(
            {"r1": base}, {"r1": None}, primary_model="gpu-vit", fallback_model="fb-cnn"
        )
        assert result.primary.requests is None and result.client.requests is None
        limits = Thresholds()
        kube = KubeSignals(desired=1, ready=1, available=True)
        assert judge("primary", kube, result.primary, limits).reasons == ("MetricsUnavailable",)


class TestHistogramQuantile:
    def test_interpolates_like_prometheus(self) -> None:
        # 10 observations: 5 in (0, 0.1], 5 in (0.1, 0.5]: rank 9.5 -> 0.1 + 0.4 * 4.5 / 5
        buckets = {0.1: 5.0, 0.5: 10.0, float("inf"): 10.0}
        assert histogram_quantile(0.95, buckets) == pytest.approx(0.46)

    def test_rank_in_inf_bucket_returns_highest_bound(self) -> None:
        assert histogram_quantile(0.95, {0.1: 1.0, 0.5: 2.0, float("inf"): 10.0}) == 0.5

    def test_no_observations(self) -> None:
        assert histogram_quantile(0.95, {0.1: 0.0, float("inf"): 0.0}) is None
        assert histogram_quantile(0.95, {}) is None
