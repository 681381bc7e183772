"""Only our own objects, and nothing half-applied, against the real API server with a real
operator: a child's name held by another object blocks the resource (`NameConflict`) and that
object is never written or collected; a child the API server refuses at apply time blocks it
as `InvalidSpec` before anything is applied."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.support.conditions import condition
from tests.support.waiting import eventually

from .helpers import OperatorProcess, apply, children, events, kubectl, kubectl_json, pmd_manifest

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

RESYNC = 5  # the operator fixture's --resync-seconds


def _ready_reason(namespace: str, name: str, reason: str) -> dict[str, Any]:
    """The Ready condition, once its reason is `reason` for the current generation."""

    def reported() -> dict[str, Any] | None:
        body = kubectl_json("get", "pmd", name, "-n", namespace)
        cond = condition(body, "Ready")
        current = cond and cond.get("observedGeneration") == body["metadata"]["generation"]
        return cond if current and cond["reason"] == reason else None

    cond: dict[str, Any] = eventually(
        reported, timeout=30, what=f"Ready reason {reason}", ignoring=AssertionError
    )
    return cond


def _everything_labelled(namespace: str, name: str) -> list[str]:
    """Every object of any child kind labelled as resource `name`'s."""
    data = kubectl_json(
        "get",
        "deploy,svc,pdb,cm,sa,role,rolebinding",
        "-n",
        namespace,
        "-l",
        f"app.kubernetes.io/instance={name}",
    )
    return sorted(f"{i['kind']}/{i['metadata']['name']}" for i in data["items"])


def _user_objects(namespace: str, name: str) -> None:
    """A ConfigMap NAME-routing with the user's data and a Service NAME, made by hand."""
    apply(
        {
            "apiVersion": "v1",
            "kind": "ConfigMap",
            "metadata": {"name": f"{name}-routing", "namespace": namespace},
            "data": {"owner": "the user", "mode": "keep me"},
        }
    )
    apply(
        {
            "apiVersion": "v1",
            "kind": "Service",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {"selector": {"app": "theirs"}, "ports": [{"name": "web", "port": 80}]},
        }
    )


def _snapshot(namespace: str, name: str) -> dict[str, Any]:
    cm = kubectl_json("get", "cm", f"{name}-routing", "-n", namespace)
    svc = kubectl_json("get", "svc", name, "-n", namespace)
    return {
        "cm": (
            cm["metadata"]["resourceVersion"],
            cm["data"],
            cm["metadata"].get("ownerReferences"),
        ),
        "svc": (
            svc["metadata"]["resourceVersion"],
            svc["spec"]["selector"],
            svc["metadata"].get("ownerReferences"),
        ),
    }


def _warnings(namespace: str, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in events(namespace, name) if e["reason"] == reason]


class TestNameConflict:
    def test_names_held_by_the_user_block_until_freed(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "held"
        _user_objects(ns, name)
        before = _snapshot(ns, name)
        apply(pmd_manifest(name, ns))

        cond = _ready_reason(ns, name, "NameConflict")
        assert cond["status"] == "False"
        assert f"ConfigMap {name}-routing" in cond["message"]
        assert f"Service {name} " in cond["message"]
        progressing = condition(kubectl_json("get", "pmd", name, "-n", ns), "Progressing")
        assert (progressing["status"], progressing["reason"]) == ("False", "NameConflict")
        time.sleep(3 * RESYNC)  # several resyncs: still one Event, nothing written
        warnings = _warnings(ns, name, "NameConflict")
        assert len(warnings) == 1 and warnings[0]["type"] == "Warning"
        assert warnings[0]["message"] == cond["message"]
        assert _snapshot(ns, name) == before
        assert before["cm"][2] is None and before["svc"][2] is None
        assert _everything_labelled(ns, name) == []

        # the user frees the names: the next resync builds everything
        kubectl("delete", "cm", f"{name}-routing", "-n", ns)
        kubectl("delete", "svc", name, "-n", ns)
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        assert len(children(ns, name)) == 8
        uid = kubectl_json("get", "pmd", name, "-n", ns)["metadata"]["uid"]
        routing = kubectl_json("get", "cm", f"{name}-routing", "-n", ns)
        assert [r["uid"] for r in routing["metadata"]["ownerReferences"]] == [uid]

    def test_deleting_the_resource_leaves_the_users_objects(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "guest"
        _user_objects(ns, name)
        before = _snapshot(ns, name)
        apply(pmd_manifest(name, ns))
        _ready_reason(ns, name, "NameConflict")

        kubectl("delete", "pmd", name, "-n", ns, "--wait=true", "--timeout=60s")
        time.sleep(RESYNC)  # time for the garbage collector, had it anything to collect
        assert _snapshot(ns, name) == before

    def test_two_resources_whose_children_collide_the_first_keeps_them(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns = test_namespace
        apply(pmd_manifest("a", ns))
        kubectl("wait", "--for=condition=Ready", "pmd/a", "-n", ns, "--timeout=90s")
        first = children(ns, "a")
        uid_a = kubectl_json("get", "pmd", "a", "-n", ns)["metadata"]["uid"]

        apply(pmd_manifest("a-primary", ns))  # its router Service is `a-primary`, a's primary's
        cond = _ready_reason(ns, "a-primary", "NameConflict")
        assert cond["message"] == "Service a-primary belongs to PizzaModelDeployment a"
        assert len(_warnings(ns, "a-primary", "NameConflict")) == 1
        assert _everything_labelled(ns, "a-primary") == []

        time.sleep(2 * RESYNC)
        svc = kubectl_json("get", "svc", "a-primary", "-n", ns)
        assert [r["uid"] for r in svc["metadata"]["ownerReferences"]] == [uid_a]
        assert (
            svc["metadata"]["resourceVersion"]
            == first["Service/a-primary"]["metadata"]["resourceVersion"]
        )
        assert condition(kubectl_json("get", "pmd", "a", "-n", ns), "Ready")["status"] == "True"


class TestRefusedAtApply:
    def test_a_child_the_api_server_refuses_blocks_everything(
        self, operator: OperatorProcess, test_namespace: str
    ) -> None:
        ns, name = test_namespace, "refused"
        manifest = pmd_manifest(name, ns)
        # the CRD admits any qualified resource name; core/v1 wants a standard one or a domain
        manifest["spec"]["fallback"]["resources"]["limits"] = {"memory": "128Mi", "gpu": 1}
        apply(manifest)

        cond = _ready_reason(ns, name, "InvalidSpec")
        assert cond["status"] == "False"
        assert f"Deployment {name}-fallback" in cond["message"]
        assert "resources.limits[gpu]" in cond["message"], cond["message"]
        assert _everything_labelled(ns, name) == []
        time.sleep(2 * RESYNC)
        assert len(_warnings(ns, name, "InvalidSpec")) == 1
        assert _everything_labelled(ns, name) == []
        assert f"reconciling {ns}/{name}:" not in operator.log()  # no API error, no retry

        apply(pmd_manifest(name, ns))  # fixed: everything is built
        kubectl("wait", "--for=condition=Ready", f"pmd/{name}", "-n", ns, "--timeout=90s")
        assert len(children(ns, name)) == 8
