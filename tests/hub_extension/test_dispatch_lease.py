"""One dispatcher per database: the dispatcher lease, and the processes that defer to its holder.

The lease itself on SQLite and PostgreSQL (take, renew, expiry, take-over,
release, a race for the first row); a real dispatcher (the default queue's process, process
executor) that lost its lease does nothing; and real processes: `compete
dispatcher` running while `compete submit` (with and without `--wait`) and
`compete run-pending` come and go on the same database.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import func, select, update

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.app.lease import Holder
from hub_extension.resources import templates
from tests.support import builders
from tests.support.components import terminate, wait_for
from tests.support.service_harness import ok, start_server

DEMO = templates("demo")
NOTEBOOK = DEMO / "starting_kit" / "starting_kit.ipynb"


def predictions_zip(target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        zf.write(DEMO / "sample_submissions" / "petal_rule" / "predictions.csv", "predictions.csv")
    return target


def terminal_changes(platform: Platform, sid: int) -> int:
    with platform.db.session() as s:
        return s.scalar(select(func.count()).select_from(m.StatusChange).where(
            m.StatusChange.submission_id == sid, m.StatusChange.status.in_(m.TERMINAL_STATUSES)))


def dispatch_count(platform: Platform, sid: int) -> int:
    with platform.db.session() as s:
        return s.scalar(select(m.Submission.dispatch_count).where(m.Submission.id == sid))


# -- the lease -------------------------------------------------------------------------------------
def test_take_renew_expire_take_over_and_release_with_two_holders(any_platform):
    leases = any_platform.lease
    a, b = Holder.this_process(), Holder.this_process()
    assert leases.current() is None and leases.live() is None

    assert leases.take(a, 30)
    assert not leases.take(b, 30), "a live lease is taken by its holder only"
    assert not leases.renew(b, 30), "only its holder renews a lease"
    first = leases.live()
    assert first.holder == a.id and first.pid == os.getpid() and first.held_by(a)
    assert 29 < first.expires_in <= 30
    time.sleep(0.05)
    assert leases.renew(a, 30)
    renewed = leases.live()
    assert renewed.acquired_at == first.acquired_at and renewed.heartbeat_at > first.heartbeat_at
    assert leases.acquire(a, 30) and not leases.acquire(b, 30)

    # A holder silent past expiry: another process takes over, and the old holder cannot renew.
    assert leases.renew(a, 0.3)
    time.sleep(0.5)
    expired = leases.current()
    assert not expired.live and expired.expires_in < 0 and expired.holder == a.id
    assert leases.take(b, 30)
    taken = leases.live()
    assert taken.holder == b.id and taken.acquired_at > first.acquired_at
    assert not leases.renew(a, 30), "a renewal fails once another process took the lease"
    assert not leases.take(a, 30)

    # Released: a successor takes over at once, without waiting for the expiry.
    assert not leases.release(a), "only the holder releases"
    assert leases.release(b)
    assert leases.live() is None
    assert not leases.release(b)
    assert leases.take(a, 30) and leases.live().holder == a.id

    view = any_platform.dispatcher_lease(LOCAL_ADMIN)
    assert view["held"] and view["holder"] == a.id and view["pid"] == os.getpid()
    assert set(view) >= {"host", "acquired_at", "heartbeat_at", "expires_at", "expires_in", "summary"}


def test_the_first_lease_of_a_database_goes_to_one_of_many_racing_holders(any_platform):
    leases = any_platform.lease
    for round_ in range(4):
        name = f"race-{round_}"
        holders = [Holder.this_process() for _ in range(8)]
        start = threading.Barrier(len(holders))
        won: dict[str, bool] = {}
        errors: list[BaseException] = []

        def race(holder: Holder) -> None:
            try:
                start.wait()
                won[holder.id] = leases.take(holder, 30, name)
            except BaseException as exc:  # noqa: BLE001 - reported below
                errors.append(exc)

        threads = [threading.Thread(target=race, args=(h,)) for h in holders]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert not errors, errors
        winners = [h for h, ok in won.items() if ok]
        assert len(winners) == 1, won
        assert leases.live(name).holder == winners[0]

    # The same race for an expired lease: one taker.
    with any_platform.db.session() as s:
        s.execute(update(m.Lease).where(m.Lease.name == "race-0").values(expires_at=m.utcnow()))
    holders = [Holder.this_process() for _ in range(8)]
    start = threading.Barrier(len(holders))
    results: list[bool] = []

    def take(holder: Holder) -> None:
        start.wait()
        results.append(leases.take(holder, 30, "race-0"))

    threads = [threading.Thread(target=take, args=(h,)) for h in holders]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert sorted(results) == [False] * 7 + [True]


def test_claims_and_resends_are_fenced_by_the_lease(platform):
    slug, _ = platform.create_competition(DEMO, LOCAL_ADMIN)
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, NOTEBOOK, username="ann", actor=LOCAL_ADMIN)
    a, b = Holder.this_process(), Holder.this_process()
    assert platform.lease.take(a, 30)
    assert not platform.runs.claim(sid, "default", "k-b", holder=b.id)
    assert platform.runs.claim(sid, "default", "k-a", holder=a.id)
    with platform.db.session() as s:
        s.execute(update(m.Lease).values(expires_at=m.utcnow()))
    assert platform.lease.take(b, 30)
    assert not platform.runs.release(sid, "k-a", "lost", holder=a.id), "a former holder resends nothing"
    assert platform.runs.release(sid, "k-a", "lost", holder=b.id)
    assert not platform.runs.claim(sid, "default", "k-a2", holder=a.id)
    assert platform.runs.claim(sid, "default", "k-b", holder=b.id)


def test_the_admins_pages_show_which_process_dispatches(platform, tmp_path):
    builders.build_world(platform, tmp_path)
    server = start_server(platform)
    try:
        root = server.browser("root")
        page = ok(root.get("queues")).text
        assert 'id="dispatcher-lease" data-held="no"' in page and "No process has dispatched" in page
        assert platform.lease.take(Holder("a" * 32, "dispatch-host", 4242), 60)
        for path in ("queues", "admin"):
            page = ok(root.get(path)).text
            assert 'data-held="yes"' in page and '<span id="lease-pid">4242</span>' in page, path
            assert '<span id="lease-host">dispatch-host</span>' in page and "Last heartbeat" in page, path
        assert "dispatcher-lease" not in ok(server.browser("olga").get("queues")).text
        # Each queue's scheduler process, where the platform recorded it.
        platform.record_queue_scheduler("default", address="tls://127.0.0.1:4555", id="Scheduler-x1",
                                        host="queue-host", pid=5151)
        page = ok(root.get("queues")).text
        assert "tls://127.0.0.1:4555" in page and "pid 5151 on queue-host" in page
        page = ok(root.get("queues/default")).text
        assert 'id="scheduler-process">pid 5151 on queue-host' in page and "Scheduler-x1" in page
    finally:
        server.stop()


# -- a dispatcher that lost its lease -----------------------------------------------------------------
def test_a_dispatcher_whose_lease_was_taken_neither_reconciles_nor_sends_until_it_takes_it_again(tmp_path):
    from hub_extension.dispatch import Dispatcher

    platform = Platform(home=str(tmp_path / "home"))
    platform.config.executor = "process"
    slug, _ = platform.create_competition(DEMO, LOCAL_ADMIN)
    dispatcher = Dispatcher(platform, n_workers=1, threads_per_worker=1, lease_seconds=1.0)
    reconciled: list[str] = []
    real_reconcile = dispatcher.reconcile

    def spy(link):
        reconciled.append(link.name)
        real_reconcile(link)

    dispatcher.reconcile = spy
    other = Holder.this_process()
    try:
        assert dispatcher.holds_lease()
        assert platform.lease.live().held_by(dispatcher.holder)
        assert platform.dispatcher_lease(LOCAL_ADMIN)["pid"] == os.getpid()
        dispatcher.tick()
        assert reconciled == ["default"]

        # Paused past its expiry; meanwhile another process took the lease over.
        time.sleep(1.3)
        assert platform.lease.take(other, 30)
        platform.register(slug, "ann", LOCAL_ADMIN)
        sid = platform.submit(slug, predictions_zip(tmp_path / "p.zip"), username="ann", actor=LOCAL_ADMIN)
        reconciled.clear()
        with platform.db.session() as s:
            checked = s.get(m.QueueState, "default").updated_at
        dispatcher.tick()
        assert reconciled == [], "a dispatcher without the lease reconciled"
        assert not dispatcher.holds_lease()
        assert not dispatcher.dispatch(sid)
        assert platform.runs.dispatch_key(sid) is None and dispatch_count(platform, sid) == 0
        with platform.db.session() as s:
            assert s.get(m.QueueState, "default").updated_at == checked, "it wrote what it saw of its queue"
        assert platform.lease.live().holder == other.id

        # The holder stops: the next tick takes the lease over and runs what waits.
        assert platform.lease.release(other)
        dispatcher.tick()
        assert dispatcher.holds_lease() and reconciled == ["default"]
        info = dispatcher.wait(sid, 120)
        assert info["status"] == m.FINISHED, info
        assert dispatch_count(platform, sid) == 1
    finally:
        dispatcher.close()
    assert platform.lease.live() is None, "close() releases the lease"
    platform.close()


def test_a_run_cancelled_by_a_process_that_does_not_dispatch_is_stopped_by_the_holder(tmp_path):
    """A service without the lease only marks the cancel in the database; the holder kills the run."""
    from hub_extension.dispatch import Dispatcher

    platform = Platform(home=str(tmp_path / "home"))
    platform.config.executor = "process"
    slug, _ = platform.create_competition(DEMO, LOCAL_ADMIN)
    marker = f"compete-standby-cancel-{os.getpid()}-{time.monotonic_ns()}"
    code = tmp_path / "code.zip"
    with zipfile.ZipFile(code, "w") as z:
        z.writestr("metadata", f"command: python3 -c 'import time; time.sleep(600)' {marker}\n")
    dispatcher = Dispatcher(platform, n_workers=1, threads_per_worker=1)

    def step_running() -> bool:
        found = subprocess.run(["pgrep", "-f", marker], capture_output=True, text=True)
        return bool(found.stdout.strip())

    try:
        platform.register(slug, "ann", LOCAL_ADMIN)
        sid = platform.submit(slug, code, username="ann", actor=LOCAL_ADMIN)
        assert dispatcher.dispatch(sid)
        wait_for(lambda: (dispatcher.tick() or True) and step_running(), 120, "the step to start")
        # What a process without a dispatcher does (a standby service, a terminal).
        platform.cancel_submission(sid, LOCAL_ADMIN)
        assert platform.submission(sid)["status"] == m.CANCELLED
        assert step_running()
        wait_for(lambda: (dispatcher.tick() or True) and not step_running(), 60, "the holder to stop the run")
        assert platform.submission(sid)["status"] == m.CANCELLED
        assert not any(key.startswith(f"submission-{sid}-") for key in dispatcher.default_queue.futures)
    finally:
        dispatcher.close()
        subprocess.run(["pkill", "-f", marker])
        platform.close()


# -- real processes on one database ---------------------------------------------------------------
def _compete(home: Path, db_url: str, *args: str) -> list[str]:
    return [sys.executable, "-m", "hub_extension.cli", "--home", str(home), "--db", db_url,
            "--executor", "process", *args]


def _status_json(home: Path, db_url: str) -> dict:
    proc = subprocess.run(_compete(home, db_url, "dispatcher", "--status", "--json"),
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def dispatcher_process(tmp_path, any_db_url):
    """A platform home on SQLite or PostgreSQL with the demo competition, and `compete dispatcher` running."""
    home = tmp_path / "home"
    created = subprocess.run(_compete(home, any_db_url, "competition", "create", str(DEMO)),
                             capture_output=True, text=True, timeout=120)
    assert created.returncode == 0, created.stderr
    slug = created.stdout.strip().splitlines()[-1]
    log = open(tmp_path / "dispatcher.log", "wb")
    proc = subprocess.Popen(_compete(home, any_db_url, "dispatcher", "--interval", "0.5"),
                            stdout=log, stderr=subprocess.STDOUT)
    log.close()
    try:
        wait_for(lambda: _status_json(home, any_db_url)["pid"] == proc.pid, 120, "the dispatcher to take the lease",
                 lambda: (tmp_path / "dispatcher.log").read_text())
        yield home, any_db_url, slug, proc
    finally:
        terminate(proc)


def test_cli_commands_defer_to_a_running_dispatcher_and_every_run_is_sent_once(dispatcher_process, tmp_path):
    home, db_url, slug, dispatcher = dispatcher_process
    deferral = f"dispatching is done by pid {dispatcher.pid} on "
    zip_path = predictions_zip(tmp_path / "predictions.zip")

    status = subprocess.run(_compete(home, db_url, "dispatcher", "--status"), capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 0, status.stderr
    assert status.stdout.startswith(f"dispatcher: pid {dispatcher.pid} on ")
    assert "last heartbeat:" in status.stdout and "expires in:" in status.stdout

    ids = []
    # Without --wait: no runner of its own, the dispatcher runs it.
    for user, path in (("u1", NOTEBOOK), ("u2", zip_path)):
        proc = subprocess.run(_compete(home, db_url, "submit", slug, str(path), "--user", user),
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr
        line = proc.stdout.strip().splitlines()[-1]
        assert line.endswith(": Submitted"), proc.stdout
        ids.append(int(line.split()[1].rstrip(":")))
        assert deferral in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr
    assert not (home / "runner.log").exists(), "a runner was started while a dispatcher runs"

    # The detached runner, had it been started, leaves at once.
    started = time.monotonic()
    runner = subprocess.run(_compete(home, db_url, "run-pending"), capture_output=True, text=True, timeout=120)
    assert runner.returncode == 0 and deferral in runner.stderr, runner.stderr
    assert time.monotonic() - started < 60

    # With --wait: waits on the database and prints what it always printed.
    proc = subprocess.run(_compete(home, db_url, "submit", slug, str(NOTEBOOK), "--user", "u3", "--wait"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    sid = int(lines[0].split()[1].rstrip(":"))
    assert lines[0] == f"submission {sid}: running"
    assert lines[1] == f"submission {sid}: Finished"
    # Scores are printed under their columns' titles.
    assert [line.split(":")[0] for line in lines[2:]] == ["  Accuracy", "  Macro F1"]
    assert f"{deferral}" in proc.stderr and "waiting on the database" in proc.stderr
    ids.append(sid)

    proc = subprocess.run(_compete(home, db_url, "submit", slug, str(zip_path), "--user", "u4", "--wait", "--json"),
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    last = json.loads(proc.stdout.strip().splitlines()[-1])
    assert set(last) == {"id", "status", "scores", "error", "elapsed"} and last["status"] == "Finished"
    assert deferral in proc.stderr
    ids.append(last["id"])

    platform = Platform(home=str(home), db_url=db_url)
    try:
        wait_for(lambda: all(platform.submission(s)["status"] in m.TERMINAL_STATUSES for s in ids), 300,
                 "the submissions to end", lambda: (tmp_path / "dispatcher.log").read_text()[-3000:])
        for sid in ids:
            info = platform.submission(sid)
            assert info["status"] == m.FINISHED, (info["error"], info["history"])
            assert terminal_changes(platform, sid) == 1, info["history"]
            assert dispatch_count(platform, sid) == 1, info["history"]
            assert [h["status"] for h in info["history"]].count(m.SUBMITTED) == 1, info["history"]
    finally:
        platform.close()

    # Stopped, the dispatcher gives the lease up at once.
    dispatcher.send_signal(signal.SIGTERM)
    dispatcher.wait(60)
    lease = _status_json(home, db_url)
    assert not lease["held"] and lease["pid"] == dispatcher.pid
    status = subprocess.run(_compete(home, db_url, "dispatcher", "--status"), capture_output=True, text=True,
                            timeout=120)
    assert status.returncode == 1 and status.stdout.startswith("dispatcher: none ("), status.stdout


def test_a_waiting_submit_takes_over_when_the_dispatcher_stops(tmp_path):
    home = tmp_path / "home"
    db_url = f"sqlite:///{home / 'compete.sqlite'}"
    home.mkdir()
    created = subprocess.run(_compete(home, db_url, "competition", "create", str(DEMO)),
                             capture_output=True, text=True, timeout=120)
    slug = created.stdout.strip().splitlines()[-1]
    platform = Platform(home=str(home), db_url=db_url)
    holder = Holder.this_process()
    # A dispatcher that holds the lease but sends nothing (a process about to stop).
    assert platform.lease.take(holder, 30)
    waiter = subprocess.Popen(_compete(home, db_url, "submit", slug, str(predictions_zip(tmp_path / "p.zip")),
                                       "--user", "ann", "--wait"),
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        wait_for(lambda: platform.runs.pending_submissions(), 120, "the submission")
        time.sleep(3)
        assert waiter.poll() is None
        assert platform.lease.release(holder)
        out, err = waiter.communicate(timeout=300)
    finally:
        if waiter.poll() is None:
            waiter.kill()
    assert waiter.returncode == 0, err
    assert f"dispatching is done by pid {os.getpid()} on " in err
    lines = out.strip().splitlines()
    assert lines[0].endswith(": running") and lines[1].endswith(": Finished"), out
    sid = int(lines[0].split()[1].rstrip(":"))
    assert dispatch_count(platform, sid) == 1 and terminal_changes(platform, sid) == 1
    assert platform.lease.live() is None, "the waiter released the lease it took"
    platform.close()
