"""`compete queue ...` and `compete dispatcher`: organizer queues from the shell.

`compete worker`, the other side of a queue, is in cli_worker (it runs
without the platform's server modules).
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import threading
from pathlib import Path

from .app import LOCAL_ADMIN, Platform
from .cli_common import platform as _platform
from .queues import attach_command


def cmd_queue_create(args: argparse.Namespace) -> int:
    platform = _platform(args)
    info = platform.create_queue(args.name, LOCAL_ADMIN, competition=args.competition, port=args.port)
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
    info = _platform(args).rotate_credentials(args.name, LOCAL_ADMIN)
    out = Path(args.credentials_out or f"{args.name}-credentials.json")
    shutil.copyfile(info["credentials_file"], out)
    out.chmod(0o600)
    print(f"queue {info['name']}: new CA {info['ca_fingerprint']}; earlier credentials no longer attach")
    print(f"worker credentials: {out}")
    print(f"attach each machine again: {attach_command(info['name'])}")
    return 0


def cmd_queue_list(args: argparse.Namespace) -> int:
    rows = _platform(args).list_queues(LOCAL_ADMIN)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'QUEUE':<20} {'COMPETITION':<24} {'WORKERS':>7} {'GPUS':>4} {'WAITING':>7} {'RUNNING':>7}  NOTE")
    for r in rows:
        print(f"{r['name']:<20} {(r['competition'] or '-'):<24} {r['workers']:>7} {r['gpus']:>4} "
              f"{r['waiting']:>7} {r['running']:>7}  {r['note'] or ''}")
    return 0


def cmd_queue_show(args: argparse.Namespace) -> int:
    info = _platform(args).queue_detail(args.name, LOCAL_ADMIN)
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


def run_dispatcher(platform: Platform, *, until_idle: bool, interval: float = 1.0) -> int:
    """Send waiting submissions and follow them; with `until_idle`, stop when nothing is left."""
    # Start-up cost: the dispatcher brings distributed (seconds to import); the queue commands do not need it.
    from .dispatch import Dispatcher

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    dispatcher = Dispatcher(platform)
    try:
        while not stop.is_set():
            dispatcher.tick()
            if until_idle and not platform.runs.queues_in_use():
                break
            stop.wait(interval)
    finally:
        dispatcher.close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_dispatcher(args: argparse.Namespace) -> int:
    return run_dispatcher(_platform(args), until_idle=False, interval=args.interval)
