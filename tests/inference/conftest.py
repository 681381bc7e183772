from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pizza_inference.config import ModelServerConfig
from tests.inference.servers import ServerThread, wait_ready


@pytest.fixture(scope="session")
def cnn_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pizza_inference.cnn.checkpoint import make_random_checkpoint

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
    from pizza_inference.server import create_model_app

    server = ServerThread(create_model_app(cnn_config(cnn_checkpoint))).start()
    wait_ready(server.url)
    yield server
    server.stop()
