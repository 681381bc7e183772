"""Checking a Grafana dashboard against a real Prometheus: every panel's every query, with the
dashboard's variables filled in the way Grafana fills them, run as a range query; a query error
or a query without a single sample is a problem."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

RATE_INTERVAL = "1m"
"""What `$__rate_interval` stands for here: Grafana takes at least four scrape intervals; the
chart's PodMonitor scrapes every 10 s, the tests every 2 s, and the operator's window is 1 m."""

_VARIABLE = re.compile(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)")


@dataclass(frozen=True)
class PanelQuery:
    panel: str
    ref: str
    expr: str


@dataclass(frozen=True)
class Problem:
    panel: str
    ref: str
    expr: str
    what: str

    def __str__(self) -> str:
        return f"{self.panel} [{self.ref}] {self.what}: {self.expr}"


def load(path: Path) -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(path.read_text())
    return dashboard


def substitute(expr: str, variables: dict[str, str]) -> str:
    """`$name` and `${name}` (with an optional `:format`) replaced; unknown variables raise, so a
    panel cannot silently use one the dashboard does not define."""

    def one(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        if name not in variables:
            raise KeyError(f"unknown dashboard variable ${name} in {expr!r}")
        return variables[name]

    return _VARIABLE.sub(one, expr)


def panel_queries(dashboard: dict[str, Any], variables: dict[str, str]) -> list[PanelQuery]:
    """The queries of every panel (rows' nested panels included), variables substituted.
    `variables` gives the dashboard's own (namespace, name...); Grafana's built-ins are added."""
    values = {
        "__rate_interval": RATE_INTERVAL,
        "__interval": "15s",
        "__range": "1h",
        **variables,
    }
    out: list[PanelQuery] = []
    panels = list(dashboard.get("panels", []))
    while panels:
        panel = panels.pop(0)
        panels.extend(panel.get("panels", []))
        for target in panel.get("targets", []):
            if "expr" in target:
                out.append(
                    PanelQuery(
                        panel=str(panel.get("title", panel.get("id"))),
                        ref=str(target.get("refId", "?")),
                        expr=substitute(target["expr"], values),
                    )
                )
    return out


def check_dashboard(
    prometheus_url: str,
    dashboard: dict[str, Any],
    variables: dict[str, str],
    *,
    start: float,
    end: float,
    step: float = 5.0,
) -> list[Problem]:
    """Every query run over [start, end] (Unix seconds); problems: query errors (PromQL that does
    not parse, or fails) and queries that return no sample at all."""
    problems: list[Problem] = []
    with httpx.Client(base_url=prometheus_url, timeout=30) as client:
        for query in panel_queries(dashboard, variables):
            response = client.get(
                "/api/v1/query_range",
                params={"query": query.expr, "start": start, "end": end, "step": step},
            )
            body = response.json()
            if response.status_code != 200 or body.get("status") != "success":
                what = f"query error: {body.get('errorType')}: {body.get('error')}"
                problems.append(Problem(query.panel, query.ref, query.expr, what))
            elif not any(series.get("values") for series in body["data"]["result"]):
                problems.append(Problem(query.panel, query.ref, query.expr, "no data"))
    return problems
