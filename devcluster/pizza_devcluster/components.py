"""Command lines of the control-plane components (pure: paths and ports in, argv out)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .certs import Pki
from .ports import HOST

SERVICE_CIDR = "10.0.0.0/16"  # room for thousands of Services (benchmarks apply hundreds)
POD_CIDR = "10.244.0.0/16"
NODE_IP = "10.1.0.1"
SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"

# Controllers the operator and its tests rely on. The rest (cloud, CSR signing, bootstrap tokens,
# IPAM, attach/detach, HPA without a metrics API) only cost start-up time and CPU here.
CONTROLLERS = (
    "clusterrole-aggregation-controller",  # aggregate-to-admin/edit/view labels on ClusterRoles
    "cronjob-controller",
    "daemonset-controller",
    "deployment-controller",
    "disruption-controller",
    "endpoints-controller",
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
    "garbage-collector-controller",
    "job-controller",
    "namespace-controller",
    "node-lifecycle-controller",
    "persistentvolume-binder-controller",  # binds claims to PVs created by tests (no provisioner)
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",  # else deleting a PVC hangs on its finalizer
    "pod-garbage-collector-controller",
    "replicaset-controller",
    "replicationcontroller-controller",
    "resourcequota-controller",
    "root-ca-certificate-publisher-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "statefulset-controller",
    "taint-eviction-controller",  # NoExecute taints evict pods
    "ttl-after-finished-controller",
    "validatingadmissionpolicy-status-controller",
)

# Cluster-wide Pod Security defaults for namespaces without labels: enforce "baseline", warn and
# audit at "restricted". The label `pod-security.kubernetes.io/enforce=restricted` tightens it.
POD_SECURITY_CONFIG = """\
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: PodSecurity
  configuration:
    apiVersion: pod-security.admission.config.k8s.io/v1
    kind: PodSecurityConfiguration
    defaults:
      enforce: baseline
      enforce-version: latest
      audit: restricted
      audit-version: latest
      warn: restricted
      warn-version: latest
    exemptions:
      usernames: []
      runtimeClasses: []
      namespaces: [kube-system]
"""

# What the API server's audit log keeps (`LocalCluster(audit_policy=...)`): who asked for what
# (Metadata: user, verb, resource, namespace, status; no bodies), for every ServiceAccount but
# those of kube-system (the controllers'). Tests run a component with a ServiceAccount's token
# and read back exactly which API calls it made (the operator's RBAC test).
AUDIT_SERVICE_ACCOUNTS = """\
apiVersion: audit.k8s.io/v1
kind: Policy
omitStages: [RequestReceived]
rules:
- level: None
  userGroups: ["system:serviceaccounts:kube-system"]
- level: Metadata
  userGroups: ["system:serviceaccounts"]
- level: None
"""


@dataclass(frozen=True)
class Ports:
    etcd_client: int
    etcd_peer: int
    apiserver: int


def etcd_command(binary: Path, data_dir: Path, ports: Ports) -> list[str]:
    client = f"http://{HOST}:{ports.etcd_client}"
    peer = f"http://{HOST}:{ports.etcd_peer}"
    return [
        str(binary),
        "--name=pizza-local",
        f"--data-dir={data_dir}",
        f"--listen-client-urls={client}",
        f"--advertise-client-urls={client}",
        f"--listen-peer-urls={peer}",
        f"--initial-advertise-peer-urls={peer}",
        f"--initial-cluster=pizza-local={peer}",
        "--initial-cluster-state=new",
        "--unsafe-no-fsync",  # test data only: durability is not wanted, speed is
        "--log-level=warn",
    ]


def apiserver_command(
    binary: Path,
    pki: Pki,
    ports: Ports,
    admission_config: Path,
    audit_policy: Path | None = None,
    *,
    audit_log: Path | None = None,
    real_kubelets: bool = False,
) -> list[str]:
    argv = [
        str(binary),
        f"--etcd-servers=http://{HOST}:{ports.etcd_client}",
        f"--tls-cert-file={pki.serving_cert}",
        f"--tls-private-key-file={pki.serving_key}",
        f"--client-ca-file={pki.ca_cert}",
        f"--secure-port={ports.apiserver}",
        f"--bind-address={HOST}",
        f"--advertise-address={HOST}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        "--authorization-mode=RBAC",
        f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
        f"--service-account-key-file={pki.sa_pub}",
        f"--service-account-signing-key-file={pki.sa_key}",
        f"--api-audiences={SERVICE_ACCOUNT_ISSUER}",
        "--endpoint-reconciler-type=none",
        "--enable-admission-plugins=NamespaceLifecycle,LimitRanger,ServiceAccount,"
        "PodSecurity,ResourceQuota,DefaultTolerationSeconds,TaintNodesByCondition,Priority",
        f"--admission-control-config-file={admission_config}",
        "--allow-privileged=true",  # as real clusters: Pod Security admission decides
        "--enable-priority-and-fairness=false",  # one test client: no flow control to bootstrap
        "--profiling=false",
        "--event-ttl=15m",
        "--v=0",
    ]
    if audit_policy is not None:
        if audit_log is None:
            raise ValueError("an audit policy needs an audit log to write to")
        argv += [
            f"--audit-policy-file={audit_policy}",
            f"--audit-log-path={audit_log}",
            "--audit-log-format=json",
            "--audit-log-maxsize=200",  # MB; one backup: a long session keeps the last 400 MB
            "--audit-log-maxbackup=1",
        ]
    if real_kubelets:  # logs/exec/port-forward to real kubelets: mutual TLS with our CA
        argv += [
            f"--kubelet-client-certificate={pki.client_cert('apiserver-kubelet-client')}",
            f"--kubelet-client-key={pki.client_key('apiserver-kubelet-client')}",
            f"--kubelet-certificate-authority={pki.ca_cert}",
            "--kubelet-preferred-address-types=InternalIP",  # the bridge IP: no /etc/hosts
        ]
    return argv


def controller_manager_command(binary: Path, pki: Pki, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        f"--root-ca-file={pki.ca_cert}",
        f"--service-account-private-key-file={pki.sa_key}",
        f"--service-cluster-ip-range={SERVICE_CIDR}",
        f"--cluster-cidr={POD_CIDR}",
        "--use-service-account-credentials=true",
        # the defaults (20 QPS, burst 30) throttle bursts of hundreds of Deployments
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--concurrent-deployment-syncs=10",
        "--concurrent-replicaset-syncs=10",
        "--controllers=" + ",".join(CONTROLLERS),
        f"--bind-address={HOST}",
        "--secure-port=0",  # no health endpoint needed: readiness is checked through the apiserver
        "--profiling=false",
        "--v=0",
    ]


def scheduler_command(binary: Path, kubeconfig: Path) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        f"--authentication-kubeconfig={kubeconfig}",
        f"--authorization-kubeconfig={kubeconfig}",
        "--leader-elect=false",
        f"--bind-address={HOST}",
        "--secure-port=0",
        "--kube-api-qps=200",
        "--kube-api-burst=400",
        "--profiling=false",
        "--v=0",
    ]


def kwok_command(binary: Path, kubeconfig: Path, stage_files: list[Path]) -> list[str]:
    return [
        str(binary),
        f"--kubeconfig={kubeconfig}",
        "--manage-all-nodes=false",
        "--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
        f"--cidr={POD_CIDR}",
        f"--node-ip={NODE_IP}",
        "--node-lease-duration-seconds=40",
        *[f"--config={path}" for path in stage_files],
    ]
