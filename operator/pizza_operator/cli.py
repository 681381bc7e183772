"""`pizza-operator`: the kopf operator process.

With no arguments it watches every namespace through the current kubeconfig (or the in-cluster
service account); `--namespace` narrows it. Leader election is kopf peering: the operator that
started first has the highest priority and acts, the others stand by until it goes away.
"""

from __future__ import annotations

import argparse
import logging
import os
import random
import time

import kopf
from prometheus_client import start_http_server

from pizza_operator.config import CPU_IMAGE, DEFAULT_RESYNC_SECONDS, GPU_IMAGE, OperatorConfig
from pizza_operator.kube import Kube, load_config

PRIORITY_EPOCH = 10**13  # milliseconds; older operators get higher priorities


def default_priority() -> int:
    """Older processes win: priority falls with start time; random low digits break ties."""
    return (PRIORITY_EPOCH - int(time.time() * 1000)) * 1000 + random.randint(0, 999)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="pizza-operator", description="Reconciles PizzaModelDeployments (pizza.ai/v1alpha1)."
    )
    parser.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable; default: all namespaces)",
    )
    parser.add_argument(
        "--peering",
        default="pizza-operator",
        help="kopf peering object shared by the replicas (leader election)",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="no peering: only for a single replica"
    )
    parser.add_argument(
        "--priority",
        type=int,
        default=None,
        help="peering priority (default: older processes win)",
    )
    parser.add_argument("--liveness-port", type=int, default=8080, help="0 disables /healthz")
    parser.add_argument("--metrics-port", type=int, default=9090, help="0 disables /metrics")
    parser.add_argument("--log-format", choices=["text", "json"], default="text")
    parser.add_argument(
        "--cpu-image",
        default=os.environ.get("PIZZA_CPU_IMAGE", CPU_IMAGE),
        help="light server image (ONNX Runtime, no torch): the router and onnx models",
    )
    parser.add_argument(
        "--gpu-image",
        default=os.environ.get("PIZZA_GPU_IMAGE", GPU_IMAGE),
        help="torch server image: models with backends cnn, vlm and image-classifier",
    )
    parser.add_argument(
        "--default-image",
        default=os.environ.get("PIZZA_DEFAULT_IMAGE", ""),
        help="one image for every component (overrides --cpu-image and --gpu-image); "
        "a resource's spec.image overrides all three",
    )
    parser.add_argument(
        "--resync-seconds",
        type=float,
        default=DEFAULT_RESYNC_SECONDS,
        help="how often every resource is reconciled even without events",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    kopf.configure(
        verbose=args.verbose,
        log_format=kopf.LogFormat.JSON if args.log_format == "json" else kopf.LogFormat.FULL,
    )
    logging.getLogger("pizza_operator").setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if not args.verbose:  # kopf logs every handler call; our reconcile lines say what matters
        logging.getLogger("kopf.objects").setLevel(logging.WARNING)
    # The timer interval is read when the handlers module registers its handlers.
    os.environ["PIZZA_OPERATOR_RESYNC_SECONDS"] = str(args.resync_seconds)
    from pizza_operator import handlers  # noqa: F401, PLC0415  (registers the handlers)

    load_config()
    kube = Kube()
    if not args.standalone:
        kube.ensure_peering(args.peering, args.namespace)
    if args.metrics_port:
        start_http_server(args.metrics_port)
    config = OperatorConfig(
        cpu_image=args.cpu_image,
        gpu_image=args.gpu_image,
        default_image=args.default_image,
        resync_seconds=args.resync_seconds,
    )
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=args.standalone,
        peering_name=None if args.standalone else args.peering,
        priority=args.priority if args.priority is not None else default_priority(),
        liveness_endpoint=(
            f"http://0.0.0.0:{args.liveness_port}/healthz" if args.liveness_port else None
        ),
        memo=_memo(kube, config),
    )


def _memo(kube: Kube, config: OperatorConfig) -> kopf.Memo:
    from pizza_operator.analysis import Door, ScrapeMemory  # noqa: PLC0415
    from pizza_operator.reconcile import Reconciler  # noqa: PLC0415

    reconciler = Reconciler(kube, config)
    door = Door(kube, reconciler.writer, reconciler.history)
    return kopf.Memo(reconciler=reconciler, door=door, scrapes=ScrapeMemory())


if __name__ == "__main__":
    main()
