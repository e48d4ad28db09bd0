"""Processes that stop with the hub that started them, however the hub stops.

A hub that stops cleanly sends its managed service SIGTERM; a hub killed with
SIGKILL (or one that crashed) sends nothing.  And the queue schedulers (the
default queue's process, one scheduler per organizer queue) are started by the
service in sessions of their own, on purpose: a restart of the service leaves
the runs they hold alone.  So neither signal reaches them when the hub goes.

`jupyterhub_config.py` names the hub's own process in the service's
environment (`COMPETE_HUB_PROCESS`, `pid:start time`, so that a recycled pid
is not taken for the hub); the service passes it on to every scheduler it
starts (`owner_environment`), and each of these processes calls `watch_owner`:
a thread that looks every second whether the hub still runs, and once it is
gone sends the process its own SIGTERM, which stops it as a hub's SIGTERM
would.  A process started without the variable (a `compete` command, a
service the operator runs by hand, tests) watches nothing.

Why not `prctl(PR_SET_PDEATHSIG)`: it follows the direct parent only, and the
schedulers' parent is the service, whose restart they must outlive, not the
hub; it fires when the parent *thread* that started the child ends rather than
its process; and it is Linux-only.  Watching the hub's own process works for
every one of them.
"""
from __future__ import annotations

import logging
import os
import signal
import threading
from typing import Callable, Mapping, Optional

import psutil

log = logging.getLogger("compete.lifetime")

OWNER_ENV = "COMPETE_HUB_PROCESS"
WATCH_SECONDS = 1.0
# psutil derives a start time from the boot time and clock ticks: the same process reads the same.
_SAME_START = 0.5


def describe_process(pid: Optional[int] = None) -> str:
    """`pid:start time` of a process (this one by default), the value of COMPETE_HUB_PROCESS."""
    proc = psutil.Process(pid)
    return f"{proc.pid}:{proc.create_time():.3f}"


def owner(environ: Mapping[str, str] = os.environ) -> Optional[tuple[int, float]]:
    """(pid, start time) of the hub this process lives for, or None when it names none (or says nonsense)."""
    raw = environ.get(OWNER_ENV, "")
    pid, _, started = raw.partition(":")
    try:
        return int(pid), float(started)
    except ValueError:
        if raw:
            log.warning("%s=%r is not pid:start-time; this process does not follow the hub", OWNER_ENV, raw)
        return None


def owner_environment(environ: Mapping[str, str] = os.environ) -> dict[str, str]:
    """What a child must have in its environment to follow the same hub (nothing when there is none)."""
    return {OWNER_ENV: environ[OWNER_ENV]} if owner(environ) is not None else {}


def alive(process: tuple[int, float]) -> bool:
    """Whether the process (pid, start time) still runs (a zombie does not)."""
    pid, started = process
    try:
        proc = psutil.Process(pid)
        return abs(proc.create_time() - started) < _SAME_START and proc.status() != psutil.STATUS_ZOMBIE
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return False
    except psutil.AccessDenied:
        return True  # it exists


def _terminate_self() -> None:
    os.kill(os.getpid(), signal.SIGTERM)


def watch_owner(on_gone: Callable[[], None] = _terminate_self, *, environ: Mapping[str, str] = os.environ,
                every: float = WATCH_SECONDS) -> Optional[threading.Thread]:
    """Call `on_gone` (by default: SIGTERM to this process) once the hub named in `environ` is gone.

    Returns the watching thread (a daemon), or None when the environment names no hub.
    """
    process = owner(environ)
    if process is None:
        return None

    def watch() -> None:
        stopped = threading.Event()
        while not stopped.wait(every):
            if not alive(process):
                log.warning("the hub (pid %s) is gone: stopping this process with it", process[0])
                on_gone()
                return

    thread = threading.Thread(target=watch, name="compete-follow-hub", daemon=True)
    thread.start()
    return thread
