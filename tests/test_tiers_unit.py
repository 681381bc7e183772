"""Every test in exactly one tier: the pure check (tests/support/tiers.py), and the collection hook
of tests/conftest.py in a pytest run of its own (pytester)."""

from __future__ import annotations

import pytest

from tests.support.tiers import TIERS, tier_problems

pytestmark = pytest.mark.unit


@pytest.mark.parametrize("tier", TIERS)
def test_one_tier_is_fine_with_or_without_other_markers(tier: str) -> None:
    assert tier_problems("t.py::test", [tier]) is None
    assert tier_problems("t.py::test", ["slow", tier, "parametrize", "usefixtures"]) is None


def test_the_same_tier_on_module_and_test_is_one_tier() -> None:
    assert tier_problems("t.py::test", ["unit", "slow", "unit"]) is None


def test_no_tier_names_the_test() -> None:
    problem = tier_problems("tests/x/test_a.py::test_b[1]", ["slow", "skipif"])
    assert (
        problem == "tests/x/test_a.py::test_b[1]: no tier marker (one of unit, cluster, e2e, gpu)"
    )
    assert tier_problems("t.py::test", []) is not None


def test_two_tiers_name_both() -> None:
    problem = tier_problems("t.py::test", ["slow", "cluster", "unit"])
    assert problem == "t.py::test: more than one tier marker (unit, cluster)"


PYPROJECT = """
[tool.pytest.ini_options]
addopts = "--strict-markers"
markers = ["unit: u", "cluster: c", "e2e: e", "gpu: g", "slow: s"]
"""

# the hook as tests/conftest.py has it (that conftest also loads the cluster fixtures)
CONFTEST = """
import pytest

from tests.support.tiers import check_tiers


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items):
    check_tiers(items)
"""


def test_the_hook_fails_the_collection_naming_each_offending_test(
    pytester: pytest.Pytester,
) -> None:
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_mixed="""
        import pytest

        pytestmark = pytest.mark.slow

        @pytest.mark.unit
        def test_fine():
            pass

        def test_untiered():
            pass

        @pytest.mark.unit
        @pytest.mark.cluster
        def test_two():
            pass

        @pytest.mark.parametrize("x", [1, pytest.param(2, marks=pytest.mark.gpu)])
        @pytest.mark.unit
        def test_param(x):
            pass
        """
    )
    for args in (["--collect-only"], ["-m", "unit"], ["-m", "cluster"]):
        result = pytester.runpytest(*args)
        assert result.ret == pytest.ExitCode.USAGE_ERROR, args
        result.stderr.fnmatch_lines(
            [
                "*every test needs exactly one tier marker*",
                "*test_mixed.py::test_untiered: no tier marker (one of unit, cluster, e2e, gpu)",
                "*test_mixed.py::test_two: more than one tier marker (unit, cluster)",
                "*test_mixed.py::test_param[[]2[]]: more than one tier marker (unit, gpu)",
            ]
        )
        assert "test_fine" not in result.stderr.str()
        assert "test_param[1]" not in result.stderr.str()


def test_the_hook_lets_a_fully_tiered_run_through(pytester: pytest.Pytester) -> None:
    pytester.makepyprojecttoml(PYPROJECT)
    pytester.makeconftest(CONFTEST)
    pytester.makepyfile(
        test_ok="""
        import pytest

        pytestmark = pytest.mark.unit

        def test_a():
            pass

        @pytest.mark.slow
        def test_b():
            pass
        """
    )
    pytester.runpytest("-q").assert_outcomes(passed=2)
    assert pytester.runpytest("-q", "-m", "not unit").ret == pytest.ExitCode.NO_TESTS_COLLECTED
