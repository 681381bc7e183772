"""Alert rules: promtool accepts manifests/prometheus/pizza-alerts.yaml and its unit tests
pass, every alert has a firing and a non-firing test case and a runbook section, and the Helm
chart ships the same rules as a PrometheusRule only where the cluster serves
monitoring.coreos.com/v1."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .helpers import ROOT

pytestmark = pytest.mark.unit

RULES = ROOT / "manifests" / "prometheus" / "pizza-alerts.yaml"
RULE_TESTS = ROOT / "manifests" / "prometheus" / "pizza-alerts.test.yaml"
CHART = ROOT / "helm" / "pizza-operator"
CHART_RULES = CHART / "files" / "pizza-alerts.yaml"
RUNBOOKS = ROOT / "docs" / "runbooks.md"
HELM = ROOT / ".bin" / "helm"
PROMETHEUS_RULE_API = "monitoring.coreos.com/v1/PrometheusRule"
KUBE_VERSION = "1.31.0"
"""The Kubernetes version the chart is rendered for (helm template defaults to v1.20)."""
RUNBOOK_PREFIX = "docs/runbooks.md#"


def _load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(path.read_text())
    return data


def _alerts() -> list[dict[str, Any]]:
    return [rule for group in _load(RULES)["groups"] for rule in group["rules"] if "alert" in rule]


def _promtool() -> str:
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.skip(
            "promtool not installed (Debian package prometheus; hack/install-system-deps.sh)"
        )
    return promtool


def _helm(*args: str) -> str:
    if not HELM.exists():
        pytest.skip(f"{HELM} missing (hack/install-system-deps.sh)")
    result = subprocess.run(
        [str(HELM), *args], capture_output=True, text=True, check=False, cwd=ROOT
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _template(*args: str) -> list[dict[str, Any]]:
    out = _helm("template", "x", str(CHART), "--kube-version", KUBE_VERSION, *args)
    return [doc for doc in yaml.safe_load_all(out) if doc]


def _slug(heading: str) -> str:
    """GitHub's anchor of a Markdown heading."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_promtool_check_rules() -> None:
    result = subprocess.run(
        [_promtool(), "check", "rules", str(RULES)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(_alerts())} rules found" in result.stdout


def test_promtool_test_rules() -> None:
    result = subprocess.run(
        [_promtool(), "test", "rules", str(RULE_TESTS)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_every_alert_has_the_expected_alerts() -> None:
    names = [alert["alert"] for alert in _alerts()]
    assert len(names) == len(set(names)), "duplicate alert names"
    assert set(names) == {
        "PizzaPrimaryFailureRateHigh",
        "PizzaClientErrors",
        "PizzaRolledBackToStable",
        "PizzaRolledBackToEmergency",
        "PizzaFallbackCapacityExhausted",
        "PizzaOperatorDown",
        "PizzaOperatorNotReconciling",
        "PizzaAnalysisInconclusive",
        "PizzaPrimaryNotWaking",
        "PizzaCanaryAborted",
    }
    for alert in _alerts():
        assert alert["labels"]["severity"] in {"warning", "critical"}, alert["alert"]
        for key in ("summary", "description", "runbook_url"):
            assert alert["annotations"].get(key), f"{alert['alert']}: no {key}"


def test_every_alert_has_a_firing_and_a_quiet_case() -> None:
    tests = _load(RULE_TESTS)
    assert tests["rule_files"] == [RULES.name]
    firing: set[str] = set()
    quiet: set[str] = set()
    for case in tests["tests"]:
        for check in case.get("alert_rule_test", []):
            (firing if check.get("exp_alerts") else quiet).add(check["alertname"])
    names = {alert["alert"] for alert in _alerts()}
    assert names - firing == set(), "alerts without a firing test case"
    assert names - quiet == set(), "alerts without a non-firing test case"
    assert (firing | quiet) - names == set(), "test cases of unknown alerts"


def test_every_alert_has_a_runbook_section() -> None:
    anchors = {
        _slug(line.lstrip("#"))
        for line in RUNBOOKS.read_text().splitlines()
        if re.match(r"^#{1,6} ", line)
    }
    for alert in _alerts():
        url: str = alert["annotations"]["runbook_url"]
        assert url.startswith(RUNBOOK_PREFIX), f"{alert['alert']}: {url}"
        anchor = url.removeprefix(RUNBOOK_PREFIX)
        assert anchor == alert["alert"].lower(), f"{alert['alert']}: {url}"
        assert anchor in anchors, f"{alert['alert']}: no section #{anchor} in {RUNBOOKS.name}"


def test_chart_copy_of_the_rules_is_identical() -> None:
    assert CHART_RULES.read_bytes() == RULES.read_bytes(), (
        f"cp {RULES.relative_to(ROOT)} {CHART_RULES.relative_to(ROOT)}"
    )


def test_helm_lint() -> None:
    _helm("lint", str(CHART))


def test_chart_renders_no_prometheusrule_without_the_api() -> None:
    docs = _template()
    assert docs, "the chart rendered nothing"
    assert [doc for doc in docs if doc["kind"] == "PrometheusRule"] == []


def test_chart_renders_no_prometheusrule_when_disabled() -> None:
    docs = _template(
        "--api-versions",
        PROMETHEUS_RULE_API,
        "--set",
        "monitoring.prometheusRule.enabled=false",
    )
    assert [doc for doc in docs if doc["kind"] == "PrometheusRule"] == []


def test_chart_renders_the_rules_with_the_api() -> None:
    docs = _template(
        "--api-versions",
        PROMETHEUS_RULE_API,
        "--set",
        "monitoring.prometheusRule.labels.release=kube-prometheus-stack",
    )
    rules = [doc for doc in docs if doc["kind"] == "PrometheusRule"]
    assert len(rules) == 1
    rule = rules[0]
    assert rule["apiVersion"] == "monitoring.coreos.com/v1"
    assert rule["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert rule["spec"]["groups"] == _load(RULES)["groups"]
