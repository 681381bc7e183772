"""`kubectl pizza` (the console script `kubectl-pizza`, which kubectl finds as a plugin)."""

from __future__ import annotations

import argparse
import datetime
import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any, TextIO

import urllib3

from pizza_operator.contract import TARGETS
from pizza_operator.kubectl_pizza import actions, render, view
from pizza_operator.kubectl_pizza.api import CliError, PizzaApi, load

CLEAR = "\x1b[H\x1b[2J"
SEPARATOR = "-" * 79


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--kubeconfig", help="path to the kubeconfig (default $KUBECONFIG)")
    common.add_argument("--context", help="the kubeconfig context (default: the current one)")
    common.add_argument(
        "-n", "--namespace", help="the namespace (default: the context's namespace)"
    )
    changing = argparse.ArgumentParser(add_help=False, parents=[common])
    changing.add_argument(
        "--dry-run",
        action="store_true",
        help="print the equivalent kubectl command and change nothing",
    )

    parser = argparse.ArgumentParser(
        prog="kubectl pizza", description="Look at and steer PizzaModelDeployments (pmd)."
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    status = sub.add_parser("status", parents=[common], help="one screen about a resource")
    status.add_argument("name")
    status.add_argument("-w", "--watch", action="store_true", help="redraw on every change")
    status.add_argument("-o", "--output", choices=["text", "json"], default="text")

    listing = sub.add_parser("list", parents=[common], help="one line per resource")
    listing.add_argument(
        "-A", "--all-namespaces", action="store_true", help="list in all namespaces"
    )
    listing.add_argument("-o", "--output", choices=["text", "json"], default="text")

    history = sub.add_parser("history", parents=[common], help="the revision history")
    history.add_argument("name")
    history.add_argument("-o", "--output", choices=["text", "json"], default="text")

    rollback = sub.add_parser("rollback", parents=[changing], help="ask for a rollback step")
    rollback.add_argument("name")
    rollback.add_argument("--to", required=True, choices=TARGETS)
    rollback.add_argument(
        "--revision", type=int, help="with --to previous: the revision number to go back to"
    )

    for command, text in (
        ("retry", "go back to the primary"),
        ("promote", "promote the running canary now (skip its remaining steps)"),
        ("abort", "abort the running canary (the stable primary takes all its traffic)"),
        ("pause", "set spec.paused: freeze the operator's work on the resource"),
        ("resume", "clear spec.paused"),
    ):
        sub.add_parser(command, parents=[changing], help=text).add_argument("name")
    return parser


def _status_view(api: PizzaApi, namespace: str, name: str) -> dict[str, Any]:
    pmd = api.get_pmd(namespace, name)
    pods = api.pods(namespace, name)
    nodes = {}
    for pod in pods:
        node = (pod.get("spec") or {}).get("nodeName")
        if node and node not in nodes:
            nodes[node] = api.node(node)
    return view.status_view(pmd, pods, nodes, api.events(namespace, name, pmd.metadata.uid))


def _status(api: PizzaApi, args: argparse.Namespace, out: TextIO) -> int:
    tty = out.isatty()
    style = render.Style(tty)

    def frame(data: dict[str, Any], compact: bool) -> str:
        if args.output == "json":
            if compact:
                return json.dumps(data, sort_keys=True) + "\n"
            return json.dumps(data, indent=2, sort_keys=True) + "\n"
        return render.render_status(data, _now(), style)

    data = _status_view(api, args.namespace, args.name)
    if not args.watch:
        out.write(frame(data, compact=False))
        return 0
    shown: dict[str, Any] | None = None
    try:
        while True:
            if data != shown:
                text = frame(data, compact=True)
                if shown is not None and args.output != "json":
                    out.write(CLEAR if tty else SEPARATOR + "\n")
                elif shown is None and tty and args.output != "json":
                    out.write(CLEAR)
                out.write(text)
                out.flush()
                shown = data
            time.sleep(1.0)
            data = _status_view(api, args.namespace, args.name)
    except KeyboardInterrupt:
        return 0


def _list(api: PizzaApi, args: argparse.Namespace, out: TextIO) -> int:
    items = api.list_pmds(None if args.all_namespaces else args.namespace)
    rows = [view.list_row(p) for p in items]
    rows.sort(key=lambda r: (r["namespace"], r["name"]))
    if args.output == "json":
        out.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    else:
        out.write(render.render_list(rows, _now(), render.Style(out.isatty())))
    return 0


def _history(api: PizzaApi, args: argparse.Namespace, out: TextIO) -> int:
    pmd = api.get_pmd(args.namespace, args.name)
    rows = view.history_view(pmd, api.revisions(args.namespace, args.name))
    if args.output == "json":
        out.write(json.dumps(rows, indent=2, sort_keys=True) + "\n")
    else:
        out.write(render.render_history(rows, render.Style(out.isatty())))
    return 0


def _change(api: PizzaApi, args: argparse.Namespace) -> actions.Change:
    ns, name = args.namespace, args.name
    stamp = actions.token()
    if args.command == "retry":
        api.get_pmd(ns, name)
        return actions.retry(ns, name, stamp)
    if args.command in ("promote", "abort"):
        return actions.steer_canary(api.get_pmd(ns, name), args.command, stamp)
    if args.command in ("pause", "resume"):
        api.get_pmd(ns, name)
        return actions.set_paused(ns, name, args.command == "pause")
    pmd = api.get_pmd(ns, name)
    revisions = [] if args.to != "previous" else api.revisions(ns, name)
    request = actions.rollback_request(pmd, revisions, args.to, args.revision, stamp)
    return actions.rollback(ns, name, request)


def _changing(api: PizzaApi, args: argparse.Namespace, out: TextIO) -> int:
    change = _change(api, args)
    if args.dry_run:
        prefix: list[str] = []
        if args.kubeconfig:
            prefix += ["--kubeconfig", args.kubeconfig]
        if args.context:
            prefix += ["--context", args.context]
        out.write(change.command(tuple(prefix)) + "\n")
        return 0
    api.patch_pmd(change.namespace, change.name, change.patch)
    out.write(change.summary + "\n")
    return 0


COMMANDS: dict[str, Callable[[PizzaApi, argparse.Namespace, TextIO], int]] = {
    "status": _status,
    "list": _list,
    "history": _history,
    "rollback": _changing,
    "retry": _changing,
    "promote": _changing,
    "abort": _changing,
    "pause": _changing,
    "resume": _changing,
}


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        api, default_namespace = load(args.kubeconfig, args.context)
        if not args.namespace:
            args.namespace = default_namespace
        return COMMANDS[args.command](api, args, sys.stdout)
    except CliError as exc:
        print(f"error: {exc.message}", file=sys.stderr)
        return exc.code
    except urllib3.exceptions.HTTPError as exc:
        print(f"error: cannot reach the API server: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
