"""`compete queue ...`, `compete worker` and `compete dispatcher`: organizer queues from the shell."""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
from pathlib import Path

from .app import LOCAL_ADMIN, Platform


def _platform(args: argparse.Namespace) -> Platform:
    from .cli import _platform as make

    return make(args)


def cmd_queue_create(args: argparse.Namespace) -> int:
    from .queues import attach_command, create_queue

    platform = _platform(args)
    info = create_queue(platform, args.name, LOCAL_ADMIN, competition=args.competition, port=args.port)
    out = Path(args.credentials_out or f"{args.name}-credentials.json")
    shutil.copyfile(info["credentials_file"], out)
    out.chmod(0o600)
    if args.json:
        print(json.dumps({**info, "credentials": str(out)}))
        return 0
    print(f"queue {info['name']}: scheduler {info['address']}"
          + (f", competition {info['competition']}" if info["competition"] else ""))
    print(f"worker credentials: {out} (keep it private: it lets a machine run this queue's submissions)")
    print(f"attach a machine:   {attach_command(info['name'])}")
    return 0


def cmd_queue_rotate(args: argparse.Namespace) -> int:
    from .queues import attach_command, rotate_credentials

    info = rotate_credentials(_platform(args), args.name, LOCAL_ADMIN)
    out = Path(args.credentials_out or f"{args.name}-credentials.json")
    shutil.copyfile(info["credentials_file"], out)
    out.chmod(0o600)
    print(f"queue {info['name']}: new CA {info['ca_fingerprint']}; earlier credentials no longer attach")
    print(f"worker credentials: {out}")
    print(f"attach each machine again: {attach_command(info['name'])}")
    return 0


def cmd_queue_list(args: argparse.Namespace) -> int:
    from .queues import list_queues

    rows = list_queues(_platform(args), LOCAL_ADMIN)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'QUEUE':<20} {'COMPETITION':<24} {'WORKERS':>7} {'GPUS':>4} {'WAITING':>7} {'RUNNING':>7}  NOTE")
    for r in rows:
        print(f"{r['name']:<20} {(r['competition'] or '-'):<24} {r['workers']:>7} {r['gpus']:>4} "
              f"{r['waiting']:>7} {r['running']:>7}  {r['note'] or ''}")
    return 0


def cmd_queue_show(args: argparse.Namespace) -> int:
    from .queues import queue_detail

    info = queue_detail(_platform(args), args.name, LOCAL_ADMIN)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"queue {info['name']}  {info['address']}" + (f"  competition {info['competition']}" if info["competition"] else ""))
    print(f"scheduler: {'reachable' if info['connected'] else 'not reachable'} (checked {info['checked_at'] or 'never'})")
    if info.get("attach_command"):
        print(f"attach a machine: {info['attach_command']}")
    if info["note"]:
        print(f"note: {info['note']}")
    print(f"workers ({len(info['workers'])}):")
    for w in info["workers"]:
        resources = ", ".join(f"{k}={v:g}" for k, v in (w.get("resources") or {}).items()) or "-"
        running = ", ".join(w.get("running") or []) or "idle"
        silent = "  SILENT" if w.get("silent") else ""
        print(f"  {w['name']:<20} threads={w['nthreads']} resources={resources} last heartbeat {w['last_seen']}s ago"
              f"  running: {running}{silent}")
    print(f"waiting ({len(info['waiting'])}):")
    for s in info["waiting"]:
        print(f"  #{s['position']:<3} submission {s['id']}  {s['competition']}  {s['participant']}")
    print(f"running ({len(info['running'])}):")
    for s in info["running"]:
        print(f"  submission {s['id']}  {s['status']:<9} on {s['worker'] or '?'}  {s['competition']}  {s['participant']}")
    return 0


def cmd_worker(args: argparse.Namespace) -> int:
    from dask_workers.attach import CredentialsError, main

    try:
        return main(args.credentials, name=args.name, nthreads=args.nthreads, gpus=args.gpus,
                    executor=args.worker_executor, local_directory=args.local_directory,
                    listen_host=args.listen_host)
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def run_dispatcher(platform: Platform, *, until_idle: bool, interval: float = 1.0) -> int:
    """Send waiting submissions and follow them; with `until_idle`, stop when nothing is left."""
    from .dispatch import Dispatcher

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    dispatcher = Dispatcher(platform)
    try:
        while not stop.is_set():
            dispatcher.tick()
            if until_idle and not platform.queues_in_use():
                break
            stop.wait(interval)
    finally:
        dispatcher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_dispatcher(args: argparse.Namespace) -> int:
    return run_dispatcher(_platform(args), until_idle=False, interval=args.interval)


def add_commands(sub: argparse._SubParsersAction) -> None:
    q = sub.add_parser("queue", help="organizer queues: Dask clusters of their own").add_subparsers(
        dest="queue_command", metavar="ACTION")
    q.required = True
    p = q.add_parser("create", help="create a queue with its own CA; writes the worker credentials file")
    p.add_argument("name")
    p.add_argument("--competition", default=None, help="slug of a competition that runs on this queue")
    p.add_argument("--port", type=int, default=None, help="scheduler port (default: a free port)")
    p.add_argument("--credentials-out", default=None, help="where to write the credentials (default NAME-credentials.json)")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue_create)
    p = q.add_parser("rotate", help="new CA and credentials for a queue: the old credentials stop working")
    p.add_argument("name")
    p.add_argument("--credentials-out", default=None, help="where to write the credentials (default NAME-credentials.json)")
    p.set_defaults(func=cmd_queue_rotate)
    p = q.add_parser("list", help="queues with their workers and submissions waiting and running")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue_list)
    p = q.add_parser("show", help="workers attached and submissions with their positions")
    p.add_argument("name")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_queue_show)

    p = sub.add_parser("worker", help="attach this machine to a queue (runs until interrupted)")
    p.add_argument("--credentials", required=True, help="the queue's worker credentials file")
    p.add_argument("--gpus", type=int, default=0, help="GPUs this machine offers (a Dask resource GPU=N)")
    p.add_argument("--nthreads", type=int, default=1, help="submissions run at a time")
    p.add_argument("--name", default=None, help="worker name shown to the organizer (default HOST-PID)")
    p.add_argument("--worker-executor", choices=("docker", "process", "auto"), default=None,
                   help="how steps run on this machine (default: what the platform asks)")
    p.add_argument("--local-directory", default=None, help="scratch space for runs and the dataset cache")
    p.add_argument("--listen-host", default=None, help="interface to listen on for the scheduler")
    p.set_defaults(func=cmd_worker)

    p = sub.add_parser("dispatcher", help="send waiting submissions to their queues and follow them (runs until interrupted)")
    p.add_argument("--interval", type=float, default=1.0)
    p.set_defaults(func=cmd_dispatcher)


__all__ = ["add_commands", "run_dispatcher"]
