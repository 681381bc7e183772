"""`pizza-serve model|router`: every flag also read from an environment variable (CONTRACTS.md)."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Sequence
from typing import Any

from pizza_inference.backends import BACKENDS, DEFAULT_MODEL_NAMES
from pizza_inference.backends.base import PRECISIONS
from pizza_inference.config import ROUTER_MODES, ModelServerConfig, RouterConfig
from pizza_inference.memory import DEFAULT_MODEL_BUDGET_BYTES, DEFAULT_ROUTER_BUDGET_BYTES
from pizza_inference.router.clients import TrustedProxies
from pizza_inference.router.shares import ShareLimits


def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return default if value is None or value == "" else value


def _add(
    parser: argparse.ArgumentParser,
    flag: str,
    env: str,
    *,
    default: Any = None,
    required: bool = False,
    **kw: Any,
) -> None:
    value = _env(env, default)
    help_text = kw.pop("help", "")
    parser.add_argument(
        flag,
        default=value,
        required=required and value is None,
        help=f"{help_text} (env {env}; default {value})",
        **kw,
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="pizza-serve", description=__doc__)
    roles = parser.add_subparsers(dest="role", required=True)

    model = roles.add_parser("model", help="serve one model (primary or fallback)")
    _add(model, "--backend", "PIZZA_BACKEND", required=True, choices=BACKENDS, help="model backend")
    _add(
        model,
        "--source",
        "PIZZA_SOURCE",
        required=True,
        help="hf://ID[@REV], pvc://CLAIM/PATH, builtin://NAME, file:///PATH",
    )
    _add(
        model,
        "--precision",
        "PIZZA_PRECISION",
        default="float32",
        choices=PRECISIONS,
        help="weights precision",
    )
    _add(model, "--model-name", "PIZZA_MODEL_NAME", help="model_used name (default by backend)")
    _add(
        model,
        "--device",
        "PIZZA_DEVICE",
        default="auto",
        choices=("auto", "cpu", "cuda"),
        help="device",
    )
    _add(
        model,
        "--max-batch-size",
        "PIZZA_MAX_BATCH_SIZE",
        default=32,
        type=int,
        help="dynamic batch size",
    )
    _add(
        model,
        "--batch-timeout-ms",
        "PIZZA_BATCH_TIMEOUT_MS",
        default=2.0,
        type=float,
        help="batch wait",
    )
    _add(
        model,
        "--threads",
        "PIZZA_THREADS",
        type=int,
        help="ONNX Runtime intra-op threads, backend onnx (unset: 1)",
    )
    _add_memory_budget(model, DEFAULT_MODEL_BUDGET_BYTES)
    _add_listen(model)

    router = roles.add_parser("router", help="route to the primary, fall back per request")
    _add(router, "--primary", "PIZZA_PRIMARY_URL", required=True, help="primary model server URL")
    _add(
        router, "--fallback", "PIZZA_FALLBACK_URL", required=True, help="fallback model server URL"
    )
    _add(
        router,
        "--mode",
        "PIZZA_ROUTER_MODE",
        default="primary",
        choices=ROUTER_MODES,
        help="routing mode",
    )
    _add(
        router,
        "--primary-timeout-seconds",
        "PIZZA_PRIMARY_TIMEOUT_SECONDS",
        default=5.0,
        type=float,
        help="primary timeout",
    )
    _add(
        router,
        "--rate-limit-per-minute",
        "PIZZA_RATE_LIMIT_PER_MINUTE",
        default=100,
        type=int,
        help="per client; 0 disables",
    )
    _add(
        router,
        "--ab-primary-percent",
        "PIZZA_AB_PRIMARY_PERCENT",
        default=100.0,
        type=float,
        help="share sent to the primary",
    )
    _add_client_flags(router)
    _add_memory_budget(router, DEFAULT_ROUTER_BUDGET_BYTES)
    _add_listen(router)
    return parser


def _add_client_flags(router: argparse.ArgumentParser) -> None:
    """Each client's share of the primary and who the client is (`router.shares`, `.clients`)."""
    defaults = ShareLimits()
    _add(
        router,
        "--primary-max-in-flight",
        "PIZZA_PRIMARY_MAX_IN_FLIGHT",
        default=defaults.capacity,
        type=int,
        help="primary requests in flight shared out fairly among clients; 0: no fair share",
    )
    _add(
        router,
        "--primary-max-in-flight-per-client",
        "PIZZA_PRIMARY_MAX_IN_FLIGHT_PER_CLIENT",
        default=defaults.per_client,
        type=int,
        help="the most primary requests one client has in flight (more: the fallback); 0: none",
    )
    _add(
        router,
        "--trusted-proxies",
        "PIZZA_TRUSTED_PROXIES",
        default="",
        help="addresses or CIDRs whose X-Forwarded-For names the client; empty: trust none",
    )


