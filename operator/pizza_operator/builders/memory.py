"""The memory budget of an inference server, derived from its container's memory limit.

Each server holds the requests in flight within a budget in bytes (`PIZZA_MEMORY_BUDGET_BYTES`,
see inference/README.md "Memory"). The operator gives it half of what the container's memory
limit leaves once the server itself is loaded: `(limit - baseline) / 2`, where the baseline is
what a server of that kind holds idle (measured resident memory, rounded up). The other half is
headroom for what the budget does not count (allocator fragmentation, buffers, metrics). Without
a memory limit the server keeps its own default. Pure: no I/O.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

from pizza_operator.api.v1alpha1 import Resources

MIB = 1024 * 1024

BUDGET_ENV = "PIZZA_MEMORY_BUDGET_BYTES"

BASELINE_BYTES: dict[str, int] = {
    "router": 96 * MIB,
    "onnx": 128 * MIB,
    "cnn": 640 * MIB,
    "image-classifier": 1024 * MIB,
    "vlm": 4096 * MIB,
}
"""What a server holds before its first request, by kind (the router, or a model server's
backend). Measured idle: router 78 MiB, onnx 100 MiB with MicroPizzaNet and 107 MiB with the
shipped ConvNeXt (a bigger ONNX model adds its weights), cnn (torch) 576 MiB; image-classifier
and vlm add transformers and the weights, which on a GPU still pass through host memory."""

MIN_BUDGET_BYTES = 16 * MIB
"""The smallest budget a server accepts (a limit below the baseline gets this)."""

_SUFFIXES: dict[str, Decimal] = {
    **{s: Decimal(1024) ** (i + 1) for i, s in enumerate(("Ki", "Mi", "Gi", "Ti", "Pi", "Ei"))},
    **{s: Decimal(1000) ** (i + 1) for i, s in enumerate(("k", "M", "G", "T", "P", "E"))},
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
}


def quantity_bytes(quantity: int | str) -> int:
    """A Kubernetes memory quantity ("256Mi", "1G", "1e9", 1073741824) in whole bytes."""
    text = str(quantity).strip()
    for suffix in sorted(_SUFFIXES, key=len, reverse=True):
        if text.endswith(suffix):
            number, scale = text[: -len(suffix)], _SUFFIXES[suffix]
            break
    else:
        number, scale = text, Decimal(1)
    try:
        value = Decimal(number) * scale
    except InvalidOperation as exc:
        raise ValueError(f"{quantity!r} is not a quantity") from exc
    return int(value)


def memory_budget_bytes(limit_bytes: int, kind: str) -> int:
    """Half of what `limit_bytes` leaves after a `kind` server's baseline, at least the minimum."""
    return max(MIN_BUDGET_BYTES, (limit_bytes - BASELINE_BYTES[kind]) // 2)


def memory_budget_env(resources: Resources, kind: str) -> list[dict[str, str]]:
    """The budget's environment variable for a container with these resources; none without a
    memory limit (the server's default budget then holds)."""
    limit = (resources.limits or {}).get("memory")
    if limit is None:
        return []
    budget = memory_budget_bytes(quantity_bytes(limit), kind)
    return [{"name": BUDGET_ENV, "value": str(budget)}]
