"""`compete`: the command line over the application layer.

Output shapes of these subcommands are a contract (see README): scripts and
outside checks parse them.  Errors are one line per problem on stderr (bundle
problems as `file: key: message`), never a traceback; `--debug` shows one.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Any, Optional, Sequence

from .app import LOCAL_ADMIN, Actor, Platform, PlatformError
from .bundles.model import BundleError
from .config import Compete


def _platform(args: argparse.Namespace) -> Platform:
    config = Compete()
    if args.home:
        config.home = args.home
    if args.db:
        config.db_url = args.db
    if getattr(args, "executor", None):
        config.executor = args.executor
    return Platform(config)


def _print_json(data: Any) -> None:
    print(json.dumps(data, sort_keys=False, default=str))


def _fmt(value: Optional[float], precision: int = 4) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{precision}f}"


# -- bundle ---------------------------------------------------------------------------
def cmd_bundle_validate(args: argparse.Namespace) -> int:
    from .bundles import summarize

    platform = _platform(args)
    try:
        spec, warnings = platform.validate_bundle(args.path)
    except BundleError as exc:
        for problem in exc.problems:
            print(problem)
        return 1
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(summarize(spec))
    return 0


def cmd_bundle_export(args: argparse.Namespace) -> int:
    platform = _platform(args)
    out = platform.export_competition(args.slug, args.output, light=args.light)
    print(out)
    return 0


# -- competition ------------------------------------------------------------------------
def cmd_competition_create(args: argparse.Namespace) -> int:
    platform = _platform(args)
    slug, warnings = platform.create_competition(args.path)
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    print(slug)
    return 0


def cmd_competition_list(args: argparse.Namespace) -> int:
    platform = _platform(args)
    comps = platform.list_competitions()
    if args.json:
        _print_json(comps)
        return 0
    if not comps:
        print("no competitions yet: `compete competition create BUNDLE` creates one")
        return 0
    width = max(len(c["slug"]) for c in comps)
    for c in comps:
        print(f"{c['slug']:<{width}}  {c['status']:<9} {c['dialect']:<9} {c['title']}")
    return 0


# -- participants ----------------------------------------------------------------------
def cmd_register(args: argparse.Namespace) -> int:
    platform = _platform(args)
    status = platform.register(args.slug, args.user, LOCAL_ADMIN)
    print(f"{args.user}: {status}")
    return 0


# -- leaderboard ----------------------------------------------------------------------
def cmd_leaderboard(args: argparse.Namespace) -> int:
    platform = _platform(args)
    actor = Actor(args.as_user) if args.as_user else LOCAL_ADMIN
    board = platform.leaderboard(args.slug, args.phase, actor=actor, board=args.board)
    if args.json:
        _print_json(board)
        return 0
    print_leaderboard(board)
    return 0


def print_leaderboard(board: dict[str, Any]) -> None:
    cols = board["columns"]
    header = ["#", "participant", "submission"] + [c["title"] for c in cols]
    lines = [header]
    for row in board["rows"]:
        lines.append(
            [str(row["rank"]), row["participant"], str(row["submission"])]
            + [_fmt(row["scores"].get(c["key"])) for c in cols]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"{board['competition']} — phase {board['phase']}")
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not board["rows"]:
        print("(no submissions on the leaderboard yet)")


# -- init -------------------------------------------------------------------------------
def cmd_init(args: argparse.Namespace) -> int:
    from .bundles import init_bundle

    init_bundle(Path(args.dir), args.template)
    print(f"wrote a {args.template} bundle in {args.dir}; check it with `compete bundle validate {args.dir}`")
    return 0


# -- parser -------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compete",
        description="Jupyter Compete: run CodaLab and Codabench competitions on JupyterHub.",
    )
    parser.add_argument("--home", default=os.environ.get("COMPETE_HOME"),
                        help="directory holding the SQLite file and the artifacts (default: $COMPETE_HOME)")
    parser.add_argument("--db", default=os.environ.get("COMPETE_DB_URL"),
                        help="database URL, overrides the SQLite file in --home")
    parser.add_argument("--executor", choices=["docker", "process", "auto"], default=None,
                        help="how submissions run (default: docker when an engine answers, else process)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    bundle = sub.add_parser("bundle", help="check and export competition bundles").add_subparsers(
        dest="bundle_command", metavar="ACTION")
    bundle.required = True
    p = bundle.add_parser("validate", help="check a bundle (zip or folder) and summarize it")
    p.add_argument("path")
    p.set_defaults(func=cmd_bundle_validate)
    p = bundle.add_parser("export", help="write a competition back to a bundle zip")
    p.add_argument("slug")
    p.add_argument("-o", "--output", required=True, help="the zip file to write")
    p.add_argument("--light", action="store_true", help="refer to stored datasets by key instead of including them")
    p.set_defaults(func=cmd_bundle_export)

    comp = sub.add_parser("competition", help="create and list competitions").add_subparsers(
        dest="competition_command", metavar="ACTION")
    comp.required = True
    p = comp.add_parser("create", help="create a competition from a bundle; prints its slug last")
    p.add_argument("path")
    p.set_defaults(func=cmd_competition_create)
    p = comp.add_parser("list", help="list competitions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_competition_list)

    p = sub.add_parser("register", help="register a user in a competition (approved at once)")
    p.add_argument("slug")
    p.add_argument("user")
    p.set_defaults(func=cmd_register)

    p = sub.add_parser("leaderboard", help="show a phase's leaderboard")
    p.add_argument("slug")
    p.add_argument("--phase", type=int, default=None, help="phase number, 1 for the first (default: the current phase)")
    p.add_argument("--board", default=None, help="leaderboard key (default: the first)")
    p.add_argument("--as-user", default=None, help="show what this participant sees")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_leaderboard)

    p = sub.add_parser("init", help="write a bundle skeleton to start a competition from")
    p.add_argument("dir")
    p.add_argument("--template", choices=["results", "code", "notebook"], default="results")
    p.set_defaults(func=cmd_init)

    _add_more_commands(sub)
    return parser


def _add_more_commands(sub: argparse._SubParsersAction) -> None:
    """Subcommands of the execution engine, the queues and the demo."""
    from . import cli_kernel, cli_queue, cli_run

    cli_run.add_commands(sub)
    cli_queue.add_commands(sub)
    cli_kernel.add_commands(sub)


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except BundleError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 1
    except PlatformError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a CLI
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
