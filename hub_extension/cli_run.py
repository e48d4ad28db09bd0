"""`compete` subcommands that run things: submit, follow, rerun, rerun-all, cancel, baselines, the demo.

Without `--wait`, `compete submit` records the submission and hands it to a
detached runner process (`compete run-pending`), which dispatches every
waiting submission to the default Dask queue and exits when none is left: a
submission never waits for a terminal that was closed.  When a process
already dispatches on this database (the hub's service, `compete
dispatcher`, another runner: the holder of the dispatcher lease), no runner
is started, and `--wait` waits on the database for that process to run the
submission (`cli_queue.run_submissions`); the output is the same.
"""
from __future__ import annotations

import argparse
import getpass
import json
import os
import subprocess
import sys
from pathlib import Path

from . import models as m
from .app import LOCAL_ADMIN, Platform
from .app.fact_sheets import answers_from_json
from .cli_common import loaded_config, platform as _platform, print_scores, submission_line
from .cli_queue import deferral, run_dispatcher, run_submissions
from .demo import run_demo


def _start_runner(args: argparse.Namespace, platform: Platform) -> None:
    """`compete run-pending` in a detached process, with this run's options and config file.

    None when a process holds the dispatcher lease: it runs what waits.
    """
    holder = platform.lease.live()
    if holder is not None:
        print(deferral(holder, "it runs the submission"), file=sys.stderr, flush=True)
        return
    log = Path(platform.config.home) / "runner.log"
    cmd = [sys.executable, "-m", "hub_extension.cli", "--home", str(platform.config.home)]
    if args.db:
        cmd += ["--db", args.db]
    if args.executor:
        cmd += ["--executor", args.executor]
    cmd.append("run-pending")
    env = dict(os.environ)
    config_file = loaded_config(args).file
    if config_file is not None:
        env["COMPETE_CONFIG"] = str(config_file)
    with open(log, "ab") as fh:
        subprocess.Popen(cmd, stdout=fh, stderr=fh, stdin=subprocess.DEVNULL, env=env, start_new_session=True)


def cmd_submit(args: argparse.Namespace) -> int:
    platform = _platform(args)
    user = args.user or getpass.getuser()
    if user != LOCAL_ADMIN.username:  # the local admin organizes: its own submission enters it
        platform.register(args.slug, user, LOCAL_ADMIN)
    sid = platform.submit(args.slug, args.file, username=user, phase=args.phase, actor=LOCAL_ADMIN,
                          fact_sheet=answers_from_json(getattr(args, "fact_sheet", None)))
    if args.wait:
        if not args.json:
            print(f"submission {sid}: running", flush=True)
        run_submissions(platform, [sid])
    else:
        _start_runner(args, platform)
    info = platform.submission(sid)
    if args.json:
        print(json.dumps(submission_line(info)))
    else:
        print(f"submission {sid}: {info['status']}")
        print_scores(info)
        if info["error"]:
            print(f"  error: {info['error']}")
    return 0 if info["status"] != m.FAILED else 1


def cmd_run_pending(args: argparse.Namespace) -> int:
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
        if waiting.get("estimated_start"):
            print(f"  starts:  about {waiting['estimated_start']} (from the queue's recent run times)")
    elif info.get("worker"):
        print(f"  worker:  {info['worker']} (queue {info['queue']})")
    if info["elapsed"] is not None:
        print(f"  elapsed: {info['elapsed']:.1f} s")
    print_scores(info)
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
        run_submissions(platform, [sid])
    else:
        _start_runner(args, platform)
    print(sid)
    return 0


def _agreed(plan: dict, phase: int) -> bool:
    """Show what rerunning the phase would run and ask (on stderr, so `--json` stays one line)."""
    count = plan["count"]
    print(f"phase {phase} of {plan['competition']}: {count} submission{'' if count == 1 else 's'} would run again",
          file=sys.stderr)
    for item in plan["items"][:20]:
        print(f"  {item['id']}  {item['participant']}  {item['status']}  {item['filename']}", file=sys.stderr)
    if count > 20:
        print(f"  … and {count - 20} more", file=sys.stderr)
    print(f"Rerun these {count}? [y/N] ", end="", file=sys.stderr, flush=True)
    try:
        answer = input()
    except EOFError:
        answer = ""
    return answer.strip().lower() in ("y", "yes")


def cmd_rerun_all(args: argparse.Namespace) -> int:
    """Every submission of the phase again, after the count is confirmed (or `--confirm`)."""
    platform = _platform(args)
    plan = platform.rerun_plan(args.slug, args.phase, LOCAL_ADMIN)
    if not args.confirm and plan["count"] and not _agreed(plan, args.phase):
        print("nothing was rerun (answer y, or pass --confirm)", file=sys.stderr)
        return 1
    done = platform.rerun_phase(args.slug, args.phase, LOCAL_ADMIN, confirm=plan["count"])
    ids = [entry["id"] for entry in done["submissions"]]
    failed = False
    for entry, info in _follow(args, platform, done["submissions"]):
        failed = failed or info["status"] == m.FAILED
        if not args.json:
            print(f"submission {entry['id']}: rerun of {entry['parent']} ({entry['participant']}): {info['status']}")
    if args.json:
        print(json.dumps(done))
    elif not ids:
        print(f"phase {args.phase} of {args.slug} has no submission to rerun")
    return 1 if failed else 0


def _follow(args: argparse.Namespace, platform, entries: list[dict]):
    """Run the new submissions (here with --wait, else by a runner in the background); each entry
    with its submission's state, the entry completed with the submission's line."""
    ids = [entry["id"] for entry in entries]
    if args.wait:
        run_submissions(platform, ids)
    elif ids:
        _start_runner(args, platform)
    for entry in entries:
        info = platform.submission(entry["id"])
        entry.update(submission_line(info))
        yield entry, info


def cmd_baseline_run(args: argparse.Namespace) -> int:
    """Each solution of the phase as a baseline: one line per submission (and per solution skipped)."""
    platform = _platform(args)
    done = platform.run_baselines(args.slug, args.phase, LOCAL_ADMIN, username=args.user)
    ids = [entry["id"] for entry in done["submissions"]]
    failed = False
    for entry, info in _follow(args, platform, done["submissions"]):
        failed = failed or info["status"] == m.FAILED
        if not args.json:
            print(f"baseline {entry['id']}: solution {entry['solution']} ({entry['name']}, {entry['kind']}): "
                  f"{info['status']}")
            print_scores(info)
            if info["error"]:
                print(f"  error: {info['error']}")
    for skipped in done["skipped"]:
        if not args.json:
            print(f"solution {skipped['solution']} ({skipped['name']}) not run: {skipped['reason']}")
    if args.json:
        print(json.dumps(done))
    return 1 if failed or not ids else 0


def cmd_cancel(args: argparse.Namespace) -> int:
    platform = _platform(args)
    changed = platform.runs.set_status(args.id, m.CANCELLED, note="cancelled from the command line")
    try:
        # Start-up cost: the executors (and the Docker client) load only for a cancel.
        from dask_workers.executors import make_executor

        make_executor("docker" if platform.config.executor == "docker" else "auto").cancel(args.id)
    except Exception:  # noqa: BLE001 - no engine: nothing to kill here
        pass
    info = platform.submission(args.id)
    print(f"submission {args.id}: {info['status']}" + ("" if changed else " (already finished)"))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    return run_demo(_platform(args))
