"""The abuse suite on real nodes: hostile bodies against the local sample's router (its Service)
and model servers (their pod IPs) — compressed bombs, plain oversized bodies, many at once,
decompression-bomb PNGs, slow senders and crowds of them. Every answer is a 200 or a 4xx/429/503
with a JSON reason; no pod restarts nor is OOM-killed; each server still answers a normal
request afterwards. The peak memory of each container (its cgroup's max_usage_in_bytes, reset
before the suite) is printed and written, with every answer, to .cluster/e2e-abuse/abuse.json
(copied to bench/abuse/results/, see bench/abuse/README.md)."""

from __future__ import annotations

import base64
import json
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from pizza_devcluster.pytest_plugin import requires_real_nodes

from tests.e2e import abuse
from tests.e2e.abuse import Answer
from tests.e2e.product import ROOT, Kubectl, generated_images, restricted_namespace

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
NAME = "pizza-classifier"
NAMESPACE = "e2e-abuse"
RESULTS = ROOT / ".cluster" / "e2e-abuse" / "abuse.json"
PORT = 8001
MODELS = {"router": "pizza-classifier", "primary": "pizza-convnext-tiny"}
FALLBACK_MODEL = "micro-pizza-net"
UPLOAD_LIMIT = 10 * abuse.MIB + 64 * 1024
"""The upload limit of every server here (10 MB and its form, memory.MAX_IMAGE_BYTES)."""
TRICKLE = {"every": 2.0, "until": 90.0}
"""A slow sender's byte every 2 s, for at most 90 s (past every deadline)."""


@dataclass
class Target:
    name: str
    url: str
    model: str

    @property
    def infer(self) -> str:
        return f"{self.url}/v2/models/{self.model}/infer"


@dataclass
class Site:
    kubectl: Kubectl
    targets: list[Target]
    pods: dict[str, dict[str, Any]]
    """Every server pod of the sample by name, as it was before the suite."""
    cgroups: dict[str, Path]
    before: dict[str, dict[str, int]]
    answers: list[Answer] = field(default_factory=list)

    def record(self, answers: list[Answer]) -> list[Answer]:
        self.answers.extend(answers)
        return answers


def _server_pods(kubectl: Kubectl) -> list[dict[str, Any]]:
    pods = kubectl.json("-n", NAMESPACE, "get", "pods", "-l", "app.kubernetes.io/component")
    return [
        p
        for p in pods["items"]
        if p["metadata"]["labels"]["app.kubernetes.io/component"]
        in ("router", "primary", "fallback")
        and p["metadata"].get("deletionTimestamp") is None
    ]


def _component(pod: dict[str, Any]) -> str:
    return str(pod["metadata"]["labels"]["app.kubernetes.io/component"])


@pytest.fixture(scope="module")
def site(kubectl: Kubectl, operator_release: str) -> Iterator[Site]:
    restricted_namespace(kubectl, NAMESPACE)
    kubectl.run("-n", NAMESPACE, "apply", "-f", str(SAMPLE))
    kubectl.run("-n", NAMESPACE, "wait", "--for=condition=Ready", f"pmd/{NAME}", "--timeout=300s")
    pods = {p["metadata"]["name"]: p for p in _server_pods(kubectl)}
    service = kubectl.json("-n", NAMESPACE, "get", "service", NAME)
    targets = [Target("router", f"http://{service['spec']['clusterIP']}:{PORT}", MODELS["router"])]
    for pod in pods.values():
        component = _component(pod)
        if component != "router":
            model = MODELS.get(component, FALLBACK_MODEL)
            name = f"{component} {pod['metadata']['name']}"
            targets.append(Target(name, f"http://{pod['status']['podIP']}:{PORT}", model))
    cgroups = {name: abuse.memory_cgroup(pod) for name, pod in pods.items()}
    resettable = all(abuse.reset_peak(c) for c in cgroups.values())
    before = {name: abuse.memory_reading(c) for name, c in cgroups.items()}
    print(f"peaks reset before the suite: {resettable}")
    yield Site(kubectl, targets, pods, cgroups, before)
    kubectl.run("-n", NAMESPACE, "delete", "pmd", NAME, "--wait=true", "--timeout=60s", check=False)
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def at_once(jobs: list[Callable[[], Answer]], workers: int = 32) -> list[Answer]:
    with ThreadPoolExecutor(max_workers=min(workers, len(jobs))) as pool:
        futures = [pool.submit(job) for job in jobs]
        return [f.result() for f in futures]


