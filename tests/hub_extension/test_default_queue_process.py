"""The default queue outlives every process that dispatches: real processes, real kills.

Two `compete dispatcher` processes, or two service processes started as the
hub starts them (each serving pages and the API), on one PostgreSQL database
share one default queue: its process (a guarded scheduler and its workers) is
recorded in the database and followed by whichever process holds the
dispatcher lease.  SIGKILL of the holder mid-way hands the lease over within
its expiry, and every run ends exactly once: none is lost, sent twice or
failed by the hand-over.  A holder stopped cleanly with runs in flight leaves
the queue running for the next one; a queue process that is killed is
replaced and the runs it held are sent again with the reason; a queue no
dispatcher watches stops by itself.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Optional

import pytest
import requests
from sqlalchemy import select

from dask_workers.executors.base import process_alive
from hub_extension import models as m
from hub_extension.app import DEFAULT_QUEUE, LOCAL_ADMIN, Platform
from tests.support.components import descendants, wait_for
from tests.support.hub import free_ports
from tests.support.queues import predictions_zip, slow_bundle, stop_default_queue, terminal_changes
from tests.support.service_harness import PREFIX, StandInHubAPI, token_for

CONFIG = """c = get_config()  # noqa: F821
c.Compete.executor = "process"
c.Compete.default_queue_workers = 2
c.Compete.default_queue_threads = 2
c.Dispatcher.lease_seconds = {lease}
c.Dispatcher.dispatch_seconds = 0.5
c.DefaultQueue.idle_exit = {idle}
"""
# A results submission runs its scoring program after a short prediction step.
STARTED = (m.RUNNING, m.SCORING)
# People of the stand-in hub (tests/support/service_harness.py) who submit.
PEOPLE = ("ann", "ben", "nora", "oscar", "sam")


class Home:
    """A platform home on a database, with the slow results competition, and the processes started on it."""

    def __init__(self, root: Path, db_url: str, *, lease: float = 4.0, idle: float = 300.0):
        self.root = root
        self.path = root / "home"
        self.path.mkdir()
        (self.path / "compete_config.py").write_text(CONFIG.format(lease=lease, idle=idle))
        self.lease_seconds = lease
        self.db_url = db_url
        self.platform = Platform(home=str(self.path), db_url=db_url)
        self.slug, _ = self.platform.create_competition(slow_bundle(root / "bundle", "Hand-over"), LOCAL_ADMIN)
        for person in PEOPLE:
            self.platform.register(self.slug, person, LOCAL_ADMIN)
        self.processes: dict[str, subprocess.Popen] = {}
        self.bases: dict[str, str] = {}

    def environment(self, extra: Optional[dict[str, str]] = None) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPETE_", "JUPYTERHUB_"))}
        env.update({"COMPETE_HOME": str(self.path), "COMPETE_DB_URL": self.db_url, **(extra or {})})
        return env

    def start(self, kind: str, name: str, hub_api: Optional[StandInHubAPI] = None) -> subprocess.Popen:
        """`compete dispatcher`, or the service process as the hub starts it (kind `service`)."""
        extra = None
        if kind == "service":
            port = free_ports(1)[0]
            extra = hub_api.service_environment(port)
            command = [sys.executable, "-m", "hub_extension.service"]
            self.bases[name] = f"http://127.0.0.1:{port}{PREFIX}"
        else:
            command = [sys.executable, "-m", "hub_extension.cli", "--home", str(self.path), "--db", self.db_url,
                       "dispatcher", "--interval", "0.5"]
        log = open(self.root / f"{name}.log", "ab")
        proc = subprocess.Popen(command, env=self.environment(extra), stdout=log, stderr=subprocess.STDOUT,
                                cwd=str(self.root))
        log.close()
        self.processes[name] = proc
        return proc

    def compete(self, *args: str) -> subprocess.CompletedProcess:
        """A `compete` command on this home, as a terminal runs it."""
        return subprocess.run([sys.executable, "-m", "hub_extension.cli", "--home", str(self.path), "--db",
                               self.db_url, *args], capture_output=True, text=True, timeout=120,
                              env=self.environment())

    def logs(self) -> str:
        return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                         for p in sorted(self.root.glob("*.log")))

    def holder_pid(self) -> Optional[int]:
        live = self.platform.lease.live()
        return live.pid if live is not None else None

    def queue_pid(self) -> Optional[int]:
        record = self.platform.queue_scheduler(DEFAULT_QUEUE)
        return record["pid"] if record else None

    def submit(self, person: str, sleep: float, base: Optional[str] = None) -> int:
        path = predictions_zip(self.root, f"p-{person}-{time.monotonic_ns()}.zip", sleep=sleep)
        if base is None:
            return self.platform.submit(self.slug, path, username=person, actor=LOCAL_ADMIN)
        with open(path, "rb") as fh:
            resp = requests.post(f"{base}api/v1/competitions/{self.slug}/submissions",
                                 files={"file": (path.name, fh)},
                                 headers={"Authorization": f"token {token_for(person)}"}, timeout=60)
        assert resp.status_code == 201, resp.text
        return resp.json()["id"]

    def dispatching_a_run(self, sleep: float) -> tuple[subprocess.Popen, int]:
        """`compete dispatcher` holding the lease, and a submission whose scoring runs for `sleep` s."""
        dispatcher = self.start("dispatcher", "first")
        wait_for(lambda: self.holder_pid() == dispatcher.pid, 120, "the dispatcher to take the lease", self.logs)
        sid = self.submit("ann", sleep)
        wait_for(lambda: self.statuses([sid])[sid] in STARTED, 120, "the run to start", self.logs)
        return dispatcher, sid

    def statuses(self, ids: list[int]) -> dict[int, str]:
        with self.platform.db.session() as s:
            rows = s.execute(select(m.Submission.id, m.Submission.status).where(m.Submission.id.in_(ids))).all()
        return dict(rows)

    def dispatch_counts(self, ids: list[int]) -> dict[int, int]:
        with self.platform.db.session() as s:
            return dict(s.execute(select(m.Submission.id, m.Submission.dispatch_count)
                                  .where(m.Submission.id.in_(ids))).all())

    def history(self, sid: int) -> list[dict]:
        return self.platform.submission(sid)["history"]

    def close(self) -> None:
        for proc in self.processes.values():
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in self.processes.values():
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
        stop_default_queue(self.platform)
        self.platform.close()


@pytest.fixture
def hub_api():
    api = StandInHubAPI()
    yield api
    api.close()


def _answers(base: str) -> bool:
    try:
        return requests.get(f"{base}api/v1/health", timeout=5).status_code == 200
    except requests.RequestException:
        return False


@pytest.mark.parametrize("kind", ["dispatcher", "service"])
def test_two_processes_on_one_postgresql_database_hand_over_without_losing_a_run(kind, tmp_path, pg_url, hub_api):
    home = Home(tmp_path, pg_url, lease=6.0)
    try:
        first = home.start(kind, "first", hub_api)
        wait_for(lambda: home.holder_pid() == first.pid and home.queue_pid(), 120,
                 "the first process to take the lease and start the queue", home.logs)
        second = home.start(kind, "second", hub_api)
        if kind == "service":
            for name in ("first", "second"):
                wait_for(lambda: _answers(home.bases[name]), 120, f"service {name} to answer", home.logs)
        queue = home.queue_pid()
        assert queue is not None and queue not in (first.pid, second.pid) and process_alive(queue)

        ids = []
        for index in range(50):
            # On services, half of the submissions reach the one that does not dispatch.
            base = home.bases["first" if index % 2 else "second"] if kind == "service" else None
            ids.append(home.submit(PEOPLE[index % len(PEOPLE)], 1.0, base))
        wait_for(lambda: list(home.statuses(ids).values()).count(m.FINISHED) >= 10, 300,
                 "10 submissions to finish", home.logs)
        # The holder now: the first, unless a slow tick on this loaded machine let its lease lapse
        # and the second took over already (which must lose nothing either).
        wait_for(lambda: home.holder_pid() in (first.pid, second.pid), 60, "a live holder", home.logs)
        holder, other = (first, second) if home.holder_pid() == first.pid else (second, first)
        assert holder.poll() is None and other.poll() is None

        holder.send_signal(signal.SIGKILL)
        holder.wait()
        handed_over = wait_for(lambda: home.holder_pid() == other.pid, 60, "the other process to take over",
                               home.logs)
        # Within the expiry of the lease, and the second's own ticks.
        print(f"{kind}: lease handed over {handed_over:.1f} s after the SIGKILL (lease {home.lease_seconds} s)")
        assert handed_over < home.lease_seconds + 3.0, handed_over
        wait_for(lambda: all(s in m.TERMINAL_STATUSES for s in home.statuses(ids).values()), 400,
                 "every submission to end", home.logs)

        statuses = home.statuses(ids)
        failed = {sid: home.history(sid) for sid, status in statuses.items() if status != m.FINISHED}
        assert sorted(set(statuses.values())) == [m.FINISHED], (failed, home.logs())
        counts = home.dispatch_counts(ids)
        assert set(counts.values()) == {1}, {sid: c for sid, c in counts.items() if c != 1}
        for sid in ids:
            assert terminal_changes(home.platform, sid) == 1, home.history(sid)
            assert [h["status"] for h in home.history(sid)].count(m.SUBMITTED) == 1, home.history(sid)
        # The runs lived in the queue's process, which never changed.
        assert home.queue_pid() == queue and process_alive(queue)

        if kind == "service":
            # The service left serves the board, the pages and the API.
            base = home.bases["first" if other is first else "second"]
            board = requests.get(f"{base}api/v1/competitions/{home.slug}/leaderboard",
                                 headers={"Authorization": f"token {token_for('ann')}"}, timeout=30)
            assert board.status_code == 200, board.text
            page = requests.get(f"{base}competitions/{home.slug}",
                                headers={"Authorization": f"token {token_for('ann')}"}, timeout=30)
            assert page.status_code == 200 and "Hand-over" in page.text, page.status_code

        # Stopped with nothing in flight, the last holder stops the queue's process.
        other.send_signal(signal.SIGTERM)
        other.wait(90)
        wait_for(lambda: not process_alive(queue), 60, "the queue's process to stop", home.logs)
        assert home.queue_pid() is None
    finally:
        home.close()


def test_a_holder_stopped_cleanly_leaves_its_runs_to_the_next(tmp_path):
    home = Home(tmp_path, f"sqlite:///{tmp_path / 'compete.sqlite'}")
    try:
        first, sid = home.dispatching_a_run(8.0)
        queue = home.queue_pid()
        first.send_signal(signal.SIGTERM)
        first.wait(60)
        # The run goes on in the queue's process, which the stop left alone.
        assert process_alive(queue) and home.statuses([sid])[sid] in STARTED
        assert home.holder_pid() is None
        # `compete queue list` says where the default queue runs, and that no process dispatches.
        listing = home.compete("queue", "list")
        assert listing.returncode == 0, listing.stderr
        row = next(line for line in listing.stdout.splitlines() if line.startswith("default "))
        assert f"(pid {queue} on {os.uname().nodename})" in row and "tls://127.0.0.1:" in row, listing.stdout
        assert listing.stdout.strip().splitlines()[-1].startswith("dispatcher: none ("), listing.stdout
        second = home.start("dispatcher", "second")
        wait_for(lambda: home.statuses([sid])[sid] in m.TERMINAL_STATUSES, 120, "the run to end", home.logs)
        assert home.holder_pid() == second.pid
        listing = home.compete("queue", "list")
        assert listing.stdout.strip().splitlines()[-1].startswith(f"dispatcher: pid {second.pid} on "), listing.stdout
        info = home.platform.submission(sid)
        assert info["status"] == m.FINISHED, (info["error"], info["history"])
        assert home.dispatch_counts([sid]) == {sid: 1}
        assert terminal_changes(home.platform, sid) == 1
        assert [h["status"] for h in info["history"]].count(m.SUBMITTED) == 1, info["history"]
        assert home.queue_pid() == queue
    finally:
        home.close()


def test_a_killed_queue_process_is_replaced_and_its_runs_are_sent_again_with_the_reason(tmp_path):
    home = Home(tmp_path, f"sqlite:///{tmp_path / 'compete.sqlite'}")
    try:
        dispatcher, sid = home.dispatching_a_run(6.0)
        old = home.queue_pid()
        os.killpg(old, signal.SIGKILL)
        wait_for(lambda: home.statuses([sid])[sid] in m.TERMINAL_STATUSES, 180, "the run to end", home.logs)
        info = home.platform.submission(sid)
        assert info["status"] == m.FINISHED, (info["error"], info["history"])
        notes = " ".join(h.get("note") or "" for h in info["history"])
        assert "the queue's scheduler that held the run stopped" in notes, info["history"]
        assert terminal_changes(home.platform, sid) == 1
        new = home.queue_pid()
        assert new is not None and new != old and process_alive(new) and dispatcher.poll() is None
    finally:
        home.close()


def test_a_queue_no_dispatcher_watches_stops_by_itself_with_its_workers(tmp_path):
    home = Home(tmp_path, f"sqlite:///{tmp_path / 'compete.sqlite'}", idle=2.0)
    try:
        dispatcher = home.start("dispatcher", "first")
        wait_for(lambda: home.holder_pid() == dispatcher.pid and home.queue_pid(), 120, "the dispatcher to start",
                 home.logs)
        queue = home.queue_pid()
        wait_for(lambda: len(descendants(queue)) >= 4, 120, "the queue's worker processes", home.logs)
        below = descendants(queue)
        dispatcher.send_signal(signal.SIGKILL)
        dispatcher.wait()
        wait_for(lambda: not process_alive(queue), 60, "the unwatched queue to stop", home.logs)
        wait_for(lambda: not any(process_alive(pid) for pid in below), 60, "its worker processes to stop",
                 home.logs)
    finally:
        home.close()
