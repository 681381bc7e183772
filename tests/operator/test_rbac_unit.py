"""The operator's RBAC as rendered (chart, both modes) and shipped (manifests/), and the
comparison the RBAC cluster test makes (grants against an audit log), on small cases.

What the verbs are is proven in test_rbac_cluster.py from the operator's real calls; these
tests keep the shapes: where each rule lands, nothing cluster-wide with watchNamespaces, the
manifests equal to the chart, and the comparison failing when it should."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from .rbac_audit import ALL, Atom, Call, calls, compare, granted

pytestmark = pytest.mark.unit

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "helm" / "pizza-operator"
HELM = ROOT / ".bin" / "helm"
MANIFEST = ROOT / "manifests" / "rbac.yaml"
ACCOUNT = ("pizza-system", "pizza-operator")
LEASE = Atom("coordination.k8s.io", "leases", "get", "pizza-system", "pizza-operator")


def _template(*args: str) -> list[dict[str, Any]]:
    if not HELM.exists():
        pytest.skip(f"{HELM} not built (make binaries)")
    done = subprocess.run(
        [str(HELM), "template", "pizza-operator", str(CHART), "-n", "pizza-system", *args],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [d for d in yaml.safe_load_all(done.stdout) if d]


def _rbac(docs: list[dict[str, Any]]) -> list[tuple[str, str, str]]:
    kinds = ("Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding")
    return sorted(
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"])
        for d in docs
        if d["kind"] in kinds
    )


def _unscoped(atoms: set[Atom]) -> set[tuple[str, str, str, str]]:
    return {(a.group, a.resource, a.verb, a.name) for a in atoms}


class TestChart:
    def test_all_namespaces_one_cluster_role_and_the_lease_role(self) -> None:
        docs = _template()
        assert _rbac(docs) == [
            ("ClusterRole", "", "pizza-operator"),
            ("ClusterRoleBinding", "", "pizza-operator"),
            ("Role", "pizza-system", "pizza-operator-leader-election"),
            ("RoleBinding", "pizza-system", "pizza-operator-leader-election"),
        ]
        atoms = granted(docs, *ACCOUNT)
        assert {a.scope for a in atoms} == {ALL, "pizza-system"}
        assert {a for a in atoms if a.scope == "pizza-system"} == {
            LEASE,
            Atom("coordination.k8s.io", "leases", "update", "pizza-system", "pizza-operator"),
            Atom("coordination.k8s.io", "leases", "create", "pizza-system"),
        }

    def test_watched_namespaces_get_roles_and_nothing_is_cluster_wide(self) -> None:
        wide = granted(_template(), *ACCOUNT)
        docs = _template("--set", "operator.watchNamespaces={team-a,pizza-system}")
        assert _rbac(docs) == [
            ("Role", "pizza-system", "pizza-operator"),
            ("Role", "pizza-system", "pizza-operator-leader-election"),
            ("Role", "team-a", "pizza-operator"),
            ("RoleBinding", "pizza-system", "pizza-operator"),
            ("RoleBinding", "pizza-system", "pizza-operator-leader-election"),
            ("RoleBinding", "team-a", "pizza-operator"),
        ]
        atoms = granted(docs, *ACCOUNT)
        assert ALL not in {a.scope for a in atoms}
        team = {a for a in atoms if a.scope == "team-a"}
        # the same rules as the ClusterRole, in each watched namespace
        assert _unscoped(team) == _unscoped({a for a in wide if a.scope == ALL})

    def test_the_lease_rule_names_the_lease(self) -> None:
        atoms = granted(_template("--set", "operator.leaseName=other"), *ACCOUNT)
        named = {a.name for a in atoms if a.resource == "leases" and a.verb != "create"}
        assert named == {"other"}

    def test_no_rbac_when_not_asked_for(self) -> None:
        assert _rbac(_template("--set", "rbac.create=false")) == []

    def test_the_verbs_issue_21_found_unused_are_gone(self) -> None:
        """A static supplement of the audit-based test: these must never come back."""
        verbs = {(a.group, a.resource, a.verb) for a in granted(_template(), *ACCOUNT)}
        unused = {
            ("", "pods", "get"),
            ("", "pods", "watch"),
            ("apps", "controllerrevisions", "patch"),
            ("events.k8s.io", "events", "create"),
            ("", "serviceaccounts", "watch"),
            ("rbac.authorization.k8s.io", "roles", "watch"),
            ("rbac.authorization.k8s.io", "rolebindings", "watch"),
            ("pizza.ai", "pizzamodeldeployments/status", "get"),
        }
        assert not verbs & unused
        groups = {group for group, _, _ in verbs}
        assert not groups & {"kopf.dev", "apiextensions.k8s.io"}
        assert not {r for _, r, _ in verbs} & {"namespaces", "kopfpeerings", "clusterkopfpeerings"}

    def test_the_plain_manifests_grant_what_the_chart_grants(self) -> None:
        shipped = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
        assert granted(shipped, *ACCOUNT) == granted(_template(), *ACCOUNT)
        assert _rbac(shipped) == _rbac(_template())


def _line(user: str, verb: str, code: int = 200, **ref: str) -> str:
    event: dict[str, Any] = {
        "stage": "ResponseComplete",
        "user": {"username": user},
        "verb": verb,
        "requestURI": ref.pop("uri", "/x"),
        "responseStatus": {"code": code},
    }
    if ref:
        event["objectRef"] = ref
    return json.dumps(event)


USER = "system:serviceaccount:ops:op"
ROLE = [
    {
        "kind": "Role",
        "metadata": {"name": "r", "namespace": "a"},
        "rules": [
            {
                "apiGroups": ["apps"],
                "resources": ["deployments"],
                "verbs": ["get", "create", "patch"],
            }
        ],
    },
    {
        "kind": "RoleBinding",
        "metadata": {"name": "r", "namespace": "a"},
        "roleRef": {"kind": "Role", "name": "r"},
        "subjects": [{"kind": "ServiceAccount", "name": "op", "namespace": "ops"}],
    },
]


class TestComparison:
    def test_the_audit_log_read_for_one_user_an_apply_that_created_is_a_create(self) -> None:
        lines = [
            _line(
                USER, "patch", 201, apiGroup="apps", resource="deployments", namespace="a", name="d"
            ),
            _line(USER, "get", uri="/apis"),
            _line(
                "someone-else",
                "delete",
                apiGroup="apps",
                resource="deployments",
                namespace="a",
                name="d",
            ),
        ]
        seen = calls(lines, USER)
        assert [c.atom.verb if c.atom else c.path for c in seen] == ["patch", "create", "/apis"]

    def test_a_403_of_admission_is_no_rbac_refusal(self) -> None:
        """A namespace being deleted refuses writes with 403 after the authorizer allowed them;
        only the authorizer's own refusals are RBAC's."""
        admitted = json.loads(_line(USER, "patch", 403, resource="serviceaccounts", namespace="a"))
        admitted["annotations"] = {"authorization.k8s.io/decision": "allow"}
        refused = json.loads(_line(USER, "get", 403, resource="secrets", namespace="a"))
        refused["annotations"] = {"authorization.k8s.io/decision": "forbid"}
        seen = calls([json.dumps(admitted), json.dumps(refused)], USER)
        assert [c.code for c in seen] == [0, 403]

    def test_exact_grants_and_uses_match(self) -> None:
        seen = calls(
            [
                _line(
                    USER,
                    "patch",
                    201,
                    apiGroup="apps",
                    resource="deployments",
                    namespace="a",
                    name="d",
                ),
                _line(
                    USER,
                    "get",
                    404,
                    apiGroup="apps",
                    resource="deployments",
                    namespace="a",
                    name="d",
                ),
            ],
            USER,
        )
        assert compare(granted(ROLE, "ops", "op"), seen, {}).problems() == {}

    def test_every_difference_is_reported(self) -> None:
        seen = [
            Call(Atom("apps", "deployments", "get", "a", "d"), "/p", 200),
            Call(Atom("apps", "deployments", "get", "b", "d"), "/p", 403),  # another namespace
            Call(Atom("apps", "deployments", "list", "", ""), "/p", 200),  # all namespaces
            Call(None, "/metrics", 200),
        ]
        excused = {("apps", "deployments", "create"): "why", ("", "pods", "list"): "stale"}
        problems = compare(granted(ROLE, "ops", "op"), seen, excused).problems()
        assert problems == {
            "ungranted": [
                "apps/deployments get in b name=d",
                "apps/deployments list in (cluster)",
            ],
            "unexercised": ["apps/deployments patch in a"],
            "stale_excuses": ["('', 'pods', 'list'): stale"],
            "forbidden": ["403 apps/deployments get in b name=d"],
            "not_discovery": ["/metrics"],
        }

    def test_a_named_grant_covers_that_name_only(self) -> None:
        grant = Atom("coordination.k8s.io", "leases", "get", "ops", "mine")
        seen = [Call(Atom("coordination.k8s.io", "leases", "get", "ops", "theirs"), "/p", 200)]
        problems = compare({grant}, seen, {}).problems()
        assert problems["ungranted"] and problems["unexercised"]

    def test_wildcards_are_refused(self) -> None:
        wild = [
            dict(ROLE[0], rules=[{"apiGroups": ["*"], "resources": ["*"], "verbs": ["*"]}]),
            ROLE[1],
        ]
        with pytest.raises(AssertionError, match="wildcards"):
            granted(wild, "ops", "op")
