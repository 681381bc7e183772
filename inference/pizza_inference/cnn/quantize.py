"""INT8 post-training static quantisation of MicroPizzaNet (real INT8 kernels on CPU).

Uses PyTorch's eager-mode quantisation (`torch.ao.quantization`: fuse, QuantStub/DeQuantStub,
prepare, calibrate, convert) with the `x86` engine (fbgemm + oneDNN). That API carries a
deprecation notice pointing to torchao; torchao's replacements either need `torch.compile`
(a C++ compiler at serving time) to lower to INT8 kernels or do not cover Conv2d on CPU.
The decision and the migration path are written down in docs/models.md.
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.ao import quantization as tq

from pizza_inference.cnn.micro_pizza_net import INPUT_SIZE, MicroPizzaNet

ENGINE_PREFERENCE = ("x86", "fbgemm")
"""Quantised engines we build for, best first; all run on x86 CPUs without a compiler."""

FUSE_GROUPS = (
    ["net.block1.0", "net.block1.1", "net.block1.2"],
    ["net.block2.0", "net.block2.1", "net.block2.2"],
    ["net.block2.3", "net.block2.4", "net.block2.5"],
)
"""conv + batch norm + ReLU triples of MicroPizzaNet, fused before quantisation."""

QUANTIZED_MODULE_PACKAGES = ("torch.ao.nn.quantized", "torch.ao.nn.intrinsic.quantized")


class QuantizableMicroPizzaNet(nn.Module):
    """MicroPizzaNet between a QuantStub and a DeQuantStub: float in, float logits out."""

    def __init__(self, net: MicroPizzaNet | None = None) -> None:
        super().__init__()
        self.quant = tq.QuantStub()
        self.net = net if net is not None else MicroPizzaNet()
        self.dequant = tq.DeQuantStub()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.quant(x)
        x = self.net.block2(self.net.block1(x))
        x = torch.flatten(self.net.pool(x), 1)
        # Dropout is the identity in eval mode, the only mode a quantised model runs in.
        x = self.net.classifier(x)
        return self.dequant(x)  # type: ignore[no-any-return]


def quantized_engine() -> str:
    """The first engine of ENGINE_PREFERENCE this torch build supports."""
    supported = torch.backends.quantized.supported_engines
    for engine in ENGINE_PREFERENCE:
        if engine in supported:
            return engine
    raise RuntimeError(
        f"no x86 quantized engine in this torch build (supported: {supported}); "
        "INT8 MicroPizzaNet needs an x86 CPU build of torch"
    )


@contextmanager
def _eager_quantization(engine: str) -> Iterator[None]:
    """Selects the engine and silences the known deprecation notice of torch.ao.quantization."""
    torch.backends.quantized.engine = engine
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r".*torch\.ao\.quantization is deprecated.*")
        # The default x86 qconfig itself still passes reduce_range to its observers.
        warnings.filterwarnings("ignore", message=r".*reduce_range will be deprecated.*")
        warnings.filterwarnings("ignore", message=r".*quantized tensor creation functions.*")
        yield


def _prepared(float_model: MicroPizzaNet, engine: str) -> nn.Module:
    wrapper = QuantizableMicroPizzaNet(copy.deepcopy(float_model)).eval()
    groups = [list(g) for g in FUSE_GROUPS]
    fused: nn.Module = tq.fuse_modules(wrapper, groups, inplace=False)  # type: ignore[no-untyped-call]
    fused.qconfig = tq.get_default_qconfig(engine)  # type: ignore[no-untyped-call]
    prepared: nn.Module = tq.prepare(fused, inplace=False)  # type: ignore[no-untyped-call]
    return prepared


def quantize_int8(float_model: MicroPizzaNet, calibration: Iterable[torch.Tensor]) -> nn.Module:
    """INT8 copy of `float_model`, activation ranges calibrated on `calibration` batches.

    The batches are preprocessed inputs (N, 3, 48, 48), as `images_to_tensor` makes them.
    The float model is not changed. The result holds quantized Conv/Linear modules that run
    INT8 kernels; it takes and returns float tensors.
    """
    engine = quantized_engine()
    with _eager_quantization(engine):
        prepared = _prepared(float_model, engine)
        seen = 0
        with torch.no_grad():
            for batch in calibration:
                prepared(batch.to(torch.float32))
                seen += int(batch.shape[0])
        if seen == 0:
            raise ValueError("quantize_int8 needs at least one calibration batch")
        quantized: nn.Module = tq.convert(prepared, inplace=False)  # type: ignore[no-untyped-call]
    return quantized.eval()


def int8_skeleton(engine: str | None = None) -> nn.Module:
    """An INT8 MicroPizzaNet with the right module structure, to load a saved state dict into."""
    engine = engine or quantized_engine()
    with _eager_quantization(engine):
        prepared = _prepared(MicroPizzaNet().eval(), engine)
        with torch.no_grad():
            prepared(torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
        quantized: nn.Module = tq.convert(prepared, inplace=False)  # type: ignore[no-untyped-call]
    return quantized.eval()


def quantized_module_names(model: nn.Module) -> list[str]:
    """Names of the modules that hold INT8 weights (quantized Conv2d/ConvReLU2d/Linear)."""
    return [
        name
        for name, module in model.named_modules()
        if type(module).__module__.startswith(QUANTIZED_MODULE_PACKAGES)
        and hasattr(module, "weight")
        and callable(module.weight)
        and module.weight().dtype == torch.qint8
    ]
