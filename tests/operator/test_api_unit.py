"""The typed API and the generated CRD stay in step."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pizza_operator import crdgen
from pizza_operator.api.v1alpha1 import PizzaModelDeployment

from .conftest import sample_body
from .helpers import ROOT

pytestmark = pytest.mark.unit

CRD_FILE = ROOT / "crds" / "pizza.ai_pizzamodeldeployments.yaml"
CHART_CRDS = ROOT / "helm" / "pizza-operator" / "crds"


def _walk(schema: dict[str, Any], path: str = "") -> list[tuple[str, dict[str, Any]]]:
    out = []
    for name, prop in schema.get("properties", {}).items():
        out.append((f"{path}.{name}", prop))
        out.extend(_walk(prop, f"{path}.{name}"))
    if "items" in schema:
        out.extend(_walk(schema["items"], f"{path}[]"))
    return out


class TestGeneratedCrd:
    def test_committed_crd_equals_generated(self) -> None:
        assert CRD_FILE.read_text() == crdgen.render(), (
            "crds/ is stale: python -m pizza_operator.crdgen > " + str(CRD_FILE.relative_to(ROOT))
        )

    def test_chart_crds_equal_crds_dir(self) -> None:
        for source in sorted((ROOT / "crds").glob("*.yaml")):
            copy = CHART_CRDS / source.name
            assert copy.exists(), f"{copy} missing: cp crds/*.yaml helm/pizza-operator/crds/"
            assert copy.read_text() == source.read_text(), f"{copy} differs from {source}"

    def test_every_field_has_a_description(self) -> None:
        schema = crdgen.openapi_schema()
        missing = [
            path
            for path, prop in _walk(schema)
            if not prop.get("description") and path != ".metadata"
        ]
        assert missing == []

    def test_schema_is_structural(self) -> None:
        for path, prop in _walk(crdgen.openapi_schema()):
            assert ("$ref" not in prop and "anyOf" not in prop) or prop.get(
                "x-kubernetes-int-or-string"
            ), path
            assert prop.get("type") or prop.get("x-kubernetes-int-or-string"), path

    def test_printer_columns(self) -> None:
        version = crdgen.crd()["spec"]["versions"][0]
        names = [c["name"] for c in version["additionalPrinterColumns"]]
        assert names == ["Mode", "Ready", "Primary", "Fallback", "Error-Rate", "Age"]
        assert version["subresources"] == {"status": {}}

    def test_validation_rules_present(self) -> None:
        text = yaml.safe_dump(crdgen.crd())
        for needle in ("x-kubernetes-validations", "^(hf://|pvc://|builtin://|file:///)"):
            assert needle in text


class TestTypedModel:
    def test_sample_parses_with_defaults(self) -> None:
        pmd = PizzaModelDeployment.from_body(sample_body())
        assert pmd.spec.primary.gpu == 1
        assert pmd.spec.fallback.model.precision == "int8"
        assert pmd.spec.analysis.error_rate_threshold == 0.05
        assert pmd.spec.rollback.emergency.replicas == 1
        assert pmd.status.conditions == []

    def test_minimal_spec_gets_defaults(self) -> None:
        body = {
            "metadata": {"name": "m", "namespace": "d"},
            "spec": {
                "primary": {"model": {"name": "p", "backend": "vlm", "source": "hf://a/b"}},
                "fallback": {"model": {"name": "f", "backend": "cnn", "source": "builtin://x"}},
            },
        }
        pmd = PizzaModelDeployment.from_body(body)
        assert pmd.spec.router.replicas == 2
        assert pmd.spec.primary.startup_timeout_seconds == 1200
        assert pmd.spec.fallback.resources.limits == {"memory": "1Gi"}

    def test_wire_names_are_camel_case(self) -> None:
        wire = PizzaModelDeployment.from_body(sample_body()).spec.to_wire()
        assert "startupTimeoutSeconds" in wire["primary"]
        assert "abTest" in wire["router"]
