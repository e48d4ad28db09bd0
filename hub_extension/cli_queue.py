"""`compete queue ...` and `compete dispatcher`: organizer queues and the dispatching from the shell.

One process dispatches per database, the holder of the dispatcher lease
(`app.lease`).  `run_submissions` is how every command that needs runs
(`submit --wait`, `rerun --wait`, `demo`) gets them: when a live holder
exists it starts no dispatcher and waits on the database, saying on stderr
which process dispatches; otherwise it dispatches itself (taking the lease)
until its submissions end, and takes over when the holder it waited on goes
away.  `compete run-pending` (the detached runner of `submit`) exits at once
when a holder is live; `compete dispatcher` stands by until the holder's
lease expires; `compete dispatcher --status` shows the holder.

`compete worker`, the other side of a queue, is in cli_worker (it runs
without the platform's server modules).
"""
from __future__ import annotations

import argparse
import json
import shutil
import signal
import sys
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Optional

from .app import LOCAL_ADMIN, Platform
from .app.lease import LeaseState, when
from .app.refresher import BoardRefresher
from .cli_common import platform as _platform
from .contract import Status
from .queues import attach_command

# Seconds between two looks at the database while another process dispatches.
POLL_SECONDS = 0.5
LEASE_CHECK_SECONDS = 2.0


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
    platform = _platform(args)
    rows = platform.list_queues(LOCAL_ADMIN)
    if args.json:
        print(json.dumps(rows))
        return 0
    print(f"{'QUEUE':<20} {'COMPETITION':<24} {'WORKERS':>7} {'GPUS':>4} {'WAITING':>7} {'RUNNING':>7}  "
          f"{'SCHEDULER':<36} NOTE")
    for r in rows:
        print(f"{r['name']:<20} {(r['competition'] or '-'):<24} {r['workers']:>7} {r['gpus']:>4} "
              f"{r['waiting']:>7} {r['running']:>7}  {_scheduler_text(r):<36} {r['note'] or ''}")
    lease = platform.dispatcher_lease(LOCAL_ADMIN)
    print(f"dispatcher: {_lease_text(lease)}")
    return 0


def _scheduler_text(queue: dict[str, Any]) -> str:
    """`ADDRESS (pid N on HOST)`, as far as the platform knows where the queue's scheduler runs."""
    scheduler = queue.get("scheduler") or {}
    where = f" (pid {scheduler['pid']} on {scheduler['host']})" if scheduler.get("pid") else ""
    return f"{queue['address']}{where}"


def _lease_text(lease: dict[str, Any]) -> str:
    if lease["held"]:
        return (f"pid {lease['pid']} on {lease['host']} since {_when(lease['acquired_at'])}, "
                f"last heartbeat {lease['heartbeat_age']:.1f} s ago")
    return f"none ({lease['summary']})"


def cmd_queue_show(args: argparse.Namespace) -> int:
    info = _platform(args).queue_detail(args.name, LOCAL_ADMIN)
    if args.json:
        print(json.dumps(info))
        return 0
    print(f"queue {info['name']}  {info['address']}" + (f"  competition {info['competition']}" if info["competition"] else ""))
    print(f"scheduler: {'reachable' if info['connected'] else 'not reachable'} (checked {info['checked_at'] or 'never'})")
    if (info.get("scheduler") or {}).get("pid"):
        where = info["scheduler"]
        print(f"scheduler process: pid {where['pid']} on {where['host']} since {_when(where['since'])}, "
              f"Dask id {where['id']}")
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


def deferral(holder: LeaseState, then: str) -> str:
    """The one line a process prints on stderr when it leaves the dispatching to the lease holder.

    The holder runs the submissions with its own settings, so an option such
    as `--executor` given here is said not to apply.
    """
    return f"dispatching is done by {holder.describe()}; {then} (with its settings: --executor given here is not used)"


def run_submissions(platform: Platform, submission_ids: list[int], *, timeout: Optional[float] = None,
                    sent_only: bool = False,
                    each: Optional[Callable[[dict[str, Any]], None]] = None) -> None:
    """Have the submissions run and wait until each is terminal (or has been waited for `timeout` seconds).

    When a process holds the dispatcher lease, it runs them: this one starts
    no dispatcher and polls the database, and takes over if the holder goes
    away.  Otherwise a dispatcher of this process sends them (with
    `sent_only`, only those it could send are waited for).  `each` gets
    every submission's final view, in the order given.
    """
    left = list(submission_ids)
    announced: Optional[str] = None
    while left:
        holder = platform.lease.live()
        if holder is None:
            left = _dispatch_here(platform, left, timeout, sent_only, each)
            continue
        if holder.holder != announced:
            print(deferral(holder, "waiting on the database"), file=sys.stderr, flush=True)
            announced = holder.holder
        left = _wait_on_database(platform, left, timeout, each)


