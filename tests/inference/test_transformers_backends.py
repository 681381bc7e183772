"""The vlm and image-classifier backends on tiny random models saved like real checkpoints."""

from __future__ import annotations

from pathlib import Path

import httpx
import numpy as np
import pytest
import torch
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.backends.image_classifier import ImageClassifierBackend
from pizza_inference.backends.vlm import VLMBackend
from pizza_inference.config import ModelServerConfig
from pizza_inference.model_server.app import create_model_app
from transformers import AutoTokenizer

from tests.support.images import image_bytes
from tests.support.servers import serve, wait_ready
from tests.support.waiting import eventually

pytestmark = pytest.mark.unit


def images(n: int) -> list[Image.Image]:
    rng = np.random.default_rng(0)
    return [
        Image.fromarray(rng.integers(0, 256, (70 + 10 * i, 90, 3), dtype=np.uint8))
        for i in range(n)
    ]


@pytest.fixture(scope="module")
def vlm(tiny_vlm: Path) -> VLMBackend:
    backend = VLMBackend(tiny_vlm, precision="float32", device="cpu")
    backend.load()
    return backend


def full_sequence_scores(backend: VLMBackend, path: Path, image: Image.Image) -> list[float]:
    """Reference: each candidate answer appended to the prompt, scored without any cache."""
    tokenizer = AutoTokenizer.from_pretrained(path)
    end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    base = backend._inputs([image])
    scores = []
    for name in backend.classes:
        answer = [*tokenizer.encode(name, add_special_tokens=False), end]
        ids = torch.cat([base["input_ids"][0], torch.tensor(answer)]).unsqueeze(0)
        inputs = dict(base, input_ids=ids, attention_mask=torch.ones_like(ids))
        if "mm_token_type_ids" in inputs:
            inputs["mm_token_type_ids"] = (ids == backend._image_token).to(torch.int32)
        backend._model.model.rope_deltas = None
        with torch.no_grad():
            logits = backend._model(**inputs).logits[0].float()
        log_probs = torch.log_softmax(logits, dim=-1)
        start = ids.shape[1] - len(answer) - 1
        scores.append(sum(float(log_probs[start + j, t]) for j, t in enumerate(answer)))
    return scores


@pytest.mark.slow
def test_vlm_batched_scoring_equals_full_sequence_likelihoods(
    vlm: VLMBackend, tiny_vlm: Path
) -> None:
    batch = images(3)
    assert vlm._candidates is not None and vlm._candidates.shape[1] > 2, (
        "some class names must span tokens"
    )
    scores = vlm.class_log_likelihoods(batch)
    for i in (0, 2):
        np.testing.assert_allclose(
            scores[i].numpy(), full_sequence_scores(vlm, tiny_vlm, batch[i]), atol=1e-4
        )
    probabilities = vlm.predict(batch)
    np.testing.assert_allclose(probabilities, torch.softmax(scores, dim=-1).numpy(), atol=1e-6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    # batching does not change an image's answer
    np.testing.assert_allclose(vlm.predict(batch[1:2])[0], probabilities[1], atol=1e-5)


@pytest.mark.slow
def test_vlm_model_server(tiny_vlm: Path) -> None:
    config = ModelServerConfig(
        backend="vlm",
        source=f"file://{tiny_vlm}",
        precision="float32",
        model_name="spatial-mllm",
        device="cpu",
    )
    with serve(create_model_app(config)) as server:
        wait_ready(server.url, timeout=120)
        response = httpx.post(
            f"{server.url}/classify",
            files={"file": ("p.png", image_bytes("PNG"), "image/png")},
            timeout=60,
        )
        assert response.status_code == 200, response.text
        body = response.json()
        assert body["model_used"] == "spatial-mllm" and list(body["probabilities"]) == list(CLASSES)
        assert sum(body["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)
        status = httpx.get(f"{server.url}/status").json()["models"]["spatial-mllm"]
        assert status["backend"] == "vlm" and status["device"] == "cpu"


@pytest.mark.slow
def test_vlm_half_precision_on_cpu_stays_unready(tiny_vlm: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("CUDA present: bfloat16 is valid here")
    config = ModelServerConfig(
        backend="vlm",
        source=f"file://{tiny_vlm}",
        precision="bfloat16",
        model_name="spatial-mllm",
        device="auto",
    )
    with serve(create_model_app(config)) as server:
        eventually(
            lambda: httpx.get(f"{server.url}/health").json()["status"] != "loading",
            30,
            "the model to finish loading",
            every=0.1,
        )
        health = httpx.get(f"{server.url}/health")
        assert (
            health.status_code == 503
            and "needs CUDA" in health.json()["models"]["spatial-mllm"]["error"]
        )


@pytest.mark.slow
def test_image_classifier_backend_and_server(tiny_vit: Path) -> None:
    backend = ImageClassifierBackend(tiny_vit, precision="float32", device="cpu")
    backend.load()
    assert backend.classes == CLASSES
    probabilities = backend.predict(images(2))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    config = ModelServerConfig(
        backend="image-classifier",
        source=f"file://{tiny_vit}",
        precision="float32",
        model_name="pizza-vit",
        device="cpu",
    )
    with serve(create_model_app(config)) as server:
        wait_ready(server.url, timeout=60)
        body = httpx.post(
            f"{server.url}/classify", files={"file": ("p.jpg", image_bytes(), "image/jpeg")}
        ).json()
        assert body["model_used"] == "pizza-vit"
        expected = backend.predict(
            [Image.open(__import__("io").BytesIO(image_bytes())).convert("RGB")]
        )[0]
        np.testing.assert_allclose(list(body["probabilities"].values()), expected, atol=1e-5)