def assert_proper(answers: list[Answer]) -> None:
    improper = [a for a in answers if not a.proper]
    assert not improper, improper[:10]
    counts: dict[tuple[str, str, int | None, str | None], int] = {}
    for a in answers:
        key = (a.target, a.case, a.status, a.reason)
        counts[key] = counts.get(key, 0) + 1
    for (target, case, status, reason), n in sorted(counts.items(), key=str):
        print(f"{target:36} {case:40} {n:4} x {status} {reason or ''}")


def _infer_json_with(data: bytes) -> bytes:
    """An infer request carrying one image, base64 in the JSON."""
    text = base64.b64encode(data).decode()
    request = {"inputs": [{"name": "image", "shape": [1], "datatype": "BYTES", "data": [text]}]}
    return json.dumps(request).encode()


def test_compressed_bombs_are_refused(site: Site) -> None:
    """About 0.9 MB that inflates to 850 MB, to the infer endpoint (three in a row, as in the
    incident, then eight at once) and to the upload endpoints."""
    answers: list[Answer] = []
    for target in site.targets:
        for encoding in ("gzip", "gzip", "gzip", "deflate"):
            headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
            answers.append(
                abuse.post(
                    f"{encoding} bomb infer",
                    target.name,
                    target.infer,
                    abuse.bomb(encoding),
                    headers,
                )
            )
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        answers += at_once(
            [
                partial(
                    abuse.post,
                    "8 gzip bombs at once, infer",
                    target.name,
                    target.infer,
                    abuse.bomb("gzip"),
                    headers,
                )
            ]
            * 8
        )
        for path in ("/classify", "/ab-test/compare"):
            form_headers = {
                "Content-Encoding": "gzip",
                "Content-Type": "multipart/form-data; boundary=x",
            }
            answers.append(
                abuse.post(
                    f"gzip bomb {path}",
                    target.name,
                    f"{target.url}{path}",
                    abuse.bomb("gzip"),
                    form_headers,
                )
            )
    assert_proper(site.record(answers))
    assert all(a.status != 200 for a in answers)


def test_plain_oversized_bodies_are_refused(site: Site) -> None:
    """300 MB declared and sent, 300 MB chunked, and sixteen uploads at the limit at once."""
    answers: list[Answer] = []
    near_limit = os.urandom(UPLOAD_LIMIT - 4096)
    for target in site.targets:
        answers.append(
            abuse.post(
                "300 MB infer, Content-Length",
                target.name,
                target.infer,
                b"0" * abuse.PLAIN_BYTES,
                {"Content-Type": "application/json"},
            )
        )
        answers.append(
            abuse.post(
                "300 MB infer, chunked",
                target.name,
                target.infer,
                abuse.plain_chunks(),
                {"Content-Type": "application/json"},
            )
        )
        answers.append(
            abuse.post(
                "300 MB /classify, chunked",
                target.name,
                f"{target.url}/classify",
                abuse.plain_chunks(),
                {"Content-Type": "multipart/form-data; boundary=x"},
            )
        )
        body, headers = abuse.multipart(near_limit, "big.jpg", "image/jpeg")
        answers += at_once(
            [
                partial(
                    abuse.post,
                    "16 uploads of 10 MB at once",
                    target.name,
                    f"{target.url}/classify",
                    body,
                    headers,
                )
            ]
            * 16
        )
        infer_body = _infer_json_with(near_limit[: 7 * abuse.MIB])
        answers += at_once(
            [
                partial(
                    abuse.post,
                    "16 infer of 7 MB images at once",
                    target.name,
                    target.infer,
                    infer_body,
                    {"Content-Type": "application/json"},
                )
            ]
            * 16
        )
    assert_proper(site.record(answers))


def test_decompression_bomb_images_are_refused(site: Site) -> None:
    """A 0.9 MB PNG of 900 megapixels (past Pillow's own bomb check), alone and four at once;
    one of 144 megapixels (under Pillow's check, past every image pool here); eight
    10-megapixel PNGs at once (which fit: each is decoded in its turn, or the request is told to
    come back)."""
    answers: list[Answer] = []
    bomb_body, headers = abuse.multipart(abuse.pixel_bomb_png(30000, 30000), "b.png", "image/png")
    large_body, _ = abuse.multipart(abuse.large_png(10), "l.png", "image/png")
    pool_bomb, _ = abuse.multipart(abuse.pixel_bomb_png(12000, 12000), "p.png", "image/png")
    infer_bomb = _infer_json_with(abuse.pixel_bomb_png(30000, 30000))
    for target in site.targets:
        classify = f"{target.url}/classify"
        answers.append(
            abuse.post("900 MP PNG /classify", target.name, classify, bomb_body, headers)
        )
        answers.append(
            abuse.post("144 MP PNG /classify", target.name, classify, pool_bomb, headers)
        )
        answers.append(
            abuse.post(
                "900 MP PNG infer",
                target.name,
                target.infer,
                infer_bomb,
                {"Content-Type": "application/json"},
            )
        )
        answers += at_once(
            [
                partial(
                    abuse.post,
                    "4 x 900 MP PNG at once",
                    target.name,
                    f"{target.url}/classify",
                    bomb_body,
                    headers,
                )
            ]
            * 4
        )
        answers += at_once(
            [
                partial(
                    abuse.post,
                    "8 x 10 MP PNG at once",
                    target.name,
                    f"{target.url}/classify",
                    large_body,
                    headers,
                )
            ]
            * 8
        )
    assert_proper(site.record(answers))
    bombs = [a for a in answers if " MP PNG" in a.case and "10 MP" not in a.case]
    assert all(a.status in (400, 413, 429, 503) for a in bombs), bombs


