"""The router follows its mode ConfigMap live, against a real kube-apiserver (kwok devcluster).

Real parts only: the apiserver of `kube_cluster`, a ServiceAccount with exactly the Role the
operator gives the router (get/list/watch on the one ConfigMap, by resourceName), a token from
the TokenRequest API, a real `pizza-serve router` process, real INT8 CNN model servers, and a
TCP relay between router and apiserver so a test can cut the watch's connection (tier `cluster`).
The last three tests, the event handling, the configuration and the mode setter alone, are `unit`.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import socket
import ssl
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from kubernetes import client
from pizza_inference.config import ModeWatchConfig, RouterConfig
from pizza_inference.model_server.app import create_model_app
from pizza_inference.router.modewatch import ApiStatusError, ModeWatcher, WatchExpiredError
from pizza_inference.router.plane import RouterPlane
from pizza_inference.service import Target

from tests.inference.conftest import cnn_config
from tests.support.images import image_bytes
from tests.support.servers import ServerThread, serve_subprocess, wait_ready
from tests.support.waiting import eventually

CONFIGMAP = "pizza-routing"
ACCOUNT = "pizza-router"
FIRST_TOKEN_SECRET = "first-token"
IMAGE = image_bytes("JPEG", (64, 64), seed=3)


# ---- a TCP relay that can cut and refuse connections ------------------------------------------
class Relay:
    """Forwards 127.0.0.1:<port> to the apiserver byte for byte (TLS passes through untouched)."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self.listener.getsockname()[1])
        self.blocked = False
        self.accepted = 0
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while not self._closed:
            try:
                downstream, _ = self.listener.accept()
            except OSError:
                return
            if self.blocked:
                downstream.close()
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                downstream.close()
                continue
            upstream.settimeout(None)
            with self._lock:
                self.accepted += 1
                self._sockets.update((downstream, upstream))
            for src, dst in ((downstream, upstream), (upstream, downstream)):
                threading.Thread(target=self._pump, args=(src, dst), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        finally:
            self._close(src)
            self._close(dst)

    def _close(self, sock: socket.socket) -> None:
        with self._lock:
            self._sockets.discard(sock)
        with contextlib.suppress(OSError):
            sock.shutdown(socket.SHUT_RDWR)
        sock.close()

    def cut(self) -> None:
        """Breaks every open connection (the router sees its watch stream end abruptly)."""
        with self._lock:
            sockets = list(self._sockets)
        for sock in sockets:
            self._close(sock)

    def block(self) -> None:
        """The apiserver becomes unreachable: open connections cut, new ones closed at once."""
        self.blocked = True
        self.cut()

    def unblock(self) -> None:
        self.blocked = False

    def close(self) -> None:
        self._closed = True
        self.listener.close()
        self.cut()


# ---- cluster objects ---------------------------------------------------------------------------
@dataclass
class Access:
    namespace: str
    api_url: str  # the apiserver itself
    ca_file: Path
    token_file: Path
    core: client.CoreV1Api

    def token(self, bound_secret: str | None = None) -> str:
        ref = (
            client.V1BoundObjectReference(api_version="v1", kind="Secret", name=bound_secret)
            if bound_secret
            else None
        )
        spec = client.V1TokenRequestSpec(
            audiences=[], expiration_seconds=3600, bound_object_ref=ref
        )
        answer = self.core.create_namespaced_service_account_token(
            ACCOUNT, self.namespace, client.AuthenticationV1TokenRequest(spec=spec)
        )
        assert answer.status is not None
        return str(answer.status.token)

    def refused(self, token: str) -> bool:
        """True when the apiserver no longer accepts `token` (401)."""
        answer = httpx.get(
            f"{self.api_url}/api/v1/namespaces/{self.namespace}/configmaps/{CONFIGMAP}",
            headers={"Authorization": f"Bearer {token}"},
            verify=ssl.create_default_context(cafile=str(self.ca_file)),
            timeout=5,
        )
        return answer.status_code == 401

    def set_mode(self, mode: str) -> None:
        self.core.patch_namespaced_config_map(CONFIGMAP, self.namespace, {"data": {"mode": mode}})

    def create_configmap(self, mode: str, name: str = CONFIGMAP) -> None:
        self.core.create_namespaced_config_map(
            self.namespace,
            client.V1ConfigMap(metadata=client.V1ObjectMeta(name=name), data={"mode": mode}),
        )


@pytest.fixture
def access(kube_api: Any, test_namespace: str, tmp_path: Path) -> Access:
    """The router's ServiceAccount, Role (get/list/watch on CONFIGMAP only) and RoleBinding."""
    core = client.CoreV1Api(kube_api)
    rbac = client.RbacAuthorizationV1Api(kube_api)
    ns = test_namespace
    core.create_namespaced_service_account(
        ns, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name=ACCOUNT))
    )
    rbac.create_namespaced_role(
        ns,
        client.V1Role(
            metadata=client.V1ObjectMeta(name=ACCOUNT),
            rules=[
                client.V1PolicyRule(
                    api_groups=[""],
                    resources=["configmaps"],
                    resource_names=[CONFIGMAP],
                    verbs=["get", "list", "watch"],
                )
            ],
        ),
    )
    rbac.create_namespaced_role_binding(
        ns,
        client.V1RoleBinding(
            metadata=client.V1ObjectMeta(name=ACCOUNT),
            role_ref=client.V1RoleRef(
                api_group="rbac.authorization.k8s.io", kind="Role", name=ACCOUNT
            ),
            subjects=[client.RbacV1Subject(kind="ServiceAccount", name=ACCOUNT, namespace=ns)],
        ),
    )
    # the first token is bound to a Secret: deleting that Secret revokes it (a "rotation")
    core.create_namespaced_secret(
        ns, client.V1Secret(metadata=client.V1ObjectMeta(name=FIRST_TOKEN_SECRET))
    )
    ca_file = tmp_path / "ca.crt"
    shutil.copyfile(kube_api.configuration.ssl_ca_cert, ca_file)
    result = Access(ns, kube_api.configuration.host.rstrip("/"), ca_file, tmp_path / "token", core)
    result.token_file.write_text(result.token(bound_secret=FIRST_TOKEN_SECRET))
    return result


