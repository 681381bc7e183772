"""The Grafana dashboard: its shape (variables, datasource, panels the issue names), the chart's
ConfigMap carries it unchanged, and every query parses on a real Prometheus. That every panel has
data after a real rollback is checked end to end
(tests/e2e/test_rollback.py::test_prometheus_path_rolls_back_a_hung_primary)."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest

from tests.support.dashboard import (
    check_dashboard,
    load,
    panel_queries,
    substitute,
)
from tests.support.net import free_port
from tests.support.prometheus import PrometheusMissingError, prometheus_server, static_config

from .helpers import ROOT
from .test_alert_rules import KUBE_VERSION, _helm

pytestmark = pytest.mark.unit

DASHBOARD = ROOT / "helm" / "pizza-operator" / "files" / "pizza-dashboard.json"
CHART = ROOT / "helm" / "pizza-operator"
VARIABLES = {"datasource": "prometheus", "namespace": "ns-a", "name": "pizza-a"}
METRICS = (
    "pizza_api_inference_total",
    "pizza_api_fallback_total",
    "pizza_operator_analysis_value",
    "pizza_operator_analysis_threshold",
    "pizza_api_inference_duration_seconds_bucket",
    "pizza_operator_mode",
    "pizza_operator_rollbacks_total",
    "pizza_router_rate_limited_total",
    "pizza_api_memory_usage_bytes",
    "pizza_api_gpu_memory_usage_bytes",
    "pizza_operator_analysis_checks_total",
    "pizza_operator_replicas_wanted",
    "pizza_router_upstream_in_flight",
    "pizza_router_upstream_requests_total",
    "pizza_router_canary_agreement_total",
)
"""What the issue asks the dashboard to show: requests by answering model, fallback reasons, the
primary failure rate with its threshold, latency quantiles, mode, rollbacks, rate-limited
requests, memory, and the analysis verdicts."""


def _dashboard() -> dict[str, Any]:
    return load(DASHBOARD)


def test_substitute_fills_both_forms_and_refuses_unknown_variables() -> None:
    assert substitute('x{a="$ns", b="${name}", c="${name:raw}"}', {"ns": "n", "name": "m"}) == (
        'x{a="n", b="m", c="m"}'
    )
    with pytest.raises(KeyError, match=r"\$nope"):
        substitute("rate(x[$nope])", {})


def test_panel_queries_fill_grafanas_builtins_and_nested_rows() -> None:
    dashboard = {
        "panels": [
            {"title": "a", "targets": [{"refId": "A", "expr": "rate(x[$__rate_interval])"}]},
            {
                "type": "row",
                "title": "row",
                "panels": [{"title": "b", "targets": [{"refId": "B", "expr": 'y{n="$name"}'}]}],
            },
        ]
    }
    queries = panel_queries(dashboard, {"name": "pizza"})
    assert [(q.panel, q.ref, q.expr) for q in queries] == [
        ("a", "A", "rate(x[1m])"),
        ("b", "B", 'y{n="pizza"}'),
    ]


def test_the_dashboard_shows_what_an_sre_needs() -> None:
    dashboard = _dashboard()
    queries = panel_queries(dashboard, VARIABLES)
    exprs = " ".join(q.expr for q in queries)
    for metric in METRICS:
        assert metric in exprs, f"no panel shows {metric}"
    for quantile in ("0.5", "0.95", "0.99"):
        assert f"histogram_quantile({quantile}," in exprs
    names = [v["name"] for v in dashboard["templating"]["list"]]
    assert names == ["datasource", "namespace", "name"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        assert panel["datasource"]["uid"] == "${datasource}", panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            # every per-resource query selects the resource; only the operator-wide verdict
            # counter (labelled by component and verdict alone) is shown for all resources
            if "analysis_checks_total" not in target["expr"]:
                assert '"$namespace"' in target["expr"] and '"$name"' in target["expr"], target


def test_panels_do_not_overlap() -> None:
    cells: set[tuple[int, int]] = set()
    for panel in _dashboard()["panels"]:
        g = panel["gridPos"]
        assert g["x"] + g["w"] <= 24, panel["title"]
        xs, ys = range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])
        mine = {(x, y) for x in xs for y in ys}
        assert not mine & cells, f"{panel['title']} overlaps another panel"
        cells |= mine


def test_the_chart_ships_the_dashboard_as_a_sidecar_configmap() -> None:
    import yaml  # noqa: PLC0415

    out = _helm("template", "x", str(CHART), "--kube-version", KUBE_VERSION)
    maps = [
        doc
        for doc in yaml.safe_load_all(out)
        if doc and doc["kind"] == "ConfigMap" and "pizza-operator.json" in doc.get("data", {})
    ]
    assert len(maps) == 1
    assert maps[0]["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(maps[0]["data"]["pizza-operator.json"]) == _dashboard()
    off = _helm(
        "template", "x", str(CHART), "--kube-version", KUBE_VERSION,
        "--set", "monitoring.grafanaDashboard.enabled=false",
    )  # fmt: skip
    assert "pizza-operator.json" not in off


@pytest.mark.slow
def test_every_query_parses_on_a_real_prometheus_and_no_data_is_reported(
    tmp_path: Path,
) -> None:
    """On a Prometheus that scraped nothing, no query may fail to parse, and every query must be
    reported as having no data (the checker can fail); a broken query is a query error."""
    listen = f"127.0.0.1:{free_port()}"
    try:
        server = prometheus_server(static_config([]), tmp_path / "prometheus", listen)
        url = server.__enter__()
    except PrometheusMissingError as exc:
        pytest.skip(str(exc))
    try:
        now = time.time()
        dashboard = _dashboard()
        problems = check_dashboard(url, dashboard, VARIABLES, start=now - 60, end=now)
        assert [p.what for p in problems] == ["no data"] * len(
            panel_queries(dashboard, VARIABLES)
        ), [str(p) for p in problems if p.what != "no data"]
        broken = {"panels": [{"title": "bad", "targets": [{"refId": "A", "expr": "sum(("}]}]}
        (problem,) = check_dashboard(url, broken, {}, start=now - 60, end=now)
        assert problem.what.startswith("query error: bad_data"), problem
    finally:
        server.__exit__(None, None, None)
