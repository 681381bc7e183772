"""The API server itself refuses invalid resources (schema + CEL), naming the field."""

from __future__ import annotations

from typing import Any

import pytest
import yaml

from .helpers import kubectl, pmd_manifest

pytestmark = pytest.mark.cluster


def _set(body: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    node = body
    keys = path.split(".")
    for key in keys[:-1]:
        node = node.setdefault(key, {})
    node[keys[-1]] = value
    return body


INVALID = [
    ("negative replicas", "spec.fallback.replicas", -1, "spec.fallback.replicas"),
    (
        "threshold above 1",
        "spec.analysis.errorRateThreshold",
        1.5,
        "spec.analysis.errorRateThreshold",
    ),
    (
        "threshold below 0",
        "spec.analysis.errorRateThreshold",
        -0.1,
        "spec.analysis.errorRateThreshold",
    ),
    ("gpu on the fallback", "spec.fallback.gpu", 1, "spec.fallback.gpu"),
    (
        "gpu resource on the fallback",
        "spec.fallback.resources",
        {"limits": {"nvidia.com/gpu": 1}},
        "spec.fallback.resources",
    ),
    ("unknown backend", "spec.primary.model.backend", "tensorflow", "spec.primary.model.backend"),
    ("unknown precision", "spec.fallback.model.precision", "int4", "spec.fallback.model.precision"),
    (
        "unknown source scheme",
        "spec.primary.model.source",
        "s3://bucket/model",
        "spec.primary.model.source",
    ),
    (
        "pvc source without path",
        "spec.primary.model.source",
        "pvc://claim",
        "spec.primary.model.source",
    ),
    ("int8 on a vlm", "spec.primary.model.precision", "int8", "spec.primary.model.precision"),
    ("window shorter than interval", "spec.analysis.window", "5s", "spec.analysis.window"),
    ("bad duration", "spec.analysis.interval", "ten seconds", "spec.analysis.interval"),
    (
        "A/B above 100",
        "spec.router.abTest.primaryPercent",
        101,
        "spec.router.abTest.primaryPercent",
    ),
    # hostile or careless input (one case per rule)
    ("zero interval", "spec.analysis.interval", "0s", "spec.analysis.interval"),
    ("millisecond interval", "spec.analysis.interval", "1ms", "spec.analysis.interval"),
    (
        "zero cool-down",
        "spec.rollback.autoRecover",
        {"enabled": True, "cooldown": "0s"},
        "spec.rollback.autoRecover.cooldown",
    ),
    ("dot-dot in a pvc path", "spec.primary.model.source", "pvc://c/../x", "model.source"),
    ("dot-dot in an hf id", "spec.primary.model.source", "hf://../x", "model.source"),
    ("empty path segment", "spec.fallback.model.source", "builtin://a//b", "model.source"),
    ("dot segment", "spec.fallback.model.source", "builtin://./x", "model.source"),
    (
        "file source without an own image",
        "spec.primary.model.source",
        "file:///models/x",
        "spec.primary.model.source",
    ),
    ("quote in a model name", "spec.primary.model.name", 'a"b', "spec.primary.model.name"),
    (
        "resource name the API server refuses",
        "spec.primary.resources",
        {"limits": {"memory/../x y": "1Gi"}},
        "spec.primary.resources.limits",
    ),
    (
        "gpu on the router",
        "spec.router.resources",
        {"limits": {"nvidia.com/gpu": 1}},
        "spec.router.resources",
    ),
    (
        "prometheus address not an http URL",
        "spec.analysis.prometheus.address",
        "file:///etc/passwd",
        "spec.analysis.prometheus.address",
    ),
    (
        "prometheus address with a user",
        "spec.analysis.prometheus.address",
        "http://user:pw@prom:9090",
        "spec.analysis.prometheus.address",
    ),
    (
        "network peer without a selector",
        "spec.networkPolicy",
        {"routerFrom": [{}]},
        "spec.networkPolicy.routerFrom[0]",
    ),
    (
        "label expression In without values",
        "spec.networkPolicy",
        {
            "prometheusFrom": [
                {"podSelector": {"matchExpressions": [{"key": "a", "operator": "In"}]}}
            ]
        },
        "spec.networkPolicy.prometheusFrom[0].podSelector.matchExpressions[0].values",
    ),
    (
        "label key the API server refuses",
        "spec.networkPolicy",
        {"routerFrom": [{"namespaceSelector": {"matchLabels": {"bad key!": "x"}}}]},
        "spec.networkPolicy.routerFrom[0].namespaceSelector.matchLabels",
    ),
    (
        "label value the API server refuses",
        "spec.networkPolicy",
        {"routerFrom": [{"podSelector": {"matchLabels": {"role": "not a value"}}}]},
        "spec.networkPolicy.routerFrom[0].podSelector.matchLabels",
    ),
]


@pytest.mark.parametrize(("case", "path", "value", "field"), INVALID, ids=[c[0] for c in INVALID])
def test_invalid_resource_is_refused_naming_the_field(  # noqa: PLR0917
    crds_installed: Any, test_namespace: str, case: str, path: str, value: Any, field: str
) -> None:
    body = _set(pmd_manifest("invalid", test_namespace), path, value)
    proc = kubectl("create", "-f", "-", check=False, stdin=yaml.safe_dump(body))
    assert proc.returncode != 0, f"{case}: accepted"
    assert "is invalid" in proc.stderr, proc.stderr
    assert field in proc.stderr, f"{case}: {field} not named in {proc.stderr!r}"
    assert kubectl("get", "pmd", "-n", test_namespace, "-o", "name").stdout.strip() == ""


def test_a_file_source_is_accepted_with_an_own_image(
    crds_installed: Any, test_namespace: str
) -> None:
    body = pmd_manifest("own-image", test_namespace)
    body["spec"]["image"] = "registry.example/pizza-with-weights:1"
    body["spec"]["primary"]["model"]["source"] = "file:///models/vit"
    kubectl("create", "--dry-run=server", "-f", "-", stdin=yaml.safe_dump(body))


def test_name_too_long_for_children_is_refused(crds_installed: Any, test_namespace: str) -> None:
    body = pmd_manifest("p" * 60, test_namespace)
    proc = kubectl("create", "-f", "-", check=False, stdin=yaml.safe_dump(body))
    assert proc.returncode != 0
    assert "metadata.name" in proc.stderr


def test_valid_sample_is_accepted_with_defaults(crds_installed: Any, test_namespace: str) -> None:
    minimal = {
        "apiVersion": "pizza.ai/v1alpha1",
        "kind": "PizzaModelDeployment",
        "metadata": {"name": "minimal", "namespace": test_namespace},
        "spec": {
            "primary": {"model": {"name": "p", "backend": "vlm", "source": "hf://a/b@main"}},
            "fallback": {
                "model": {
                    "name": "f",
                    "backend": "cnn",
                    "source": "builtin://x",
                    "precision": "int8",
                }
            },
        },
    }
    kubectl("create", "-f", "-", stdin=yaml.safe_dump(minimal))
    stored = yaml.safe_load(
        kubectl("get", "pmd", "minimal", "-n", test_namespace, "-o", "yaml").stdout
    )
    spec = stored["spec"]
    assert spec["router"]["replicas"] == 2
    assert spec["primary"]["startupTimeoutSeconds"] == 1200
    assert spec["primary"]["resources"]["limits"]["memory"] == "16Gi"
    assert spec["analysis"]["errorRateThreshold"] == 0.05
    assert spec["rollback"]["emergency"]["replicas"] == 1
    assert spec["paused"] is False


def test_kubectl_explain_teaches_the_api(crds_installed: Any) -> None:
    out = kubectl("explain", "pmd.spec.primary.model").stdout
    assert "The model the primary serves" in out
    for field in ("backend", "source", "precision", "name"):
        assert field in out
    assert "hf://ID[@REVISION]" in out
    assert "PizzaModelDeployment" in kubectl("explain", "pmd").stdout
