"""`compete`: the command line over the application layer.

This module is the command tree (global options, every subcommand's
arguments) and the dispatch.  A command that runs the platform lives in a
module of its own (`cli_platform`, `cli_run`, `cli_queue`, `cli_db`), imported
when that command runs: the platform needs SQLAlchemy, Alembic and JupyterHub's
libraries, which a worker-only install does not have, and `compete worker`
(`cli_worker`) and `compete kernel` (`cli_kernel`) run without them.

Every command reads its configuration through `config.load_config`: the file
`$COMPETE_CONFIG`, else `<home>/compete_config.py`; `--home`, `--db` and
`--executor` beat the file, which beats the environment.

Output shapes of these subcommands are a contract (see README): scripts and
outside checks parse them.  Errors are one line per problem on stderr (bundle
problems as `file: key: message`), never a traceback; `--debug` shows one.
"""
from __future__ import annotations

import argparse
import importlib
import sys
from typing import Callable, Optional, Sequence

from . import cli_kernel, cli_worker

Command = Callable[[argparse.Namespace], Optional[int]]


def server_command(target: str) -> Command:
    """The command `module:function` of the platform's server side, imported when it runs."""
    module_name, _, function = target.partition(":")

    def run(args: argparse.Namespace) -> Optional[int]:
        try:
            # Optional dependency: the platform's modules need SQLAlchemy, Alembic and JupyterHub's
            # libraries, which a worker-only install lacks; only the command that runs is imported.
            from .cli_common import REPORTED_ERRORS, report

            command = getattr(importlib.import_module(f"{__package__}.{module_name}"), function)
        except ModuleNotFoundError as exc:
            if args.debug or (exc.name or "").split(".")[0] in ("hub_extension", "dask_workers", "kernels", "scoring"):
                raise
            print(f"error: `compete {args.command}` runs the platform, which needs {exc.name} "
                  "(not installed here: a worker-only install runs `compete worker` and `compete image build`)",
                  file=sys.stderr)
            return 2
        try:
            return command(args)
        except REPORTED_ERRORS as exc:
            return report(exc)

    run.__name__ = function
    return run


def _actions(sub: argparse._SubParsersAction, name: str, help: str) -> argparse._SubParsersAction:
    actions = sub.add_parser(name, help=help).add_subparsers(dest=f"{name}_command", metavar="ACTION")
    actions.required = True
    return actions


