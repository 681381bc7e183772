"""`pizza-devcluster up|down|status`: the local control plane from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .binaries import BinariesMissingError
from .cluster import ClusterStartError
from .realnode.images import import_images, list_images
from .realnode.layout import REAL_NODES
from .supervisor import SupervisorError, describe, run_foreground, start_background, stop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pizza-devcluster",
        description="A real local Kubernetes control plane (etcd, kube-apiserver, "
        "controller-manager, scheduler) with fake kwok nodes, and with --real-nodes two real "
        "nodes (containerd, kubelet) on this machine.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster (foreground until Ctrl-C, or --background)")
    up.add_argument("--background", action="store_true", help="detach; return once nodes are Ready")
    up.add_argument(
        "--timeout",
        type=float,
        default=None,
        help="start-up limit in seconds (default 90, 600 with --real-nodes)",
    )
    up.add_argument(
        "--real-nodes",
        action="store_true",
        help="also start the real nodes pizza-real-gpu-0 and pizza-real-cpu-0 (root only); "
        "the kwok nodes get the taint pizza.ai/simulated=true:NoSchedule",
    )
    images_help = "directory of docker-archive image tars (images.txt lists them); default .images"
    up.add_argument("--images", type=Path, default=Path(".images"), help=images_help)
    imp = sub.add_parser("import-images", help="import image tars into the running real nodes")
    imp.add_argument("--images", type=Path, default=Path(".images"), help=images_help)
    for name, text in (
        ("down", "stop the cluster and every process it started"),
        ("status", "show the cluster's processes and memory"),
    ):
        sub.add_parser(name, help=text)
    for command in sub.choices.values():
        command.add_argument(
            "--dir",
            type=Path,
            default=Path(".cluster"),
            help="data directory (certs, etcd, logs, kubeconfig); default .cluster",
        )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    if args.command == "up" and args.timeout is None:
        args.timeout = 600.0 if args.real_nodes else 90.0
    try:
        if args.command == "import-images":
            return _import_images(args.images)
        if args.command == "up" and args.background:
            seconds = start_background(args.dir, args.timeout, args.real_nodes, args.images)
            kubeconfig = args.dir.resolve() / "kubeconfig"
            print(f"cluster ready in {seconds:.1f} s: export KUBECONFIG={kubeconfig}")
            return 0
        if args.command == "up":
            return run_foreground(args.dir, args.timeout, args.real_nodes, args.images)
        if args.command == "down":
            pids = stop(args.dir)
            print(f"stopped {len(pids)} process(es)" if pids else "no cluster was running")
            return 0
        running, text = describe(args.dir)
        print(text)
        return 0 if running else 3
    except (BinariesMissingError, ClusterStartError, SupervisorError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 1


def _import_images(directory: Path) -> int:
    nodes = [node for node in REAL_NODES if node.socket.exists()]
    if not nodes:
        print("no real node is running: nothing to import into")
        return 0
    tars = list_images(directory)
    for node in nodes:
        names = import_images(node, tars)
        print(
            f"{node.name}: imported {len(names)} image(s) {names}, {len(tars) - len(names)} present"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
