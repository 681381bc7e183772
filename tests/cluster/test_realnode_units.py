"""Unit tests of the real-node builders: configs, manifests, images, the safety rule, the
machine split and the apiserver's kubelet flags (pure functions; no root, no cluster)."""

from __future__ import annotations

import hashlib
import io
import ipaddress
import json
import tarfile
from pathlib import Path

import pytest
import yaml
from pizza_devcluster.certs import Pki
from pizza_devcluster.components import SERVICE_CIDR, Ports, apiserver_command
from pizza_devcluster.nodes import DEFAULT_NODES
from pizza_devcluster.realnode import configs, images, manifests, network
from pizza_devcluster.realnode.layout import (
    CPU_REAL_NODE,
    DNS_SERVICE_IP,
    GPU_REAL_NODE,
    POD_CIDR,
    REAL_NODES,
    RealNode,
)
from pizza_devcluster.realnode.nodeset import RealNodeSet, simulated_nodes

pytestmark = pytest.mark.unit
GIB = 2**30


class TestLayout:
    def test_nodes_have_distinct_bridges_subnets_and_dirs(self) -> None:
        assert len({n.bridge for n in REAL_NODES}) == len({n.subnet for n in REAL_NODES}) == 2
        assert len({n.state_dir for n in REAL_NODES}) == len({n.socket for n in REAL_NODES}) == 2
        for node in REAL_NODES:
            assert ipaddress.IPv4Network(node.subnet).subnet_of(ipaddress.IPv4Network(POD_CIDR))
            assert ipaddress.ip_address(node.ip) in ipaddress.ip_network(node.subnet)

    def test_dns_service_ip_is_in_the_service_range(self) -> None:
        assert ipaddress.ip_address(DNS_SERVICE_IP) in ipaddress.ip_network(SERVICE_CIDR)

    def test_gpu_node_has_the_kwok_gpu_labels_taint_and_resource(self) -> None:
        assert GPU_REAL_NODE.all_labels == {
            "nvidia.com/gpu.present": "true",
            "node-role.pizza.ai/gpu": "true",
            "pizza.ai/real-node": "true",
        }
        assert GPU_REAL_NODE.taints == (
            {"key": "nvidia.com/gpu", "value": "present", "effect": "NoSchedule"},
        )
        assert GPU_REAL_NODE.extended == {"nvidia.com/gpu": "2"}
        assert CPU_REAL_NODE.all_labels == {"pizza.ai/real-node": "true"}
        assert not CPU_REAL_NODE.taints and not CPU_REAL_NODE.extended

    def test_simulated_nodes_get_the_taint_and_the_originals_stay(self) -> None:
        tainted = simulated_nodes(DEFAULT_NODES)
        for before, after in zip(DEFAULT_NODES, tainted, strict=True):
            assert after.taints == (
                *before.taints,
                {"key": "pizza.ai/simulated", "value": "true", "effect": "NoSchedule"},
            )
            assert all(t["key"] != "pizza.ai/simulated" for t in before.taints)


class TestNetworkSafety:
    def test_drop_rule_covers_everything_leaving_the_bridges(self) -> None:
        rule = network.safety_rule()
        assert rule[:6] == ["FORWARD", "-i", "pizza-br+", "!", "-o", "pizza-br+"]
        assert rule[-2:] == ["-j", "DROP"]
        assert network.SAFETY_COMMENT in rule

    @pytest.mark.parametrize("node", REAL_NODES, ids=lambda n: n.name)
    def test_cni_has_no_masquerade_and_no_default_route(self, node: RealNode) -> None:
        conf = json.loads(configs.cni_conflist(node))
        bridge = conf["plugins"][0]
        assert bridge["ipMasq"] is False
        assert bridge["bridge"] == node.bridge
        routes = [r["dst"] for r in bridge["ipam"]["routes"]]
        assert routes == [POD_CIDR, SERVICE_CIDR]
        assert "0.0.0.0/0" not in json.dumps(conf)

    def test_pulls_go_to_a_closed_local_port(self) -> None:
        assert 'server = "http://127.0.0.1:9"' in configs.registry_hosts()

    def test_corefile_has_cluster_zones_only_and_no_forward(self) -> None:
        text = configs.corefile(REAL_NODES, Path("/k"), "ctx", 1234)
        assert "forward" not in text
        assert "bind 10.244.0.1 10.244.1.1" in text
        assert text.split("{")[0].split() == [
            "cluster.local:53",
            "0.10.in-addr.arpa:53",
            "244.10.in-addr.arpa:53",
        ]

    def test_kube_proxy_node_ports_only_on_the_bridges(self) -> None:
        config = yaml.safe_load(configs.kube_proxy_config(Path("/k"), "n", REAL_NODES, 1, 2))
        assert config["nodePortAddresses"] == ["10.244.0.1/32", "10.244.1.1/32"]
        assert config["mode"] == "iptables"
        assert config["healthzBindAddress"].startswith("127.0.0.1:")


