"""Unit tests of kubeconfigs, the context guard, component command lines and binary lookup."""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path

import pytest
import yaml
from pizza_devcluster.binaries import BinariesMissingError, find_binaries
from pizza_devcluster.certs import Pki
from pizza_devcluster.components import (
    CONTROLLERS,
    Ports,
    apiserver_command,
    controller_manager_command,
    etcd_command,
    kwok_command,
)
from pizza_devcluster.kubeconfig import (
    build_kubeconfig,
    current_context,
    is_local_test_context,
    write_kubeconfig,
)
from pizza_devcluster.ports import free_ports, port_is_free
from pizza_devcluster.pytest_plugin import guard_context
from pizza_devcluster.supervisor import read_state

pytestmark = pytest.mark.unit

PORTS = Ports(etcd_client=2379, etcd_peer=2380, apiserver=6443)


class TestKubeconfig:
    def test_embeds_certs_and_names_everything_pizza_local(self, tmp_path: Path) -> None:
        ca, crt, key = (tmp_path / n for n in ("ca.crt", "c.crt", "c.key"))
        for path in (ca, crt, key):
            path.write_bytes(f"pem of {path.name}".encode())
        path = write_kubeconfig(
            tmp_path / "kubeconfig", build_kubeconfig("https://127.0.0.1:6443", ca, crt, key)
        )
        assert path.stat().st_mode & 0o777 == 0o600
        data = yaml.safe_load(path.read_text())
        assert current_context(path) == "pizza-local"
        assert data["clusters"][0]["name"] == "pizza-local"
        assert data["clusters"][0]["cluster"]["server"] == "https://127.0.0.1:6443"
        user = data["users"][0]["user"]
        assert base64.b64decode(user["client-key-data"]) == b"pem of c.key"
        assert base64.b64decode(data["clusters"][0]["cluster"]["certificate-authority-data"]) == (
            b"pem of ca.crt"
        )

    @pytest.mark.parametrize(
        ("context", "allowed"),
        [
            ("pizza-local", True),
            ("kind-kind", True),
            ("kind-pizza", True),
            ("prod", False),
            ("gke_project_zone_cluster", False),
            ("pizza-local-prod", False),
            ("", False),
        ],
    )
    def test_only_local_test_contexts_are_allowed(self, context: str, allowed: bool) -> None:
        assert is_local_test_context(context) is allowed


class TestCommands:
    def test_etcd_is_loopback_only_and_skips_fsync(self, tmp_path: Path) -> None:
        argv = etcd_command(Path("/bin/etcd"), tmp_path, PORTS)
        assert "--listen-client-urls=http://127.0.0.1:2379" in argv
        assert "--listen-peer-urls=http://127.0.0.1:2380" in argv
        assert "--unsafe-no-fsync" in argv

    def test_apiserver_flags(self, tmp_path: Path) -> None:
        pki = Pki(tmp_path)
        argv = apiserver_command(Path("/bin/kube-apiserver"), pki, PORTS, tmp_path / "adm.yaml")
        for flag in (
            "--secure-port=6443",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            "--authorization-mode=RBAC",
            "--endpoint-reconciler-type=none",
            f"--client-ca-file={pki.ca_cert}",
            f"--service-account-signing-key-file={pki.sa_key}",
            "--etcd-servers=http://127.0.0.1:2379",
        ):
            assert flag in argv
        plugins = next(a for a in argv if a.startswith("--enable-admission-plugins="))
        assert "PodSecurity" in plugins.split("=", 1)[1].split(",")

    def test_controller_manager_runs_gc_and_workload_controllers(self, tmp_path: Path) -> None:
        for needed in (
            "garbage-collector-controller",
            "deployment-controller",
            "replicaset-controller",
            "namespace-controller",
            "serviceaccount-token-controller",
            "node-lifecycle-controller",  # removes the not-ready taint from new nodes
        ):
            assert needed in CONTROLLERS
        argv = controller_manager_command(Path("/bin/kcm"), Pki(tmp_path), tmp_path / "kc")
        assert "--leader-elect=false" in argv
        assert "--use-service-account-credentials=true" in argv

    def test_kwok_manages_only_annotated_nodes_with_all_stages(self, tmp_path: Path) -> None:
        stages = [tmp_path / "a.yaml", tmp_path / "b.yaml"]
        argv = kwok_command(Path("/bin/kwok"), tmp_path / "kc", stages)
        assert "--manage-all-nodes=false" in argv
        assert "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake" in argv
        assert [a for a in argv if a.startswith("--config=")] == [f"--config={p}" for p in stages]


class TestPorts:
    def test_free_ports_are_distinct_and_free(self) -> None:
        ports = free_ports(5)
        assert len(set(ports)) == 5
        assert all(port_is_free(port) for port in ports)


class TestFindBinaries:
    def test_missing_binaries_tell_to_run_make_binaries(self, tmp_path: Path) -> None:
        (tmp_path / "etcd").write_text("")
        with pytest.raises(BinariesMissingError, match="make binaries"):
            find_binaries(tmp_path)

    def test_finds_a_complete_directory(self, tmp_path: Path) -> None:
        for name in ("etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"):
            path = tmp_path / name
            path.write_text("#!/bin/sh\n")
            path.chmod(0o755)
        assert find_binaries(tmp_path).dir == tmp_path


class TestSupervisorState:
    def test_empty_dir_has_no_cluster(self, tmp_path: Path) -> None:
        state = read_state(tmp_path)
        assert state.supervisor_pid is None
        assert not state.supervisor_alive
        assert not state.ready and state.pids == {}

    def test_a_reused_pid_is_not_taken_for_the_supervisor(self, tmp_path: Path) -> None:
        (tmp_path / "supervisor.pid").write_text(f"{os.getpid()}\n")  # alive, but pytest
        (tmp_path / "state.json").write_text(
            json.dumps({"ready": True, "pids": {"etcd": 1}, "ports": [2379]})
        )
        state = read_state(tmp_path)
        assert state.supervisor_pid == os.getpid()
        assert not state.supervisor_alive
        assert state.ready and state.pids == {"etcd": 1} and state.ports == [2379]


class TestGuardContext:
    def _kubeconfig(self, tmp_path: Path, context: str) -> Path:
        path = tmp_path / "kubeconfig"
        path.write_text(yaml.safe_dump({"current-context": context}))
        return path

    @pytest.mark.parametrize("context", ["pizza-local", "kind-kind"])
    def test_allows_local_test_clusters(self, tmp_path: Path, context: str) -> None:
        assert guard_context(self._kubeconfig(tmp_path, context)) == context

    @pytest.mark.parametrize("context", ["production", "arn:aws:eks:eu-west-1:1:cluster/x"])
    def test_refuses_anything_else(self, tmp_path: Path, context: str) -> None:
        with pytest.raises(pytest.fail.Exception, match="refusing to run cluster tests"):
            guard_context(self._kubeconfig(tmp_path, context))

    def test_refuses_a_missing_kubeconfig(self, tmp_path: Path) -> None:
        with pytest.raises(pytest.fail.Exception, match="does not exist"):
            guard_context(tmp_path / "nope")
