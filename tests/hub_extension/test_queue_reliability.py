"""No submission is ever stuck: workers die, the platform dies, the scheduler dies, queues run empty.

Real processes throughout: `compete dispatcher` (which supervises the queue's
scheduler process), `compete worker` processes attached with the queue's
credentials, killed with SIGKILL.
"""
from __future__ import annotations

import os
import random
import signal
import time

import pytest

from hub_extension import models as m
from hub_extension.queues import SchedulerSupervisor

from tests.support.queues import QueueLab, run_attempts, terminal_changes

pytestmark = pytest.mark.timeout(600)


@pytest.fixture
def lab(tmp_path):
    lab = QueueLab(tmp_path / "home")
    yield lab
    lab.close()


def _queue_for(lab: QueueLab, tmp_path, title: str, queue: str) -> str:
    slug = lab.competition(title, tmp_path)
    lab.platform.create_queue(queue, competition=slug)
    return slug


def _credentials(lab: QueueLab, queue: str):
    return lab.home / "queues" / queue / "worker-credentials.json"


def _worker_of(lab: QueueLab, sid: int) -> str | None:
    return lab.platform.submission(sid)["worker"]


def test_a_queue_without_workers_shows_its_waiting_submissions(lab, tmp_path):
    slug = _queue_for(lab, tmp_path, "Empty Queue", "empty")
    lab.start_dispatcher()
    sids = [lab.submit(slug, tmp_path) for _ in range(3)]
    lab.wait_for(lambda: lab.platform.queue_detail("empty")["connected"], 60, "the dispatcher to reach the queue")
    time.sleep(1.5)
    for position, sid in enumerate(sids, start=1):
        info = lab.platform.submission(sid)
        assert info["status"] == m.SUBMITTED
        assert info["waiting"]["position"] == position
        assert "no worker is attached" in info["waiting"]["note"]
    detail = lab.platform.queue_detail("empty")
    assert [w["id"] for w in detail["waiting"]] == sids
    assert detail["workers"] == [] and "no worker is attached" in detail["note"]
    # A worker attaches: everything waiting runs.
    lab.start_worker(_credentials(lab, "empty"), "late")
    lab.wait_terminal(sids, 120)
    assert all(lab.status(s) == m.FINISHED for s in sids)
    assert {_worker_of(lab, s) for s in sids} == {"late"}


def test_a_worker_killed_mid_run_is_replaced_then_the_run_fails_with_the_reason(lab, tmp_path):
    slug = _queue_for(lab, tmp_path, "Dying Workers", "dying")
    creds = _credentials(lab, "dying")
    lab.start_dispatcher()
    lab.start_worker(creds, "first")
    sid = lab.submit(slug, tmp_path, sleep=120)
    lab.wait_for(lambda: _worker_of(lab, sid) == "first" and lab.status(sid) == m.SCORING, 120, "the run on 'first'")
    lab.start_worker(creds, "second")
    lab.wait_for(lambda: len(lab.platform.queue_detail("dying")["workers"]) == 2, 60, "the second worker")
    lab.kill_worker("first")
    # Retried once, on the other worker.
    lab.wait_for(lambda: _worker_of(lab, sid) == "second" and lab.status(sid) == m.SCORING, 120, "the retry on 'second'")
    lab.kill_worker("second")
    lab.wait_terminal([sid], 120)
    info = lab.platform.submission(sid)
    assert info["status"] == m.FAILED
    assert "died" in info["error"] and "not retried again" in info["error"], info["error"]
    notes = [h["note"] for h in info["history"] if h["status"] == m.PREPARING]
    assert notes == ["first", "second"]


def test_the_platform_killed_mid_run_follows_its_runs_again(lab, tmp_path):
    slug = _queue_for(lab, tmp_path, "Platform Restart", "restart")
    creds = _credentials(lab, "restart")
    lab.start_dispatcher()
    lab.start_worker(creds, "w1", nthreads=2)
    lab.start_worker(creds, "w2", nthreads=2)
    sids = [lab.submit(slug, tmp_path, sleep=6) for _ in range(6)]
    lab.wait_for(lambda: sum(lab.status(s) == m.SCORING for s in sids) >= 2, 120, "runs to start")
    lab.kill_dispatcher()
    started = {s for s in sids if lab.status(s) != m.SUBMITTED}
    time.sleep(3)
    lab.start_dispatcher()
    lab.wait_terminal(sids, 180)
    for sid in sids:
        info = lab.platform.submission(sid)
        assert info["status"] == m.FINISHED, (info["error"], info["history"], lab.diagnostics())
        assert terminal_changes(lab.platform, sid) == 1
        assert run_attempts(lab.platform, sid) == {1}
    # Runs in progress during the restart were followed, not sent again.
    for sid in started:
        history = [h["status"] for h in lab.platform.submission(sid)["history"]]
        assert history.count(m.SUBMITTED) == 1, history


