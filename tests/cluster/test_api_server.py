"""The apiserver's own machinery: garbage collection, Pod Security admission, service-account
tokens with RBAC, and kubectl with the written kubeconfig."""

from __future__ import annotations

import base64
import json
import shutil
import ssl
import subprocess
import urllib.error
import urllib.request
import uuid
from typing import Any

import pytest
import yaml
from kubernetes import client
from kubernetes.client.rest import ApiException
from pizza_devcluster.pytest_plugin import KubeCluster

from tests.cluster.helpers import deployment, pod, restricted_container, restricted_pod_spec
from tests.support.waiting import eventually

pytestmark = pytest.mark.cluster

KUBECTL = shutil.which("kubectl") or "/usr/bin/kubectl"
NODES = {"pizza-gpu-0", "pizza-cpu-0", "pizza-cpu-1"}


def _configmap(name: str, owner: Any = None) -> dict[str, Any]:
    meta: dict[str, Any] = {"name": name}
    if owner is not None:
        meta["ownerReferences"] = [
            {
                "apiVersion": "v1",
                "kind": "ConfigMap",
                "name": owner.metadata.name,
                "uid": owner.metadata.uid,
            }
        ]
    return {"metadata": meta, "data": {"k": "v"}}


def test_deleting_an_owner_garbage_collects_what_it_owns(
    kube_api: Any, test_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    owner = core.create_namespaced_config_map(test_namespace, _configmap("owner"))
    core.create_namespaced_config_map(test_namespace, _configmap("owned", owner))
    core.create_namespaced_config_map(test_namespace, _configmap("bystander"))

    core.delete_namespaced_config_map("owner", test_namespace, propagation_policy="Background")

    def owned_gone() -> bool:
        names = {cm.metadata.name for cm in core.list_namespaced_config_map(test_namespace).items}
        return "owned" not in names

    eventually(owned_gone, 30, "the owned ConfigMap to be garbage-collected", every=0.1)
    assert core.read_namespaced_config_map("bystander", test_namespace).data == {"k": "v"}


def test_deleting_a_deployment_removes_its_replicasets_and_pods(
    kube_api: Any, test_namespace: str
) -> None:
    apps = client.AppsV1Api(kube_api)
    core = client.CoreV1Api(kube_api)
    apps.create_namespaced_deployment(test_namespace, deployment("gc", 1))
    eventually(
        lambda: core.list_namespaced_pod(test_namespace).items, 30, "the pod to exist", every=0.1
    )
    apps.delete_namespaced_deployment("gc", test_namespace, propagation_policy="Background")
    eventually(
        lambda: (
            not apps.list_namespaced_replica_set(test_namespace).items
            and not core.list_namespaced_pod(test_namespace).items
        ),
        30,
        "ReplicaSet and pods to be garbage-collected",
        every=0.1,
    )


def _rejection(core: Any, namespace: str, body: dict[str, Any]) -> tuple[int, str]:
    """(HTTP status, message) of a pod creation the apiserver must refuse."""
    with pytest.raises(ApiException) as info:
        core.create_namespaced_pod(namespace, body)
    return info.value.status, json.loads(info.value.body)["message"]


def test_restricted_namespace_rejects_privileged_and_root_pods(
    kube_api: Any, test_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    labels = core.read_namespace(test_namespace).metadata.labels
    assert labels["pod-security.kubernetes.io/enforce"] == "restricted"

    privileged = restricted_pod_spec(restricted_container(securityContext={"privileged": True}))
    status, message = _rejection(core, test_namespace, pod("privileged", privileged))
    assert status == 403
    assert 'violates PodSecurity "restricted:latest"' in message
    assert 'privileged (container "app" must not set securityContext.privileged=true)' in message

    root = {"containers": [{"name": "app", "image": "registry.invalid/root:1"}]}
    status, message = _rejection(core, test_namespace, pod("root", root))
    assert status == 403
    assert 'violates PodSecurity "restricted:latest"' in message
    assert "runAsNonRoot != true" in message

    created = core.create_namespaced_pod(test_namespace, pod("compliant", restricted_pod_spec()))
    assert created.metadata.name == "compliant"


def test_unlabelled_namespace_enforces_baseline(kube_api: Any) -> None:
    core = client.CoreV1Api(kube_api)
    name = f"t-baseline-{uuid.uuid4().hex[:6]}"
    core.create_namespace({"metadata": {"name": name}})
    try:
        spec = {
            "containers": [
                {
                    "name": "app",
                    "image": "registry.invalid/x:1",
                    "securityContext": {"privileged": True},
                }
            ]
        }
        status, message = _rejection(core, name, pod("privileged", spec))
        assert status == 403
        assert 'violates PodSecurity "baseline:latest"' in message
    finally:
        core.delete_namespace(name)


def _bearer_get(server: str, ca_pem: bytes, token: str, path: str) -> tuple[int, dict[str, Any]]:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    request = urllib.request.Request(server + path, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, context=context, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def _bearer_post(server: str, ca_pem: bytes, token: str, path: str, body: dict[str, Any]) -> Any:
    context = ssl.create_default_context(cadata=ca_pem.decode())
    request = urllib.request.Request(
        server + path,
        data=json.dumps(body).encode(),
        headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        method="POST",
    )
    with urllib.request.urlopen(request, context=context, timeout=10) as response:
        return json.loads(response.read())


def test_service_account_token_authenticates_and_rbac_applies(
    kube_cluster: KubeCluster, kube_api: Any, test_namespace: str
) -> None:
    core = client.CoreV1Api(kube_api)
    core.create_namespaced_service_account(test_namespace, {"metadata": {"name": "robot"}})
    token = core.create_namespaced_service_account_token(
        "robot", test_namespace, {"spec": {"expirationSeconds": 600}}
    ).status.token
    config = yaml.safe_load(kube_cluster.kubeconfig.read_text())
    cluster = config["clusters"][0]["cluster"]
    server = cluster["server"]
    ca_pem = base64.b64decode(cluster["certificate-authority-data"])

    review = _bearer_post(
        server,
        ca_pem,
        token,
        "/apis/authentication.k8s.io/v1/selfsubjectreviews",
        {"apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview"},
    )
    assert review["status"]["userInfo"]["username"] == (
        f"system:serviceaccount:{test_namespace}:robot"
    )
    status, _ = _bearer_get(server, ca_pem, token, f"/api/v1/namespaces/{test_namespace}/pods")
    assert status == 403  # authenticated, but no Role grants it anything

    rbac = client.RbacAuthorizationV1Api(kube_api)
    rbac.create_namespaced_role(
        test_namespace,
        {
            "metadata": {"name": "pod-reader"},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["list"]}],
        },
    )
    rbac.create_namespaced_role_binding(
        test_namespace,
        {
            "metadata": {"name": "robot-reads-pods"},
            "roleRef": {
                "apiGroup": "rbac.authorization.k8s.io",
                "kind": "Role",
                "name": "pod-reader",
            },
            "subjects": [{"kind": "ServiceAccount", "name": "robot", "namespace": test_namespace}],
        },
    )
    path = f"/api/v1/namespaces/{test_namespace}/pods"
    eventually(
        lambda: _bearer_get(server, ca_pem, token, path)[0] == 200, 10, "RBAC to allow", every=0.1
    )

    status, _ = _bearer_get(server, ca_pem, token + "x", path)
    assert status == 401


@pytest.mark.usefixtures("kwok_nodes")
def test_kubectl_get_nodes_shows_every_node_ready(kube_cluster: KubeCluster) -> None:
    result = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kube_cluster.kubeconfig), "get", "nodes", "--no-headers"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    rows = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line}
    assert set(rows) >= NODES
    assert all(rows[name] == "Ready" for name in NODES), result.stdout
    version = subprocess.run(
        [KUBECTL, "--kubeconfig", str(kube_cluster.kubeconfig), "version", "-o", "json"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert json.loads(version.stdout)["serverVersion"]["gitVersion"].startswith("v1.")


def test_a_claim_binds_to_a_matching_volume_and_can_be_deleted(
    kube_api: Any, test_namespace: str
) -> None:
    """No provisioner runs: a PVC binds to a PV the test creates (PV binder controller), and a
    deleted PVC goes away (PVC protection controller lifts its finalizer)."""
    core = client.CoreV1Api(kube_api)
    pv_name = f"pv-{test_namespace}"
    core.create_persistent_volume(
        {
            "metadata": {"name": pv_name},
            "spec": {
                "capacity": {"storage": "1Gi"},
                "accessModes": ["ReadOnlyMany"],
                "storageClassName": "pizza-manual",
                "persistentVolumeReclaimPolicy": "Retain",
                "hostPath": {"path": "/models/weights"},
                "claimRef": {"namespace": test_namespace, "name": "weights"},
            },
        }
    )
    try:
        core.create_namespaced_persistent_volume_claim(
            test_namespace,
            {
                "metadata": {"name": "weights"},
                "spec": {
                    "accessModes": ["ReadOnlyMany"],
                    "storageClassName": "pizza-manual",
                    "resources": {"requests": {"storage": "1Gi"}},
                },
            },
        )

        def bound() -> Any:
            claim = core.read_namespaced_persistent_volume_claim("weights", test_namespace)
            return claim if claim.status.phase == "Bound" else None

        assert eventually(bound, 30, "the PVC to bind", every=0.1).spec.volume_name == pv_name
        core.delete_namespaced_persistent_volume_claim("weights", test_namespace)
        eventually(
            lambda: not core.list_namespaced_persistent_volume_claim(test_namespace).items,
            30,
            "the PVC to be deleted",
            every=0.1,
        )
    finally:
        core.delete_persistent_volume(pv_name)
