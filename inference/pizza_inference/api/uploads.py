"""Reading a multipart upload once, with the size limit checked before the bytes are read."""

from __future__ import annotations

from fastapi import UploadFile

from pizza_inference.images import MAX_IMAGE_BYTES, check_content_type, check_size
from pizza_inference.service import ImageUpload


async def read_upload(file: UploadFile) -> ImageUpload:
    check_content_type(file.content_type)
    if file.size is not None and file.size > MAX_IMAGE_BYTES:
        check_size(file.size)
    data = await file.read()
    check_size(len(data))
    return ImageUpload(data=data, content_type=file.content_type, filename=file.filename)
