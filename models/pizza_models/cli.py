"""`pizza-data`: procedural pizza images on demand."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from pizza_inference import CLASSES

from pizza_models.generator import RENDER_SIZE, samples


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pizza-data", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    generate = commands.add_parser(
        "generate", help="write PNG images, one folder per class (OUT/<class>/<index>.png)"
    )
    generate.add_argument("--seed", type=int, required=True, help="generator stream")
    generate.add_argument("--count", type=_positive, required=True, help="images per class")
    generate.add_argument("--out", type=Path, required=True, help="output folder")
    generate.add_argument("--size", type=int, default=RENDER_SIZE, help="pixels per side")
    return parser


def generate(seed: int, count: int, out: Path, size: int = RENDER_SIZE) -> int:
    """Writes count images of each class under out/<class>/; returns how many were written."""
    for name in CLASSES:
        (out / name).mkdir(parents=True, exist_ok=True)
    written = 0
    digits = max(4, len(str(count - 1)))
    for position, (class_index, image) in enumerate(samples(seed, count, size)):
        index = position // len(CLASSES)
        image.save(out / CLASSES[class_index] / f"{index:0{digits}d}.png", format="PNG")
        written += 1
    return written


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.size < 32:
        print(f"pizza-data: --size must be at least 32, got {args.size}", file=sys.stderr)
        return 2
    written = generate(args.seed, args.count, args.out, args.size)
    print(f"wrote {written} images ({args.count} per class, seed {args.seed}) to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
