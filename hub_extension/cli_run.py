"""`compete` subcommands that run things: submit, follow, rerun, cancel, build the image, the demo.

Without `--wait`, `compete submit` records the submission and hands it to a
detached runner process (`compete run-pending`), which dispatches every
waiting submission to the default Dask queue and exits when none is left: a
submission never waits for a terminal that was closed.
"""
from __future__ import annotations

import argparse
import getpass
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import models as m
from .app import LOCAL_ADMIN, Platform

REPO_TEMPLATES = Path(__file__).resolve().parent.parent / "templates"


def _platform(args: argparse.Namespace) -> Platform:
    from .cli import _platform as make

    return make(args)


def _submission_line(info: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": info["id"],
        "status": info["status"],
        "scores": {k: v for k, v in info["scores"].items() if v is not None},
        "error": info["error"],
        "elapsed": info["elapsed"],
    }


def _run_and_wait(platform: Platform, submission_ids: list[int], timeout: float | None = None) -> None:
    from .dispatch import Dispatcher

    dispatcher = Dispatcher(platform)
    try:
        for sid in submission_ids:
            dispatcher.dispatch(sid)
        for sid in submission_ids:
            dispatcher.wait(sid, timeout)
    finally:
        dispatcher.close()


def _start_runner(args: argparse.Namespace, platform: Platform) -> None:
    log = Path(platform.config.home) / "runner.log"
    cmd = [sys.executable, "-m", "hub_extension.cli", "--home", str(platform.config.home)]
    if args.db:
        cmd += ["--db", args.db]
    if args.executor:
        cmd += ["--executor", args.executor]
    cmd.append("run-pending")
    with open(log, "ab") as fh:
        subprocess.Popen(cmd, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL, start_new_session=True)


def cmd_submit(args: argparse.Namespace) -> int:
    platform = _platform(args)
    user = args.user or getpass.getuser()
    platform.register(args.slug, user, LOCAL_ADMIN)
    sid = platform.submit(args.slug, args.file, username=user, phase=args.phase, actor=LOCAL_ADMIN)
    if args.wait:
        if not args.json:
            print(f"submission {sid}: running", flush=True)
        _run_and_wait(platform, [sid])
    else:
        _start_runner(args, platform)
    info = platform.submission(sid)
    if args.json:
        print(json.dumps(_submission_line(info)))
    else:
        print(f"submission {sid}: {info['status']}")
        for key, value in info["scores"].items():
            print(f"  {key}: {value}")
        if info["error"]:
            print(f"  error: {info['error']}")
    return 0 if info["status"] != m.FAILED else 1


def cmd_run_pending(args: argparse.Namespace) -> int:
    from .cli_queue import run_dispatcher

    return run_dispatcher(_platform(args), until_idle=True, interval=0.5)


def cmd_submission_show(args: argparse.Namespace) -> int:
    platform = _platform(args)
    info = platform.submission(args.id)
    if args.logs:
        info["logs"] = platform.submission_logs(args.id)
    if args.json:
        print(json.dumps(info, default=str))
        return 0
    print(f"submission {info['id']} — {info['competition']} phase {info['phase']} — {info['participant']}")
    print(f"  file:    {info['filename']} ({info['kind']})")
    print(f"  status:  {info['status']}")
    waiting = info.get("waiting")
    if waiting:
        print(f"  queue:   {waiting['queue']}, position {waiting['position']}: {waiting['note']}")
    elif info.get("worker"):
        print(f"  worker:  {info['worker']} (queue {info['queue']})")
    if info["elapsed"] is not None:
        print(f"  elapsed: {info['elapsed']:.1f} s")
    for key, value in info["scores"].items():
        print(f"  {key}: {value}")
    if info["error"]:
        print(f"  error:   {info['error']}")
    for h in info["history"]:
        print(f"  {h['at']}  {h['status']}" + (f"  ({h['note']})" if h["note"] else ""))
    for entry in info.get("logs", []):
        print(f"--- task {entry['task_index']} {entry['step']} ({entry['name']}) ---")
        print(entry["text"])
    return 0


def cmd_rerun(args: argparse.Namespace) -> int:
    platform = _platform(args)
    sid = platform.rerun(args.id, LOCAL_ADMIN)
    if args.wait:
        _run_and_wait(platform, [sid])
    else:
        _start_runner(args, platform)
    print(sid)
    return 0


def cmd_cancel(args: argparse.Namespace) -> int:
    platform = _platform(args)
    changed = platform.set_status(args.id, m.CANCELLED, note="cancelled from the command line")
    try:
        from dask_workers.executors import make_executor

        make_executor("docker" if platform.config.executor == "docker" else "auto").cancel(args.id)
    except Exception:  # noqa: BLE001 - no engine: nothing to kill here
        pass
    info = platform.submission(args.id)
    print(f"submission {args.id}: {info['status']}" + ("" if changed else " (already finished)"))
    return 0


def cmd_image_build(args: argparse.Namespace) -> int:
    from kernels.build import DEFAULT_IMAGE, build_image

    image_id = build_image(args.tag or DEFAULT_IMAGE)
    print(image_id)
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from .demo import run_demo

    return run_demo(_platform(args))


def add_commands(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("submit", help="submit a predictions zip, a code zip, a folder or a notebook")
    p.add_argument("slug")
    p.add_argument("file")
    p.add_argument("--phase", type=int, default=None, help="phase number, 1 for the first (default: the current phase)")
    p.add_argument("--user", default=None, help="submit as this participant, registering them if needed")
    p.add_argument("--wait", action="store_true", help="run it now and wait for the final status")
    p.add_argument("--json", action="store_true", help='last line: {"id", "status", "scores", "error", "elapsed"}')
    p.set_defaults(func=cmd_submit)

    p = sub.add_parser("run-pending", help="run every waiting submission, then exit")
    p.set_defaults(func=cmd_run_pending)

    sm = sub.add_parser("submission", help="look at a submission").add_subparsers(dest="submission_command", metavar="ACTION")
    sm.required = True
    p = sm.add_parser("show", help="status, scores, history (and logs)")
    p.add_argument("id", type=int)
    p.add_argument("--json", action="store_true")
    p.add_argument("--logs", action="store_true")
    p.set_defaults(func=cmd_submission_show)

    p = sub.add_parser("rerun", help="run a submission again (a new submission with the same file)")
    p.add_argument("id", type=int)
    p.add_argument("--wait", action="store_true")
    p.set_defaults(func=cmd_rerun)

    p = sub.add_parser("cancel", help="cancel a submission and kill its containers")
    p.add_argument("id", type=int)
    p.set_defaults(func=cmd_cancel)

    img = sub.add_parser("image", help="runtime images").add_subparsers(dest="image_command", metavar="ACTION")
    img.required = True
    p = img.add_parser("build", help="build the default runtime image (offline when no registry answers)")
    p.add_argument("--tag", default=None)
    p.set_defaults(func=cmd_image_build)

    p = sub.add_parser("demo", help="load the demo competition, run its sample submissions, print the leaderboard")
    p.set_defaults(func=cmd_demo)


__all__ = ["add_commands"]
