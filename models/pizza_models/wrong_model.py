"""`python -m pizza_models.wrong_model`: a TEST-ONLY model that answers confidently and wrongly.

It is the shipped MicroPizzaNet (float32 ONNX) with the rows of its classifier head (the last
`Gemm`'s weight and bias) permuted by a fixed derangement `perm` of the classes: its logit `j` is
the source's logit `perm[j]`. Its top class is therefore never the source's top class, and its
confidence (the top softmax probability) is exactly the source's, about 0.95 on average. It exists
so the canary's agreement gate can be shown failing on a real model served by the real `onnx`
backend; it never ships in a product image (the e2e tier adds it to a test image).

Which derangement: of the 265 derangements of six classes, the one that agrees least with the
stable primary (`pizza-convnext-tiny`) on the validation split (seed 2002, `CHOICE_PER_CLASS`
a class); ties go to the smallest in lexicographic order. Where MicroPizzaNet and the primary
differ, a careless derangement could land on the primary's class; this one avoids the common
confusions. Everything is deterministic: the same inputs write the same bytes.

    python -m pizza_models.wrong_model              # writes tests/models/wrong-pizza-net/
    python -m pizza_models.wrong_model --check      # exits 1 when the committed files differ
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import numpy_helper
from pizza_inference import CLASSES
from pizza_inference.backends.onnx import OnnxBackend
from pizza_inference.backends.onnx_info import OnnxInfo, read_onnx_info, write_onnx_info

from pizza_models.dataset import SPLIT_SEEDS, render
from pizza_models.paths import CNN_DIR, PRIMARY_DIR, PRIMARY_NAME, REPO_ROOT

NAME = "wrong-pizza-net"
OUT_DIR = REPO_ROOT / "tests" / "models" / NAME
SOURCE_FILE = CNN_DIR / "float32.onnx"
MODEL_FILE = "float32.onnx"
CHOICE_SEED = SPLIT_SEEDS["val"]
CHOICE_PER_CLASS = 100
COMMAND = "python -m pizza_models.wrong_model"
README = f"""# {NAME}: TEST ONLY, answers wrongly on purpose

MicroPizzaNet (float32) with its classifier head's rows permuted by a derangement of the classes
(`onnx.json`: `derangement`): every answer is a wrong class, with the source's confidence.
Used by the tests to show the canary's agreement gate failing; never shipped in a product image.
Regenerate with `{COMMAND}` (deterministic); docs/models.md, "Test-only models".
"""


def derangements(n: int) -> list[tuple[int, ...]]:
    """Every permutation of range(n) without a fixed point, in lexicographic order."""
    return [p for p in itertools.permutations(range(n)) if all(p[i] != i for i in range(n))]


def agreements(perm: Sequence[int], source_top: np.ndarray, other_top: np.ndarray) -> int:
    """How often the permuted model's top class equals `other_top`.

    The permuted model answers j where perm[j] is the source's top class, so it agrees with
    another model answering b exactly when perm[b] equals the source's answer."""
    return int(np.sum(np.asarray(perm)[other_top] == source_top))


def choose_derangement(source_top: np.ndarray, other_top: np.ndarray, n: int) -> tuple[int, ...]:
    """The derangement agreeing least with `other_top`; the smallest one on ties."""
    return min(derangements(n), key=lambda p: (agreements(p, source_top, other_top), p))


