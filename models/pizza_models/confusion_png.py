"""Confusion matrices drawn with PIL (no plotting library needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from PIL import Image, ImageDraw, ImageFont

CELL = 72
LABEL_WIDTH = 96
HEADER = 40


def draw_confusion_matrix(
    matrix: Sequence[Sequence[int]], classes: Sequence[str], title: str, path: Path
) -> None:
    """Rows true class, columns predicted; cells shaded by the row-normalised rate."""
    n = len(classes)
    width = LABEL_WIDTH + CELL * n + 8
    height = HEADER + 24 + CELL * n + 8
    image = Image.new("RGB", (width, height), "white")
    draw = ImageDraw.Draw(image)
    font = ImageFont.load_default()
    draw.text((8, 6), title, fill="black", font=font)
    draw.text((8, 22), "rows: true class, columns: predicted", fill="gray", font=font)
    top = HEADER + 24
    for j, name in enumerate(classes):
        draw.text((LABEL_WIDTH + j * CELL + 4, HEADER + 6), name[:11], fill="black", font=font)
    for i, name in enumerate(classes):
        row_total = max(sum(matrix[i]), 1)
        draw.text((8, top + i * CELL + CELL // 2 - 6), name, fill="black", font=font)
        for j in range(n):
            rate = matrix[i][j] / row_total
            shade = int(255 - 200 * rate)
            fill = (shade, shade, 255) if i == j else (255, shade, shade)
            x0, y0 = LABEL_WIDTH + j * CELL, top + i * CELL
            draw.rectangle((x0, y0, x0 + CELL - 2, y0 + CELL - 2), fill=fill, outline="gray")
            text = str(matrix[i][j])
            draw.text((x0 + 6, y0 + CELL // 2 - 6), text, fill="black", font=font)
    path.parent.mkdir(parents=True, exist_ok=True)
    image.save(path, format="PNG", optimize=True)
