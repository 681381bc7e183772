"""Settings of the two server roles (filled by the CLI from flags and environment variables)."""

from __future__ import annotations

from dataclasses import dataclass

ROUTER_MODES = ("primary", "stable", "emergency")


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

    def __post_init__(self) -> None:
        if self.threads is not None and self.threads < 1:
            raise ValueError(f"threads must be at least 1, got {self.threads}")


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

    def __post_init__(self) -> None:
        if self.mode not in ROUTER_MODES:
            raise ValueError(f"mode must be one of {', '.join(ROUTER_MODES)}, got {self.mode!r}")
        if not 0 <= self.ab_primary_percent <= 100:
            raise ValueError("ab_primary_percent must be between 0 and 100")
        if self.rate_limit_per_minute < 0:
            raise ValueError("rate_limit_per_minute must not be negative (0 disables it)")
        if self.primary_timeout_seconds <= 0:
            raise ValueError("primary_timeout_seconds must be positive")
