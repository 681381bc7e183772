from __future__ import annotations

import time
from pathlib import Path

import pytest
from pizza_inference.sources import Source, SourceError, local_path, parse_source, resolve

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hf://Qwen/Qwen2.5-VL-3B-Instruct", Source("hf", "Qwen/Qwen2.5-VL-3B-Instruct")),
        (
            "hf://Diankun/Spatial-MLLM-subset-sft@main",
            Source("hf", "Diankun/Spatial-MLLM-subset-sft", "main"),
        ),
        ("pvc://models-claim/qwen/3b", Source("pvc", "models-claim/qwen/3b")),
        ("builtin://micro-pizza-net", Source("builtin", "micro-pizza-net")),
        ("file:///opt/models/x", Source("file", "/opt/models/x")),
    ],
)
def test_parse(text: str, expected: Source) -> None:
    assert parse_source(text) == expected
    assert str(parse_source(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "micro-pizza-net",
        "s3://bucket/x",
        "hf://",
        "hf://a/b/c",
        "hf://x@",
        "pvc://claim/../etc",
        "pvc:///x",
        "builtin://../x",
        "file://relative/path",
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(SourceError):
        parse_source(text)


def test_local_paths(tmp_path: Path) -> None:
    assert local_path(parse_source("pvc://claim/a/b")) == Path("/models/claim/a/b")
    assert local_path(parse_source("builtin://micro-pizza-net")).parts[-2:] == (
        "weights",
        "micro-pizza-net",
    )
    assert resolve(f"file://{tmp_path}") == tmp_path
    with pytest.raises(SourceError, match="does not exist"):
        resolve(f"file://{tmp_path}/missing")
    (tmp_path / "claim" / "m").mkdir(parents=True)
    assert resolve("pvc://claim/m", models_root=tmp_path) == tmp_path / "claim" / "m"


def test_hf_offline_fails_fast(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path))
    start = time.monotonic()
    with pytest.raises(SourceError, match="offline"):
        resolve("hf://Qwen/Qwen2.5-VL-3B-Instruct")
    assert time.monotonic() - start < 10
