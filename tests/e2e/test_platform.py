"""Platform e2e tests on the real nodes: probes, Pod Security `restricted`, Services and DNS,
the in-cluster API, kubelet authentication, GPU taint and capacity, network safety, and a
`down` that leaves nothing behind. Traffic goes only to this machine's cluster addresses."""

from __future__ import annotations

import http.client
import json
import os
import re
import signal
import ssl
import subprocess
from pathlib import Path
from typing import Any

import pytest
from pizza_devcluster.pytest_plugin import requires_real_nodes
from pizza_devcluster.realnode.cleanup import leftovers
from pizza_devcluster.realnode.host import SHARED_DIRS
from pizza_devcluster.supervisor import start_background, stop

from tests.e2e.platform import Kube, web_pod
from tests.support.conditions import is_true
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, requires_real_nodes]

GPU_NODE = "pizza-real-gpu-0"
CPU_NODE = "pizza-real-cpu-0"
NODE_IPS = {GPU_NODE: "10.244.0.1", CPU_NODE: "10.244.1.1"}
GPU_TOLERATION = {"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}


def _node(kube: Kube, name: str) -> dict[str, Any]:
    return kube.json("get", "node", name)


def test_real_nodes_ready_with_their_labels_taints_and_capacity(kube: Kube) -> None:
    gpu, cpu = _node(kube, GPU_NODE), _node(kube, CPU_NODE)
    for node in (gpu, cpu):
        assert is_true(node, "Ready"), node["metadata"]["name"]
        assert node["metadata"]["labels"]["pizza.ai/real-node"] == "true"
        assert node["status"]["nodeInfo"]["containerRuntimeVersion"].startswith("containerd://")
        assert node["status"]["allocatable"]["cpu"] in ("1", "1000m")  # half of 2 cores each
        memory_ki = int(node["status"]["allocatable"]["memory"].removesuffix("Ki"))
        total_ki = int(node["status"]["capacity"]["memory"].removesuffix("Ki"))
        assert 0.35 * total_ki < memory_ki < 0.5 * total_ki
    labels = gpu["metadata"]["labels"]
    assert labels["nvidia.com/gpu.present"] == "true"
    assert labels["node-role.pizza.ai/gpu"] == "true"
    assert {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"} in gpu["spec"][
        "taints"
    ]
    eventually(
        lambda: _node(kube, GPU_NODE)["status"]["allocatable"].get("nvidia.com/gpu") == "2",
        30,
        "nvidia.com/gpu in allocatable",
    )
    assert gpu["status"]["capacity"]["nvidia.com/gpu"] == "2"
    assert "nvidia.com/gpu" not in cpu["status"]["capacity"]
    assert not cpu["spec"].get("taints")
    for fake in ("pizza-gpu-0", "pizza-cpu-0", "pizza-cpu-1"):
        taints = _node(kube, fake)["spec"]["taints"]
        assert {"key": "pizza.ai/simulated", "value": "true", "effect": "NoSchedule"} in taints


def test_probes_readiness_failure_stays_unready_liveness_failure_restarts(
    kube: Kube, test_image: str
) -> None:
    ns = kube.namespace("e2e-probes")
    kube.apply(
        web_pod("ok", ns, readiness="/healthz", liveness="/healthz"),
        web_pod("unready", ns, readiness="/missing"),
        web_pod("unlive", ns, liveness="/missing"),
    )
    kube.wait_ready(ns, "ok")
    eventually(
        lambda: (
            kube.pod(ns, "unlive")["status"]
            .get("containerStatuses", [{}])[0]
            .get("restartCount", 0)
            >= 1
        ),
        60,
        "a liveness restart",
    )
    status = kube.pod(ns, "unready")["status"]
    assert status["phase"] == "Running"
    assert status["containerStatuses"][0]["ready"] is False
    assert status["containerStatuses"][0]["restartCount"] == 0
    events = kube.out("-n", ns, "get", "events", "--field-selector", "involvedObject.name=unready")
    assert "Readiness probe failed" in events
    assert kube.pod(ns, "ok")["status"]["containerStatuses"][0]["restartCount"] == 0
    kube.run("delete", "namespace", ns, "--wait=false")


def test_restricted_pod_runs_read_only_non_root_under_seccomp(kube: Kube, test_image: str) -> None:
    ns = kube.namespace("e2e-restricted")
    kube.apply(web_pod("web", ns, readiness="/healthz"))
    kube.wait_ready(ns, "web")
    status = kube.exec(ns, "web", "cat", "/proc/self/status").stdout
    fields = dict(re.findall(r"^(\w+):\s+(.*)$", status, re.MULTILINE))
    assert fields["Seccomp"] == "2"  # filter mode: containerd's RuntimeDefault profile
    assert fields["Uid"].split()[0] == "65532"
    assert fields["NoNewPrivs"] == "1"
    assert int(fields["CapEff"], 16) == 0
    write_root = kube.exec(ns, "web", "touch", "/written", check=False)
    assert write_root.returncode != 0
    assert "Read-only file system" in write_root.stderr
    assert kube.exec(ns, "web", "touch", "/tmp/written").returncode == 0
    assert "response:200" in kube.out("-n", ns, "logs", "web")  # kubectl logs works
    bad = {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "root", "namespace": ns},
        "spec": {"containers": [{"name": "c", "image": test_image, "imagePullPolicy": "Never"}]},
    }
    rejected = kube.run("apply", "-f", "-", stdin=json.dumps(bad), check=False)
    assert rejected.returncode != 0 and 'violates PodSecurity "restricted' in rejected.stderr
    kube.run("delete", "namespace", ns, "--wait=false")


