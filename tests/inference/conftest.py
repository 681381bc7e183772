from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from pizza_inference.config import ModelServerConfig

from tests.support.servers import ServerThread, wait_ready


@pytest.fixture(scope="session")
def cnn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pizza_inference.cnn.checkpoint import make_random_checkpoint  # noqa: PLC0415

    return make_random_checkpoint(tmp_path_factory.mktemp("cnn") / "micro-pizza-net", seed=0)


def cnn_config(checkpoint: Path, **overrides: object) -> ModelServerConfig:
    values: dict[str, object] = {
        "backend": "cnn",
        "source": f"file://{checkpoint}",
        "precision": "int8",
        "model_name": "standard-cnn",
    }
    values.update(overrides)
    return ModelServerConfig(**values)  # type: ignore[arg-type]


@pytest.fixture(scope="session")
def cnn_server(cnn_checkpoint: Path) -> Iterator[ServerThread]:
    """A real INT8 CNN model server (random weights), shared by the session."""
    from pizza_inference.model_server.app import create_model_app  # noqa: PLC0415

    server = ServerThread(create_model_app(cnn_config(cnn_checkpoint))).start()
    wait_ready(server.url)
    yield server
    server.stop()


@pytest.fixture(scope="session")
def tiny_vlm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2.5-VL saved with save_pretrained (built once per session)."""
    from pizza_inference.testing.vlm_checkpoint import save_tiny_qwen25vl  # noqa: PLC0415

    return save_tiny_qwen25vl(tmp_path_factory.mktemp("vlm") / "tiny-qwen2.5-vl")


@pytest.fixture(scope="session")
def tiny_vit(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random ViT image classifier over the six classes, with its image processor."""
    import torch  # noqa: PLC0415
    from pizza_inference import CLASSES  # noqa: PLC0415
    from transformers import ViTConfig, ViTForImageClassification, ViTImageProcessor  # noqa: PLC0415

    directory = tmp_path_factory.mktemp("vit") / "tiny-vit"
    config = ViTConfig(  # type: ignore[call-arg]
        image_size=32,
        patch_size=8,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        num_labels=len(CLASSES),
        id2label=dict(enumerate(CLASSES)),
        label2id={c: i for i, c in enumerate(CLASSES)},
    )
    torch.manual_seed(0)
    ViTForImageClassification(config).save_pretrained(directory)
    ViTImageProcessor(size={"height": 32, "width": 32}).save_pretrained(directory)
    return directory
