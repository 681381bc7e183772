from __future__ import annotations

import io
import struct
import zlib

import pytest
from PIL import Image
from pizza_inference.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from pizza_inference.images import MAX_IMAGE_BYTES, decode_image

from tests.support.images import image_bytes

pytestmark = pytest.mark.unit


def png_bomb(side: int = 10_000) -> bytes:
    """A valid grayscale PNG of side x side black pixels: a few KB that decode to `side`² bytes."""
    raw = zlib.compress(b"".join(b"\x00" + bytes(side) for _ in range(side)), 9)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", raw) + chunk(b"IEND", b"")


def test_decodes_jpeg_and_png() -> None:
    for fmt in ("JPEG", "PNG"):
        image = decode_image(image_bytes(fmt, (40, 30)), f"image/{fmt.lower()}")
        assert image.mode == "RGB" and image.size == (40, 30)


def test_grayscale_png_is_converted() -> None:
    buffer = io.BytesIO()
    Image.new("L", (8, 8), 7).save(buffer, "PNG")
    assert decode_image(buffer.getvalue()).mode == "RGB"


@pytest.mark.parametrize(
    ("data", "content_type", "error", "reason"),
    [
        (b"", "image/jpeg", InvalidInputError, "empty_file"),
        (b"not an image at all", "image/jpeg", InvalidInputError, "not_an_image"),
        (image_bytes("PNG", (64, 64))[:-200], "image/png", InvalidInputError, "truncated_image"),
        (
            image_bytes("JPEG", (64, 64)),
            "text/plain",
            UnsupportedMediaTypeError,
            "unsupported_media_type",
        ),
        (
            image_bytes("GIF", (16, 16)),
            "image/gif",
            UnsupportedMediaTypeError,
            "unsupported_media_type",
        ),
        (image_bytes("GIF", (16, 16)), None, UnsupportedMediaTypeError, "unsupported_image_format"),
        (b"\xff" * (MAX_IMAGE_BYTES + 1), "image/jpeg", PayloadTooLargeError, "file_too_large"),
    ],
)
def test_rejects(
    data: bytes, content_type: str | None, error: type[Exception], reason: str
) -> None:
    with pytest.raises(error) as info:
        decode_image(data, content_type)
    assert info.value.reason == reason  # type: ignore[attr-defined]


def test_rejects_decompression_bomb() -> None:
    bomb = png_bomb()
    assert len(bomb) < 200_000
    with pytest.raises(InvalidInputError) as info:
        decode_image(bomb, "image/png")
    assert info.value.reason == "decompression_bomb"
