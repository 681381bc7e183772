"""Settings of the two server roles (filled by the CLI from flags and environment variables)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from pizza_inference.memory import (
    DEFAULT_MODEL_BUDGET_BYTES,
    DEFAULT_ROUTER_BUDGET_BYTES,
    check_budget,
)
from pizza_inference.router.clients import TrustedProxies
from pizza_inference.router.shares import ShareLimits

ROUTER_MODES = ("primary", "stable", "emergency")

SERVICE_ACCOUNT_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")


@dataclass(frozen=True)
class ModelServerConfig:
    backend: str
    source: str
    precision: str
    model_name: str
    device: str = "auto"
    host: str = "0.0.0.0"
    port: int = 8001
    max_batch_size: int = 32
    batch_timeout_ms: float = 2.0
    threads: int | None = None
    """ONNX Runtime intra-op threads (backend onnx); None: the backend's default."""
    memory_budget_bytes: int = DEFAULT_MODEL_BUDGET_BYTES
    """Memory the requests in flight may hold (`pizza_inference.memory`)."""

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")
        if self.max_batch_size < 1:
            raise ValueError(f"max_batch_size must be at least 1, got {self.max_batch_size}")
        check_budget(self.memory_budget_bytes)


@dataclass(frozen=True)
class RouterConfig:
    primary_url: str
    fallback_url: str
    mode: str = "primary"
    primary_timeout_seconds: float = 5.0
    fallback_timeout_seconds: float = 10.0
    rate_limit_per_minute: int = 100
    ab_primary_percent: float = 100.0
    host: str = "0.0.0.0"
    port: int = 8001
    circuit_failure_threshold: int = 5
    circuit_reset_seconds: float = 30.0
    readiness_cache_seconds: float = 1.0
    memory_budget_bytes: int = DEFAULT_ROUTER_BUDGET_BYTES
    """Memory the requests in flight may hold (`pizza_inference.memory`)."""
    primary_shares: ShareLimits = field(default_factory=ShareLimits)
    """Each client's share of the primary's requests in flight (`router.shares`)."""
    trusted_proxies: TrustedProxies = field(default_factory=TrustedProxies)
    """Peers whose `X-Forwarded-For` names the client (`router.clients`); none by default."""

    def __post_init__(self) -> None:
        if self.mode not in ROUTER_MODES:
            raise ValueError(f"mode must be one of {', '.join(ROUTER_MODES)}, got {self.mode!r}")
        if not 0 <= self.ab_primary_percent <= 100:
            raise ValueError("ab_primary_percent must be between 0 and 100")
        if self.rate_limit_per_minute < 0:
            raise ValueError("rate_limit_per_minute must not be negative (0 disables it)")
        if self.primary_timeout_seconds <= 0:
            raise ValueError("primary_timeout_seconds must be positive")
        check_budget(self.memory_budget_bytes)


@dataclass(frozen=True)
class ModeWatchConfig:
    """Where the router reads its mode live: one ConfigMap (key `mode`) through the Kubernetes API.

    On only when `PIZZA_ROUTER_MODE_CONFIGMAP` is set (`from_env`); `PIZZA_ROUTER_MODE` is then the
    mode until the ConfigMap is first read. The token file is re-read on every (re)connect
    (projected ServiceAccount tokens rotate).
    """

    configmap: str
    namespace: str
    api_url: str
    token_file: Path = SERVICE_ACCOUNT_DIR / "token"
    ca_file: Path = SERVICE_ACCOUNT_DIR / "ca.crt"
    min_backoff_seconds: float = 0.5
    max_backoff_seconds: float = 5.0
    watch_timeout_seconds: int = 300
    """Asked of the apiserver per watch (it then ends the watch cleanly and the router re-watches);
    the client gives up on a silent connection a little after it."""

    def __post_init__(self) -> None:
        if not self.configmap:
            raise ValueError("the mode ConfigMap name must not be empty")
        if not self.namespace:
            raise ValueError("the mode ConfigMap namespace must not be empty")
        if not self.api_url.startswith(("https://", "http://")):
            raise ValueError(f"the Kubernetes API URL must be http(s)://..., got {self.api_url!r}")
        if not 0 < self.min_backoff_seconds <= self.max_backoff_seconds:
            raise ValueError("backoff must satisfy 0 < min <= max")
        if self.watch_timeout_seconds < 1:
            raise ValueError("watch_timeout_seconds must be at least 1")

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        service_account_dir: Path = SERVICE_ACCOUNT_DIR,
    ) -> ModeWatchConfig | None:
        """The watch settings from the environment; None without `PIZZA_ROUTER_MODE_CONFIGMAP`.

        Raises ValueError when the watch is on but the namespace or the API server is unknown
        (neither the variables nor the in-cluster defaults are there).
        """
        env = os.environ if environ is None else environ

        def get(name: str) -> str:
            return env.get(name, "").strip()

        configmap = get("PIZZA_ROUTER_MODE_CONFIGMAP")
        if not configmap:
            return None
        namespace = get("PIZZA_NAMESPACE")
        if not namespace:
            namespace_file = service_account_dir / "namespace"
            try:
                namespace = namespace_file.read_text(encoding="utf-8").strip()
            except OSError as exc:
                raise ValueError(
                    "PIZZA_ROUTER_MODE_CONFIGMAP is set but the namespace is unknown: set "
                    f"PIZZA_NAMESPACE or mount {namespace_file} ({exc})"
                ) from exc
        api_url = get("PIZZA_KUBE_API_URL")
        if not api_url:
            host, port = get("KUBERNETES_SERVICE_HOST"), get("KUBERNETES_SERVICE_PORT")
            if not host or not port:
                raise ValueError(
                    "PIZZA_ROUTER_MODE_CONFIGMAP is set but the API server is unknown: set "
                    "PIZZA_KUBE_API_URL or KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT"
                )
            if ":" in host:  # an IPv6 address
                host = f"[{host}]"
            api_url = f"https://{host}:{port}"
        return cls(
            configmap=configmap,
            namespace=namespace,
            api_url=api_url.rstrip("/"),
            token_file=Path(get("PIZZA_KUBE_TOKEN_FILE") or service_account_dir / "token"),
            ca_file=Path(get("PIZZA_KUBE_CA_FILE") or service_account_dir / "ca.crt"),
        )
