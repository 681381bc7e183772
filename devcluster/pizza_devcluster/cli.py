"""`pizza-devcluster up|down|status`: the local control plane from the command line."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from pathlib import Path

from .binaries import BinariesMissingError
from .cluster import ClusterStartError
from .supervisor import SupervisorError, describe, run_foreground, start_background, stop


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pizza-devcluster",
        description="A real local Kubernetes control plane (etcd, kube-apiserver, "
        "controller-manager, scheduler) with fake kwok nodes.",
    )
    sub = parser.add_subparsers(dest="command", required=True)
    up = sub.add_parser("up", help="start the cluster (foreground until Ctrl-C, or --background)")
    up.add_argument("--background", action="store_true", help="detach; return once nodes are Ready")
    up.add_argument("--timeout", type=float, default=90.0, help="start-up limit in seconds")
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
    try:
        if args.command == "up" and args.background:
            seconds = start_background(args.dir, args.timeout)
            kubeconfig = args.dir.resolve() / "kubeconfig"
            print(f"cluster ready in {seconds:.1f} s: export KUBECONFIG={kubeconfig}")
            return 0
        if args.command == "up":
            return run_foreground(args.dir, args.timeout)
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


if __name__ == "__main__":
    sys.exit(main())
