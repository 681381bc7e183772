"""Config files of the node pieces (pure: node and paths in, text out)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import yaml

from ..components import SERVICE_CIDR
from .layout import DNS_SERVICE_IP, POD_CIDR, RealNode

PAUSE_IMAGE = "localhost/pizza/pause:3.10"
NOWHERE = "http://127.0.0.1:9"  # every registry pull goes here and is refused
RESERVED_FOR_CONTROL_PLANE = 1 << 30  # kept out of both nodes' allocatable memory


def containerd_config(node: RealNode) -> str:
    state, run = node.state_dir, node.run_dir
    return f"""\
version = 2
root = "{state}/containerd"
state = "{run}/containerd"
oom_score = 0
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs",
  "io.containerd.snapshotter.v1.zfs", "io.containerd.snapshotter.v1.devmapper"]

[grpc]
  address = "{node.socket}"
[ttrpc]
  address = "{node.socket}.ttrpc"
[debug]
  address = ""
  level = "warn"
[metrics]
  address = ""

[plugins."io.containerd.internal.v1.opt"]
  path = "{state}/opt"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "{PAUSE_IMAGE}"
  enable_selinux = false
  disable_apparmor = true
  restrict_oom_score_adj = true  # no CAP_SYS_RESOURCE here: clamp negative OOM scores to 0
  max_concurrent_downloads = 1
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    discard_unpacked_layers = false
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        BinaryName = "/usr/sbin/runc"
        Root = "{run}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "{state}/cni/net.d"
    max_conf_num = 1
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = "{state}/containerd/certs.d"
"""


def registry_hosts() -> str:
    """hosts.toml for every registry directory: pulls go to a closed local port."""
    return f"""\
# Images are imported (ctr images import), never pulled: pulls go to a closed local port.
server = "{NOWHERE}"
[host."{NOWHERE}"]
  capabilities = ["pull", "resolve"]