def _http_get(host: str, path: str) -> str:
    conn = http.client.HTTPConnection(host, 80, timeout=5)
    try:
        conn.request("GET", path)
        return conn.getresponse().read().decode()
    finally:
        conn.close()


def test_service_routing_from_host_and_pod_and_dns(kube: Kube, test_image: str) -> None:
    ns = kube.namespace("e2e-svc")
    backends = [
        web_pod(f"web-{i}", ns, readiness="/healthz", labels={"app": "web"}) for i in range(2)
    ]
    service = {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": "web", "namespace": ns},
        "spec": {"selector": {"app": "web"}, "ports": [{"port": 80, "targetPort": "http"}]},
    }
    client = web_pod("client", ns, command=["/bin/sleep", "3600"])
    kube.apply(*backends, service, client)
    kube.wait_ready(ns, "web-0", "web-1", "client")
    cluster_ip = kube.json("-n", ns, "get", "svc", "web")["spec"]["clusterIP"]
    assert cluster_ip.startswith("10.0.")

    def hosts_seen(fetch: Any) -> set[str]:
        seen: set[str] = set()
        for _ in range(30):
            seen.add(fetch().strip())
            if len(seen) == 2:
                break
        return seen

    expected = {"host=web-0", "host=web-1"}
    # kube-proxy programs each endpoint as its pod turns ready in the EndpointSlice, one sync
    # after the other: both answering may come a sync after the first one does
    eventually(
        lambda: hosts_seen(lambda: _safe(_http_get, cluster_ip)) == expected,
        30,
        "both endpoints programmed",
        every=1.0,
    )

    def from_pod(url: str) -> str:
        return kube.exec(ns, "client", "timeout", "3", "wget", "-qO-", url).stdout

    assert hosts_seen(lambda: from_pod(f"http://{cluster_ip}/cgi-bin/host")) == expected
    lookup = kube.exec(ns, "client", "nslookup", f"web.{ns}.svc.cluster.local").stdout
    assert f"Address: {cluster_ip}" in lookup
    assert from_pod("http://web/cgi-bin/host").startswith("host=web-")  # search path
    outside = kube.exec(ns, "client", "nslookup", "example.com", check=False)
    assert outside.returncode != 0  # no forward plugin: names outside the cluster are REFUSED
    kube.run("delete", "namespace", ns, "--wait=false")


def _safe(fetch: Any, *args: str) -> str:
    try:
        return str(fetch(*args, "/cgi-bin/host"))
    except OSError:
        return ""


def test_in_cluster_api_with_the_service_account_token(kube: Kube, test_image: str) -> None:
    ns = kube.namespace("e2e-api")
    kube.apply(
        web_pod("by-ip", ns, command=["/bin/incluster"], restart="Never"),
        web_pod(
            "by-name",
            ns,
            command=["/bin/incluster", "https://kubernetes.default.svc"],
            restart="Never",
        ),
    )

    def finished(pod: str) -> bool:
        return kube.pod(ns, pod)["status"].get("phase") in ("Succeeded", "Failed")

    for pod in ("by-ip", "by-name"):
        eventually(lambda: finished(pod), 60, f"{pod} to finish")  # noqa: B023 (called at once)
        log = kube.out("-n", ns, "logs", pod)
        assert kube.pod(ns, pod)["status"]["phase"] == "Succeeded", log
        assert f"201 system:serviceaccount:{ns}:default" in log
    kube.run("delete", "namespace", ns, "--wait=false")


