"""Real organizer queues for tests: a platform home, a dispatcher process, worker processes.

Everything runs as in production: `compete dispatcher` (which starts and
supervises the queue's scheduler process) and `compete worker` processes
attached with the queue's credentials file.  Steps run on the process
executor so that killing workers is cheap; the docker executor has its own
tests.
"""
from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path
from typing import Callable, Optional

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.default_queue import DefaultQueueProcess
from hub_extension.queues import SchedulerSupervisor

from .paths import TEMPLATES

RESULTS_TEMPLATE = TEMPLATES / "bundles" / "results"

SLOW_SCORER = '''
import os, sys, time
res = os.path.join(sys.argv[1], "res")
pause = os.path.join(res, "sleep.txt")
if os.path.exists(pause):
    time.sleep(float(open(pause).read()))
'''


def slow_bundle(target: Path, title: str) -> Path:
    """The results template, with a scorer that first sleeps for the seconds in `sleep.txt`."""
    shutil.copytree(RESULTS_TEMPLATE, target)
    yaml = target / "competition.yaml"
    # Published at once: participants submit to it through the service.
    text = yaml.read_text().replace("title: Animals (results)", f"title: {title}\npublished: true")
    text = text.replace("max_submissions: 100", "max_submissions: 10000").replace(
        "max_submissions_per_day: 5", "max_submissions_per_day: 10000")
    yaml.write_text(text)
    score = target / "scoring_program" / "score.py"
    score.write_text(score.read_text().replace("import csv\n", "import csv\n" + SLOW_SCORER, 1))
    return target


BIG_OUTPUT = '''
import atexit
def _big_output():
    # Leaves {size} bytes of detailed results in the scoring output.
    out = sys.argv[2]
    os.makedirs(out, exist_ok=True)
    with open(os.path.join(out, "detailed_results.html"), "wb") as fh:
        fh.write(os.urandom({size}))
atexit.register(_big_output)
'''


def big_output_bundle(target: Path, title: str, size: int) -> Path:
    """`slow_bundle`, whose scorer also writes `size` bytes of detailed results."""
    slow_bundle(target, title)
    score = target / "scoring_program" / "score.py"
    text = score.read_text()
    score.write_text(text.replace("import csv\n", "import csv\n" + BIG_OUTPUT.format(size=int(size)), 1))
    return target


def predictions_zip(folder: Path, name: str, sleep: float = 0.0) -> Path:
    path = folder / name
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(RESULTS_TEMPLATE / "sample_submission" / "predictions.csv", "predictions.csv")
        if sleep:
            zf.writestr("sleep.txt", str(sleep))
    return path


def compete_cmd(home: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub_extension.cli", "--home", str(home), "--executor", "process", *args]


class QueueLab:
    """A platform home with competitions, queues, a dispatcher process and worker processes."""

    def __init__(self, home: Path):
        self.home = home
        home.mkdir(parents=True, exist_ok=True)
        self.platform = Platform(home=str(home))
        self.platform.config.executor = "process"
        self.dispatcher: Optional[subprocess.Popen] = None
        self.workers: dict[str, subprocess.Popen] = {}
        self.logs = home / "logs"
        self.logs.mkdir(exist_ok=True)
        self._users = 0

    # -- processes -----------------------------------------------------------------------
    def start_dispatcher(self) -> None:
        log = open(self.logs / "dispatcher.log", "ab")
        self.dispatcher = subprocess.Popen(
            compete_cmd(self.home, "dispatcher", "--interval", "0.5"),
            stdout=log, stderr=subprocess.STDOUT, cwd=str(self.home),
        )
        log.close()

    def kill_dispatcher(self) -> None:
        if self.dispatcher is not None:
            self.dispatcher.kill()
            self.dispatcher.wait()
            self.dispatcher = None

    def start_worker(self, credentials: Path, name: str, *, gpus: int = 0, nthreads: int = 1,
                     executor: str = "process") -> subprocess.Popen:
        log = open(self.logs / f"worker-{name}.log", "ab")
        args = ["worker", "--credentials", str(credentials), "--name", name, "--nthreads", str(nthreads),
                "--worker-executor", executor, "--local-directory", str(self.home / "scratch" / name)]
        if gpus:
            args += ["--gpus", str(gpus)]
        proc = subprocess.Popen(compete_cmd(self.home, *args), stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.workers[name] = proc
        return proc

    def kill_worker(self, name: str, sig: int = signal.SIGKILL) -> None:
        proc = self.workers.pop(name, None)
        if proc is not None and proc.poll() is None:
            proc.send_signal(sig)
            proc.wait(timeout=60)

    def close(self) -> None:
        for name in list(self.workers):
            self.kill_worker(name)
        if self.dispatcher is not None:
            self.dispatcher.terminate()
            try:
                self.dispatcher.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.dispatcher.kill()
        supervisor = SchedulerSupervisor(self.platform)
        for name in self.platform.queue_names():
            supervisor.stop(name)
        stop_default_queue(self.platform)
        self.platform.close()

    # -- platform ------------------------------------------------------------------------
    def competition(self, title: str, tmp: Path, output_bytes: int = 0) -> str:
        """A competition whose scorer sleeps on request, and writes `output_bytes` of detailed results."""
        folder = tmp / title.replace(" ", "-")
        bundle = big_output_bundle(folder, title, output_bytes) if output_bytes else slow_bundle(folder, title)
        slug, _ = self.platform.create_competition(bundle, LOCAL_ADMIN)
        return slug

    def submit(self, slug: str, tmp: Path, sleep: float = 0.0) -> int:
        self._users += 1
        user = f"user{self._users}"
        self.platform.register(slug, user, LOCAL_ADMIN)
        path = predictions_zip(tmp, f"{user}.zip", sleep)
        return self.platform.submit(slug, path, username=user, actor=LOCAL_ADMIN)

    def wait_for(self, predicate: Callable[[], bool], timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate():
                return
            time.sleep(0.2)
        raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}\n{self.diagnostics()}")

    def status(self, sid: int) -> str:
        return self.platform.submission(sid)["status"]

    def wait_terminal(self, sids: list[int], timeout: float) -> None:
        self.wait_for(lambda: all(self.status(s) in m.TERMINAL_STATUSES for s in sids), timeout,
                      f"submissions {sids} to end")

    def diagnostics(self) -> str:
        parts = []
        for log in sorted(self.logs.glob("*.log")):
            parts.append(f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}")
        for sched in sorted((self.home / "queues").glob("*/scheduler.log")):
            parts.append(f"--- {sched}\n{sched.read_text(errors='replace')[-2000:]}")
        return "\n".join(parts)


def stop_default_queue(platform: Platform) -> None:
    """Stop the default queue's process a test left (a dispatcher killed with runs on it)."""
    process = DefaultQueueProcess.recorded(platform)
    if process is not None and process.local():
        process.stop(grace=10)


def terminal_changes(platform: Platform, sid: int) -> int:
    with platform.db.session() as s:
        return sum(1 for h in s.get(m.Submission, sid).history if h.status in m.TERMINAL_STATUSES)


def run_attempts(platform: Platform, sid: int) -> set[int]:
    with platform.db.session() as s:
        return {r.attempt for r in s.get(m.Submission, sid).runs}

