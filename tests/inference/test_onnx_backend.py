"""The `onnx` backend: onnx.json, loading rules, softmax, CLI wiring, and the exporter on a
random MicroPizzaNet (float32 and static INT8 files that the backend then serves)."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from pizza_inference import CLASSES
from pizza_inference.backends import BACKENDS, create_backend
from pizza_inference.backends.base import ModelLoadError
from pizza_inference.backends.onnx import OnnxBackend, softmax
from pizza_inference.backends.onnx_info import INFO_FILE, read_onnx_info
from pizza_inference.cli import parse_config
from pizza_inference.config import ModelServerConfig
from pizza_inference.images import decode_image
from pizza_inference.sources import WEIGHTS_ROOT

from tests.support.images import image_bytes

pytestmark = pytest.mark.unit

CNN = WEIGHTS_ROOT / "micro-pizza-net"
PRIMARY = WEIGHTS_ROOT / "pizza-convnext-tiny"


def _images(n: int) -> list[Image.Image]:
    return [decode_image(image_bytes("PNG", (80, 60), seed=s)) for s in range(n)]


@pytest.fixture
def cnn_copy(tmp_path: Path) -> Path:
    directory = tmp_path / "micro-pizza-net"
    shutil.copytree(CNN, directory)
    return directory


class TestOnnxInfo:
    def test_shipped_files_describe_their_models(self) -> None:
        cnn, primary = read_onnx_info(CNN), read_onnx_info(PRIMARY)
        assert cnn.classes == primary.classes == CLASSES
        assert (cnn.input_size, primary.input_size) == (48, 64)
        assert cnn.files == {"float32": "float32.onnx", "int8": "int8.onnx"}
        assert primary.files == {"float32": "model.onnx"}
        checkpoint = json.loads((CNN / "checkpoint.json").read_text())
        assert list(cnn.normalization.mean) == checkpoint["normalization"]["mean"]
        processor = json.loads((PRIMARY / "preprocessor_config.json").read_text())
        assert list(primary.normalization.std) == processor["image_std"]

    @pytest.mark.parametrize("directory", [CNN, PRIMARY])
    def test_exports_are_of_the_shipped_weights(self, directory: Path) -> None:
        """`make models` retrains the weights; the ONNX files must be exported again after."""
        source = read_onnx_info(directory).extra["source"]
        digest = hashlib.sha256((directory / source["file"]).read_bytes()).hexdigest()
        assert digest == source["sha256"], (
            f"{directory.name}: run python -m pizza_models.export_onnx"
        )

    @pytest.mark.parametrize("directory", [CNN, PRIMARY])
    def test_files_are_small(self, directory: Path) -> None:
        for name in read_onnx_info(directory).files.values():
            assert 0 < (directory / name).stat().st_size < 10 * 1024 * 1024

    def test_rejects_a_folder_without_onnx_json(self, tmp_path: Path) -> None:
        with pytest.raises(FileNotFoundError, match=r"onnx\.json"):
            read_onnx_info(tmp_path)

    @pytest.mark.parametrize(
        ("change", "match"),
        [
            ({"format": "pizza-onnx/0"}, "format"),
            ({"output": {"name": "logits", "values": "probabilities"}}, "logits"),
            ({"files": {"float32": "../float32.onnx"}}, "plain names"),
            ({"input": {"name": "x"}}, "incomplete"),
        ],
    )
    def test_rejects_bad_documents(
        self, cnn_copy: Path, change: dict[str, object], match: str
    ) -> None:
        path = cnn_copy / INFO_FILE
        path.write_text(json.dumps({**json.loads(path.read_text()), **change}))
        with pytest.raises(ValueError, match=match):
            read_onnx_info(cnn_copy)


class TestOnnxBackend:
    def test_softmax_is_stable_and_normalised(self) -> None:
        logits = np.array([[1000.0, 1000.0, -1000.0], [0.0, np.log(3.0), 0.0]], dtype=np.float32)
        probabilities = softmax(logits)
        np.testing.assert_allclose(probabilities[0], [0.5, 0.5, 0.0], atol=1e-12)
        np.testing.assert_allclose(probabilities[1], [0.2, 0.6, 0.2], atol=1e-7)

    @pytest.mark.parametrize("precision", ["float32", "int8"])
    def test_serves_both_precisions_on_cpu(self, precision: str) -> None:
        backend = create_backend("onnx", CNN, precision=precision, device="auto", threads=2)
        assert isinstance(backend, OnnxBackend)
        backend.load()
        probabilities = backend.predict(_images(5))
        assert backend.classes == CLASSES
        assert probabilities.shape == (5, len(CLASSES))
        assert probabilities.dtype == np.float32
        np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
        assert backend.describe()["file"] == f"{precision}.onnx"
        assert backend.describe()["threads"] == "2"
        assert backend.device == "cpu"

    def test_batch_of_one_and_of_many_give_the_same_rows(self) -> None:
        backend = create_backend("onnx", PRIMARY, precision="float32", device="cpu")
        backend.load()
        images = _images(7)
        many = backend.predict(images)
        one = np.concatenate([backend.predict([image]) for image in images])
        np.testing.assert_allclose(one, many, atol=1e-5)

    @pytest.mark.parametrize(
        ("directory", "precision", "device", "match"),
        [
            (PRIMARY, "int8", "cpu", "not int8"),
            (CNN, "float16", "cpu", "float32 or int8"),
            (CNN, "float32", "cuda", "no CUDA provider"),
        ],
    )
    def test_refuses_what_it_cannot_serve(
        self, directory: Path, precision: str, device: str, match: str
    ) -> None:
        backend = create_backend("onnx", directory, precision=precision, device=device)
        with pytest.raises(ModelLoadError, match=match):
            backend.load()
        assert not backend.ready

    def test_refuses_a_missing_model_file_and_a_wrong_signature(self, cnn_copy: Path) -> None:
        (cnn_copy / "int8.onnx").unlink()
        with pytest.raises(ModelLoadError, match="missing"):
            create_backend("onnx", cnn_copy, precision="int8").load()
        info = json.loads((cnn_copy / INFO_FILE).read_text())
        info["input"]["size"] = 64
        (cnn_copy / INFO_FILE).write_text(json.dumps(info))
        with pytest.raises(ModelLoadError, match="input shape"):
            create_backend("onnx", cnn_copy, precision="float32").load()

    def test_threads_must_be_positive(self) -> None:
        with pytest.raises(ModelLoadError, match="threads"):
            create_backend("onnx", CNN, precision="int8", threads=0)


def test_cli_serves_onnx_with_the_operators_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "onnx" in BACKENDS
    env = {
        "PIZZA_BACKEND": "onnx",
        "PIZZA_SOURCE": "builtin://micro-pizza-net",
        "PIZZA_PRECISION": "int8",
        "PIZZA_MODEL_NAME": "micro-pizza-net",
        "PIZZA_DEVICE": "cpu",
        "PIZZA_THREADS": "2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert parse_config(["model"]) == ModelServerConfig(
        backend="onnx",
        source="builtin://micro-pizza-net",
        precision="int8",
        model_name="micro-pizza-net",
        device="cpu",
        threads=2,
    )
    monkeypatch.setenv("PIZZA_THREADS", "0")
    with pytest.raises(SystemExit):
        parse_config(["model"])


@pytest.mark.slow
def test_exporter_round_trip_on_a_random_checkpoint(tmp_path: Path) -> None:
    """export_cnn writes float32 + static INT8 files the backend serves, close to torch."""
    import torch  # noqa: PLC0415
    from pizza_inference.cnn.checkpoint import load_cnn, make_random_checkpoint  # noqa: PLC0415
    from pizza_inference.cnn.preprocess import images_to_tensor  # noqa: PLC0415
    from pizza_models.dataset import render  # noqa: PLC0415
    from pizza_models.export_onnx import export_cnn  # noqa: PLC0415

    directory = make_random_checkpoint(tmp_path / "random-cnn", seed=3)
    calibration, _ = render(1001, 8, workers=1)
    info = export_cnn(directory, calibration)
    assert info.extra["quantization"]["calibration_images"] == 48
    assert read_onnx_info(directory) == info
    images, _ = render(77, 10, workers=1)
    checkpoint = load_cnn(directory, "float32")
    x = images_to_tensor(images, checkpoint.normalization, checkpoint.input_size)
    with torch.no_grad():
        expected = torch.softmax(checkpoint.model(x), dim=1).numpy()
    exported = create_backend("onnx", directory, precision="float32", device="cpu")
    exported.load()
    np.testing.assert_allclose(exported.predict(images), expected, atol=1e-4)
    int8 = create_backend("onnx", directory, precision="int8", device="cpu")
    int8.load()
    assert np.abs(int8.predict(images) - expected).mean() < 0.05
