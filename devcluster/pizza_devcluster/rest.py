"""A minimal HTTPS client for the apiserver, used while the cluster starts (stdlib only, fast)."""

from __future__ import annotations

import http.client
import json
import ssl
from pathlib import Path
from typing import Any


class ApiError(RuntimeError):
    def __init__(self, status: int, body: str) -> None:
        super().__init__(f"apiserver answered {status}: {body[:500]}")
        self.status = status
        self.body = body


class AdminClient:
    """Talks to one apiserver with a client certificate; one connection per request."""

    def __init__(
        self, host: str, port: int, ca_cert: Path, client_cert: Path, client_key: Path
    ) -> None:
        self.host = host
        self.port = port
        self._ssl = ssl.create_default_context(cafile=str(ca_cert))
        self._ssl.load_cert_chain(str(client_cert), str(client_key))

    def request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | list[Any] | None = None,
        timeout: float = 5.0,
        content_type: str = "application/json",
    ) -> tuple[int, str]:
        conn = http.client.HTTPSConnection(self.host, self.port, context=self._ssl, timeout=timeout)
        try:
            payload = json.dumps(body).encode() if body is not None else None
            headers = {"Accept": "application/json"}
            if payload is not None:
                headers["Content-Type"] = content_type
            conn.request(method, path, body=payload, headers=headers)
            response = conn.getresponse()
            return response.status, response.read().decode(errors="replace")
        finally:
            conn.close()

    def get_json(self, path: str) -> dict[str, Any]:
        status, text = self.request("GET", path)
        if status != 200:
            raise ApiError(status, text)
        data: dict[str, Any] = json.loads(text)
        return data

    def create(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        status, text = self.request("POST", path, body)
        if status not in (200, 201):
            raise ApiError(status, text)
        data: dict[str, Any] = json.loads(text)
        return data

    def create_or_keep(self, path: str, body: dict[str, Any]) -> None:
        """Create the object; one that already exists (409) is left as it is."""
        status, text = self.request("POST", path, body)
        if status not in (200, 201, 409):
            raise ApiError(status, text)

    def json_patch(self, path: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        status, text = self.request("PATCH", path, ops, content_type="application/json-patch+json")
        if status != 200:
            raise ApiError(status, text)
        data: dict[str, Any] = json.loads(text)
        return data

    def healthy(self, path: str = "/readyz") -> bool:
        try:
            status, _ = self.request("GET", path, timeout=2.0)
        except OSError:
            return False
        return status == 200
