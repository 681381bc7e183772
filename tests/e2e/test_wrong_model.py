"""The test-only wrong model on the real nodes: the local sample runs from the wrong-model image
(pizza-serve-cpu plus tests/models/wrong-pizza-net), its stable primary answers through the
router's Service; then its primary becomes the wrong model (a new primary revision, as a canary
would be) and the same images are answered confidently with other classes: the agreement a canary
judge measures is about 0, and nothing but the classes gives it away."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pizza_devcluster.pytest_plugin import requires_real_nodes

from tests.e2e.product import ROOT, Kubectl, generated_images, restricted_namespace
from tests.e2e.testimages import WRONG_MODEL, WRONG_MODEL_NAME
from tests.support.waiting import eventually

pytestmark = [pytest.mark.e2e, pytest.mark.slow, requires_real_nodes]

SAMPLE = ROOT / "manifests" / "samples" / "pizza-classifier-local.yaml"
NAME = "pizza-classifier"
NAMESPACE = "e2e-wrong-model"
STABLE = "pizza-convnext-tiny"
SEEDS = (4242, 4343, 4444, 4545, 4646)
"""Five fresh generator streams, one image a class each: 30 images."""
MAX_AGREEMENT = 0.1
MIN_MEAN_CONFIDENCE = 0.85


@pytest.fixture(scope="module")
def deployed(
    kubectl: Kubectl,
    operator_release: str,
    wrong_model_image_ref: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    """The local sample with spec.image = the wrong-model image; yields the router's URL."""
    restricted_namespace(kubectl, NAMESPACE)
    pmd = yaml.safe_load(SAMPLE.read_text())
    pmd["spec"]["image"] = wrong_model_image_ref
    # the new revision replaces the stable one at once: this test measures the wrong model
    # itself (a canary would abort it on agreement: tests/e2e/test_canary.py)
    pmd["spec"]["rollout"] = {"strategy": "AllAtOnce"}
    manifest = tmp_path_factory.mktemp(NAMESPACE) / "pmd.yaml"
    manifest.write_text(yaml.safe_dump(pmd))
    kubectl.run("-n", NAMESPACE, "apply", "-f", str(manifest))
    kubectl.run("-n", NAMESPACE, "wait", "--for=condition=Ready", f"pmd/{NAME}", "--timeout=300s")
    service = kubectl.json("-n", NAMESPACE, "get", "service", NAME)
    yield f"http://{service['spec']['clusterIP']}:{service['spec']['ports'][0]['port']}"
    kubectl.run("-n", NAMESPACE, "delete", "pmd", NAME, "--wait=true", "--timeout=60s", check=False)
    kubectl.run("delete", "namespace", NAMESPACE, "--wait=false", check=False)


def _classify(url: str, image: Path) -> dict[str, Any]:
    files = {"file": (image.name, image.read_bytes(), "image/png")}
    response = httpx.post(f"{url}/classify", files=files, timeout=30.0)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _answers(url: str, images: list[Path], model: str) -> dict[Path, dict[str, Any]]:
    answers = {image: _classify(url, image) for image in images}
    for answer in answers.values():
        assert answer["model_used"] == model, answer
        assert answer.get("fallback_reason") in (None, ""), answer
    return answers


def test_the_wrong_primary_disagrees_with_the_stable_one_confidently(
    kubectl: Kubectl, deployed: str
) -> None:
    images = [image for seed in SEEDS for image in generated_images(seed)]
    stable = _answers(deployed, images, STABLE)

    patch = {"spec": {"primary": {"model": WRONG_MODEL}}}
    kubectl.run("-n", NAMESPACE, "patch", "pmd", NAME, "--type=merge", "-p", json.dumps(patch))

    def served_by_the_wrong_model() -> bool:
        # three in a row: the old primary pod is gone from the Service, not just one answer
        return all(_classify(deployed, images[0])["model_used"] == WRONG_MODEL_NAME for _ in "123")

    eventually(served_by_the_wrong_model, 240, "the wrong model answers", every=2.0)
    wrong = _answers(deployed, images, WRONG_MODEL_NAME)

    agree = [stable[i]["predicted_class"] == wrong[i]["predicted_class"] for i in images]
    confidences = [float(wrong[i]["confidence"]) for i in images]
    stable_confidences = [float(stable[i]["confidence"]) for i in images]
    right = [stable[i]["predicted_class"] == i.parent.name for i in images]
    measured = {
        "images": len(images),
        "agreement": sum(agree) / len(images),
        "wrong_mean_confidence": sum(confidences) / len(images),
        "wrong_min_confidence": min(confidences),
        "stable_mean_confidence": sum(stable_confidences) / len(images),
        "stable_accuracy": sum(right) / len(images),
    }
    print(f"wrong-model e2e: {json.dumps(measured)}")
    assert measured["stable_accuracy"] >= 0.9, measured  # the reference itself is right
    assert measured["agreement"] <= MAX_AGREEMENT, measured
    assert measured["wrong_mean_confidence"] >= MIN_MEAN_CONFIDENCE, measured