def test_slow_senders_and_crowds_are_cut_off(site: Site) -> None:
    """At once, at every server: idle connections (408 after the 10 s head deadline), uploads of
    10 MB trickled a byte every 2 s (408 after the 60 s body deadline, or 503 at once when the
    body pool is full); and a crowd of 320 trickled small uploads at one fallback pod (past 256
    in flight, 503). Every connection is closed by the server by the body deadline, answered or
    not."""
    jobs: list[Callable[[], Answer]] = []
    for target in site.targets:
        for _ in range(4):
            jobs.append(partial(abuse.slow_sender, target.name, target.url, "/", None, **TRICKLE))
        for _ in range(6):
            jobs.append(
                partial(
                    abuse.slow_sender, target.name, target.url, "/classify", UPLOAD_LIMIT, **TRICKLE
                )
            )
    crowded = next(t for t in site.targets if t.name.startswith("fallback"))
    for _ in range(320):
        jobs.append(
            partial(
                abuse.slow_sender,
                f"{crowded.name} (crowd)",
                crowded.url,
                "/classify",
                1000,
                **TRICKLE,
            )
        )
    answers = at_once(jobs, workers=len(jobs))
    assert_proper(site.record(answers))
    longest = max(a.seconds for a in answers)
    print(f"slow senders: every connection closed within {longest:.0f} s")
    assert all(a.closed for a in answers), [a for a in answers if not a.closed][:5]
    assert longest < 75  # the 60 s body deadline, and some time to start 400 senders
    idle = [a for a in answers if a.case.startswith("slow head")]
    assert all(a.status == 408 and a.reason == "request_timeout" for a in idle), idle
    bodies = [a for a in answers if a.case.startswith("slow body")]
    assert all(a.status in (408, 429, 503) for a in bodies), bodies
    assert any(a.status == 408 for a in bodies)
    crowd = [a for a in answers if "(crowd)" in a.target]
    assert {a.status for a in crowd} <= {408, 503}, crowd
    assert sum(a.status == 503 for a in crowd) >= 320 - 256


def test_no_pod_restarted_and_all_still_serve(site: Site) -> None:
    """Runs last: restart counts and last terminations as before, no OOM kill, a normal request
    answered by each server; the peaks are printed and written with every answer."""
    image = generated_images(seed=4545)[0]
    files = {"file": (image.name, image.read_bytes(), "image/png")}
    for target in site.targets:
        response = httpx.post(f"{target.url}/classify", files=files, timeout=30)
        assert response.status_code == 200, (target.name, response.text)
    now = {p["metadata"]["name"]: p for p in _server_pods(site.kubectl)}
    memory: dict[str, dict[str, Any]] = {}
    for name, pod in site.pods.items():
        assert name in now, f"pod {name} is gone"
        assert abuse.restarts(now[name]) == abuse.restarts(pod), (name, now[name]["status"])
        reading = abuse.memory_reading(site.cgroups[name])
        memory[name] = {"component": _component(pod), "before": site.before[name], "after": reading}
        assert reading.get("oom_kill", 0) == site.before[name].get("oom_kill", 0), name
        print(
            f"{_component(pod):9} {name:48} peak {reading['peak_bytes'] / abuse.MIB:6.1f} MiB"
            f" (usage before {site.before[name]['usage_bytes'] / abuse.MIB:.1f} MiB, limit"
            f" {reading['limit_bytes'] / abuse.MIB:.0f} MiB, failcnt {reading['failcnt']})"
        )
    abuse.write_results(
        RESULTS,
        {
            "when": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "command": "flock /tmp/pizza-e2e.lock python -m pytest tests/e2e/test_abuse.py"
            " -m e2e -s",
            "memory": memory,
            "restarts": {n: abuse.restarts(p) for n, p in now.items() if n in site.pods},
            "answers": site.answers,
        },
    )