class TestKubelet:
    def test_authentication_and_authorization(self) -> None:
        config = yaml.safe_load(
            configs.kubelet_config(GPU_REAL_NODE, Path("/ca.crt"), 10248, {"cpu": "1000m"})
        )
        assert config["authentication"]["anonymous"] == {"enabled": False}
        assert config["authentication"]["webhook"]["enabled"] is True
        assert config["authentication"]["x509"] == {"clientCAFile": "/ca.crt"}
        assert config["authorization"] == {"mode": "Webhook"}
        assert config["address"] == GPU_REAL_NODE.ip
        assert config["readOnlyPort"] == 0
        assert config["clusterDNS"] == [DNS_SERVICE_IP]
        assert config["resolvConf"].startswith(str(GPU_REAL_NODE.state_dir))
        assert config["registerWithTaints"] == list(GPU_REAL_NODE.taints)
        assert config["cgroupRoot"] == "/pizza-gpu-0"

    def test_machine_split_in_two_halves(self) -> None:
        total = 24 * GIB
        reserved = configs.system_reserved(total, cpus=2, nodes=2)
        assert reserved["cpu"] == "1000m"
        offered = total - int(reserved["memory"].removesuffix("Mi")) * 2**20
        assert offered * 2 <= total - configs.RESERVED_FOR_CONTROL_PLANE + 2**21
        assert 10 * GIB < offered < 12 * GIB

    def test_containerd_clamps_oom_scores_and_keeps_to_its_dirs(self) -> None:
        text = configs.containerd_config(CPU_REAL_NODE)
        assert "restrict_oom_score_adj = true" in text
        assert f'sandbox_image = "{configs.PAUSE_IMAGE}"' in text
        assert f'address = "{CPU_REAL_NODE.socket}"' in text
        for line in text.splitlines():
            if line.strip().startswith(("root", "state", "path", "Root", "conf_dir")):
                value = line.split("=", 1)[1].strip().strip('"')
                assert value.startswith(("/var/lib/pizza-node/cpu-0", "/run/pizza-node/cpu-0"))


class TestManifests:
    def test_capacity_patch_escapes_the_resource_name(self) -> None:
        assert manifests.gpu_capacity_patch(GPU_REAL_NODE) == [
            {"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": "2"}
        ]
        assert manifests.gpu_capacity_patch(CPU_REAL_NODE) == []

    def test_rbac_binds_nodes_coredns_and_the_apiserver(self) -> None:
        objects = {(b["kind"], b["metadata"]["name"]): b for _, b in manifests.rbac()}
        bindings = {n: b for (k, n), b in objects.items() if k == "ClusterRoleBinding"}
        assert bindings["pizza-system-nodes"]["roleRef"]["name"] == "system:node"
        assert bindings["pizza-system-nodes"]["subjects"][0]["name"] == "system:nodes"
        assert bindings["pizza-coredns"]["subjects"][0]["name"] == "pizza-coredns"
        kubelet_api = bindings["pizza-apiserver-kubelet-client"]
        assert kubelet_api["roleRef"]["name"] == "system:kubelet-api-admin"
        verbs = {
            v for rule in objects[("ClusterRole", "pizza-coredns")]["rules"] for v in rule["verbs"]
        }
        assert verbs == {"list", "watch"}

    def test_netpol_engine_reads_only_what_it_enforces(self) -> None:
        objects = {(b["kind"], b["metadata"]["name"]): b for _, b in manifests.rbac()}
        binding = objects[("ClusterRoleBinding", "pizza-netpol")]
        assert binding["subjects"][0]["name"] == "pizza-netpol"
        rules = objects[("ClusterRole", "pizza-netpol")]["rules"]
        granted = {(r, v) for rule in rules for r in rule["resources"] for v in rule["verbs"]}
        assert granted == {
            ("pods", "list"), ("pods", "watch"), ("namespaces", "list"),
            ("namespaces", "watch"), ("networkpolicies", "list"), ("networkpolicies", "watch"),
            ("nodes", "get"),
        }  # fmt: skip

    def test_one_netpol_engine_for_both_nodes(self, tmp_path: Path) -> None:
        piece = RealNodeSet(tmp_path, tmp_path / "bin")._netpol(tmp_path / "kc", 1234)
        argv = piece.argv
        assert argv[0] == str(tmp_path / "bin" / "kube-router-netpol")
        assert f"--hostname-override={GPU_REAL_NODE.name}" in argv
        assert f"--local-node-ips={CPU_REAL_NODE.ip}" in argv  # the other node's pods too
        assert f"--service-cluster-ip-range={SERVICE_CIDR}" in argv
        assert "--health-addr=127.0.0.1:1234" in argv  # loopback only

    def test_services_point_at_the_first_bridge(self) -> None:
        objects = {body["metadata"]["name"]: body for _, body in manifests.services(GPU_REAL_NODE)}
        assert objects["kube-dns"]["spec"]["clusterIP"] == DNS_SERVICE_IP
        for name in ("kube-dns-host", "kubernetes-host"):
            assert objects[name]["endpoints"][0]["addresses"] == [GPU_REAL_NODE.ip]

    def test_apiserver_kubelet_flags_only_with_real_kubelets(self, tmp_path: Path) -> None:
        pki, ports = Pki(tmp_path), Ports(1, 2, 3)
        plain = apiserver_command(Path("/a"), pki, ports, tmp_path / "adm.yaml")
        real = apiserver_command(Path("/a"), pki, ports, tmp_path / "adm.yaml", real_kubelets=True)
        assert not [a for a in plain if a.startswith("--kubelet-")]
        assert "--kubelet-preferred-address-types=InternalIP" in real
        assert f"--kubelet-certificate-authority={pki.ca_cert}" in real


