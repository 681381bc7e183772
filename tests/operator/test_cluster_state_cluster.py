"""Child state lives in the cluster: a fresh operator process judges every child from it alone."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from pizza_operator.children import HASH_ANNOTATION

from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, children, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

WRITES = "pizza_operator_child_writes_total"


def _versions(ns: str, name: str) -> dict[str, str]:
    return {k: v["metadata"]["resourceVersion"] for k, v in children(ns, name).items()}


def _generations(ns: str, name: str) -> dict[str, int]:
    return {
        k: v["metadata"]["generation"]
        for k, v in children(ns, name).items()
        if k.startswith("Deployment/")
    }


@pytest.fixture
def converged(
    crds_installed: Path, test_namespace: str, tmp_path: Path
) -> Iterator[tuple[str, str, str]]:
    """A resource made Ready by one operator process that is then stopped."""
    ns, name = test_namespace, "remembered"
    lease = f"test-{uuid.uuid4().hex[:8]}"
    # narrowed to the namespace: the writes counted are this resource's alone (another test's
    # namespace being torn down meanwhile gets its children deleted and is not ours to watch)
    first = OperatorProcess(tmp_path, lease, "--namespace", ns, name="first").start()
    try:
        apply(pmd_manifest(name, ns))
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        assert first.metric(WRITES, action="apply") >= len(children(ns, name)) >= 6
        time.sleep(3)  # trailing status updates of the Deployments settle
    finally:
        first.stop()
    yield ns, name, lease


def test_every_child_carries_the_hash_of_what_was_applied(
    converged: tuple[str, str, str],
) -> None:
    ns, name, _ = converged
    for key, child in children(ns, name).items():
        value = child["metadata"]["annotations"][HASH_ANNOTATION]
        assert len(value) == 64 and int(value, 16) >= 0, key
    hashes = {c["metadata"]["annotations"][HASH_ANNOTATION] for c in children(ns, name).values()}
    assert len(hashes) == len(children(ns, name))  # one per distinct child


def test_a_new_process_writes_nothing_then_restores_hand_edits(
    converged: tuple[str, str, str], tmp_path: Path
) -> None:
    ns, name, lease = converged
    before = _versions(ns, name)
    generations = _generations(ns, name)
    hashes = {
        k: v["metadata"]["annotations"][HASH_ANNOTATION] for k, v in children(ns, name).items()
    }
    second = OperatorProcess(tmp_path, lease, "--namespace", ns, name="second").start()
    try:
        # the fresh process resumes the resource (a full reconcile), then its timer runs (5 s)
        eventually(
            lambda: second.metric("pizza_operator_reconciles_total", kind="full") >= 2,
            timeout=30,
            what="resume and one resync by the new operator",
            ignoring=AssertionError,
        )
        assert second.metric(WRITES) == 0
        assert _versions(ns, name) == before
        assert "applied=0" in second.log()

        # by hand: our annotation on the router Service, and a field we set in a Deployment
        kubectl("annotate", "svc", name, "-n", ns, f"{HASH_ANNOTATION}=tampered", "--overwrite")
        patch = {"spec": {"template": {"metadata": {"labels": {"app.kubernetes.io/part-of": "x"}}}}}
        kubectl(
            "patch", "deploy", f"{name}-fallback", "-n", ns, "--type=merge", "-p", json.dumps(patch)
        )

        def restored() -> bool:
            svc = kubectl_json("get", "svc", name, "-n", ns)
            dep = kubectl_json("get", "deploy", f"{name}-fallback", "-n", ns)
            labels = dep["spec"]["template"]["metadata"]["labels"]
            return bool(
                svc["metadata"]["annotations"][HASH_ANNOTATION] == hashes[f"Service/{name}"]
                and labels["app.kubernetes.io/part-of"] == "pizza-operator"
            )

        eventually(
            restored, timeout=30, what="hand-edited children re-applied", ignoring=AssertionError
        )
        assert second.metric(WRITES, kind="Service", action="apply") >= 1
        assert second.metric(WRITES, kind="Deployment", action="apply") >= 1
        # only the edited children were written again
        after = _versions(ns, name)
        for key in before:
            if key.startswith("Service/") and key != f"Service/{name}":
                assert after[key] == before[key], key
        for key, generation in _generations(ns, name).items():
            edited = key == f"Deployment/{name}-fallback"
            assert (generation > generations[key]) if edited else (generation == generations[key])
        # and once restored, nothing more is written
        settled = second.metric(WRITES)
        reconciles = second.metric("pizza_operator_reconciles_total", kind="full")
        eventually(
            lambda: second.metric("pizza_operator_reconciles_total", kind="full") >= reconciles + 2,
            timeout=30,
            what="two more resyncs",
            ignoring=AssertionError,
        )
        assert second.metric(WRITES) == settled
    finally:
        second.stop()


def test_a_new_process_restores_scale_deletion_and_service_ports_and_keeps_added_fields(
    converged: tuple[str, str, str], tmp_path: Path
) -> None:
    ns, name, lease = converged
    primary = kubectl_json("get", "deploy", f"{name}-primary", "-n", ns)
    replicas = primary["spec"]["replicas"]
    port = kubectl_json("get", "svc", f"{name}-primary", "-n", ns)["spec"]["ports"][0]["port"]
    container = primary["spec"]["template"]["spec"]["containers"][0]["name"]
    # while no operator runs: scale, delete a child, change a Service port, and add a field we
    # don't set (an env var of someone else's: theirs to keep, no reason to write)
    kubectl("scale", "deploy", f"{name}-primary", "-n", ns, f"--replicas={replicas + 2}")
    kubectl("delete", "svc", f"{name}-fallback", "-n", ns)
    ports = [{"op": "replace", "path": "/spec/ports/0/port", "value": port + 1}]
    kubectl("patch", "svc", f"{name}-primary", "-n", ns, "--type=json", "-p", json.dumps(ports))
    env = {
        "spec": {
            "template": {
                "spec": {
                    "containers": [
                        {"name": container, "env": [{"name": "TEAM_NOTE", "value": "kept"}]}
                    ]
                }
            }
        }
    }
    kubectl("patch", "deploy", f"{name}-router", "-n", ns, "-p", json.dumps(env))
    second = OperatorProcess(tmp_path, lease, "--namespace", ns, name="second").start()
    try:

        def restored() -> bool:
            dep = kubectl_json("get", "deploy", f"{name}-primary", "-n", ns)
            svc = kubectl_json("get", "svc", f"{name}-primary", "-n", ns)
            gone = kubectl("get", "svc", f"{name}-fallback", "-n", ns, check=False)
            return bool(
                dep["spec"]["replicas"] == replicas
                and svc["spec"]["ports"][0]["port"] == port
                and gone.returncode == 0
            )

        eventually(
            restored,
            timeout=30,
            what="scale, deleted Service and port restored",
            ignoring=AssertionError,
        )
        router = kubectl_json("get", "deploy", f"{name}-router", "-n", ns)
        envs = router["spec"]["template"]["spec"]["containers"][0].get("env", [])
        assert {"name": "TEAM_NOTE", "value": "kept"} in envs
        assert second.metric(WRITES, kind="Deployment", action="apply") == 1  # the scaled one
        eventually(
            lambda: second.metric("pizza_operator_reconciles_total", kind="full") >= 1,
            timeout=30,
            what="a full reconcile",
            ignoring=AssertionError,
        )
        settled = second.metric(WRITES)
        reconciles = second.metric("pizza_operator_reconciles_total", kind="full")
        eventually(
            lambda: second.metric("pizza_operator_reconciles_total", kind="full") >= reconciles + 2,
            timeout=30,
            what="two more resyncs",
            ignoring=AssertionError,
        )
        assert second.metric(WRITES) == settled
    finally:
        second.stop()
