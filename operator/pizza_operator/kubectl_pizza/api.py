"""Reads and merge patches through the API server, with errors a user can act on."""

from __future__ import annotations

import urllib.parse
from typing import Any

from kubernetes import config
from pydantic import ValidationError

from pizza_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION, PizzaModelDeployment
from pizza_operator.contract import INSTANCE_LABEL, MANAGED_BY_LABEL, MANAGER
from pizza_operator.kube import Kube, KubeError

FIELD_MANAGER = "kubectl-pizza"
PMD_PATH = f"/apis/{GROUP}/{VERSION}"


class CliError(Exception):
    """A failure to report on stderr as one line, with an exit code (no traceback)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _resource(plural: str, group: str) -> str:
    return f"{plural}.{group}" if group else plural


def _explain(exc: KubeError, verb: str, plural: str, group: str, where: str) -> CliError:
    resource = _resource(plural, group)
    if exc.status == 403:
        return CliError(f"forbidden: you may not {verb} {resource} {where}: {exc.message}")
    if exc.status == 401:
        return CliError(f"unauthorized: the API server refused the credentials: {exc.message}")
    return CliError(f"{verb} {resource} {where}: {exc.status} {exc.reason}: {exc.message}")


def typed(body: dict[str, Any]) -> PizzaModelDeployment:
    """The resource as the operator reads it (`PizzaModelDeployment.from_body`)."""
    try:
        return PizzaModelDeployment.from_body(body)
    except ValidationError as exc:
        meta = body.get("metadata") or {}
        where = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        first = exc.errors()[0]
        field = ".".join(str(part) for part in first["loc"])
        raise CliError(
            f"pizzamodeldeployment {where} cannot be read: {field}: {first['msg']}"
        ) from exc


def load(kubeconfig: str | None, context: str | None) -> tuple[PizzaApi, str]:
    """The API client of the kubeconfig's (or the given) context, and that context's
    namespace (default when it names none)."""
    try:
        contexts, active = config.list_kube_config_contexts(config_file=kubeconfig)  # type: ignore[no-untyped-call]
        chosen = active
        if context is not None:
            chosen = next((c for c in contexts if c.get("name") == context), None)
            if chosen is None:
                raise CliError(f"context {context!r} not found in the kubeconfig")
        api_client = config.new_client_from_config(  # type: ignore[no-untyped-call]
            config_file=kubeconfig, context=context
        )
    except (config.ConfigException, OSError) as exc:
        raise CliError(f"kubeconfig: {exc}") from exc
    namespace = str(((chosen or {}).get("context") or {}).get("namespace") or "default")
    return PizzaApi(api_client), namespace


class PizzaApi(Kube):
    """What the plugin reads and writes; every error becomes a `CliError` naming the verb."""

    def _request(
        self,
        verb: str,
        method: str,
        path: str,
        *,
        plural: str,
        group: str = "",
        where: str = "",
        body: Any = None,
        query: list[tuple[str, Any]] | None = None,
    ) -> dict[str, Any]:
        try:
            kind = "application/merge-patch+json" if method == "PATCH" else "application/json"
            return self._call(method, path, body=body, content_type=kind, query=query)[0]
        except KubeError as exc:
            raise _explain(exc, verb, plural, group, where) from exc

    @staticmethod
    def _pmd_path(namespace: str | None, name: str | None = None) -> str:
        path = PMD_PATH if namespace is None else f"{PMD_PATH}/namespaces/{namespace}"
        path += f"/{PLURAL}"
        return f"{path}/{urllib.parse.quote(name)}" if name else path

    def get_pmd(self, namespace: str, name: str) -> PizzaModelDeployment:
        try:
            return typed(self._call("GET", self._pmd_path(namespace, name))[0])
        except KubeError as exc:
            if exc.status == 404:
                raise CliError(f"pizzamodeldeployment {namespace}/{name} not found") from exc
            raise _explain(exc, "get", PLURAL, GROUP, f"in namespace {namespace}") from exc

    def list_pmds(self, namespace: str | None) -> list[PizzaModelDeployment]:
        where = "in all namespaces" if namespace is None else f"in namespace {namespace}"
        data = self._request(
            "list", "GET", self._pmd_path(namespace), plural=PLURAL, group=GROUP, where=where
        )
        return [typed(item) for item in data.get("items", [])]

    def patch_pmd(self, namespace: str, name: str, patch: dict[str, Any]) -> dict[str, Any]:
        try:
            return self._call(
                "PATCH",
                self._pmd_path(namespace, name),
                body=patch,
                content_type="application/merge-patch+json",
                query=[("fieldManager", FIELD_MANAGER)],
            )[0]
        except KubeError as exc:
            if exc.status == 404:
                raise CliError(f"pizzamodeldeployment {namespace}/{name} not found") from exc
            raise _explain(exc, "patch", PLURAL, GROUP, f"in namespace {namespace}") from exc

    def revisions(self, namespace: str, name: str) -> list[dict[str, Any]]:
        selector = f"{INSTANCE_LABEL}={name},{MANAGED_BY_LABEL}={MANAGER}"
        data = self._request(
            "list",
            "GET",
            f"/apis/apps/v1/namespaces/{namespace}/controllerrevisions",
            plural="controllerrevisions",
            group="apps",
            where=f"in namespace {namespace}",
            query=[("labelSelector", selector)],
        )
        items: list[dict[str, Any]] = data.get("items", [])
        return items

    def pods(self, namespace: str, name: str) -> list[dict[str, Any]]:
        """The resource's pods; none when pods may not be listed (the screen says so)."""
        try:
            data, _ = self._call(
                "GET",
                f"/api/v1/namespaces/{namespace}/pods",
                query=[("labelSelector", f"{INSTANCE_LABEL}={name}")],
            )
        except KubeError as exc:
            if exc.status == 403:
                return []
            raise _explain(exc, "list", "pods", "", f"in namespace {namespace}") from exc
        items: list[dict[str, Any]] = data.get("items", [])
        return items

    def node(self, name: str) -> dict[str, Any] | None:
        """A node, or None when it is gone or may not be read (cluster-scoped)."""
        try:
            return self._call("GET", f"/api/v1/nodes/{urllib.parse.quote(name)}")[0]
        except KubeError as exc:
            if exc.status in (403, 404):
                return None
            raise _explain(exc, "get", "nodes", "", "") from exc

    def events(self, namespace: str, name: str, uid: str) -> list[dict[str, Any]]:
        """The Events of the resource; none when events may not be listed."""
        selector = f"involvedObject.name={name},involvedObject.kind={KIND}"
        if uid:
            selector += f",involvedObject.uid={uid}"
        try:
            data, _ = self._call(
                "GET",
                f"/api/v1/namespaces/{namespace}/events",
                query=[("fieldSelector", selector)],
            )
        except KubeError as exc:
            if exc.status == 403:
                return []
            raise _explain(exc, "list", "events", "", f"in namespace {namespace}") from exc
        items: list[dict[str, Any]] = data.get("items", [])
        return items