@pytest.mark.parametrize("node", [GPU_NODE, CPU_NODE])
def test_kubelet_refuses_anonymous_requests(node: str) -> None:
    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE  # no client certificate either: anonymous
    for path in ("/pods", "/metrics", "/healthz"):
        conn = http.client.HTTPSConnection(NODE_IPS[node], 10250, timeout=5, context=context)
        try:
            conn.request("GET", path)
            assert conn.getresponse().status == 401, path
        finally:
            conn.close()


def test_gpu_requests_land_on_the_gpu_node_others_on_the_cpu_node(
    kube: Kube, test_image: str
) -> None:
    ns = kube.namespace("e2e-gpu")
    gpu = web_pod(
        "gpu",
        ns,
        command=["/bin/sleep", "3600"],
        resources={"limits": {"nvidia.com/gpu": "1"}},
        tolerations=[GPU_TOLERATION],
    )
    plain = web_pod("plain", ns, command=["/bin/sleep", "3600"])
    kube.apply(gpu, plain)
    kube.wait_ready(ns, "gpu", "plain")
    assert kube.pod(ns, "gpu")["spec"]["nodeName"] == GPU_NODE
    assert kube.pod(ns, "plain")["spec"]["nodeName"] == CPU_NODE
    greedy = web_pod(
        "greedy",
        ns,
        command=["/bin/sleep", "3600"],
        resources={"limits": {"nvidia.com/gpu": "2"}},  # only 1 of 2 is left
        tolerations=[GPU_TOLERATION],
    )
    kube.apply(greedy)
    eventually(
        lambda: any(
            c.get("reason") == "Unschedulable"
            for c in kube.pod(ns, "greedy")["status"].get("conditions", [])
        ),
        30,
        "greedy unschedulable",
    )
    kube.run("delete", "namespace", ns, "--wait=false")