def permute_head(model: onnx.ModelProto, perm: Sequence[int]) -> onnx.ModelProto:
    """A copy whose output logit j is `model`'s logit perm[j] (rows of the last Gemm permuted)."""
    out = onnx.ModelProto()
    out.CopyFrom(model)
    head = [node for node in out.graph.node if out.graph.output[0].name in node.output]
    if len(head) != 1 or head[0].op_type != "Gemm":
        raise ValueError("the model's output is not produced by one Gemm (a linear head)")
    attributes = {a.name: onnx.helper.get_attribute_value(a) for a in head[0].attribute}
    if attributes.get("transB") != 1 or attributes.get("transA", 0) != 0:
        raise ValueError(f"the head Gemm must have transB=1 and transA=0, has {attributes}")
    initializers = {i.name: i for i in out.graph.initializer}
    order = np.asarray(perm)
    for name in head[0].input[1:3]:
        tensor = initializers[name]
        values = numpy_helper.to_array(tensor)
        if values.shape[0] != len(order):
            raise ValueError(f"{name} has {values.shape[0]} rows, the derangement {len(order)}")
        tensor.CopyFrom(numpy_helper.from_array(np.ascontiguousarray(values[order]), name))
    out.doc_string = f"TEST ONLY ({NAME}): answers a wrong class on purpose; {COMMAND}"
    onnx.helper.set_model_props(out, {"pizza.test_only": "true", "pizza.derangement": str(perm)})
    return out


def _top(path: Path, precision: str, images: Sequence[Any]) -> np.ndarray:
    backend = OnnxBackend(path, precision=precision, device="cpu")
    backend.load()
    return backend.predict(images).argmax(axis=1)  # type: ignore[no-any-return]


def _info(source: OnnxInfo, perm: Sequence[int], choice: dict[str, Any]) -> OnnxInfo:
    extra = {
        "architecture": "MicroPizzaNet, classifier head rows permuted (TEST ONLY)",
        "command": COMMAND,
        "test_only": True,
        "derangement": {
            "perm": list(perm),
            "answers": {source.classes[p]: source.classes[j] for j, p in enumerate(perm)},
            "meaning": "logit j is the source's logit perm[j]; answers maps the source's"
            " class to this model's answer",
        },
        "choice": choice,
        "source": {
            "file": f"builtin://{CNN_DIR.name}/{SOURCE_FILE.name}",
            "sha256": hashlib.sha256(SOURCE_FILE.read_bytes()).hexdigest(),
        },
    }
    return OnnxInfo(
        classes=source.classes,
        input_name=source.input_name,
        input_size=source.input_size,
        normalization=source.normalization,
        output_name=source.output_name,
        files={"float32": MODEL_FILE},
        extra=extra,
    )


def build(out: Path) -> tuple[int, ...]:
    """Writes the model, its `onnx.json` and a README into `out`; returns the derangement."""
    images, _ = render(CHOICE_SEED, CHOICE_PER_CLASS)
    source_top = _top(CNN_DIR, "float32", images)
    primary_top = _top(PRIMARY_DIR, "float32", images)
    perm = choose_derangement(source_top, primary_top, len(CLASSES))
    choice = {
        "rule": f"the derangement agreeing least with {PRIMARY_NAME}",
        "seed": CHOICE_SEED,
        "images": len(images),
        "agreements_with_primary": agreements(perm, source_top, primary_top),
        "source_agreements_with_primary": int(np.sum(source_top == primary_top)),
    }
    out.mkdir(parents=True, exist_ok=True)
    model = permute_head(onnx.load(str(SOURCE_FILE)), perm)
    onnx.checker.check_model(model, full_check=True)
    (out / MODEL_FILE).write_bytes(model.SerializeToString(deterministic=True))
    write_onnx_info(out, _info(read_onnx_info(CNN_DIR), perm, choice))
    (out / "README.md").write_text(README, encoding="utf-8")
    return perm


def differences(built: Path, committed: Path) -> list[str]:
    """Files of `built` that `committed` lacks or holds with other bytes."""
    return [
        p.name
        for p in sorted(built.iterdir())
        if not (committed / p.name).is_file() or (committed / p.name).read_bytes() != p.read_bytes()
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=COMMAND, description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=OUT_DIR, help="output folder")
    parser.add_argument(
        "--check", action="store_true", help="build into a temporary folder and compare with --out"
    )
    args = parser.parse_args(argv)
    if not args.check:
        perm = build(args.out)
        print(f"wrote {args.out} (derangement {list(perm)})")
        return 0
    import tempfile  # noqa: PLC0415

    with tempfile.TemporaryDirectory() as tmp:
        build(Path(tmp))
        changed = differences(Path(tmp), args.out)
    print(json.dumps({"differ": changed}))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
