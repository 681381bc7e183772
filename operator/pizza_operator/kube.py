"""The one door to the Kubernetes API: server-side apply, reads, status patches, events.

Everything the operator writes goes through here, with field manager `pizza-operator`. An error
answer of the API server becomes a `KubeError` (the operator's own type, with the status, the
reason and the server's message); nothing outside this module sees the client library's
exceptions, and only the kopf handlers turn outcomes into kopf errors.
"""

from __future__ import annotations

import builtins
import datetime
import json
import logging
import socket
import uuid
from collections.abc import Callable
from typing import Any

import urllib3
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from pizza_operator.api.v1alpha1 import GROUP, KIND, PLURAL, VERSION
from pizza_operator.contract import MANAGER

FIELD_MANAGER = MANAGER  # server-side apply field manager
logger = logging.getLogger(__name__)

# kind -> (API prefix, plural)
_PATHS = {
    "Deployment": ("/apis/apps/v1", "deployments"),
    "Service": ("/api/v1", "services"),
    "PodDisruptionBudget": ("/apis/policy/v1", "poddisruptionbudgets"),
    "NetworkPolicy": ("/apis/networking.k8s.io/v1", "networkpolicies"),
    "ConfigMap": ("/api/v1", "configmaps"),
    "ServiceAccount": ("/api/v1", "serviceaccounts"),
    "Role": ("/apis/rbac.authorization.k8s.io/v1", "roles"),
    "RoleBinding": ("/apis/rbac.authorization.k8s.io/v1", "rolebindings"),
    "ControllerRevision": ("/apis/apps/v1", "controllerrevisions"),
    "Pod": ("/api/v1", "pods"),
    "EndpointSlice": ("/apis/discovery.k8s.io/v1", "endpointslices"),
    "Event": ("/api/v1", "events"),
    KIND: (f"/apis/{GROUP}/{VERSION}", PLURAL),
    "Lease": ("/apis/coordination.k8s.io/v1", "leases"),
}


class KubeError(Exception):
    """The API server answered with an error."""

    def __init__(self, status: int, reason: str, message: str, body: str = "") -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message
        self.body = body

    @property
    def gone(self) -> bool:
        """The object is gone, or its namespace is being deleted (nothing may be created)."""
        terminating = "NamespaceTerminating" in self.body or "is being terminated" in self.body
        return self.status == 404 or (self.status == 403 and terminating)


class NotFoundError(KubeError):
    """404."""


class ConflictError(KubeError):
    """409: exists already, or written by someone else since it was read."""


class InvalidError(KubeError):
    """400 or 422: the API server refuses the object (validation, admission, immutability)."""


class UnreachableError(KubeError):
    """No answer: the connection failed or timed out (status 0); worth a retry."""


REQUEST_TIMEOUT = (5.0, 30.0)
"""Seconds to connect and to wait for an answer. With `RETRIES` a frozen API server costs one
call about a minute at most, never a worker and a per-resource lock for good."""
RETRIES = urllib3.Retry(total=2, read=0, redirect=0)
"""Connection failures are tried again twice; an answer that does not come is not waited for
again (the reconcile retries the whole step with its backoff)."""

POOL_SIZE = 48
"""Kept connections to the API server: more than the threads that call it at once (kopf's 8
workers, the loop's 32 executor threads, the Lease and status threads), else every call past the
client's default (5 per CPU) opens a new TLS connection ("Connection pool is full")."""


def api_client() -> client.ApiClient:
    """A client of the loaded configuration, with `RETRIES`."""
    configuration = client.Configuration.get_default_copy()
    configuration.retries = RETRIES
    configuration.connection_pool_maxsize = POOL_SIZE
    return client.ApiClient(configuration)


def _error(status: int, text: str) -> KubeError:
    try:
        parsed = json.loads(text) if text else {}
    except ValueError:
        parsed = {}
    if not isinstance(parsed, dict):
        parsed = {}
    reason = str(parsed.get("reason") or status)
    message = str(parsed.get("message") or text[:200])
    kind: type[KubeError] = {404: NotFoundError, 409: ConflictError}.get(status, KubeError)
    if status in (400, 422):
        kind = InvalidError
    return kind(status, reason, message, text)


def object_path(kind: str, namespace: str, name: str | None = None) -> str:
    """The API path of a namespaced object (or of its collection without `name`)."""
    prefix, plural = _PATHS[kind]
    path = f"{prefix}/namespaces/{namespace}/{plural}"
    return f"{path}/{name}" if name else path