def _dispatch_here(platform: Platform, left: list[int], timeout: Optional[float], sent_only: bool,
                   each: Optional[Callable[[dict[str, Any]], None]]) -> list[int]:
    """Run `left` with a dispatcher of this process; the ids still to wait for when another process
    took the lease first (then it runs them)."""
    # Start-up cost: the dispatcher brings distributed (seconds to import); only runs need it.
    from .dispatch import Dispatcher

    dispatcher = Dispatcher(platform)
    try:
        if not dispatcher.holds_lease():
            return left
        sent = [sid for sid in left if dispatcher.dispatch(sid)]
        for sid in sent if sent_only else left:
            info = dispatcher.wait(sid, timeout)
            if each is not None:
                each(info)
        return []
    finally:
        dispatcher.close()


def _wait_on_database(platform: Platform, left: list[int], timeout: Optional[float],
                      each: Optional[Callable[[dict[str, Any]], None]]) -> list[int]:
    """Poll the submissions' status while the lease holder runs them; the ids left when it went away."""
    left = list(left)
    checked = since = time.monotonic()
    while left:
        info = platform.submission(left[0])
        if info["status"] in Status.TERMINAL or (timeout is not None and time.monotonic() - since >= timeout):
            left.pop(0)
            since = time.monotonic()
            if each is not None:
                each(info)
            continue
        time.sleep(POLL_SECONDS)
        if time.monotonic() - checked >= LEASE_CHECK_SECONDS:
            checked = time.monotonic()
            if platform.lease.live() is None:
                return left
    return []


def run_dispatcher(platform: Platform, *, until_idle: bool, interval: float = 1.0) -> int:
    """Send waiting submissions and follow them while this process holds the dispatcher lease.

    With `until_idle` (the detached runner), exit at once when another
    process holds the lease, and when nothing is left to run (the lease given
    up, then one more look, so that a submission recorded meanwhile is not
    left behind).  Without it, stand by while another process holds the
    lease, and take over when it expires.
    """
    if until_idle:
        holder = platform.lease.live()
        if holder is not None:
            print(deferral(holder, "this runner leaves the waiting submissions to it"), file=sys.stderr, flush=True)
            return 0
    # Start-up cost: the dispatcher brings distributed (seconds to import); the queue commands do not need it.
    from .dispatch import Dispatcher

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGTERM, signal.SIGINT)}
    dispatcher = Dispatcher(platform)
    # Boards are ranked again after results in a thread of their own: a burst of results is recorded at once.
    refresher = BoardRefresher(platform.runs.refresh_boards)
    platform.runs.after_finish = refresher.request
    # A tick renews the lease: ticks come well within its expiry, whatever the interval.
    interval = min(interval, dispatcher.lease_seconds / 3)
    announced: Optional[str] = None
    try:
        while not stop.is_set():
            dispatcher.tick()
            if not dispatcher.holds_lease():
                holder = platform.lease.live()
                if holder is not None and until_idle:
                    print(deferral(holder, "this runner leaves the waiting submissions to it"),
                          file=sys.stderr, flush=True)
                    break
                if holder is not None and holder.holder != announced:
                    print(deferral(holder, "standing by to take over when its lease expires"),
                          file=sys.stderr, flush=True)
                    announced = holder.holder
            elif announced is not None:
                print(f"this process (pid {dispatcher.holder.pid} on {dispatcher.holder.host}) dispatches now",
                      file=sys.stderr, flush=True)
                announced = None
            elif until_idle and not platform.runs.queues_in_use():
                dispatcher.release_lease()
                if not platform.runs.queues_in_use():
                    break
            stop.wait(interval)
    finally:
        dispatcher.close()
        refresher.close()
        platform.runs.after_finish = None
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0


def cmd_dispatcher(args: argparse.Namespace) -> int:
    if args.status:
        return cmd_dispatcher_status(args)
    return run_dispatcher(_platform(args), until_idle=False, interval=args.interval)


def cmd_dispatcher_status(args: argparse.Namespace) -> int:
    """Which process dispatches: exit 0 when one holds the lease, 1 when none does."""
    lease = _platform(args).dispatcher_lease(LOCAL_ADMIN)
    if args.json:
        print(json.dumps(lease))
    elif lease["held"]:
        print(f"dispatcher: pid {lease['pid']} on {lease['host']}")
        print(f"  since:          {_when(lease['acquired_at'])}")
        print(f"  last heartbeat: {_when(lease['heartbeat_at'])} ({lease['heartbeat_age']:.1f} s ago)")
        print(f"  expires in:     {lease['expires_in']:.1f} s")
    else:
        print(f"dispatcher: none ({lease['summary']})")
    return 0 if lease["held"] else 1


def _when(iso: Optional[str]) -> str:
    return when(datetime.fromisoformat(iso) if iso else None)
