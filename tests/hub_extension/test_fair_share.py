"""Fair share on a real queue: the default queue's own process (scheduler and workers), the real
dispatcher with its thread, the process executor, the demo competition's scoring program.

One participant's fifty submissions do not hold back three others' one each,
and a phase's `max_concurrent_submissions` keeps one participant to that many
runs at once while the others use the free worker slots.  Waiting submissions
show their queue position and, once runs have finished, an estimated start.
"""
from __future__ import annotations

import datetime as dt
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select, update

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.contract import Status

from tests.support.components import wait_for

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"
PREDICTIONS = DEMO / "sample_submissions" / "constant" / "predictions.csv"
SLOTS = 2  # one worker process with two threads


class Stack:
    def __init__(self, home: Path, tmp: Path):
        from hub_extension.dispatch import Dispatcher

        self.platform = Platform(home=str(home))
        self.platform.config.executor = "process"
        self.slug, _ = self.platform.create_competition(DEMO, LOCAL_ADMIN)
        with self.platform.db.session() as s:
            s.execute(update(m.Phase).values(max_submissions=None, max_submissions_per_day=None))
        self.zip = tmp / "predictions.zip"
        with zipfile.ZipFile(self.zip, "w") as zf:
            zf.write(PREDICTIONS, "predictions.csv")
        self.dispatcher = Dispatcher(self.platform, n_workers=1, threads_per_worker=SLOTS, dispatch_seconds=0.5)
        self.users: set[str] = set()

    def submit(self, user: str) -> int:
        if user not in self.users:
            self.platform.register(self.slug, user, LOCAL_ADMIN)
            self.users.add(user)
        return self.platform.submit(self.slug, self.zip, username=user, actor=LOCAL_ADMIN)

    def rows(self, sids: list[int]) -> dict[int, m.Submission]:
        with self.platform.db.session() as s:
            found = s.scalars(select(m.Submission).where(m.Submission.id.in_(sids))).all()
            s.expunge_all()
        return {sub.id: sub for sub in found}

    def wait_all(self, sids: list[int], timeout: float) -> dict[int, m.Submission]:
        wait_for(lambda: all(r.status in Status.TERMINAL for r in self.rows(sids).values()), timeout,
                 "every submission to end", lambda: str({r.id: r.status for r in self.rows(sids).values()}))
        rows = self.rows(sids)
        assert {r.status for r in rows.values()} == {Status.FINISHED}, {r.id: r.error for r in rows.values()}
        return rows

    def close(self) -> None:
        self.dispatcher.close()
        self.platform.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("fair-home"), tmp_path_factory.mktemp("fair-files"))
    yield stack
    stack.close()


def test_three_single_submissions_start_before_the_fiftieth_of_one_participant(stack):
    stack.dispatcher.start()
    many = [stack.submit("busy") for _ in range(50)]
    wait_for(lambda: sum(r.status == Status.FINISHED for r in stack.rows(many).values()) >= 3, 120,
             "three runs to finish")
    # The busy participant's runs are under way when the others come: they still go next, since the
    # dispatcher sends only what free slots take, so the rest of the fifty waits on the platform, in order.
    arrived = m.utcnow()
    few = [stack.submit(user) for user in ("ann", "ben", "cat")]
    views = {sid: stack.platform.submission_view(sid, LOCAL_ADMIN) for sid in (*few, many[-1])}
    # (Each view reads on its own: one of the three may already be taken by a worker, without a position.)
    if all(v["status"] == Status.SUBMITTED and v["queue_position"] for v in views.values()):
        assert max(views[sid]["queue_position"] for sid in few) < views[many[-1]]["queue_position"], views
    # Runs have finished on a queue with workers: the last of the fifty, far down the line, has an
    # estimated start.
    last = views[many[-1]]
    assert last["status"] == Status.SUBMITTED and last["queue_position"] > 3, last
    assert last["estimated_start"] is not None, last
    assert dt.datetime.fromisoformat(last["estimated_start"]) >= dt.datetime.fromisoformat(last["submitted_at"])

    rows = stack.wait_all(many + few, 300)
    started = {sid: rows[sid].started_at for sid in many + few}
    assert all(started.values()), started
    fiftieth = started[many[-1]]
    for sid in few:
        assert started[sid] < fiftieth, (sid, started[sid], fiftieth)
    # Next, not merely before the last: at most the runs already sent when they came started in between.
    between = [sid for sid in many if arrived <= started[sid] < max(started[f] for f in few)]
    assert len(between) <= 2 * SLOTS, (len(between), started)
    done = stack.platform.submission_view(few[0], LOCAL_ADMIN)
    assert done["queue_position"] is None and done["estimated_start"] is None


def test_a_phase_limit_keeps_one_participant_at_one_run_while_others_proceed(stack):
    with stack.platform.db.session() as s:
        s.execute(update(m.Phase).values(max_concurrent_submissions=1))
    try:
        held = [stack.submit("eager") for _ in range(6)]
        others = [stack.submit(user) for user in ("dan", "eve", "dan", "eve", "dan", "eve")]
        # The eager participant's second is held, and says why.
        second = stack.platform.submission_view(held[1], LOCAL_ADMIN)
        if second["status"] == Status.SUBMITTED and second["dispatch_count"] == 0:
            assert second["waiting"]["held"] and "held" in second["waiting"]["note"]
        rows = stack.wait_all(held + others, 240)
    finally:
        with stack.platform.db.session() as s:
            s.execute(update(m.Phase).values(max_concurrent_submissions=None))

    def spans(sids: list[int]) -> list[tuple[dt.datetime, dt.datetime]]:
        """When each was taken by a worker (its first Preparing) until it ended."""
        out = []
        with stack.platform.db.session() as s:
            for sid in sids:
                taken = s.scalar(select(m.StatusChange.at).where(m.StatusChange.submission_id == sid,
                                                                 m.StatusChange.status == Status.PREPARING)
                                 .order_by(m.StatusChange.at).limit(1))
                out.append((taken, rows[sid].finished_at))
        return out

    eager = sorted(spans(held))
    for (_, end), (start, _) in zip(eager, eager[1:]):
        assert end <= start, eager  # never two of the eager participant's at once
    # The others used the free slot meanwhile: some of their runs overlap the eager participant's.
    assert any(o_start < e_end and e_start < o_end
               for o_start, o_end in spans(others) for e_start, e_end in eager), (eager, spans(others))
