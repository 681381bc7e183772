"""The operator's code stays in small pieces: no class over 200 lines, no function over 60."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

pytestmark = pytest.mark.unit

PACKAGE = Path(__file__).resolve().parents[2] / "operator" / "pizza_operator"
MAX_CLASS_LINES = 200
MAX_FUNCTION_LINES = 60


def oversized(source: str, where: str) -> list[str]:
    """Classes and functions in `source` over their limit, as `where:line kind name lines`."""
    found = []
    for node in ast.walk(ast.parse(source)):
        limit = None
        if isinstance(node, ast.ClassDef):
            kind, limit = "class", MAX_CLASS_LINES
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            kind, limit = "def", MAX_FUNCTION_LINES
        if limit is None:
            continue
        lines = (node.end_lineno or node.lineno) - node.lineno + 1
        if lines > limit:
            found.append(f"{where}:{node.lineno} {kind} {node.name} {lines} lines")  # type: ignore[attr-defined]
    return found


def test_the_check_finds_a_long_function() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(MAX_FUNCTION_LINES))
    assert oversized(f"def long():\n{body}\n", "m.py") == ["m.py:1 def long 61 lines"]
    assert oversized("def short():\n    return 1\n", "m.py") == []


def test_no_class_or_function_of_the_operator_is_over_its_limit() -> None:
    found = [
        problem
        for path in sorted(PACKAGE.rglob("*.py"))
        for problem in oversized(path.read_text(), str(path.relative_to(PACKAGE)))
    ]
    assert found == []
