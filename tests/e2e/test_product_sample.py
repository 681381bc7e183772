"""The product on real nodes: the operator installed by Helm reconciles the local sample to Ready,
every pod runs on a real node under Pod Security "restricted", the router's Service answers from
the primary, and answers from the fallback (saying why) while the primary's container is frozen."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pizza_devcluster.pytest_plugin import requires_real_nodes
from pizza_load.freeze import signal_container

from tests.e2e.product import (
    ROOT,
    Kubectl,
    generated_images,
    restricted_namespace,
)
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
NAME = "pizza-classifier"
REAL_NODE_LABEL = "pizza.ai/real-node"


@pytest.fixture(scope="module")
def sample(kubectl: Kubectl, operator_release: str) -> Iterator[str]:
    namespace = "e2e-sample"
    restricted_namespace(kubectl, namespace)
    kubectl.run("-n", namespace, "apply", "-f", str(SAMPLE))
    kubectl.run("-n", namespace, "wait", "--for=condition=Ready", f"pmd/{NAME}", "--timeout=300s")
    yield namespace
    kubectl.run("-n", namespace, "delete", "pmd", NAME, "--wait=true", "--timeout=60s", check=False)
    kubectl.run("delete", "namespace", namespace, "--wait=false", check=False)


def _pods(kubectl: Kubectl, namespace: str, component: str) -> list[dict[str, Any]]:
    pods = kubectl.json(
        "-n", namespace, "get", "pods", "-l", f"app.kubernetes.io/component={component}"
    )
    return [p for p in pods["items"] if p["metadata"].get("deletionTimestamp") is None]


def _router_url(kubectl: Kubectl, namespace: str) -> str:
    service = kubectl.json("-n", namespace, "get", "service", NAME)
    return f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"


def _classify(url: str, image: Path, timeout: float = 30.0) -> dict[str, Any]:
    files = {"file": (image.name, image.read_bytes(), "image/png")}
    response = httpx.post(f"{url}/classify", files=files, timeout=timeout)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


class TestOperatorInstalledByHelm:
    def test_two_replicas_one_active(self, kubectl: Kubectl, operator_release: str) -> None:
        pods = kubectl.json(
            "-n", "pizza-system", "get", "pods", "-l", "app.kubernetes.io/component=operator"
        )["items"]
        running = [p for p in pods if p["status"].get("phase") == "Running"]
        assert len(running) == 2, [p["status"].get("phase") for p in pods]
        for pod in running:
            assert pod["spec"]["serviceAccountName"] == operator_release
            node = kubectl.json("get", "node", pod["spec"]["nodeName"])
            assert node["metadata"]["labels"].get(REAL_NODE_LABEL) == "true"

        # leader election: one replica holds the Lease (its pod name and a per-process suffix),
        # the other stands by, Ready too (it takes over within one lease duration)
        def holder() -> str:
            spec = kubectl.json("-n", "pizza-system", "get", "lease", "pizza-operator")["spec"]
            return str(spec.get("holderIdentity") or "")

        leader = eventually(holder, 60, "a replica holds the Lease", every=1.0, ignoring=Exception)
        names = {pod["metadata"]["name"] for pod in running}
        assert leader.rsplit("-", 1)[0] in names, (leader, names)
        for pod in running:
            ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
            assert ready["Ready"] == "True", pod["metadata"]["name"]

    def test_helm_test_passes(self, kubectl: Kubectl, operator_release: str) -> None:
        out = kubectl.helm("test", operator_release, "-n", "pizza-system", "--timeout", "120s")
        assert "Phase:          Succeeded" in out, out


class TestLocalSample:
    def test_every_pod_runs_on_a_real_node(self, kubectl: Kubectl, sample: str) -> None:
        placement: dict[str, set[str]] = {}
        for component in ("primary", "fallback", "router"):
            pods = _pods(kubectl, sample, component)
            assert pods, f"no {component} pods"
            for pod in pods:
                assert pod["status"]["phase"] == "Running"
                ready = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
                assert ready["Ready"] == "True", (component, pod["status"])
                placement.setdefault(component, set()).add(pod["spec"]["nodeName"])
        nodes = {
            n["metadata"]["name"]: n["metadata"]["labels"]
            for n in kubectl.json("get", "nodes")["items"]
        }
        for component, names in placement.items():
            for name in names:
                assert nodes[name].get(REAL_NODE_LABEL) == "true", (component, name)
        # the primary asks for an nvidia.com/gpu: only the GPU-role node offers (and tolerates) it
        assert all(nodes[n].get("node-role.pizza.ai/gpu") == "true" for n in placement["primary"])
        assert not any(nodes[n].get("node-role.pizza.ai/gpu") for n in placement["fallback"])

    def test_restricted_profile_really_applies(self, kubectl: Kubectl, sample: str) -> None:
        pod = _pods(kubectl, sample, "fallback")[0]["metadata"]["name"]
        script = (
            "import os\n"
            "status = dict(l.split(':', 1) for l in open('/proc/self/status') if ':' in l)\n"
            "try:\n"
            "    open('/probe-write', 'w')\n"
            "    writable = True\n"
            "except OSError:\n"
            "    writable = False\n"
            "print(os.getuid(), status['Seccomp'].strip(), status['NoNewPrivs'].strip(),"
            " status['CapEff'].strip(), writable)\n"
        )
        out = kubectl.run("-n", sample, "exec", pod, "--", "python3", "-c", script)
        uid, seccomp, no_new_privs, cap_eff, writable = out.split()
        assert uid == "65532"
        assert seccomp == "2"  # filter mode: the runtime's default seccomp profile
        assert no_new_privs == "1"
        assert int(cap_eff, 16) == 0
        assert writable == "False"  # read-only root filesystem

    def test_router_service_answers_from_the_primary(self, kubectl: Kubectl, sample: str) -> None:
        url = _router_url(kubectl, sample)
        images = generated_images(seed=4242)
        answers = {image: _classify(url, image) for image in images}
        for answer in answers.values():
            assert answer["model_used"] == "pizza-convnext-tiny", answer
            assert answer.get("fallback_reason") in (None, ""), answer
            assert 0.0 <= answer["confidence"] <= 1.0
        truth = {image: image.parent.name for image in images}
        wrong = {
            i.name: (truth[i], a["predicted_class"])
            for i, a in answers.items()
            if a["predicted_class"] != truth[i]
        }
        assert len(wrong) <= 1, wrong  # the primary is 99% accurate on fresh images

    def test_frozen_primary_is_answered_by_the_fallback(
        self, kubectl: Kubectl, sample: str
    ) -> None:
        url = _router_url(kubectl, sample)
        images = generated_images(seed=4343)[:3]
        pod = _pods(kubectl, sample, "primary")[0]
        pids = signal_container(pod, "server", signal.SIGSTOP)
        assert pids
        try:
            for image in images:
                started = time.monotonic()
                answer = _classify(url, image)
                took = time.monotonic() - started
                assert answer["model_used"] == "micro-pizza-net", answer
                assert answer["fallback_reason"], answer
                assert took < 10, f"fallback answer took {took:.1f} s"
        finally:
            signal_container(pod, "server", signal.SIGCONT)
        deadline = time.monotonic() + 60
        while True:
            answer = _classify(url, images[0])
            if answer["model_used"] == "pizza-convnext-tiny":
                break
            assert time.monotonic() < deadline, f"primary not back after thaw: {json.dumps(answer)}"
            time.sleep(1)