def add_platform_commands(sub: argparse._SubParsersAction) -> None:
    """bundle, competition, register, leaderboard, init (cli_platform) and db (cli_db)."""
    bundle = _actions(sub, "bundle", "check and export competition bundles")
    p = bundle.add_parser("validate", help="check a bundle (zip or folder) and summarize it")
    p.add_argument("path")
    p.set_defaults(func=server_command("cli_platform:cmd_bundle_validate"))
    p = bundle.add_parser("export", help="write a competition back to a bundle zip")
    p.add_argument("slug")
    p.add_argument("-o", "--output", required=True, help="the zip file to write")
    p.add_argument("--light", action="store_true", help="refer to stored datasets by key instead of including them")
    p.set_defaults(func=server_command("cli_platform:cmd_bundle_export"))

    comp = _actions(sub, "competition", "create, list, publish, archive and delete competitions")
    p = comp.add_parser("create", help="create a competition from a bundle; prints its slug last")
    p.add_argument("path")
    p.set_defaults(func=server_command("cli_platform:cmd_competition_create"))
    p = comp.add_parser("list", help="list competitions")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=server_command("cli_platform:cmd_competition_list"))
    for action, what in (("publish", "list it and open it to everyone"),
                         ("private", "list it nowhere; prints its secret link's secret"),
                         ("archive", "make it read-only, its pages and leaderboards kept"),
                         ("draft", "let its organizers only see it")):
        p = comp.add_parser(action, help=what)
        p.add_argument("slug")
        p.set_defaults(func=server_command("cli_platform:cmd_competition_lifecycle"), lifecycle=action)
    p = comp.add_parser("delete", help="delete a competition with its submissions and the data only it uses")
    p.add_argument("slug")
    p.add_argument("--confirm", required=True, metavar="SLUG", help="the slug again, to confirm")
    p.set_defaults(func=server_command("cli_platform:cmd_competition_delete"))
    p = comp.add_parser("similarity", help="pairs of code and notebook submissions of different participants "
                        "whose code is alike, for review (signals, never verdicts)")
    p.add_argument("slug")
    p.add_argument("--min", type=float, default=None, help="the least similarity listed (default: the threshold)")
    p.add_argument("--scan", action="store_true", help="sign the submissions the sweep has not signed yet, now")
    p.add_argument("--pair", type=int, default=None, metavar="ID", help="show one pair with a diff of its sources")
    p.add_argument("--verdict", choices=["copy", "independent", "unsure", "none"], default=None,
                   help="with --pair: record the review (none clears it)")
    p.add_argument("--normalized", action="store_true", help="with --pair: diff the sources as compared")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=server_command("cli_similarity:cmd_competition_similarity"))

    p = comp.add_parser("probing", help="what a board shows participants: a display precision, the Ladder rule")
    p.add_argument("slug")
    p.add_argument("--board", required=True, help="the leaderboard's key")
    p.add_argument("--precision", default=None, metavar="N|none", help="decimals shown (0-10); none: as stored")
    p.add_argument("--ladder", default=None, metavar="fixed|parameter_free|none", help="the Ladder rule, or none")
    p.add_argument("--step", default=None, metavar="X|none", help="with --ladder fixed: the least improvement shown")
    p.set_defaults(func=server_command("cli_platform:cmd_competition_probing"))

    p = sub.add_parser("register", help="register a user in a competition (approved at once)")
    p.add_argument("slug")
    p.add_argument("user")
    p.set_defaults(func=server_command("cli_platform:cmd_register"))

    p = sub.add_parser("leaderboard", help="show a phase's leaderboard")
    p.add_argument("slug")
    p.add_argument("--phase", type=int, default=None, help="phase number, 1 for the first (default: the current phase)")
    p.add_argument("--board", default=None, help="leaderboard key (default: the first)")
    p.add_argument("--as-user", default=None, help="show what this participant sees")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=server_command("cli_platform:cmd_leaderboard"))

    p = sub.add_parser("init", help="write a bundle skeleton to start a competition from")
    p.add_argument("dir")
    p.add_argument("--template", choices=["results", "code", "notebook"], default="results")
    p.set_defaults(func=server_command("cli_platform:cmd_init"))

    db = _actions(sub, "db", "the platform's database")
    p = db.add_parser("upgrade", help="bring the database's schema to this version (creates it when empty)")
    p.set_defaults(func=server_command("cli_db:cmd_db_upgrade"))


