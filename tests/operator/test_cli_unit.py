"""The command line: defaults (one Lease, every namespace)."""

from __future__ import annotations

import pytest
from pizza_operator.cli import parse_args

pytestmark = pytest.mark.unit


class TestParseArgs:
    def test_no_arguments_watch_everything(self) -> None:
        args = parse_args([])
        assert args.namespace == []
        assert args.lease == "pizza-operator"
        assert args.lease_seconds == 10.0
        assert not args.standalone
        assert args.log_format == "text"

    def test_lease_namespace_from_the_pod(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("POD_NAMESPACE", "pizza-system")
        assert parse_args([]).lease_namespace == "pizza-system"

    def test_namespaces_narrow(self) -> None:
        assert parse_args(["-n", "a", "--namespace", "b"]).namespace == ["a", "b"]

    def test_log_format_is_checked(self) -> None:
        with pytest.raises(SystemExit):
            parse_args(["--log-format", "xml"])
