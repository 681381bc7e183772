"""MicroPizzaNet checkpoints: INT8 quantisation, save/load round trip, errors."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
import torch
from pizza_inference import CLASSES
from pizza_inference.cnn.checkpoint import (
    load_cnn,
    make_random_checkpoint,
    save_cnn,
)
from pizza_inference.cnn.micro_pizza_net import MicroPizzaNet
from pizza_inference.cnn.preprocess import Normalization
from pizza_inference.cnn.quantize import quantize_int8, quantized_module_names

pytestmark = pytest.mark.unit


@pytest.fixture(scope="module")
def random_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_random_checkpoint(tmp_path_factory.mktemp("cnn"), seed=3)


def _inputs(seed: int = 0) -> torch.Tensor:
    return torch.randn(8, 3, 48, 48, generator=torch.Generator().manual_seed(seed))


def test_both_precisions_load_with_metadata(random_checkpoint: Path) -> None:
    for precision in ("float32", "int8"):
        checkpoint = load_cnn(random_checkpoint, precision)
        assert checkpoint.precision == precision
        assert checkpoint.classes == CLASSES
        assert checkpoint.normalization == Normalization((0.5, 0.5, 0.5), (0.25, 0.25, 0.25))
        assert not checkpoint.model.training
        assert checkpoint.input_size == 48
        with torch.no_grad():
            logits = checkpoint.model(_inputs())
        assert logits.shape == (8, len(CLASSES))
        assert logits.dtype == torch.float32


def test_int8_model_holds_quantized_modules_and_runs_int8_kernels(random_checkpoint: Path) -> None:
    model = load_cnn(random_checkpoint, "int8").model
    names = quantized_module_names(model)
    assert names == ["net.block1.0", "net.block2.0", "net.block2.3", "net.classifier"]
    cpu = [torch.profiler.ProfilerActivity.CPU]
    with torch.profiler.profile(activities=cpu) as prof, torch.no_grad():
        model(_inputs())
    ops = {event.name for event in prof.events()}
    assert "quantized::conv2d_relu" in ops
    assert "quantized::linear" in ops
    assert "aten::conv2d" not in ops


def test_int8_stays_close_to_float(random_checkpoint: Path) -> None:
    x = _inputs(1)
    with torch.no_grad():
        float_logits = load_cnn(random_checkpoint, "float32").model(x)
        int8_logits = load_cnn(random_checkpoint, "int8").model(x)
    assert not torch.equal(float_logits, int8_logits)
    assert torch.allclose(float_logits, int8_logits, atol=0.05)


def test_round_trip_gives_identical_outputs(tmp_path: Path) -> None:
    torch.manual_seed(7)
    model = MicroPizzaNet().eval()
    int8 = quantize_int8(model, [_inputs(2), _inputs(3)])
    norm = Normalization((0.4, 0.3, 0.2), (0.2, 0.2, 0.2))
    save_cnn(tmp_path, model, norm, int8, {"training_command": "test"})
    x = _inputs(4)
    with torch.no_grad():
        assert torch.equal(load_cnn(tmp_path, "float32").model(x), model(x))
        assert torch.equal(load_cnn(tmp_path, "int8").model(x), int8(x))
    loaded = load_cnn(tmp_path, "int8")
    assert loaded.normalization == norm
    assert loaded.metadata["training_command"] == "test"


def test_files_load_with_weights_only_and_hold_no_pickled_modules(random_checkpoint: Path) -> None:
    for name in ("float32.pt", "int8.pt"):
        state = torch.load(random_checkpoint / name, weights_only=True)
        assert isinstance(state, dict)
        with zipfile.ZipFile(random_checkpoint / name) as archive:
            pickle_bytes = next(archive.read(n) for n in archive.namelist() if n.endswith(".pkl"))
        assert b"MicroPizzaNet" not in pickle_bytes
    document = json.loads((random_checkpoint / "checkpoint.json").read_text())
    assert document["classes"] == list(CLASSES)
    assert document["precisions"] == ["float32", "int8"]


def test_random_checkpoint_is_deterministic(tmp_path: Path, random_checkpoint: Path) -> None:
    again = make_random_checkpoint(tmp_path, seed=3)
    x = _inputs(5)
    with torch.no_grad():
        for precision in ("float32", "int8"):
            a = load_cnn(random_checkpoint, precision).model(x)
            b = load_cnn(again, precision).model(x)
            assert torch.equal(a, b)


def test_quantize_does_not_change_the_float_model() -> None:
    model = MicroPizzaNet().eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    quantize_int8(model, [_inputs()])
    after = model.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not quantized_module_names(model)


def test_quantize_needs_calibration_data() -> None:
    with pytest.raises(ValueError, match="calibration"):
        quantize_int8(MicroPizzaNet().eval(), [])


def test_unknown_precision_is_a_value_error(random_checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="float32, int8"):
        load_cnn(random_checkpoint, "float16")


def test_missing_folder_and_missing_files_are_file_not_found(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_cnn(tmp_path / "nope", "float32")
    with pytest.raises(FileNotFoundError, match=r"checkpoint\.json"):
        load_cnn(tmp_path, "float32")
    save_cnn(tmp_path, MicroPizzaNet().eval(), Normalization((0, 0, 0), (1, 1, 1)), None, {})
    assert load_cnn(tmp_path, "float32").precision == "float32"
    with pytest.raises(FileNotFoundError, match="no int8 weights"):
        load_cnn(tmp_path, "int8")


def test_foreign_json_is_rejected(tmp_path: Path) -> None:
    (tmp_path / "checkpoint.json").write_text('{"format": "other"}')
    with pytest.raises(ValueError, match="format"):
        load_cnn(tmp_path, "float32")