def add_run_commands(sub: argparse._SubParsersAction) -> None:
    """submit, run-pending, submission, rerun, rerun-all, cancel, baseline, demo (cli_run) and image (cli_worker)."""
    p = sub.add_parser("submit", help="submit a predictions zip, a code zip, a folder or a notebook")
    p.add_argument("slug")
    p.add_argument("file")
    p.add_argument("--phase", type=int, default=None, help="phase number, 1 for the first (default: the current phase)")
    p.add_argument("--user", default=None, help="submit as this participant, registering them if needed")
    p.add_argument("--wait", action="store_true", help="run it now and wait for the final status")
    p.add_argument("--json", action="store_true", help='last line: {"id", "status", "scores", "error", "elapsed"}')
    p.add_argument("--fact-sheet", default=None, metavar="JSON",
                   help='answers to the competition\'s fact sheet, as a JSON object: \'{"method": "CNN"}\'')
    p.set_defaults(func=server_command("cli_run:cmd_submit"))

    p = sub.add_parser("run-pending", help="run every waiting submission, then exit")
    p.set_defaults(func=server_command("cli_run:cmd_run_pending"))

    sm = _actions(sub, "submission", "look at a submission")
    p = sm.add_parser("show", help="status, scores, history (and logs)")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--logs", action="store_true")
    p.set_defaults(func=server_command("cli_run:cmd_submission_show"))

    p = sub.add_parser("rerun", help="run a submission again (a new submission with the same file)")
    p.add_argument("id", type=int)
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func=server_command("cli_run:cmd_rerun"))

    p = sub.add_parser("rerun-all", help="rerun every submission of a phase (not reruns, not cancelled), "
                                         "each linked to its original and counted against no limit")
    p.add_argument("slug")
    p.add_argument("--phase", type=int, required=True, help="phase number, 1 for the first")
    p.add_argument("--confirm", action="store_true", help="do not show the count and ask first")
    p.add_argument("--wait", action="store_true", help="run them now and wait for their final status")
    p.add_argument("--json", action="store_true",
                   help='last line: {"competition", "phase", "count", "submissions": [{"id", "parent", '
                        '"participant", "status", "scores", "error", "elapsed"}]}')
    p.set_defaults(func=server_command("cli_run:cmd_rerun_all"))

    p = sub.add_parser("cancel", help="cancel a submission and kill its containers")
    p.add_argument("id", type=int)
    p.set_defaults(func=server_command("cli_run:cmd_cancel"))

    bl = _actions(sub, "baseline", "the bundle's example solutions, run as baselines")
    p = bl.add_parser("run", help="submit each solution of a phase as a baseline (ranked with a badge, under no limit)")
    p.add_argument("slug")
    p.add_argument("--phase", type=int, default=None, help="phase number, 1 for the first (default: the current phase)")
    p.add_argument("--user", default=None, help="the organizer they are filed under (default: the competition's creator)")
    p.add_argument("--wait", action="store_true", help="run them now and wait for their final status")
    p.add_argument("--json", action="store_true",
                   help='last line: {"competition", "phase", "submissions": [{"id", "solution", "name", "kind", '
                        '"status", "scores", "error", "elapsed"}], "skipped": [{"solution", "name", "reason"}]}')
    p.set_defaults(func=server_command("cli_run:cmd_baseline_run"))

    img = _actions(sub, "image", "runtime images")
    p = img.add_parser("build", help="build the default runtime image, or with --all the legacy one too "
                                     "(offline when no registry answers)")
    p.add_argument("--tag", default=None, help="the tag to build (jupyter-compete/runtime:legacy builds the legacy "
                                               "runtime; any other tag the default one)")
    p.add_argument("--all", action="store_true", help="build every runtime: the default and the legacy one "
                                                      "(CodaLab-era images run on it)")
    p.set_defaults(func=cli_worker.cmd_image_build)

    p = sub.add_parser("demo", help="load the demo competition, run its sample submissions, print the leaderboard")
    p.set_defaults(func=server_command("cli_run:cmd_demo"))


def add_queue_commands(sub: argparse._SubParsersAction) -> None:
    """queue, dispatcher (cli_queue) and worker (cli_worker)."""
    q = _actions(sub, "queue", "organizer queues: Dask clusters of their own")
    p = q.add_parser("create", help="create a queue with its own CA; writes the worker credentials file")
    p.add_argument("name")
    p.add_argument("--competition", default=None, help="slug of a competition that runs on this queue")
    p.add_argument("--port", type=int, default=None, help="scheduler port (default: a free port)")
    p.add_argument("--credentials-out", default=None, help="where to write the credentials (default NAME-credentials.json)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=server_command("cli_queue:cmd_queue_create"))
    p = q.add_parser("rotate", help="new CA and credentials for a queue: the old credentials stop working")
    p.add_argument("name")
    p.add_argument("--credentials-out", default=None, help="where to write the credentials (default NAME-credentials.json)")
    p.set_defaults(func=server_command("cli_queue:cmd_queue_rotate"))
    p = q.add_parser("list", help="queues with their workers and submissions waiting and running")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=server_command("cli_queue:cmd_queue_list"))
    p = q.add_parser("show", help="workers attached and submissions with their positions")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=server_command("cli_queue:cmd_queue_show"))

    p = sub.add_parser("worker", help="attach this machine to a queue (runs until interrupted)")
    p.add_argument("--credentials", required=True, help="the queue's worker credentials file")
    p.add_argument("--gpus", type=int, default=0, help="GPUs this machine offers (a Dask resource GPU=N)")
    p.add_argument("--nthreads", type=int, default=1, help="submissions run at a time")
    p.add_argument("--name", default=None, help="worker name shown to the organizer (default HOST-PID)")
    p.add_argument("--worker-executor", default=None, metavar="EXECUTOR",
                   help="how steps run on this machine: docker, process, auto, or module:Class of an "
                        "Executor (default: what the platform asks)")
    p.add_argument("--local-directory", default=None, help="scratch space for runs and the dataset cache")
    p.add_argument("--listen-host", default=None, help="interface to listen on for the scheduler")
    p.set_defaults(func=cli_worker.cmd_worker)

    p = sub.add_parser("dispatcher", help="send waiting submissions to their queues and follow them (runs until interrupted)")
    p.add_argument("--interval", type=float, default=1.0)
    p.add_argument("--status", action="store_true", help="print which process dispatches (the lease holder), then exit")
    p.add_argument("--json", action="store_true", help="with --status: the lease as JSON")
    p.set_defaults(func=server_command("cli_queue:cmd_dispatcher"))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="compete",
        description="Jupyter Compete: run CodaLab and Codabench competitions on JupyterHub.",
    )
    parser.add_argument("--home", default=None,
                        help="directory holding the SQLite file, the artifacts and compete_config.py "
                             "(default: c.Compete.home, else $COMPETE_HOME)")
    parser.add_argument("--db", default=None,
                        help="database URL, overrides the SQLite file in --home (default: c.Compete.db_url, "
                             "else $COMPETE_DB_URL)")
    parser.add_argument("--executor", choices=["docker", "process", "auto"], default=None,
                        help="how submissions run (default: c.Compete.executor; auto is docker when an engine "
                             "answers, else process)")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    add_platform_commands(sub)
    add_run_commands(sub)
    add_queue_commands(sub)
    cli_kernel.add_commands(sub)
    add_manifest_commands(sub)
    return parser


