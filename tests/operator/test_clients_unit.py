"""The primary judged across clients (`rollback.clients`), and where its groups come from: the
router's `/metrics` text (`analysis.window`) and a Prometheus answer (`analysis.promql`)."""

from __future__ import annotations

import pytest
from pizza_operator.analysis.promql import DEFAULT_QUERIES, _groups
from pizza_operator.analysis.window import parse_router_metrics, router_window
from pizza_operator.api.v1alpha1 import PROMQL_SIGNALS
from pizza_operator.rollback import ClientGroups, KubeSignals, Thresholds, across_clients, judge
from pizza_operator.rollback.verdicts import MetricSignals

pytestmark = pytest.mark.unit

LIMITS = Thresholds(failure_rate=0.05, min_requests=20)
READY = KubeSignals(desired=1, ready=1, available=True)


def groups(**by_group: tuple[float, float]) -> ClientGroups:
    """`g3=(requests, failures)` ..."""
    return ClientGroups(
        {k[1:]: v[0] for k, v in by_group.items()}, {k[1:]: v[1] for k, v in by_group.items()}
    )


class TestAcrossClients:
    def test_one_noisy_group_is_set_aside(self) -> None:
        seen = groups(g1=(40, 0), g2=(40, 1), g10=(50, 45))
        judged = across_clients(46 / 130, seen, 20)
        assert judged.set_aside == "10" and judged.failure_rate == pytest.approx(1 / 80)

    def test_failing_for_everyone_still_fails(self) -> None:
        seen = groups(g1=(40, 40), g2=(40, 40), g10=(50, 50))
        assert across_clients(1.0, seen, 20).failure_rate == 1.0

    def test_too_few_other_requests_judges_all(self) -> None:
        seen = groups(g1=(5, 0), g10=(100, 100))  # one client, nearly: it is everyone
        assert across_clients(100 / 105, seen, 20) == across_clients(100 / 105, None, 20)
        assert across_clients(100 / 105, seen, 20).set_aside is None

    def test_never_above_the_rate_of_all(self) -> None:
        # the group set aside failed less than the rest: the rate of all stands
        seen = groups(g1=(100, 10), g2=(20, 9), g3=(20, 9))
        assert across_clients(28 / 140, seen, 20).failure_rate == pytest.approx(28 / 140)

    def test_no_failures_no_groups_no_rate(self) -> None:
        assert across_clients(0.0, groups(g1=(50, 0)), 20).failure_rate == 0.0
        assert across_clients(None, groups(g1=(50, 0)), 20).failure_rate is None

    def test_ties_break_on_requests_then_name(self) -> None:
        assert groups(g1=(10, 5), g2=(30, 5)).noisiest() == "2"
        assert groups(g1=(10, 5), g2=(10, 5)).noisiest() == "2"


class TestJudge:
    def test_healthy_with_a_noisy_client_and_values_shown(self) -> None:
        signals = MetricSignals(130, 46 / 130, 0.2, groups(g1=(40, 0), g2=(40, 1), g10=(50, 45)))
        check = judge("primary", READY, signals, LIMITS)
        assert check.verdict == "Healthy"
        assert check.values["failureRate"] == pytest.approx(1 / 80)
        assert check.values["failureRateAllClients"] == pytest.approx(46 / 130)
        assert check.values["failingClientGroups"] == 2.0

    def test_without_groups_as_before(self) -> None:
        check = judge("primary", READY, MetricSignals(130, 0.3, 0.2), LIMITS)
        assert (check.verdict, check.reasons) == ("Failed", ("FailureRate",))
        assert "failureRateAllClients" not in check.values


def _page(requests: dict[str, int], failures: dict[str, int], answered: int) -> str:
    lines = [f'pizza_api_inference_total{{model="p"}} {answered}']
    lines += [
        f'pizza_router_primary_client_requests_total{{client_group="{g}"}} {v}'
        for g, v in requests.items()
    ]
    lines += [
        f'pizza_router_primary_client_failures_total{{client_group="{g}"}} {v}'
        for g, v in failures.items()
    ]
    timeouts = sum(failures.values())
    lines.append(f'pizza_api_fallback_total{{reason="timeout"}} {timeouts}')
    return "\n".join(lines) + "\n"


def test_groups_summed_over_router_pods() -> None:
    before = {
        "a": parse_router_metrics(_page({"1": 0, "10": 0}, {"1": 0, "10": 0}, 0)),
        "b": parse_router_metrics(_page({"1": 0, "10": 0}, {"1": 0, "10": 0}, 0)),
    }
    after = {
        "a": parse_router_metrics(_page({"1": 30, "10": 20}, {"1": 0, "10": 20}, 30)),
        "b": parse_router_metrics(_page({"1": 10, "10": 30}, {"1": 1, "10": 25}, 14)),
    }
    window = router_window(before, after, primary_model="p", fallback_model="f")
    assert window.primary.clients == ClientGroups({"1": 40, "10": 50}, {"1": 1, "10": 45})
    assert window.primary.failure_rate == pytest.approx(46 / 90)
    check = judge("primary", READY, window.primary, LIMITS)
    assert check.verdict == "Healthy" and check.values["failureRate"] == pytest.approx(1 / 40)


def test_a_router_without_groups_gives_none() -> None:
    page = 'pizza_api_inference_total{model="p"} 5\n'
    window = router_window(
        {"a": parse_router_metrics(page)},
        {"a": parse_router_metrics(page)},
        primary_model="p",
        fallback_model="f",
    )
    assert window.primary.clients is None


def test_prometheus_groups_and_the_signals_named_once() -> None:
    found = _groups(
        [({"client_group": "1"}, 40.0), ({"client_group": "2"}, float("nan"))],
        [({"client_group": "1"}, 2.0)],
    )
    assert found == ClientGroups({"1": 40.0}, {"1": 2.0})
    assert _groups([], []) is None
    assert tuple(DEFAULT_QUERIES) == PROMQL_SIGNALS
    assert "client_group" in DEFAULT_QUERIES["primary_client_failures"]