def _add_memory_budget(parser: argparse.ArgumentParser, default: int) -> None:
    _add(
        parser,
        "--memory-budget-bytes",
        "PIZZA_MEMORY_BUDGET_BYTES",
        default=default,
        type=int,
        help="memory the requests in flight may hold, in bytes (the operator: from the pod's"
        " memory limit)",
    )


def _add_listen(parser: argparse.ArgumentParser) -> None:
    _add(parser, "--port", "PIZZA_PORT", default=8001, type=int, help="listen port")
    _add(parser, "--host", "PIZZA_HOST", default="0.0.0.0", help="listen address")
    parser.add_argument("--log-level", default=_env("PIZZA_LOG_LEVEL", "info"), help="log level")


def parse_config(argv: Sequence[str] | None = None) -> ModelServerConfig | RouterConfig:
    """Flags (env vars as defaults) -> config; argparse exits with a message on errors."""
    parser = build_parser()
    args = parser.parse_args(argv)
    # argparse does not apply `type`/`choices` to env defaults given as strings: check them here.
    try:
        if args.role == "model":
            if args.backend not in BACKENDS:
                parser.error(f"--backend/PIZZA_BACKEND must be one of {', '.join(BACKENDS)}")
            if args.precision not in PRECISIONS:
                parser.error(f"--precision/PIZZA_PRECISION must be one of {', '.join(PRECISIONS)}")
            return ModelServerConfig(
                backend=args.backend,
                source=args.source,
                precision=args.precision,
                model_name=args.model_name or DEFAULT_MODEL_NAMES[args.backend],
                device=args.device,
                host=args.host,
                port=int(args.port),
                max_batch_size=int(args.max_batch_size),
                batch_timeout_ms=float(args.batch_timeout_ms),
                threads=None if args.threads is None else int(args.threads),
                memory_budget_bytes=int(args.memory_budget_bytes),
            )
        return RouterConfig(
            primary_url=args.primary,
            fallback_url=args.fallback,
            mode=args.mode,
            primary_timeout_seconds=float(args.primary_timeout_seconds),
            rate_limit_per_minute=int(args.rate_limit_per_minute),
            ab_primary_percent=float(args.ab_primary_percent),
            host=args.host,
            port=int(args.port),
            memory_budget_bytes=int(args.memory_budget_bytes),
            primary_shares=ShareLimits(
                capacity=int(args.primary_max_in_flight),
                per_client=int(args.primary_max_in_flight_per_client),
            ),
            trusted_proxies=TrustedProxies.parse(args.trusted_proxies),
        )
    except ValueError as exc:
        parser.error(str(exc))
    raise AssertionError("unreachable")


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_config(argv)
    args_level = build_parser().parse_known_args(argv)[0].log_level
    logging.basicConfig(
        level=str(args_level).upper(),
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
        stream=sys.stderr,
    )
    os.environ.setdefault("HF_HOME", "/tmp/hf")
    import uvicorn  # noqa: PLC0415

    if isinstance(config, ModelServerConfig):
        from pizza_inference.model_server.app import create_model_app  # noqa: PLC0415

        app = create_model_app(config)
    else:
        from pizza_inference.router.app import create_router_app  # noqa: PLC0415

        app = create_router_app(config)
    from pizza_inference.api.protocol import BoundedProtocol  # noqa: PLC0415

    uvicorn.run(
        app,
        host=config.host,
        port=config.port,
        log_level=str(args_level).lower(),
        access_log=False,
        http=BoundedProtocol,  # bounds on request heads and connections, which uvicorn lacks
        # the client is the peer: X-Forwarded-For only from --trusted-proxies (router.clients),
        # not uvicorn's default trust of 127.0.0.1
        proxy_headers=False,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