def add_manifest_commands(sub: argparse._SubParsersAction) -> None:
    """manifest get|verify|public-key, submission reproduce, competition reproduce-top (cli_manifest)."""
    mf = _actions(sub, "manifest", "signed manifests of submissions: get one, verify one, the public key")
    p = mf.add_parser("get", help="write a submission's signed manifest (canonical JSON)")
    p.add_argument("id", type=int)
    p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=server_command("cli_manifest:cmd_manifest_get"))
    p = mf.add_parser("verify", help="check a manifest file: exit 0 valid, 1 invalid, 2 unusable input")
    p.add_argument("file")
    p.add_argument("--key", default=None, help="the key file (default: <home>/manifest_key)")
    p.add_argument("--public-key", default=None, metavar="FILE",
                   help="check with the platform's published public key instead (PEM or hex, from "
                        "`compete manifest public-key` or GET /api/v1/manifest-key): no secret needed")
    p.set_defaults(func=server_command("cli_manifest:cmd_manifest_verify"))
    p = mf.add_parser("public-key", help="the public key manifests are signed with (PEM), to publish")
    p.add_argument("-o", "--output", default=None, help="file to write (default: standard output)")
    p.set_defaults(func=server_command("cli_manifest:cmd_manifest_public_key"))

    p = _subcommands(sub, "submission").add_parser(
        "reproduce", help="run a finished submission again pinned to the image digests, programs and data it ran "
                          "with (off the boards and the limits); prints the reproduction as JSON")
    p.add_argument("id", type=int)
    p.add_argument("--queue", default=None, help="queue to run it on (default: the phase's)")
    p.set_defaults(func=server_command("cli_manifest:cmd_reproduce"))

    p = _subcommands(sub, "competition").add_parser(
        "reproduce-top", help="reproduce the top N submissions of a phase's primary board; prints them as JSON")
    p.add_argument("slug")
    p.add_argument("--phase", type=int, required=True, help="phase number, 1 for the first")
    p.add_argument("--top", type=int, required=True, help="how many, from 1 to 100")
    p.add_argument("--queue", default=None, help="queue to run them on (default: the phase's)")
    p.set_defaults(func=server_command("cli_manifest:cmd_reproduce_top"))


def _subcommands(sub: argparse._SubParsersAction, name: str) -> argparse._SubParsersAction:
    """The actions of the command `name` already in the tree (`submission`, `competition`)."""
    parser = sub.choices[name]
    return next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))


def main(argv: Optional[Sequence[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args) or 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # noqa: BLE001 - the last line of defence for a CLI
        if args.debug:
            raise
        print(f"error: {type(exc).__name__}: {exc} (run with --debug for the traceback)", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
