"""Metrics answers are data: escaped into PromQL, checked for shape, capped in size.

The malformed answers come from a real HTTP server on loopback (what a broken or hostile
endpoint at `spec.analysis.prometheus.address` can send); the real Prometheus tests are in
test_signals_promql.py.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from pizza_operator.analysis.promql import (
    MAX_ANSWER_BYTES,
    PrometheusError,
    QueryContext,
    promql_string,
    regex_literal,
    router_selector,
    router_window_from_prometheus,
    samples_of,
)

pytestmark = pytest.mark.unit


def test_strings_are_escaped_for_promql() -> None:
    assert promql_string('a"b\\c\nd') == 'a\\"b\\\\c\\nd'
    assert regex_literal("m.v1|x(*)") == "m\\.v1\\|x\\(\\*\\)"
    assert router_selector("ns", "a.b-router") == 'namespace="ns",pod=~"a\\\\.b-router-.*"'


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ({"status": "success", "data": []}, "'data' is not an object"),
        ({"status": "error", "error": "bad_data"}, "bad_data"),
        ([1, 2], "list"),
        ({"status": "success", "data": {"resultType": "matrix", "result": []}}, "matrix"),
        ({"status": "success", "data": {"resultType": "vector", "result": [{"v": 1}]}}, "metric"),
        (
            {"status": "success", "data": {"resultType": "vector", "result": [{"metric": {}}]}},
            "pair",
        ),
        (
            {
                "status": "success",
                "data": {"resultType": "vector", "result": [{"metric": {}, "value": [1, "x"]}]},
            },
            "'x'",
        ),
        ({"status": "success", "data": {"resultType": "scalar", "result": "7"}}, "pair"),
    ],
)
def test_malformed_answers_are_refused_by_name(body: Any, why: str) -> None:
    with pytest.raises(PrometheusError, match=why):
        samples_of(body)


def test_well_formed_answers_give_their_samples() -> None:
    vector = {
        "status": "success",
        "data": {"resultType": "vector", "result": [{"metric": {"r": "t"}, "value": [1, "2.5"]}]},
    }
    scalar = {"status": "success", "data": {"resultType": "scalar", "result": [1, "3"]}}
    assert samples_of(vector) == [({"r": "t"}, 2.5)]
    assert samples_of(scalar) == [({}, 3.0)]


class _Answers(BaseHTTPRequestHandler):
    body = b""

    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.body)))
        self.end_headers()
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(self.body)  # the client stops reading an oversized answer

    def log_message(self, *_: Any) -> None:
        pass


@pytest.fixture
def answering() -> Iterator[tuple[str, type[_Answers]]]:
    handler = type("Handler", (_Answers,), {})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}", handler
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize(
    ("body", "why"),
    [
        (json.dumps({"status": "success", "data": []}).encode(), "'data' is not an object"),
        (b"<html>not prometheus</html>", "JSONDecodeError"),
        (b'{"status": "success", "data": {"pad": "' + b"x" * MAX_ANSWER_BYTES + b'"}}', "over"),
    ],
)
def test_a_malformed_answer_over_http_is_no_data_with_the_reason(
    answering: tuple[str, type[_Answers]], body: bytes, why: str
) -> None:
    address, handler = answering
    handler.body = body
    context = QueryContext('job="routers"', "1m", "primary", "fallback")
    window = asyncio.run(router_window_from_prometheus(address, context))
    assert window.primary.requests is None and window.fallback.requests is None
    assert window.error is not None and why in window.error
