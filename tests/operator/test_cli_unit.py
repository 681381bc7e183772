"""The command line: defaults and the peering priority (older processes win)."""

from __future__ import annotations

import time

import pytest
from pizza_operator.cli import default_priority, parse_args

pytestmark = pytest.mark.unit


class TestParseArgs:
    def test_no_arguments_watch_everything(self) -> None:
        args = parse_args([])
        assert args.namespace == []
        assert args.peering == "pizza-operator"
        assert not args.standalone
        assert args.log_format == "text"

    def test_namespaces_narrow(self) -> None:
        assert parse_args(["-n", "a", "--namespace", "b"]).namespace == ["a", "b"]

    def test_log_format_is_checked(self) -> None:
        with pytest.raises(SystemExit):
            parse_args(["--log-format", "xml"])


class TestDefaultPriority:
    def test_older_process_has_higher_priority(self) -> None:
        older = default_priority()
        time.sleep(0.005)
        assert default_priority() < older

    def test_json_safe_and_positive(self) -> None:
        assert 0 < default_priority() < 2**53