def label_selector(selector: dict[str, str] | str) -> str:
    """A label selector: equality of every pair of a dict, or a string as written (`a in (b,c)`)."""
    if isinstance(selector, str):
        return selector
    return ",".join(f"{k}={v}" for k, v in sorted(selector.items()))


def load_config() -> None:
    """In-cluster service account when running in a pod, else the current kubeconfig."""
    try:
        config.load_incluster_config()  # type: ignore[no-untyped-call]
    except config.ConfigException:
        config.load_kube_config()  # type: ignore[no-untyped-call]


def now_rfc3339() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class Kube:
    """A thin synchronous client; one per operator process (thread-safe connection pool)."""

    def __init__(
        self,
        api: client.ApiClient | None = None,
        timeout: tuple[float, float] = REQUEST_TIMEOUT,
    ) -> None:
        self.api = api or api_client()
        self.instance = socket.gethostname()
        self.timeout = timeout
        self.fence: Callable[[], None] = _no_fence
        """Called before every write: the leader's elector raises there when its term is not
        confirmed, so a replica that lost the Lease (frozen, cut off) writes nothing."""

    def _call(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        content_type: str = "application/json",
        query: list[tuple[str, Any]] | None = None,
        fenced: bool = True,
    ) -> tuple[dict[str, Any], int]:
        if fenced and method != "GET" and not _dry_run(query):
            self.fence()
        params = self.api.param_serialize(
            method,
            path,
            query_params=query or [],
            header_params={"Content-Type": content_type, "Accept": "application/json"},
            body=body,
            auth_settings=["BearerToken"],
        )
        try:
            response = self.api.call_api(*params, _request_timeout=self.timeout)
            raw = response.read()  # type: ignore[no-untyped-call]
        except (urllib3.exceptions.HTTPError, OSError, ApiException) as exc:
            why = f"{method} {path}: no answer ({type(exc).__name__}: {exc})"
            raise UnreachableError(0, "Unreachable", why[:500]) from exc
        text = raw.decode("utf-8") if isinstance(raw, bytes) else str(raw or "")
        if response.status >= 400:
            raise _error(int(response.status), text)
        data: dict[str, Any] = json.loads(text) if text else {}
        return data, int(response.status)

    def apply(self, obj: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Server-side apply, forcing ownership of the fields we set. Returns (live, created)."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["namespace"], meta["name"])
        live, code = self._call(
            "PATCH",
            path,
            body=obj,
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", FIELD_MANAGER), ("force", "true")],
        )
        return live, code == 201

    def replace(self, obj: dict[str, Any], *, dry_run: bool = False) -> dict[str, Any]:
        """PUT the whole object over the live one: drops fields others added that block an apply
        (a hand-edited Service port that now clashes with ours). Allocated fields such as a
        Service's clusterIP are kept by the API server. `dry_run`: judged, nothing persisted."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["namespace"], meta["name"])
        live, _ = self._call("GET", path)
        body = json.loads(json.dumps(obj))
        body["metadata"]["resourceVersion"] = live["metadata"]["resourceVersion"]
        query = [("fieldManager", FIELD_MANAGER), *([("dryRun", "All")] if dry_run else [])]
        replaced, _ = self._call("PUT", path, body=body, query=query)
        return replaced

    def apply_dry_run(self, obj: dict[str, Any]) -> None:
        """Server-side apply with dryRun=All: admission and validation, nothing persisted."""
        meta = obj["metadata"]
        path = object_path(obj["kind"], meta["namespace"], meta["name"])
        self._call(
            "PATCH",
            path,
            body=obj,
            content_type="application/apply-patch+yaml",
            query=[("fieldManager", FIELD_MANAGER), ("force", "true"), ("dryRun", "All")],
        )

    def get(self, kind: str, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", object_path(kind, namespace, name))[0]
        except KubeError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str, selector: dict[str, str] | str
    ) -> builtins.list[dict[str, Any]]:
        """The objects matching the label selector (`label_selector`)."""
        query = [("labelSelector", label_selector(selector))]
        data, _ = self._call("GET", object_path(kind, namespace), query=query)
        items: builtins.list[dict[str, Any]] = data.get("items", [])
        return items

    def delete(self, kind: str, namespace: str, name: str) -> None:
        try:
            self._call("DELETE", object_path(kind, namespace, name))
        except KubeError as exc:
            if exc.status != 404:
                raise

    def patch_status(
        self,
        namespace: str,
        name: str,
        status: dict[str, Any],
        resource_version: str | None = None,
    ) -> dict[str, Any]:
        """Merge-patch the status subresource of a PizzaModelDeployment; with
        `resource_version`, only if nobody wrote the object since (409 Conflict otherwise)."""
        path = object_path(KIND, namespace, name) + "/status"
        body: dict[str, Any] = {"status": status}
        if resource_version:
            body["metadata"] = {"resourceVersion": resource_version}
        live, _ = self._call(
            "PATCH",
            path,
            body=body,
            content_type="application/merge-patch+json",
            query=[("fieldManager", FIELD_MANAGER)],
        )
        return live

    def create(self, obj: dict[str, Any]) -> dict[str, Any] | None:
        """POST a new object; None when one of that name exists already (409)."""
        meta = obj["metadata"]
        try:
            created, _ = self._call(
                "POST",
                object_path(obj["kind"], meta["namespace"]),
                body=obj,
                query=[("fieldManager", FIELD_MANAGER)],
            )
        except KubeError as exc:
            if exc.status == 409:
                return None
            raise
        return created

    def patch_metadata(
        self, kind: str, namespace: str, name: str, metadata: dict[str, Any]
    ) -> None:
        """Merge-patch labels or annotations of an object."""
        self._call(
            "PATCH",
            object_path(kind, namespace, name),
            body={"metadata": metadata},
            content_type="application/merge-patch+json",
            query=[("fieldManager", FIELD_MANAGER)],
        )

    def post_event(
        self,
        owner: dict[str, Any],
        type_: str,
        reason: str,
        message: str,
        name: str | None = None,
    ) -> None:
        """A core/v1 Event on the resource (what `kubectl describe` shows). Never raises.

        With `name`, the Event is posted at most once: a second post of that name (a new
        leader redoing a step the old one had announced) is a 409, and nothing is added."""
        meta = owner["metadata"]
        event = event_body(owner, type_, reason, message, name=name, instance=self.instance)
        try:
            self._call("POST", f"/api/v1/namespaces/{meta['namespace']}/events", body=event)
        except KubeError as exc:
            if exc.status == 409 and name:
                logger.info("event already posted name=%s reason=%s", name, reason)
                return
            logger.warning("event not posted reason=%s status=%s", reason, exc.status)

    def read_lease(self, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._call("GET", object_path("Lease", namespace, name), fenced=False)[0]
        except NotFoundError:
            return None

    def write_lease(self, lease: dict[str, Any]) -> dict[str, Any]:
        """Create the Lease, or replace it at the resourceVersion it carries (409 when someone
        else wrote it since it was read). Not fenced: it is how a term is confirmed."""
        meta = lease["metadata"]
        if "resourceVersion" not in meta:
            path = object_path("Lease", meta["namespace"])
            return self._call("POST", path, body=lease, fenced=False)[0]
        path = object_path("Lease", meta["namespace"], meta["name"])
        return self._call("PUT", path, body=lease, fenced=False)[0]


def _no_fence() -> None:
    """Standalone: no Lease, every write goes."""


def _dry_run(query: list[tuple[str, Any]] | None) -> bool:
    return any(key == "dryRun" for key, _ in query or [])


def event_body(
    owner: dict[str, Any],
    type_: str,
    reason: str,
    message: str,
    *,
    name: str | None,
    instance: str,
) -> dict[str, Any]:
    """A core/v1 Event on `owner` (a random name unless one is given), posted by `instance`."""
    meta = owner["metadata"]
    now = now_rfc3339()
    return {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {
            "name": name or f"{meta['name']}.{uuid.uuid4().hex[:12]}",
            "namespace": meta["namespace"],
        },
        "involvedObject": {
            "apiVersion": owner.get("apiVersion", f"{GROUP}/{VERSION}"),
            "kind": owner.get("kind", KIND),
            "name": meta["name"],
            "namespace": meta["namespace"],
            "uid": meta.get("uid", ""),
        },
        "type": type_,
        "reason": reason,
        "message": message[:1024],
        "source": {"component": FIELD_MANAGER},
        "reportingComponent": FIELD_MANAGER,
        "reportingInstance": instance[:128],
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
