"""Nothing the operator adds makes a deletion wait for it: no finalizer on resources (a finalizer
an older operator left is removed), and a resource and its namespace go with the operator down."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import pytest

from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]
OLD_FINALIZER = "kopf.zalando.org/KopfFinalizerMarker"  # what kopf put there for the daemon


def _finalizers(ns: str, name: str) -> list[str]:
    found: list[str] = kubectl_json("get", "pmd", name, "-n", ns)["metadata"].get("finalizers", [])
    return found


def test_an_old_finalizer_is_removed(operator: OperatorProcess, test_namespace: str) -> None:
    ns, name = test_namespace, "upgraded"
    body = pmd_manifest(name, ns)
    body["metadata"]["finalizers"] = [OLD_FINALIZER, "example.com/users-own"]
    apply(body)
    kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
    eventually(
        lambda: _finalizers(ns, name) == ["example.com/users-own"],
        timeout=30,
        what="kopf's old finalizer removed, the user's kept",
        ignoring=AssertionError,
    )
    kubectl(
        "patch",
        "pmd",
        name,
        "-n",
        ns,
        "--type=json",
        "-p",
        '[{"op": "remove", "path": "/metadata/finalizers"}]',
    )


def test_resource_and_namespace_delete_with_the_operator_down(
    crds_installed: Path, tmp_path: Path
) -> None:
    ns = f"gone-{uuid.uuid4().hex[:6]}"
    kubectl("create", "namespace", ns)
    op = OperatorProcess(tmp_path, f"test-{uuid.uuid4().hex[:8]}", "--namespace", ns).start()
    try:
        for name in ("one", "two"):
            apply(pmd_manifest(name, ns))
        for name in ("one", "two"):
            kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
            assert _finalizers(ns, name) == []
    finally:
        op.stop()

    start = time.monotonic()
    kubectl("delete", "pmd", "one", "-n", ns, "--timeout=20s")
    print(f"resource deleted in {time.monotonic() - start:.1f} s with the operator down")
    eventually(  # its children go by garbage collection, not by the operator
        lambda: (
            not kubectl_json("get", "deploy", "-n", ns, "-l", "app.kubernetes.io/instance=one")[
                "items"
            ]
        ),
        timeout=60,
        what="children of the deleted resource collected",
        ignoring=AssertionError,
    )
    start = time.monotonic()
    kubectl("delete", "namespace", ns, "--timeout=90s")
    print(f"namespace deleted in {time.monotonic() - start:.1f} s with the operator down")
