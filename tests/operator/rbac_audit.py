"""What RBAC grants a ServiceAccount and what the API server's audit log says it used, both as
atoms (API group, resource[/subresource], verb, scope, name), compared exactly.

Pure functions over parsed YAML documents and audit-log lines: the RBAC test (cluster tier)
feeds them a rendered chart and a real audit log; the unit tests feed them small cases.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

ALL = "*"
"""The scope of a ClusterRoleBinding: every namespace and the cluster-scoped objects."""

DISCOVERY_PREFIXES = ("/api", "/apis", "/version", "/openapi")
"""Non-resource paths every authenticated user may read (the built-in `system:discovery` and
`system:public-info-viewer`): nothing the chart grants."""


@dataclass(frozen=True, order=True)
class Atom:
    """One verb on one resource: granted in `scope` (a namespace, or `ALL`), or used there
    (the namespace of the call, `""` for a cluster-scoped or all-namespaces call)."""

    group: str
    resource: str  # "plural" or "plural/subresource"
    verb: str
    scope: str
    name: str = ""  # a grant's resourceNames entry ("": any name); a use's object name

    def short(self) -> str:
        where = self.scope or "(cluster)"
        named = f" name={self.name}" if self.name else ""
        return f"{self.group or 'core'}/{self.resource} {self.verb} in {where}{named}"


@dataclass(frozen=True)
class Call:
    """One request of the audit log, as the authorizer saw it."""

    atom: Atom | None  # None: a non-resource request (`path`)
    path: str
    code: int


def _expand(rules: Iterable[Mapping[str, Any]], scope: str) -> set[Atom]:
    atoms = set()
    for rule in rules:
        names = rule.get("resourceNames") or [""]
        for group in rule.get("apiGroups", []):
            for resource in rule.get("resources", []):
                for verb in rule.get("verbs", []):
                    for name in names:
                        atoms.add(Atom(group, resource, verb, scope, name))
    return atoms


def granted(docs: Iterable[Mapping[str, Any]], namespace: str, account: str) -> set[Atom]:
    """Every atom the Roles and ClusterRoles in `docs` grant ServiceAccount namespace/account
    through the bindings in `docs`. A rule with a wildcard is refused (never least privilege)."""
    docs = [d for d in docs if d]
    roles: dict[tuple[str, str, str], list[Mapping[str, Any]]] = {}
    for doc in docs:
        if doc["kind"] in ("Role", "ClusterRole"):
            meta = doc["metadata"]
            key = (doc["kind"], meta.get("namespace", ""), meta["name"])
            roles[key] = doc.get("rules") or []
    atoms: set[Atom] = set()
    for doc in docs:
        if doc["kind"] not in ("RoleBinding", "ClusterRoleBinding"):
            continue
        subject = {"kind": "ServiceAccount", "name": account, "namespace": namespace}
        if not any(all(s.get(k) == v for k, v in subject.items()) for s in doc["subjects"]):
            continue
        ref = doc["roleRef"]
        scope = doc["metadata"]["namespace"] if doc["kind"] == "RoleBinding" else ALL
        role_ns = "" if ref["kind"] == "ClusterRole" else scope
        rules = roles.get((ref["kind"], role_ns, ref["name"]))
        if rules is None:
            raise AssertionError(f"{doc['kind']} {doc['metadata']['name']} binds a missing role")
        atoms |= _expand(rules, scope)
    wild = sorted(a.short() for a in atoms if ALL in (a.group, a.resource, a.verb))
    if wild:
        raise AssertionError(f"wildcards granted: {wild}")
    return atoms


def calls(lines: Iterable[str], username: str) -> list[Call]:
    """The requests `username` made, from the lines of a JSON audit log. A server-side apply
    that created its object (a PATCH answered 201) was also authorized as a create."""
    out = []
    for line in lines:
        if username not in line:
            continue
        event = json.loads(line)
        if event.get("user", {}).get("username") != username:
            continue
        if event.get("stage") not in ("ResponseComplete", "ResponseStarted", "Panic"):
            continue
        code = int(event.get("responseStatus", {}).get("code", 0))
        decision = (event.get("annotations") or {}).get("authorization.k8s.io/decision")
        if code == 403 and decision == "allow":
            code = 0  # authorized, refused by admission (a namespace being deleted): not RBAC
        ref = event.get("objectRef")
        path = event.get("requestURI", "")
        if ref is None:
            out.append(Call(None, path.split("?")[0], code))
            continue
        resource = ref["resource"] + (f"/{ref['subresource']}" if ref.get("subresource") else "")
        atom = Atom(
            ref.get("apiGroup", ""),
            resource,
            event["verb"],
            ref.get("namespace", ""),
            ref.get("name", ""),
        )
        out.append(Call(atom, path, code))
        if atom.verb == "patch" and code == 201:
            out.append(
                Call(Atom(atom.group, resource, "create", atom.scope, atom.name), path, code)
            )
    return out


def covers(grant: Atom, use: Atom) -> bool:
    same = (grant.group, grant.resource, grant.verb) == (use.group, use.resource, use.verb)
    in_scope = grant.scope == ALL or (use.scope != "" and grant.scope == use.scope)
    named = not grant.name or grant.name == use.name
    return same and in_scope and named


@dataclass(frozen=True)
class Verdict:
    """How the grants and the uses differ; all empty when they match exactly."""

    ungranted: list[str]  # used, not granted
    unexercised: list[str]  # granted, never used (and not excused)
    stale_excuses: list[str]  # excused, but used after all or no longer granted
    forbidden: list[str]  # refused by the real authorizer (403)
    not_discovery: list[str]  # non-resource paths beyond discovery

    def problems(self) -> dict[str, list[str]]:
        return {k: v for k, v in self.__dict__.items() if v}


def compare(
    grants: set[Atom], seen: list[Call], excused: Mapping[tuple[str, str, str], str]
) -> Verdict:
    """Exact: every use granted, every grant used unless `excused` names its
    (group, resource, verb) with a reason, and every excuse still needed."""
    uses = {c.atom for c in seen if c.atom is not None}
    ungranted = sorted(u.short() for u in uses if not any(covers(g, u) for g in grants))
    idle = {g for g in grants if not any(covers(g, u) for u in uses)}
    unexercised = sorted(g.short() for g in idle if (g.group, g.resource, g.verb) not in excused)
    stale = sorted(
        f"{key}: {why}"
        for key, why in excused.items()
        if not any((g.group, g.resource, g.verb) == key for g in idle)
    )
    forbidden = sorted(
        {f"{c.code} {c.atom.short() if c.atom else c.path}" for c in seen if c.code == 403}
    )
    paths = {c.path for c in seen if c.atom is None}
    odd = sorted(p for p in paths if not p.startswith(DISCOVERY_PREFIXES))
    return Verdict(ungranted, unexercised, stale, forbidden, odd)