# ---- processes ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def models(cnn_checkpoint: Path) -> Iterator[tuple[str, str]]:
    """(primary URL, fallback URL): two real INT8 CNN model servers, told apart by model name."""
    primary = ServerThread(
        create_model_app(cnn_config(cnn_checkpoint, model_name="primary-cnn"))
    ).start()
    fallback = ServerThread(create_model_app(cnn_config(cnn_checkpoint))).start()
    wait_ready(primary.url)
    wait_ready(fallback.url)
    yield primary.url, fallback.url
    primary.stop()
    fallback.stop()


@contextlib.contextmanager
def router_process(models: tuple[str, str], env: dict[str, str], log_path: Path) -> Iterator[str]:
    """A real `pizza-serve router` process (its log in `log_path`); yields its URL."""
    args = ["router", "--primary", models[0], "--fallback", models[1]]
    with serve_subprocess([*args, "--rate-limit-per-minute", "0"], env, log_path) as url:
        yield url


class Load:
    """One client sending real classify requests back to back; records every answer."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[tuple[float, int, str | None, str | None]] = []
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with httpx.Client(timeout=10) as http:
            while not self._stop.is_set():
                try:
                    response = http.post(
                        f"{self.url}/classify", files={"file": ("p.jpg", IMAGE, "image/jpeg")}
                    )
                except httpx.HTTPError as exc:
                    self.errors.append(f"{type(exc).__name__}: {exc}")
                    continue
                body = response.json() if response.status_code == 200 else {}
                self.answers.append(
                    (
                        time.monotonic(),
                        response.status_code,
                        body.get("model_used"),
                        body.get("fallback_reason"),
                    )
                )

    def __enter__(self) -> Load:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join(timeout=15)

    def since(self, start: float) -> list[tuple[float, int, str | None, str | None]]:
        return [a for a in self.answers if a[0] >= start]


def router_mode(url: str) -> str:
    return str(httpx.get(f"{url}/status", timeout=5).json()["router"]["mode"])


def mode_metrics(url: str) -> tuple[dict[str, float], float]:
    text = httpx.get(f"{url}/metrics", timeout=5).text
    gauge = {
        m: float(v) for m, v in re.findall(r'^pizza_router_mode\{mode="(\w+)"\} (\S+)$', text, re.M)
    }
    changes = re.search(r"^pizza_router_mode_changes_total (\S+)$", text, re.M)
    assert changes is not None, text
    return gauge, float(changes.group(1))


# ---- tests -------------------------------------------------------------------------------------
@pytest.mark.cluster
@pytest.mark.slow
def test_least_privilege_holds(access: Access) -> None:
    """The Role reaches the one ConfigMap (get, and list/watch pinned by metadata.name), no more."""
    access.create_configmap("primary")
    access.create_configmap("primary", name="other")
    headers = {"Authorization": f"Bearer {access.token_file.read_text()}"}
    base = f"{access.api_url}/api/v1/namespaces/{access.namespace}/configmaps"
    tls = ssl.create_default_context(cafile=str(access.ca_file))
    with httpx.Client(verify=tls, headers=headers, timeout=10) as http:
        assert http.get(f"{base}/{CONFIGMAP}").status_code == 200
        assert http.get(f"{base}/other").status_code == 403
        assert http.get(base).status_code == 403  # a list without the name pin
        assert http.get(base, params={"fieldSelector": "metadata.name=other"}).status_code == 403
        pinned = http.get(base, params={"fieldSelector": f"metadata.name={CONFIGMAP}"})
        assert pinned.status_code == 200
        assert [i["metadata"]["name"] for i in pinned.json()["items"]] == [CONFIGMAP]
        watch = {"fieldSelector": f"metadata.name={CONFIGMAP}", "watch": "true"}
        with http.stream("GET", base, params={**watch, "timeoutSeconds": "1"}) as stream:
            assert stream.status_code == 200
            assert '"ADDED"' in stream.read().decode()
        with http.stream(
            "GET", base, params={"fieldSelector": "metadata.name=other", "watch": "true"}
        ) as stream:
            assert stream.status_code == 403
        # nor other verbs on its own ConfigMap
        patch = http.patch(
            f"{base}/{CONFIGMAP}",
            json={"data": {"mode": "stable"}},
            headers={"Content-Type": "application/merge-patch+json"},
        )
        assert patch.status_code == 403
        other_ns = f"{access.api_url}/api/v1/namespaces/default/configmaps/{CONFIGMAP}"
        assert http.get(other_ns).status_code == 403


@pytest.mark.cluster
@pytest.mark.slow
def test_router_follows_configmap_live(
    access: Access, models: tuple[str, str], tmp_path: Path
) -> None:
    relay = Relay((urlsplit(access.api_url).hostname or "", urlsplit(access.api_url).port or 443))
    access.create_configmap("primary")
    env = {
        "PIZZA_ROUTER_MODE": "emergency",  # until the ConfigMap is read
        "PIZZA_ROUTER_MODE_CONFIGMAP": CONFIGMAP,
        "PIZZA_NAMESPACE": access.namespace,
        "PIZZA_KUBE_API_URL": f"https://127.0.0.1:{relay.port}",
        "PIZZA_KUBE_TOKEN_FILE": str(access.token_file),
        "PIZZA_KUBE_CA_FILE": str(access.ca_file),
    }
    log = tmp_path / "router.log"
    try:
        with router_process(models, env, log) as url:
            # (1) the ConfigMap's mode, within a few seconds of start
            eventually(
                lambda: router_mode(url) == "primary",
                5,
                "router took the ConfigMap mode",
                every=0.02,
            )
            assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
            with Load(url) as load:
                eventually(lambda: len(load.answers) >= 5, 10, "load running", every=0.02)
                assert load.answers[-1][2] == "primary-cnn"

                # (2) a patch switches the mode live, within 2 s, under load
                access.set_mode("stable")
                eventually(
                    lambda: router_mode(url) == "stable", 2.0, "switch to stable", every=0.02
                )
                switched = time.monotonic()
                gauge, changes = mode_metrics(url)
                assert gauge == {"primary": 0.0, "stable": 1.0, "emergency": 0.0}
                assert changes == 2.0  # emergency -> primary -> stable
                eventually(
                    lambda: any(a[3] == "mode_stable" for a in load.since(switched)),
                    5,
                    "requests served the stable way",
                    every=0.02,
                )
                health = httpx.get(f"{url}/health", timeout=5).json()
                assert health["mode"] == "stable"

                # an unknown value: warned about, the mode stays
                access.set_mode("turbo")
                time.sleep(0.5)
                assert router_mode(url) == "stable"

                # (4a) the ConfigMap deleted: the mode stays; recreated: followed again
                access.core.delete_namespaced_config_map(CONFIGMAP, access.namespace)
                time.sleep(0.5)
                assert router_mode(url) == "stable"
                access.create_configmap("emergency")
                eventually(
                    lambda: router_mode(url) == "emergency", 2.0, "recreated ConfigMap", every=0.02
                )

                # (4b) the watch cut: resumed at once, no change missed
                accepted = relay.accepted
                relay.cut()
                eventually(lambda: relay.accepted > accepted, 3, "watch reconnected", every=0.02)
                access.set_mode("primary")
                eventually(
                    lambda: router_mode(url) == "primary", 2.0, "switch after a cut", every=0.02
                )

                # (4c) the apiserver unreachable for a while, and the token rotated meanwhile:
                # the router keeps serving its last mode, then reconnects with the new token
                # and catches up with the change it missed
                relay.block()
                access.set_mode("stable")
                old_token = access.token_file.read_text()
                access.core.delete_namespaced_secret(FIRST_TOKEN_SECRET, access.namespace)
                access.token_file.write_text(access.token())
                eventually(
                    lambda: access.refused(old_token), 15, "the first token revoked", every=0.02
                )
                assert router_mode(url) == "primary"
                relay.unblock()
                eventually(
                    lambda: router_mode(url) == "stable", 7, "catch up after an outage", every=0.02
                )
                status = httpx.get(f"{url}/status", timeout=5).json()["router"]["mode_watch"]
                assert status["configmap"] == f"{access.namespace}/{CONFIGMAP}"
                assert status["synced"] is True
                time.sleep(0.3)

            answers = load.answers
            assert not load.errors, load.errors[:3]
            assert len(answers) > 20
            assert {a[1] for a in answers} == {200}, [a for a in answers if a[1] != 200][:3]
            assert httpx.get(f"{url}/v2/health/ready", timeout=5).status_code == 200
    finally:
        relay.close()
    text = log.read_text()
    print(text)  # shown with -s or on failure
    assert "mode changed from emergency to primary source=configmap" in text, text[-3000:]
    assert "mode changed from primary to stable source=configmap" in text
    assert "ignoring unknown mode 'turbo'" in text
    assert "was deleted; keeping mode stable" in text


def _run_watcher(
    config: ModeWatchConfig,
    plane: RouterPlane,
    steps: Callable[[ModeWatcher], Any],
    prepare: Callable[[ModeWatcher], None] | None = None,
) -> None:
    """Runs a ModeWatcher in an event loop while `steps` (blocking, in a thread) drives it."""

    async def main() -> None:
        watcher = ModeWatcher(config, plane)
        if prepare is not None:
            prepare(watcher)
        task = asyncio.create_task(watcher.run())
        try:
            await asyncio.to_thread(steps, watcher)
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    asyncio.run(main())


@pytest.mark.cluster
@pytest.mark.slow
def test_watcher_waits_for_a_missing_configmap(access: Access) -> None:
    """In process, against the real apiserver: 404 at start, then the ConfigMap appears."""
    config = ModeWatchConfig(
        configmap=CONFIGMAP,
        namespace=access.namespace,
        api_url=access.api_url,
        token_file=access.token_file,
        ca_file=access.ca_file,
    )
    plane = RouterPlane(RouterConfig("http://127.0.0.1:9", "http://127.0.0.1:9", mode="stable"))

    def missing_then_created(watcher: ModeWatcher) -> None:
        eventually(lambda: watcher.last_error is not None, 3, "404 seen", every=0.02)
        assert "not found" in (watcher.last_error or "")
        assert plane.mode == "stable" and not watcher.synced
        access.create_configmap("emergency")
        eventually(lambda: plane.mode == "emergency", 6, "ConfigMap found after 404", every=0.02)

    _run_watcher(config, plane, missing_then_created)

    # a watch from a too-old resourceVersion: on this apiserver (1.35) the watch cache serves it
    # with the current state (ADDED) as long as it evicted nothing, even after an etcd
    # compaction, so a real 410 cannot be provoked here; test_expired_watch_event covers it
    def stale(watcher: ModeWatcher) -> None:
        access.set_mode("primary")
        eventually(
            lambda: plane.mode == "primary" and watcher.watching,
            5,
            "watch from an old RV",
            every=0.02,
        )

    _run_watcher(config, plane, stale, prepare=lambda w: setattr(w, "resource_version", "1"))


@pytest.mark.cluster
@pytest.mark.slow
def test_router_takes_the_canary_entry_live(
    access: Access, models: tuple[str, str], cnn_checkpoint: Path, tmp_path: Path
) -> None:
    """The canary keys patched into the real ConfigMap reach a running router process: requests
    go to the canary, a malformed weight is ignored, removing the URL ends the canary."""
    canary = ServerThread(
        create_model_app(cnn_config(cnn_checkpoint, model_name="canary-cnn"))
    ).start()
    wait_ready(canary.url)
    access.create_configmap("primary")
    env = {
        "PIZZA_ROUTER_MODE_CONFIGMAP": CONFIGMAP,
        "PIZZA_NAMESPACE": access.namespace,
        "PIZZA_KUBE_API_URL": access.api_url,
        "PIZZA_KUBE_TOKEN_FILE": str(access.token_file),
        "PIZZA_KUBE_CA_FILE": str(access.ca_file),
    }

    def patch(data: dict[str, str | None]) -> None:
        access.core.patch_namespaced_config_map(CONFIGMAP, access.namespace, {"data": data})

    def entry(url: str) -> dict[str, Any]:
        table: dict[str, Any] = httpx.get(f"{url}/status", timeout=5).json()["router"]["canary"]
        return table

    def answered_by(url: str) -> str:
        response = httpx.post(
            f"{url}/classify", files={"file": ("p.jpg", IMAGE, "image/jpeg")}, timeout=10
        )
        return str(response.json()["model_used"])

    try:
        with router_process(models, env, tmp_path / "router.log") as url:
            eventually(lambda: entry(url)["url"] is None and router_mode(url) == "primary", 5, "")
            assert answered_by(url) == "primary-cnn"
            patch({"canaryUrl": canary.url, "canaryWeight": "100", "agreementSample": "1"})
            eventually(lambda: entry(url)["weight"] == 100, 3, "canary entry applied", every=0.02)
            assert {answered_by(url) for _ in range(3)} == {"canary-cnn"}
            eventually(lambda: entry(url)["agreement"]["agree"] == 3, 5, "3 agreements")
            patch({"canaryWeight": "lots", "mode": "primary"})  # malformed: the entry stays
            patch({"mode": "stable"})
            eventually(lambda: router_mode(url) == "stable", 3, "a later patch applied")
            assert entry(url)["weight"] == 100 and entry(url)["url"] == canary.url
            patch({"mode": "primary", "canaryUrl": None})  # removed: no canary
            eventually(lambda: entry(url)["url"] is None, 3, "canary removed", every=0.02)
            assert answered_by(url) == "primary-cnn"
    finally:
        canary.stop()


@pytest.mark.unit
def test_watch_events() -> None:
    """The event handling alone: versions move on, 410 and other ERROR events end the watch."""
    plane = RouterPlane(RouterConfig("http://p", "http://f", mode="primary"))
    config = ModeWatchConfig(configmap="cm", namespace="ns", api_url="https://127.0.0.1:1")
    watcher = ModeWatcher(config, plane)

    def configmap(version: str, data: dict[str, str] | None) -> dict[str, Any]:
        return {"metadata": {"name": "cm", "resourceVersion": version}, "data": data}

    watcher._event({"type": "MODIFIED", "object": configmap("5", {"mode": "emergency"})})
    assert (plane.mode, watcher.resource_version) == ("emergency", "5")
    watcher._event({"type": "BOOKMARK", "object": {"metadata": {"resourceVersion": "9"}}})
    assert (plane.mode, watcher.resource_version) == ("emergency", "9")
    watcher._event({"type": "MODIFIED", "object": configmap("10", None)})  # no `mode` key
    watcher._event({"type": "DELETED", "object": configmap("11", {"mode": "stable"})})
    assert (plane.mode, watcher.resource_version) == ("emergency", "11")
    watcher._event({"type": "ADDED", "object": configmap("12", {"mode": " stable\n"})})
    assert plane.mode == "stable"
    with pytest.raises(WatchExpiredError):
        watcher._event({"type": "ERROR", "object": {"kind": "Status", "code": 410}})
    with pytest.raises(ApiStatusError) as error:
        watcher._event({"type": "ERROR", "object": {"code": 500, "message": "boom"}})
    assert error.value.status == 500


@pytest.mark.unit
def test_config_from_env(tmp_path: Path) -> None:
    assert ModeWatchConfig.from_env({}) is None
    assert ModeWatchConfig.from_env({"PIZZA_ROUTER_MODE_CONFIGMAP": ""}) is None
    (tmp_path / "namespace").write_text("pizzas\n")
    config = ModeWatchConfig.from_env(
        {
            "PIZZA_ROUTER_MODE_CONFIGMAP": "pmd-routing",
            "KUBERNETES_SERVICE_HOST": "10.0.0.1",
            "KUBERNETES_SERVICE_PORT": "443",
        },
        service_account_dir=tmp_path,
    )
    assert config == ModeWatchConfig(
        configmap="pmd-routing",
        namespace="pizzas",
        api_url="https://10.0.0.1:443",
        token_file=tmp_path / "token",
        ca_file=tmp_path / "ca.crt",
    )
    config = ModeWatchConfig.from_env(
        {
            "PIZZA_ROUTER_MODE_CONFIGMAP": "pmd-routing",
            "PIZZA_NAMESPACE": "ns",
            "PIZZA_KUBE_API_URL": "https://127.0.0.1:6443/",
            "PIZZA_KUBE_TOKEN_FILE": "/t",
            "PIZZA_KUBE_CA_FILE": "/c",
        },
        service_account_dir=tmp_path / "absent",
    )
    assert config is not None
    assert (config.namespace, config.api_url) == ("ns", "https://127.0.0.1:6443")
    assert (config.token_file, config.ca_file) == (Path("/t"), Path("/c"))
    with pytest.raises(ValueError, match="namespace is unknown"):
        ModeWatchConfig.from_env(
            {"PIZZA_ROUTER_MODE_CONFIGMAP": "x"}, service_account_dir=tmp_path / "absent"
        )
    with pytest.raises(ValueError, match="API server is unknown"):
        ModeWatchConfig.from_env(
            {"PIZZA_ROUTER_MODE_CONFIGMAP": "x", "PIZZA_NAMESPACE": "ns"},
            service_account_dir=tmp_path,
        )


@pytest.mark.unit
def test_set_mode_is_validated_and_counted() -> None:
    plane = RouterPlane(RouterConfig("http://p", "http://f", mode="primary"))
    assert plane.set_mode("stable", source="test") is True
    assert plane.set_mode("stable", source="test") is False
    assert plane.set_mode("turbo", source="test") is False
    assert plane.mode == "stable"
    assert plane.decide(Target.AUTO, None).reason == "mode_stable"