"""


def cni_conflist(node: RealNode) -> str:
    return json.dumps(
        {
            "cniVersion": "1.0.0",
            "name": f"pizza-{node.short}",
            "plugins": [
                {
                    "type": "bridge",
                    "bridge": node.bridge,
                    "isGateway": True,
                    "ipMasq": False,  # no NAT for pod traffic
                    "hairpinMode": True,
                    "promiscMode": False,
                    "ipam": {
                        "type": "host-local",
                        "ranges": [
                            [
                                {
                                    "subnet": node.subnet,
                                    "rangeStart": f"10.244.{node.index}.10",
                                    "gateway": node.ip,
                                }
                            ]
                        ],
                        # no default route in pods: only the pod and Service ranges
                        "routes": [{"dst": POD_CIDR}, {"dst": SERVICE_CIDR}],
                        "dataDir": str(node.state_dir / "cni" / "ipam"),
                    },
                }
            ],
        },
        indent=2,
    )


def system_reserved(mem_total: int, cpus: int, nodes: int) -> dict[str, str]:
    """What each kubelet keeps out of allocatable so that the nodes together offer the machine
    once: each node offers cpus/nodes CPUs and (memory - 1 GiB for the control plane)/nodes."""
    offered_cpu_m = cpus * 1000 // nodes
    offered_mem = (mem_total - RESERVED_FOR_CONTROL_PLANE) // nodes
    return {
        "cpu": f"{cpus * 1000 - offered_cpu_m}m",
        "memory": f"{(mem_total - offered_mem) // 2**20}Mi",
    }


def kubelet_config(
    node: RealNode, ca_cert: Path, healthz_port: int, reserved: dict[str, str]
) -> str:
    state = node.state_dir
    config = {
        "apiVersion": "kubelet.config.k8s.io/v1beta1",
        "kind": "KubeletConfiguration",
        "failCgroupV1": False,  # the host is cgroup v1 (hybrid); 1.35 refuses v1 without this
        "cgroupDriver": "cgroupfs",
        "cgroupRoot": node.cgroup_root,
        "cgroupsPerQOS": True,
        "enforceNodeAllocatable": ["pods"],
        "systemReserved": reserved,
        "containerRuntimeEndpoint": f"unix://{node.socket}",
        "imageServiceEndpoint": f"unix://{node.socket}",
        "address": node.ip,
        "port": 10250,
        "readOnlyPort": 0,
        "healthzBindAddress": "127.0.0.1",
        "healthzPort": healthz_port,
        "tlsCertFile": str(state / "pki" / "kubelet-serving.crt"),
        "tlsPrivateKeyFile": str(state / "pki" / "kubelet-serving.key"),
        "authentication": {
            "anonymous": {"enabled": False},
            "webhook": {"enabled": True, "cacheTTL": "30s"},
            "x509": {"clientCAFile": str(ca_cert)},
        },
        "authorization": {"mode": "Webhook"},
        "registerWithTaints": [dict(t) for t in node.taints],
        "clusterDomain": "cluster.local",
        "clusterDNS": [DNS_SERVICE_IP],
        "resolvConf": str(state / "kubelet" / "resolv.conf"),  # empty: no host resolver
        "podLogsDir": str(state / "pod-logs"),
        "volumePluginDir": str(state / "kubelet" / "volume-plugins"),
        "rotateCertificates": False,
        "serverTLSBootstrap": False,
        "failSwapOn": False,
        "hairpinMode": "hairpin-veth",
        "maxPods": 40,
        "podPidsLimit": 4096,
        "serializeImagePulls": True,
        "evictionHard": {
            "memory.available": "200Mi",
            "nodefs.available": "5%",
            "imagefs.available": "5%",
        },
        "imageGCHighThresholdPercent": 95,
        "imageGCLowThresholdPercent": 90,
        "containerLogMaxSize": "10Mi",
        "containerLogMaxFiles": 2,
        "syncFrequency": "10s",
        "fileCheckFrequency": "20s",
        "nodeStatusUpdateFrequency": "10s",
        "shutdownGracePeriod": "0s",
    }
    return yaml.safe_dump(config, sort_keys=False)


def kube_proxy_config(
    kubeconfig: Path, hostname: str, nodes: Sequence[RealNode], healthz: int, metrics: int
) -> str:
    config = {
        "apiVersion": "kubeproxy.config.k8s.io/v1alpha1",
        "kind": "KubeProxyConfiguration",
        "clientConnection": {"kubeconfig": str(kubeconfig)},
        "hostnameOverride": hostname,
        "mode": "iptables",
        "clusterCIDR": POD_CIDR,
        "detectLocalMode": "ClusterCIDR",
        "nodePortAddresses": [f"{n.ip}/32" for n in nodes],  # never on the host's interfaces
        "metricsBindAddress": f"127.0.0.1:{metrics}",
        "healthzBindAddress": f"127.0.0.1:{healthz}",
        "iptables": {
            "localhostNodePorts": False,
            "masqueradeAll": False,
            "syncPeriod": "30s",
            "minSyncPeriod": "1s",
        },
        "conntrack": {  # leave the host's conntrack sysctls alone
            "maxPerCore": 0,
            "min": 0,
            "tcpEstablishedTimeout": "0s",
            "tcpCloseWaitTimeout": "0s",
        },
    }
    return yaml.safe_dump(config, sort_keys=False)


def corefile(nodes: Sequence[RealNode], kubeconfig: Path, context: str, ready_port: int) -> str:
    """Cluster names and the reverse zones of the pod and Service ranges only; no forward
    plugin (none is compiled in either), so every other name gets REFUSED."""
    zones = "cluster.local 0.10.in-addr.arpa 244.10.in-addr.arpa"
    listen = " ".join(f"{zone}:53" for zone in zones.split())
    return f"""\
{listen} {{
    bind {" ".join(n.ip for n in nodes)}
    errors
    ready 127.0.0.1:{ready_port}
    kubernetes {zones} {{
        kubeconfig {kubeconfig} {context}
        pods insecure
        ttl 5
    }}
    cache 5
}}
"""
