"""The strict multipart reader of the fast classify path, against Starlette's own parser (the one
FastAPI uses), and the fast path against the FastAPI route over real HTTP."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

import httpx
import pytest
import requests
import urllib3
from hypothesis import given, settings
from hypothesis import strategies as st
from pizza_inference.api.classify_asgi import read_form
from pizza_inference.api.multipart import FormPart, boundary_of, parse_simple_form
from pizza_inference.service import Target
from starlette.datastructures import Headers, UploadFile
from starlette.formparsers import MultiPartParser

from tests.support.images import image_bytes
from tests.support.servers import ServerThread

pytestmark = pytest.mark.unit

IMAGE = image_bytes("PNG", (48, 48))


def starlette_parts(body: bytes, content_type: str) -> dict[str, tuple[bytes, str | None, Any]]:
    """What FastAPI sees: name -> (bytes, filename, content type)."""

    async def parse() -> dict[str, tuple[bytes, str | None, Any]]:
        async def stream() -> Any:
            yield body

        headers = Headers({"content-type": content_type, "content-length": str(len(body))})
        form = await MultiPartParser(headers, stream()).parse()
        parts: dict[str, tuple[bytes, str | None, Any]] = {}
        for name, value in form.multi_items():
            if isinstance(value, UploadFile):
                parts[name] = (await value.read(), value.filename, value.content_type)
            else:
                parts[name] = (value.encode(), None, None)
        return parts

    return asyncio.run(parse())


def ours(body: bytes, content_type: str) -> dict[str, tuple[bytes, str | None, Any]] | None:
    boundary = boundary_of(content_type)
    assert boundary is not None
    parts = parse_simple_form(body, boundary)
    if parts is None:
        return None
    return {p.name: (p.data, p.filename, p.content_type) for p in parts.values()}


def encoded(files: dict[str, Any], data: dict[str, str]) -> tuple[bytes, str]:
    request = httpx.Request("POST", "http://127.0.0.1/classify", files=files, data=data)
    return request.read(), request.headers["content-type"]


names = st.text(st.characters(codec="ascii", categories=["L", "N"]), min_size=1, max_size=12)
filenames = st.text(st.characters(codec="utf-8", exclude_characters='"\\\r\n%'), min_size=1)


@settings(max_examples=200, deadline=None)
@given(
    payload=st.binary(max_size=2000),
    filename=filenames,
    content_type=st.sampled_from(["image/png", "image/jpeg", "application/octet-stream"]),
    fields=st.dictionaries(names.filter(lambda n: n != "file"), st.text(max_size=20), max_size=4),
)
def test_same_parts_as_starlette(
    payload: bytes, filename: str, content_type: str, fields: dict[str, str]
) -> None:
    body, header = encoded({"file": (filename, payload, content_type)}, fields)
    expected = starlette_parts(body, header)
    got = ours(body, header)
    assert got is not None, "a form httpx encodes is one the fast path reads"
    assert got == expected


MUTATIONS = {
    "preamble": lambda b, bd: b"preamble\r\n" + b,
    "not closed": lambda b, bd: b[: b.rindex(b"--" + bd)],
    "cut in the image": lambda b, bd: b[: len(b) // 2],
    "duplicate name": lambda b, bd: b.replace(b'name="ab_test_group"', b'name="file"'),
    "extra header": lambda b, bd: b.replace(
        b"Content-Type: image/png", b"Content-Type: image/png\r\nContent-Transfer-Encoding: x"
    ),
    "filename*": lambda b, bd: b.replace(b'filename="p.png"', b"filename*=UTF-8''p.png"),
    "escaped quote": lambda b, bd: b.replace(b'filename="p.png"', b'filename="p\\".png"'),
    "no disposition": lambda b, bd: b.replace(b"Content-Disposition: form-data; ", b"X-A: "),
    "latin-1 header": lambda b, bd: b.replace(b'filename="p.png"', b'filename="p\xe9.png"'),
}


@pytest.mark.parametrize("mutation", sorted(MUTATIONS))
def test_unusual_forms_are_left_to_fastapi(mutation: str) -> None:
    body, header = encoded({"file": ("p.png", IMAGE, "image/png")}, {"ab_test_group": "A"})
    boundary = boundary_of(header)
    assert boundary is not None
    assert parse_simple_form(MUTATIONS[mutation](body, boundary), boundary) is None


def test_boundary_forms() -> None:
    assert boundary_of("multipart/form-data; boundary=abc") == b"abc"
    assert boundary_of('Multipart/Form-Data; charset=utf-8; boundary="a b;c"') == b"a b;c"
    assert boundary_of("multipart/form-data") is None
    assert boundary_of("application/json; boundary=abc") is None
    assert boundary_of("multipart/form-data; boundary=" + "x" * 71) is None  # RFC 2046: <= 70


def test_real_clients_forms_take_the_fast_path() -> None:
    files = {"file": ("p.png", IMAGE, "image/png")}
    prepared = requests.Request(
        "POST", "http://127.0.0.1/classify", files=files, data={"use_spatial": "false"}
    ).prepare()
    assert isinstance(prepared.body, bytes)
    form = read_form("/classify", prepared.body, prepared.headers["Content-Type"], keep_raw=False)
    assert form is not None and form.target is Target.FALLBACK
    assert form.upload.data == IMAGE and form.upload.raw is None

    body, header = urllib3.encode_multipart_formdata(files)
    form = read_form("/predict/spatial", body, header, keep_raw=True)
    assert form is not None and form.target is Target.PRIMARY and form.return_probabilities
    assert form.upload.raw is body and form.upload.raw_content_type == header

    body, header = encoded(files, {"ab_test_group": "b", "return_probabilities": "OFF"})
    form = read_form("/classify", body, header, keep_raw=False)
    assert form is not None and form.ab_test_group == "B" and not form.return_probabilities


@pytest.mark.parametrize(
    "path,data",
    [
        ("/classify", {"use_spatial": "maybe"}),
        ("/classify", {"ab_test_group": "C"}),
        ("/classify", {"ab_test_group": ""}),
        ("/classify", {"comment": "a field the endpoint does not take"}),
        ("/predict/standard", {"use_spatial": "true"}),
    ],
)
def test_values_pydantic_must_judge_are_left_to_fastapi(path: str, data: dict[str, str]) -> None:
    body, header = encoded({"file": ("p.png", IMAGE, "image/png")}, data)
    assert read_form(path, body, header, keep_raw=False) is None


def test_a_file_without_a_filename_is_left_to_fastapi() -> None:
    boundary = b"b0undary"
    body = (
        b"--b0undary\r\nContent-Disposition: form-data; name=file\r\n\r\n"
        + IMAGE
        + b"\r\n--b0undary--\r\n"
    )
    header = "multipart/form-data; boundary=b0undary"
    assert parse_simple_form(body, boundary) == {"file": FormPart("file", IMAGE)}
    assert read_form("/classify", body, header, keep_raw=False) is None


# -- over HTTP: the fast path and the FastAPI route give the same answers ----------------------
EXTRA = {"comment": "makes the fast path hand the request to FastAPI"}


def answer(response: httpx.Response) -> tuple[int, Any]:
    body = response.json()
    if isinstance(body, dict):
        body.pop("timestamp", None)
        body.pop("inference_time", None)
    return response.status_code, body


@pytest.mark.slow
@pytest.mark.parametrize(
    "path,files,data",
    [
        ("/classify", {"file": ("p.png", IMAGE, "image/png")}, {}),
        ("/classify", {"file": ("p.png", IMAGE, "image/png")}, {"return_probabilities": "no"}),
        ("/predict/standard", {"file": ("p.png", IMAGE, "application/octet-stream")}, {}),
        ("/classify", {"file": ("p.txt", b"hello", "text/plain")}, {}),
        ("/classify", {"file": ("p.png", b"", "image/png")}, {}),
        ("/classify", {"file": ("p.png", b"not an image", "image/png")}, {}),
        ("/classify", {"file": ("p.png", IMAGE[:100], "image/png")}, {}),
    ],
)
def test_fast_path_answers_as_fastapi(
    cnn_server: ServerThread, path: str, files: dict[str, Any], data: dict[str, str]
) -> None:
    fast = httpx.post(f"{cnn_server.url}{path}", files=files, data=data)
    slow = httpx.post(f"{cnn_server.url}{path}", files=files, data={**data, **EXTRA})
    assert answer(fast) == answer(slow)
    assert list(fast.json()) == list(slow.json())  # the same fields in the same order
    assert fast.headers["content-type"] == slow.headers["content-type"] == "application/json"


@pytest.mark.slow
def test_fast_path_refuses_a_too_large_body_before_reading_it(cnn_server: ServerThread) -> None:
    """A declared 11 MB body: the 413 comes back while the client has sent 5 bytes of it."""
    port = int(cnn_server.url.rsplit(":", 1)[1])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(
            b"POST /classify HTTP/1.1\r\nHost: 127.0.0.1\r\n"
            b"Content-Type: multipart/form-data; boundary=x\r\n"
            + f"Content-Length: {11 * 1024 * 1024}\r\n\r\n".encode()
            + b"--x\r\n"
        )
        head = sock.recv(65536).decode("latin-1")
    assert head.startswith("HTTP/1.1 413 "), head
    assert '"error":"file_too_large"' in head
