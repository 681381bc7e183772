"""The elastic bench's arithmetic (bench/elastic/report.py): wake-up windows, pod-seconds,
percentiles and the summary of one resource, on hand-made records."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from pizza_load.loadgen import Record

pytestmark = pytest.mark.unit
PRIMARY, FALLBACK = "big", "small"


def _report() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "elastic" / "report.py"
    spec = importlib.util.spec_from_file_location("elastic_report", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


report = _report()


def _primary(t: float, latency: float = 0.01) -> Record:
    return Record(t, latency, 200, PRIMARY)


def _idle(t: float, latency: float = 0.005) -> Record:
    return Record(t, latency, 200, FALLBACK, report.PRIMARY_IDLE)


def test_percentile_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert report.percentile(values, 50) == 50.0
    assert report.percentile(values, 99) == 99.0
    assert report.percentile(values, 100) == 100.0
    assert report.percentile([], 50) is None


def test_a_wake_window_runs_from_the_first_idle_answer_to_the_primary_back() -> None:
    records = [_primary(1.0), _idle(10.0), _idle(11.0), _primary(14.0), _primary(15.0), _idle(40.0)]
    assert report.wake_windows(records, PRIMARY) == [(10.0, 14.0), (40.0, None)]
    inside = report.within(records, report.wake_windows(records, PRIMARY))
    assert [r.t for r in inside] == [10.0, 11.0, 14.0, 40.0]


def test_an_unanswered_request_opens_no_window() -> None:
    records = [Record(5.0, 1.0, 502, None, None, "bad_gateway"), _primary(6.0)]
    assert report.wake_windows(records, PRIMARY) == []


def test_replica_seconds_hold_each_sample_until_the_next() -> None:
    samples = [
        report.Sample(0.0, 1, 1, 1, 1, False),
        report.Sample(10.0, 0, 0, 1, 1, True),
        report.Sample(20.0, None, None, None, None, None),  # a failed look: ignored
        report.Sample(30.0, 2, 2, 1, 1, False),
    ]
    assert report.replica_seconds(samples, "primary_ready", 0.0, 40.0) == 10.0 + 0.0 + 20.0
    assert report.replica_seconds(samples, "primary_ready", 5.0, 35.0) == 5.0 + 10.0


def test_held_seconds_from_creation_to_deletion_within_the_trace() -> None:
    pods = [
        report.PodTimes("ns", "a", "primary", created=-10.0, ready=-5.0, deleting=20.0),
        report.PodTimes("ns", "b", "primary", created=50.0, ready=55.0),  # still there
        report.PodTimes("ns", "c", "fallback", created=0.0, ready=1.0),
    ]
    assert report.held_seconds(pods, "primary", 0.0, 60.0) == 20.0 + 10.0


def test_summarize_counts_errors_and_fallback_reasons() -> None:
    records = [
        _primary(1.0, 0.010),
        _idle(10.0, 0.005),
        _primary(12.0, 0.020),
        Record(13.0, None, "skipped"),
        Record(14.0, 0.1, "timeout", None, None, "timed out"),
    ]
    out = report.summarize(
        records, [], [], namespace="ns", windows=[(10.0, 12.0)], start=0.0, end=20.0
    )
    assert out["requests_sent"] == 4
    assert out["skipped_at_cap"] == 1
    assert out["client_errors"] == 1
    assert out["errors_by_status"] == {"timeout": 1}
    assert out["answered_primary_idle"] == 1
    assert out["by_model"] == {PRIMARY: 2, FALLBACK: 1}
    assert out["latency_during_wakeups"] == {
        "answered": 2,
        "p50_ms": 5.0,
        "p99_ms": 20.0,
        "max_ms": 20.0,
    }
