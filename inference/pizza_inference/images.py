"""Decoding and validating uploaded images: JPEG or PNG, at most 10 MB, no truncation, no bombs."""

from __future__ import annotations

import io
import warnings

from PIL import Image, UnidentifiedImageError

from pizza_inference.errors import (
    InvalidInputError,
    PayloadTooLargeError,
    UnsupportedMediaTypeError,
)
from pizza_inference.memory import MAX_IMAGE_BYTES

__all__ = [
    "ALLOWED_CONTENT_TYPES",
    "ALLOWED_FORMATS",
    "MAX_IMAGE_BYTES",
    "MAX_IMAGE_PIXELS",
    "check_content_type",
    "check_size",
    "decode_image",
    "load_image",
    "open_image",
]

MAX_IMAGE_PIXELS = 40_000_000
"""Largest decoded image (width x height) we accept; more is treated as a decompression bomb."""

ALLOWED_FORMATS = frozenset({"JPEG", "PNG"})
ALLOWED_CONTENT_TYPES = frozenset(
    {"image/jpeg", "image/jpg", "image/pjpeg", "image/png", "application/octet-stream"}
)
"""Declared part types we accept (many clients send octet-stream); the bytes are sniffed anyway."""


def check_content_type(content_type: str | None) -> None:
    """Rejects a declared upload type that cannot be a JPEG or PNG (415)."""
    if not content_type:
        return
    base = content_type.split(";", 1)[0].strip().lower()
    if base not in ALLOWED_CONTENT_TYPES:
        raise UnsupportedMediaTypeError(
            f"content type {base!r} is not accepted: upload a JPEG or PNG image",
            reason="unsupported_media_type",
        )


def check_size(size: int) -> None:
    if size == 0:
        raise InvalidInputError("the uploaded file is empty", reason="empty_file")
    if size > MAX_IMAGE_BYTES:
        raise PayloadTooLargeError(
            f"the uploaded file has {size} bytes, the limit is {MAX_IMAGE_BYTES} (10 MB)",
            reason="file_too_large",
        )


def open_image(data: bytes, content_type: str | None = None) -> Image.Image:
    """The image's header, read and checked (format, size, decompression bombs); its pixels are
    not decoded yet (`load_image`), so what decoding will cost is known first."""
    check_content_type(content_type)
    check_size(len(data))
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=None)
        except UnidentifiedImageError as exc:
            raise InvalidInputError("the file is not an image", reason="not_an_image") from exc
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InvalidInputError(str(exc), reason="decompression_bomb") from exc
        except Exception as exc:  # a broken header: PIL raises many kinds
            raise InvalidInputError(
                f"the file is not a readable image: {exc}", reason="not_an_image"
            ) from exc
    if image.format not in ALLOWED_FORMATS:
        raise UnsupportedMediaTypeError(
            f"image format {image.format} is not accepted: upload a JPEG or PNG image",
            reason="unsupported_image_format",
        )
    width, height = image.size
    if width <= 0 or height <= 0:
        raise InvalidInputError("the image has no pixels", reason="invalid_image")
    if width * height > MAX_IMAGE_PIXELS:
        raise InvalidInputError(
            f"the image is {width}x{height} pixels, more than {MAX_IMAGE_PIXELS}:"
            " refusing a possible decompression bomb",
            reason="decompression_bomb",
        )
    return image


def load_image(image: Image.Image) -> Image.Image:
    """The pixels of an image from `open_image`, decoded, as RGB."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image.load()
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise InvalidInputError(str(exc), reason="decompression_bomb") from exc
        except (OSError, SyntaxError, ValueError) as exc:
            raise InvalidInputError(
                f"the image could not be decoded (truncated or corrupt): {exc}",
                reason="truncated_image",
            ) from exc
    return image.convert("RGB") if image.mode != "RGB" else image


def decode_image(data: bytes, content_type: str | None = None) -> Image.Image:
    """Fully decoded RGB image, or a 4xx `InferenceError` that says what is wrong with the bytes."""
    return load_image(open_image(data, content_type))
