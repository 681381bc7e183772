"""`pizza-operator`: the kopf operator process.

With no arguments it watches every namespace through the current kubeconfig (or the in-cluster
service account); `--namespace` narrows it. Leader election is a coordination.k8s.io Lease
(`leadership`): a replica runs kopf only while it holds the Lease, stands by otherwise, and hands
the Lease back when it stops; every write of the API door is fenced to the term it holds.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import threading
import uuid
from collections.abc import Callable

import kopf
from prometheus_client import start_http_server

from pizza_operator import metrics
from pizza_operator.config import CPU_IMAGE, DEFAULT_RESYNC_SECONDS, GPU_IMAGE, OperatorConfig
from pizza_operator.health import Health
from pizza_operator.health_server import serve
from pizza_operator.kube import Kube, load_config
from pizza_operator.leadership import Elector, Timing

logger = logging.getLogger(__name__)
ROUNDS_BEAT = "rounds"  # pizza_operator.rounds.BEAT, without importing kopf's handlers early
LEASE_BEAT = "lease"


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
        "--lease",
        default="pizza-operator",
        help="the coordination.k8s.io Lease the replicas elect a leader with",
    )
    parser.add_argument(
        "--lease-namespace",
        default=os.environ.get("POD_NAMESPACE", "default"),
        help="namespace of the Lease (default: $POD_NAMESPACE, else default)",
    )
    parser.add_argument(
        "--lease-seconds",
        type=float,
        default=10.0,
        help="lease duration: a frozen or cut-off leader is replaced after about this long",
    )
    parser.add_argument(
        "--standalone", action="store_true", help="no Lease: only for a single replica"
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
    from pizza_operator import handlers  # noqa: F401, PLC0415  (registers the handlers)

    load_config()
    kube = Kube()
    health = Health()
    if args.liveness_port:
        serve(health, args.liveness_port)
    if args.metrics_port:
        start_http_server(args.metrics_port)
    config = OperatorConfig(
        cpu_image=args.cpu_image,
        gpu_image=args.gpu_image,
        default_image=args.default_image,
        resync_seconds=args.resync_seconds,
    )
    if args.standalone:
        health.expect("standalone", ROUNDS_BEAT)
        metrics.LEADING.set(1)
        _run_kopf(args, kube, config, health, stop_flag=None)
        return
    _lead_or_stand_by(args, kube, config, health)


def _lead_or_stand_by(
    args: argparse.Namespace, kube: Kube, config: OperatorConfig, health: Health
) -> None:
    """Stand by until the Lease is ours, run kopf while it stays ours, stand by again if it is
    lost (a freeze or a partition outlived the term); hand it back on SIGTERM."""
    timing = Timing(
        duration=args.lease_seconds,
        renew_every=args.lease_seconds / 5,
        renew_deadline=args.lease_seconds * 0.7,
        retry_every=min(1.0, args.lease_seconds / 10),
    )
    identity = f"{os.environ.get('POD_NAME') or socket.gethostname()}-{uuid.uuid4().hex[:6]}"
    elector = Elector(
        kube,
        args.lease_namespace,
        args.lease,
        identity=identity,
        timing=timing,
        beat=lambda: health.beat(LEASE_BEAT),
    )
    kube.fence = elector.fence
    stop = threading.Event()
    while not stop.is_set():
        for signum in (signal.SIGTERM, signal.SIGINT):  # kopf puts its own while it runs
            signal.signal(signum, lambda *_: stop.set())
        health.expect("standby", LEASE_BEAT)
        metrics.LEADING.set(0)
        if not elector.acquire(stop):
            break
        lost, stop_kopf = threading.Event(), threading.Event()
        elector.keep(on_lost=_raise_both(lost, stop_kopf))
        health.expect("leader", LEASE_BEAT, ROUNDS_BEAT)
        metrics.LEADING.set(1)
        _run_kopf(args, kube, config, health, stop_flag=stop_kopf)
        if not lost.is_set():  # kopf stopped on a signal: this replica goes
            elector.release()
            break
        logger.warning("no longer leading: standing by")
    metrics.LEADING.set(0)


def _raise_both(lost: threading.Event, stop_kopf: threading.Event) -> Callable[[], None]:
    def raise_both() -> None:
        lost.set()
        stop_kopf.set()

    return raise_both


def _run_kopf(
    args: argparse.Namespace,
    kube: Kube,
    config: OperatorConfig,
    health: Health,
    stop_flag: threading.Event | None,
) -> None:
    kopf.run(
        clusterwide=not args.namespace,
        namespaces=args.namespace,
        standalone=True,  # kopf's peering is not used: the Lease decides who runs kopf at all
        stop_flag=stop_flag,
        memo=_memo(kube, config, health, stop_flag),
    )


def _memo(
    kube: Kube, config: OperatorConfig, health: Health, stop_flag: threading.Event | None
) -> kopf.Memo:
    """What the handlers share; `stop_flag` is set by the cleanup handler too (kopf waits for it
    in a thread, which must end before kopf's loop can close after a signal)."""
    from pizza_operator.analysis import Door, ScrapeMemory  # noqa: PLC0415
    from pizza_operator.reconcile import Reconciler  # noqa: PLC0415

    reconciler = Reconciler(kube, config)
    door = Door(kube, reconciler.writer, reconciler.history)
    return kopf.Memo(
        reconciler=reconciler,
        door=door,
        scrapes=ScrapeMemory(),
        config=config,
        health=health,
        stop_flag=stop_flag,
    )


if __name__ == "__main__":
    main()