def test_network_safety_without_sending_traffic_off_the_machine(
    kube: Kube, test_image: str
) -> None:
    ns = kube.namespace("e2e-net")
    kube.apply(
        web_pod(
            "probe",
            ns,
            command=["/bin/sleep", "3600"],
            node=GPU_NODE,
            tolerations=[GPU_TOLERATION],
        )
    )
    kube.wait_ready(ns, "probe")
    routes = kube.exec(ns, "probe", "cat", "/proc/net/route").stdout.splitlines()[1:]
    destinations = {line.split()[1] for line in routes}
    assert "00000000" not in destinations, routes  # no default route in the pod
    assert destinations == {"0000000A", "0000F40A"}  # 10.0.0.0/16 and 10.244.0.0/16, /24
    for tool in ("iptables", "ip6tables"):
        rules = subprocess.run(
            [tool, "-w", "-t", "mangle", "-S", "FORWARD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
        assert (
            "-A FORWARD -i pizza-br+ ! -o pizza-br+ -m comment --comment pizza-no-egress -j DROP"
            in rules
        ), tool
    host_routes = _host(["ip", "route"])
    assert "10.0.0.0/16 dev pizza-br0" in host_routes
    assert "10.244.0.0/16 dev pizza-br0" in host_routes
    nat = _host(["iptables-save", "-t", "nat"])
    assert "10.244.0.0/16 -j MASQUERADE" not in nat and "CNI-" not in nat  # ipMasq false
    kube.run("delete", "namespace", ns, "--wait=false")


def _host(argv: list[str]) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


def test_supervisor_restarts_dead_pieces_and_pods_run_on(
    real_cluster: Any, kube: Kube, test_image: str
) -> None:
    """containerd and the kubelet of the GPU node killed: both come back (the kubelet after its
    containerd), the node stays Ready with its GPU capacity, the running pod keeps running."""
    ns = kube.namespace("e2e-restart")
    kube.apply(web_pod("a", ns, readiness="/healthz", node=GPU_NODE, tolerations=[GPU_TOLERATION]))
    kube.wait_ready(ns, "a")
    state = real_cluster.data_dir / "realnodes.json"
    before = json.loads(state.read_text())["pids"]
    for piece in ("containerd-gpu-0", "kubelet-gpu-0"):
        os.kill(before[piece], signal.SIGKILL)

    def restarted() -> bool:
        pids = json.loads(state.read_text())["pids"]
        return all(
            pids[p] != before[p] and Path(f"/proc/{pids[p]}").exists()
            for p in ("containerd-gpu-0", "kubelet-gpu-0")
        )

    eventually(restarted, 60, "containerd and kubelet restarted")
    kube.run("wait", "--for=condition=Ready", f"node/{GPU_NODE}", "--timeout=60s")
    eventually(
        lambda: _node(kube, GPU_NODE)["status"]["capacity"].get("nvidia.com/gpu") == "2",
        30,
        "GPU capacity after the restart",
    )
    kube.wait_ready(ns, "a")
    status = kube.pod(ns, "a")["status"]["containerStatuses"][0]
    assert status["restartCount"] == 0
    # the restarted kubelet serves exec once it has synced its pods again
    eventually(
        lambda: kube.exec(ns, "a", "cat", "/www/healthz", check=False).stdout == "ok\n",
        30,
        "exec through the restarted kubelet",
    )
    kube.run("delete", "namespace", ns, "--wait=false")


def _ps() -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                cmd = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            first = cmd.split(" ")[0]
            if first.endswith(
                ("containerd", "containerd-shim-runc-v2", "kubelet", "kube-proxy", "coredns")
            ) or (first.endswith("socat") and "10.244." in cmd):
                found.append(cmd)
    return found


def test_down_leaves_nothing_behind(real_cluster: Any, kube: Kube, test_image: str) -> None:
    """Runs last (conftest.py): stops the session's cluster and looks for every kind of
    leftover with the host's own tools."""
    ns = kube.namespace("e2e-down")
    kube.apply(
        web_pod("a", ns, readiness="/healthz", node=GPU_NODE, tolerations=[GPU_TOLERATION]),
        web_pod("b", ns, readiness="/healthz", node=CPU_NODE),
    )
    kube.wait_ready(ns, "a", "b")
    assert _ps(), "the node processes should run before down"
    stop(real_cluster.data_dir)

    assert _ps() == []
    mounts = Path("/proc/self/mountinfo").read_text()
    assert not re.search(r"pizza-node|/run/netns/cni-|kubelet", mounts)
    links = _host(["ip", "-br", "link"])
    assert "pizza-br" not in links and "veth" not in links
    routes = _host(["ip", "route"])
    assert "10.244." not in routes and "10.0.0.0/16" not in routes
    for save in ("iptables-save", "ip6tables-save"):
        rules = _host([save])
        assert not re.search(r"KUBE-|CNI-|pizza", rules), (save, rules)
    cgroups = [str(p) for p in Path("/sys/fs/cgroup").glob("*/pizza-*")]
    assert cgroups == []
    assert "pizza" not in Path("/etc/hosts").read_text()
    for path in ("/var/lib/pizza-node", "/run/pizza-node", "/var/log/pods", "/opt/containerd"):
        assert not Path(path).exists(), path
    for path in SHARED_DIRS:  # host directories the nodes write to: gone unless there before
        assert Path(path).exists() == (path in real_cluster.shared_dirs_before), path
    assert not list(Path("/run/netns").glob("cni-*")) if Path("/run/netns").exists() else True
    for name, before in real_cluster.sysctls_before.items():
        if before is not None:
            assert Path("/proc/sys", name).read_text().strip() == before, name


def test_up_after_a_killed_run_clears_what_it_left(
    real_cluster: Any, test_image_dir: Path, tmp_path: Path
) -> None:
    """A launcher killed with SIGKILL leaves shims, pods, mounts and rules behind; the next
    `up` clears them before it starts, and its `down` leaves nothing."""
    stop(real_cluster.data_dir)  # runs after the session's cluster is down; no-op then
    first, second = tmp_path / "killed", tmp_path / "next"
    start_background(first, 300, real_nodes=True, images_dir=test_image_dir)
    kube = Kube(first / "kubeconfig")
    ns = kube.namespace("e2e-killed")
    kube.apply(web_pod("a", ns, readiness="/healthz", node=CPU_NODE))
    kube.wait_ready(ns, "a")
    os.kill(int((first / "supervisor.pid").read_text()), signal.SIGKILL)
    eventually(
        lambda: not any("kubelet" in p.split(" ")[0] for p in _ps()),
        20,
        "the killed launcher's kubelets to die",
    )
    assert any("containerd-shim" in p for p in _ps()), "shims outlive a killed launcher"
    try:
        start_background(second, 300, real_nodes=True, images_dir=test_image_dir)
        log = (second / "supervisor.log").read_text()
        assert "clearing what an earlier real-node run left" in log
        nodes = Kube(second / "kubeconfig").json("get", "nodes")["items"]
        assert {n["metadata"]["name"] for n in nodes} >= {GPU_NODE, CPU_NODE}
    finally:
        stop(second)
        stop(first)
    assert _ps() == []
    assert {kind: items for kind, items in leftovers().items() if items} == {}
