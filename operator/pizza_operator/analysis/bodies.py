"""Reading an HTTP answer's body with a size cap (metrics answers are untrusted data)."""

from __future__ import annotations

import aiohttp


class TooLargeError(ValueError):
    """The answer is longer than the cap: it is not read further."""


async def read_capped(response: aiohttp.ClientResponse, limit: int) -> bytes:
    """The whole body, or TooLargeError as soon as it (or its Content-Length) passes `limit`."""
    if response.content_length is not None and response.content_length > limit:
        raise TooLargeError(f"answer of {response.content_length} bytes, over {limit}")
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise TooLargeError(f"answer over {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)
