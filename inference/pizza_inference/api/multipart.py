"""A strict reader of the simple multipart forms every classify client sends, on bytes in memory.

The fast classify path (`api/classify_asgi.py`) reads a form with this instead of FastAPI's
streaming parser. It understands exactly one shape: the body starts with the first boundary (no
preamble), each part has a `Content-Disposition: form-data` header with a quoted or plain `name`
and optionally `filename`, optionally a `Content-Type`, no other header, no two parts with one
name. Anything else (a preamble, `filename*=`, escaped quotes, another header, a part not closed,
bytes that are not UTF-8 in a header) gives None: the caller then hands the request to FastAPI,
which parses it the general way and answers the same as before. So this reader can only take a
shortcut, never change an answer.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_BOUNDARY = re.compile(
    r';\s*boundary\s*=\s*(?:"([^"\\\r\n]{1,70})"|([^\s;"]{1,70}))(?=\s*(?:;|\Z))', re.I
)
_DISPOSITION = re.compile(
    r"\s*form-data\s*((?:;\s*[A-Za-z]+\s*=\s*(?:\"[^\"\\\r\n]*\"|[^\s;\"]+)\s*)*)\Z", re.I
)
_PARAM = re.compile(r';\s*([A-Za-z]+)\s*=\s*(?:"([^"\\\r\n]*)"|([^\s;"]+))')
_PART_HEADERS = frozenset({"content-disposition", "content-type"})


@dataclass(frozen=True)
class FormPart:
    name: str
    data: bytes
    filename: str | None = None
    content_type: str | None = None


def is_multipart(content_type: str) -> bool:
    """Whether a Content-Type is `multipart/form-data` (parameters not looked at)."""
    return content_type[:19].lower() == "multipart/form-data"


def boundary_of(content_type: str) -> bytes | None:
    """The boundary of a `multipart/form-data` Content-Type, or None."""
    if not is_multipart(content_type):
        return None
    match = _BOUNDARY.search(content_type, 19)
    if match is None:
        return None
    return (match.group(1) or match.group(2)).encode("ascii", "replace")


def _part_head(head: bytes) -> tuple[str, str | None, str | None] | None:
    """(name, filename, content type) from a part's header block, or None when it is not simple."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError:
        return None
    headers: dict[str, str] = {}
    for line in text.split("\r\n"):
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or key not in _PART_HEADERS or key in headers:
            return None
        headers[key] = value.strip()
    disposition = _DISPOSITION.match(headers.get("content-disposition", ""))
    if disposition is None:
        return None
    params: dict[str, str] = {}
    for match in _PARAM.finditer(disposition.group(1)):
        key = match.group(1).lower()
        if key not in ("name", "filename") or key in params:
            return None
        params[key] = match.group(2) if match.group(2) is not None else match.group(3)
    if "name" not in params:
        return None
    return params["name"], params.get("filename"), headers.get("content-type")


def parse_simple_form(body: bytes, boundary: bytes) -> dict[str, FormPart] | None:
    """The parts of `body` by name, or None when it is not a simple, complete form."""
    delimiter = b"--" + boundary
    if not body.startswith(delimiter + b"\r\n"):
        return None
    separator = b"\r\n" + delimiter
    parts: dict[str, FormPart] = {}
    at = len(delimiter) + 2
    while True:
        head_end = body.find(b"\r\n\r\n", at)
        if head_end < 0:
            return None
        fields = _part_head(body[at:head_end])
        if fields is None or fields[0] in parts:
            return None
        data_start = head_end + 4
        data_end = body.find(separator, data_start)
        if data_end < 0:
            return None
        name, filename, content_type = fields
        parts[name] = FormPart(name, body[data_start:data_end], filename, content_type)
        after = data_end + len(separator)
        tail = body[after : after + 2]
        if tail == b"--":
            return parts
        if tail != b"\r\n":
            return None
        at = after + 2
