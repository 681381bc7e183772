"""The elastic bench's observers (I/O): a watch of the resources' pods, timed on this machine,
and a sampler of their Deployments and autoscaling status every second."""

from __future__ import annotations

import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Any

from kubernetes import client, watch
from report import PodTimes, Sample

COMPONENT = "app.kubernetes.io/component"
INSTANCE = "app.kubernetes.io/instance"
LOG_MARKS = (
    ("loading", "loading model"),  # the server process runs and starts the load
    ("model_ready", "model ready"),  # model loaded and warmed up: /v2/health/ready says yes
)


def kubelet_time(stamp: str) -> float:
    """`kubectl logs --timestamps` time (RFC 3339, nanoseconds) as epoch seconds."""
    head, _, frac = stamp.rstrip("Z").partition(".")
    base = datetime.fromisoformat(head + "+00:00").timestamp()
    return base + (float("0." + frac) if frac else 0.0)


class PodWatch:
    """Every pod of the given resources (by instance label): when this machine saw it created,
    its container running, Ready, deleting and gone; the model server's log marks once Ready."""

    def __init__(self, api: client.ApiClient, instances: Sequence[str]) -> None:
        self.core = client.CoreV1Api(api)
        self.selector = f"{INSTANCE} in ({','.join(instances)})"
        self.pods: dict[str, PodTimes] = {}
        self._stop = threading.Event()
        self._logs = ThreadPoolExecutor(2)
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> PodWatch:
        self._thread.start()
        return self

    def stop(self) -> list[PodTimes]:
        self._stop.set()
        self._thread.join(timeout=15)
        self._logs.shutdown(wait=True)
        return list(self.pods.values())

    def _run(self) -> None:
        while not self._stop.is_set():
            stream = watch.Watch()  # type: ignore[no-untyped-call]
            try:
                for event in stream.stream(  # type: ignore[no-untyped-call]
                    self.core.list_pod_for_all_namespaces,
                    label_selector=self.selector,
                    timeout_seconds=5,
                ):
                    self._seen(event["type"], event["object"], time.time())
                    if self._stop.is_set():
                        stream.stop()  # type: ignore[no-untyped-call]
            except Exception:  # a dropped watch: look again
                time.sleep(0.2)

    def _seen(self, kind: str, pod: Any, now: float) -> None:
        meta = pod.metadata
        key = f"{meta.namespace}/{meta.name}"
        times = self.pods.get(key)
        if times is None:
            if kind == "DELETED":
                return
            created = meta.creation_timestamp.timestamp()
            # a pod created before the watch started: its API time, not ours
            component = (meta.labels or {}).get(COMPONENT, "?")
            # the API's time has whole seconds: ours, unless the pod is older than the watch
            times = PodTimes(meta.namespace, meta.name, component, min(now, created + 1.0))
            self.pods[key] = times
        statuses = (pod.status.container_statuses or []) if pod.status else []
        if times.running is None and any(s.state and s.state.running for s in statuses):
            times.running = now
        conditions = (pod.status.conditions or []) if pod.status else []
        ready = any(c.type == "Ready" and c.status == "True" for c in conditions)
        if ready and times.ready is None:
            times.ready = now
            self._logs.submit(self._read_log, times)
        if meta.deletion_timestamp is not None and times.deleting is None:
            times.deleting = now
        if kind == "DELETED" and times.gone is None:
            times.gone = now

    def _read_log(self, times: PodTimes) -> None:
        try:
            text = self.core.read_namespaced_pod_log(
                times.name, times.namespace, container="server", timestamps=True
            )
        except Exception:
            return
        marks: dict[str, float] = {}
        for line in str(text).splitlines():
            stamp, _, message = line.partition(" ")
            if "first_log" not in marks:
                marks["first_log"] = kubelet_time(stamp)
            for mark, words in LOG_MARKS:
                if mark not in marks and words in message:
                    marks[mark] = kubelet_time(stamp)
        times.log = marks


class Sampler:
    """Each second, per namespace: the primary's and the fallback's ready and wanted replicas,
    and whether the autoscaler has the primary asleep."""

    def __init__(self, api: client.ApiClient, resources: dict[str, str]) -> None:
        self.apps = client.AppsV1Api(api)
        self.custom = client.CustomObjectsApi(api)
        self.resources = resources  # namespace -> name
        self.samples: dict[str, list[Sample]] = {ns: [] for ns in resources}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def start(self) -> Sampler:
        self._thread.start()
        return self

    def stop(self) -> dict[str, list[Sample]]:
        self._stop.set()
        self._thread.join(timeout=15)
        return self.samples

    def _run(self) -> None:
        while not self._stop.is_set():
            began = time.time()
            for namespace, name in self.resources.items():
                self.samples[namespace].append(self._look(namespace, name, time.time()))
            self._stop.wait(max(0.05, 1.0 - (time.time() - began)))

    def _look(self, namespace: str, name: str, now: float) -> Sample:
        try:
            listed: Any = self.apps.list_namespaced_deployment(namespace)
            deployments = {d.metadata.name: d for d in listed.items}
            pmd: Any = self.custom.get_namespaced_custom_object(
                "pizza.ai", "v1alpha1", namespace, "pizzamodeldeployments", name
            )
        except Exception:
            return Sample(now, None, None, None, None, None)
        primary, fallback = deployments.get(f"{name}-primary"), deployments.get(f"{name}-fallback")
        scaled = ((pmd.get("status") or {}).get("autoscaling") or {}).get("primary") or {}
        return Sample(
            now,
            primary_ready=(primary.status.ready_replicas or 0) if primary else 0,
            primary_wanted=(primary.spec.replicas or 0) if primary else 0,
            fallback_ready=(fallback.status.ready_replicas or 0) if fallback else 0,
            fallback_wanted=(fallback.spec.replicas or 0) if fallback else 0,
            asleep=bool(scaled.get("asleep")) if scaled else None,
        )