class TestImages:
    def test_docker_archive_round_trip(self, tmp_path: Path) -> None:
        entries = [images.Entry("bin/tool", b"\x7fELF", 0o755), images.Entry("bin/sh", link="tool")]
        path = images.write_docker_archive(
            tmp_path / "x.tar", "localhost/x:1", entries, ["/bin/tool"]
        )
        with tarfile.open(path) as tar:
            manifest = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            assert manifest[0]["RepoTags"] == ["localhost/x:1"]
            layer_bytes = tar.extractfile(manifest[0]["Layers"][0]).read()  # type: ignore[union-attr]
            config = json.load(tar.extractfile(manifest[0]["Config"]))  # type: ignore[arg-type]
        assert config["rootfs"]["diff_ids"] == [f"sha256:{hashlib.sha256(layer_bytes).hexdigest()}"]
        assert config["config"]["Entrypoint"] == ["/bin/tool"]
        with tarfile.open(fileobj=io.BytesIO(layer_bytes)) as layer:
            members = {m.name: m for m in layer.getmembers()}
        assert members["./bin"].isdir()
        assert members["./bin/tool"].mode == 0o755
        assert members["./bin/sh"].issym() and members["./bin/sh"].linkname == "tool"

    def test_extended_archive_keeps_the_base_and_adds_one_layer(self, tmp_path: Path) -> None:
        base = images.write_docker_archive(
            tmp_path / "base.tar", "localhost/base:1", [images.Entry("bin/tool", b"x")], ["/t"]
        )
        added = [images.Entry("opt/m/model.onnx", b"onnx")]
        path = images.write_extended_archive(
            base,
            tmp_path / "ext.tar",
            "localhost/ext:1",
            added,
            note="test layer",
            labels={"t": "ext"},
        )
        with tarfile.open(base) as tar:
            (old,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            old_config = json.load(tar.extractfile(old["Config"]))  # type: ignore[arg-type]
            old_layer = tar.extractfile(old["Layers"][0]).read()  # type: ignore[union-attr]
        with tarfile.open(path) as tar:
            (new,) = json.load(tar.extractfile("manifest.json"))  # type: ignore[arg-type]
            config = json.load(tar.extractfile(new["Config"]))  # type: ignore[arg-type]
            layers = [tar.extractfile(name).read() for name in new["Layers"]]  # type: ignore[union-attr]
        assert new["RepoTags"] == ["localhost/ext:1"]
        assert layers[0] == old_layer and len(layers) == 2
        assert config["rootfs"]["diff_ids"] == [
            *old_config["rootfs"]["diff_ids"],
            f"sha256:{hashlib.sha256(layers[1]).hexdigest()}",
        ]
        assert config["config"] == {**old_config["config"], "Labels": {"t": "ext"}}
        assert config["history"][-1] == {"created_by": "test layer"}
        with tarfile.open(fileobj=io.BytesIO(layers[1])) as layer:
            member = layer.getmember("./opt/m/model.onnx")
            assert layer.extractfile(member).read() == b"onnx"  # type: ignore[union-attr]
            assert layer.getmember("./opt/m").isdir()

    def test_extended_archive_refuses_a_base_that_is_no_docker_archive(
        self, tmp_path: Path
    ) -> None:
        base = tmp_path / "plain.tar"
        with tarfile.open(base, "w") as tar:
            tar.addfile(tarfile.TarInfo("hello"), io.BytesIO(b""))
        with pytest.raises(ValueError, match=r"no file manifest\.json"):
            images.write_extended_archive(base, tmp_path / "x.tar", "x:1", [], note="n")

    def test_images_list_and_pause_detection(self, tmp_path: Path) -> None:
        (tmp_path / "images.txt").write_text(
            "pause\tpause.tar\tabc\nweb\t/abs/web.tar\tdef\npizza-serve-gpu\tgpu.tar\tghi\n"
        )
        found = images.list_images(tmp_path)
        assert [(i.name, i.path, i.digest) for i in found] == [
            ("pause", tmp_path / "pause.tar", "abc"),
            ("web", Path("/abs/web.tar"), "def"),
        ]
        assert images.has_pause(found)
        assert not images.has_pause(found[1:])

    def test_directory_without_a_list_hashes_each_tar(self, tmp_path: Path) -> None:
        (tmp_path / "a.tar").write_bytes(b"abc")
        (found,) = images.list_images(tmp_path)
        assert found.digest == hashlib.sha256(b"abc").hexdigest()
