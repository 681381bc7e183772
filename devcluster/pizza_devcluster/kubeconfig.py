"""Kubeconfig files for the local cluster (certificates embedded, so one file is enough)."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

CONTEXT = "pizza-local"


def _b64(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode("ascii")


def build_kubeconfig(
    server: str, ca_cert: Path, client_cert: Path, client_key: Path, name: str = CONTEXT
) -> dict[str, Any]:
    """A kubeconfig whose cluster, user and context are all called `name`."""
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": name,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_cert)},
            }
        ],
        "users": [
            {
                "name": name,
                "user": {
                    "client-certificate-data": _b64(client_cert),
                    "client-key-data": _b64(client_key),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": name, "user": name}}],
        "current-context": name,
        "preferences": {},
    }


def write_kubeconfig(path: Path, config: dict[str, Any]) -> Path:
    """Write atomically with mode 0600 (it holds a private key)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


def current_context(path: Path) -> str:
    """The current-context of a kubeconfig file ("" when unset)."""
    data = yaml.safe_load(path.read_text()) or {}
    return str(data.get("current-context") or "")


def is_local_test_context(context: str) -> bool:
    """Contexts the test suite may modify: our own cluster and kind clusters."""
    return context == CONTEXT or context.startswith("kind-")