def test_a_scheduler_killed_mid_run_comes_back_and_its_runs_are_sent_again(lab, tmp_path):
    slug = _queue_for(lab, tmp_path, "Scheduler Restart", "sched")
    lab.start_dispatcher()
    lab.start_worker(_credentials(lab, "sched"), "steady", nthreads=2)
    sids = [lab.submit(slug, tmp_path, sleep=5) for _ in range(3)]
    lab.wait_for(lambda: any(lab.status(s) == m.SCORING for s in sids), 120, "a run to start")
    supervisor = SchedulerSupervisor(lab.platform)
    pid = supervisor.pid("sched")
    os.kill(pid, signal.SIGKILL)
    lab.wait_terminal(sids, 240)
    assert supervisor.pid("sched") not in (None, pid), "the scheduler was not restarted"
    for sid in sids:
        info = lab.platform.submission(sid)
        assert info["status"] == m.FINISHED, info
        assert terminal_changes(lab.platform, sid) == 1
    assert any("sent again" in (h["note"] or "") for s in sids for h in lab.platform.submission(s)["history"])


def test_a_gpu_phase_runs_only_on_workers_that_declared_gpus(lab, tmp_path):
    """Routing only: there is no GPU here, so the workers declare one (`--gpus 1`) and steps run on
    the process executor.  Passing the device request to Docker is tested with the docker executor."""
    slug = _queue_for(lab, tmp_path, "Gpu Phase", "gpus")
    with lab.platform.db.session() as s:
        for phase in s.query(m.Phase).join(m.Competition).filter(m.Competition.slug == slug):
            phase.gpus = 1
    creds = _credentials(lab, "gpus")
    lab.start_dispatcher()
    lab.start_worker(creds, "cpu-only", nthreads=2)
    sids = [lab.submit(slug, tmp_path) for _ in range(3)]
    lab.wait_for(lambda: len(lab.platform.queue_detail("gpus")["workers"]) == 1, 60, "the CPU worker")
    time.sleep(3)
    assert all(lab.status(s) == m.SUBMITTED for s in sids), "a GPU run started on a machine without GPUs"
    lab.start_worker(creds, "gpu-box", gpus=1)
    lab.wait_terminal(sids, 120)
    assert all(lab.status(s) == m.FINISHED for s in sids)
    assert {_worker_of(lab, s) for s in sids} == {"gpu-box"}
    gpu = [w for w in lab.platform.queue_detail("gpus")["workers"] if w["name"] == "gpu-box"]
    assert gpu and gpu[0]["resources"] == {"GPU": 1.0}


def test_fifty_submissions_with_random_worker_kills_all_end_and_none_is_recorded_twice(lab, tmp_path):
    slug = _queue_for(lab, tmp_path, "Chaos", "chaos")
    creds = _credentials(lab, "chaos")
    lab.start_dispatcher()
    count = 0

    def add_worker():
        nonlocal count
        count += 1
        lab.start_worker(creds, f"chaos-{count}", nthreads=2)

    for _ in range(3):
        add_worker()
    rng = random.Random(20261130)
    sids = [lab.submit(slug, tmp_path, sleep=rng.choice([0, 0.5, 1, 2])) for _ in range(50)]
    deadline = time.monotonic() + 420
    kills = 0
    while time.monotonic() < deadline and not all(lab.status(s) in m.TERMINAL_STATUSES for s in sids):
        time.sleep(rng.uniform(1.0, 2.5))
        if kills < 12 and lab.workers:
            lab.kill_worker(rng.choice(sorted(lab.workers)))
            kills += 1
            add_worker()
    lab.wait_terminal(sids, 120)
    statuses = [lab.status(s) for s in sids]
    assert all(s in m.TERMINAL_STATUSES for s in statuses)
    assert kills >= 5
    for sid in sids:
        assert terminal_changes(lab.platform, sid) == 1, lab.platform.submission(sid)["history"]
        assert len(run_attempts(lab.platform, sid)) <= 1
        info = lab.platform.submission(sid)
        if info["status"] == m.FAILED:
            assert "died" in info["error"], info["error"]
    assert statuses.count(m.FINISHED) >= 40, statuses
    print(f"50 submissions, {kills} workers killed: {statuses.count(m.FINISHED)} finished, "
          f"{statuses.count(m.FAILED)} failed (their workers died twice), 0 left running or waiting")


def test_containers_of_a_killed_worker_are_removed_when_a_worker_starts_again(lab, tmp_path, docker_engine,
                                                                               runtime_image):
    from dask_workers.executors.docker import LABEL_SUBMISSION

    slug = _queue_for(lab, tmp_path, "Docker Orphans", "orphans")
    creds = _credentials(lab, "orphans")
    lab.start_dispatcher()
    lab.start_worker(creds, "doomed", executor="docker")
    sid = lab.submit(slug, tmp_path, sleep=300)
    label = {"label": f"{LABEL_SUBMISSION}={sid}"}
    lab.wait_for(lambda: bool(docker_engine.containers.list(filters=label)), 120, "the step's container")
    (orphan,) = docker_engine.containers.list(filters=label)
    lab.kill_worker("doomed")
    time.sleep(1)
    orphan.reload()
    assert orphan.status == "running", "the container should outlive its killed worker"
    lab.start_worker(creds, "next", executor="docker")

    def removed() -> bool:
        return orphan.id not in {c.id for c in docker_engine.containers.list(all=True, filters=label)}

    lab.wait_for(removed, 120, "the orphaned container to be removed")
    # The run itself was retried on the new worker, in a container of its own.
    lab.wait_for(lambda: _worker_of(lab, sid) == "next", 60, "the retry on 'next'")
    lab.platform.runs.set_status(sid, m.CANCELLED, note="test over")
    lab.kill_worker("next")
    for container in docker_engine.containers.list(all=True, filters=label):
        container.remove(force=True)
    lab.kill_worker("next")
