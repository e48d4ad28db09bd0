"""The participant's hot path costs what it shows, not what the database holds.

Submission status, submissions left, the competition page, a queue's
positions and the dispatcher's reads of each tick are made of a fixed number
of SQL statements, the same with 200 and with 2,000 more finished submissions
in the competition (counted with a SQLAlchemy event listener), on SQLite and
PostgreSQL; on PostgreSQL, after ANALYZE, none of their statements reads the
submissions, scores, status changes or runs by a sequential scan (EXPLAIN).

The extra submissions are made by the benchmark's bulk insert
(bench/scale.py), which copies what the application wrote for a finished
submission row for row; a test here checks that it does.
"""
from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator

import pytest
from sqlalchemy import event, select, text

from bench.scale import bulk_insert
from hub_extension import models as m
from tests.support.builders import ANN, build_world

# The tables that grow with every submission ever made.
GROWING = ("submissions", "scores", "status_changes", "runs")


@contextlib.contextmanager
def statements(engine) -> Iterator[list[tuple[str, Any]]]:
    """Every statement (with its parameters) the engine sends while the block runs."""
    seen: list[tuple[str, Any]] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - the event's signature
        seen.append((statement, parameters))

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def hot_path(platform, world) -> dict[str, Callable[[], Any]]:
    """The reads a participant's polling and the dispatcher's tick make, by name."""
    waiting = world.subs["ann_waiting"]
    finished = world.subs["ann"]
    return {
        "submission status (waiting)": lambda: platform.submission_view(waiting, ANN),
        "submission status (finished)": lambda: platform.submission_view(finished, ANN),
        "submissions left": lambda: platform.submissions_left(world.slug, ANN.username),
        "competition page": lambda: platform.competition_detail(world.slug, ANN),
        "queue positions": lambda: platform.runs.queue_positions("default"),
        "queues in use": lambda: platform.runs.queues_in_use(),
        "waiting to be sent": lambda: platform.runs.pending_submissions(),
        "sent and unfinished": lambda: platform.runs.dispatched_submissions("default"),
        "fair order of a queue": lambda: platform.runs.fair_queue("default"),
        "recent run times of a queue": lambda: recent_run_seconds(platform),
    }


def recent_run_seconds(platform) -> Any:
    from hub_extension.app.queue_order import typical_run_seconds

    with platform.db.session() as s:
        return typical_run_seconds(s, "default")


def counts(platform, world) -> dict[str, int]:
    found = {}
    for name, call in hot_path(platform, world).items():
        call()  # once to warm what is read once per process
        with statements(platform.db.engine) as seen:
            call()
        found[name] = len(seen)
    return found


def test_the_bulk_insert_writes_what_the_application_writes(platform, tmp_path):
    world = build_world(platform, tmp_path)
    template = world.subs["ben"]
    bulk_insert(platform, 0, 10, template=template)
    with platform.db.session() as s:
        made = s.scalars(select(m.Submission).where(m.Submission.id > world.subs["ann_waiting"])
                         .order_by(m.Submission.id)).all()
        original = s.get(m.Submission, template)
        assert len(made) == 10
        assert {sub.participant.username for sub in made} == {"u0"}
        for sub in made:
            for column in ("phase_id", "kind", "filename", "file_key", "status", "queue", "worker", "selected",
                           "hidden", "baseline", "artifacts", "warnings", "dropped", "dispatch_count"):
                assert getattr(sub, column) == getattr(original, column), column
            assert sub.submitted_at > original.submitted_at
            assert sub.finished_at - sub.submitted_at == original.finished_at - original.submitted_at
            assert [h.status for h in sub.history] == [h.status for h in original.history]
            assert [(r.step, r.status) for r in sub.runs] == [(r.step, r.status) for r in original.runs]
            assert sorted(sc.key for sc in sub.scores) == sorted(sc.key for sc in original.scores)
        assert len({tuple(sorted((sc.key, sc.value) for sc in sub.scores)) for sub in made}) == 10


def test_hot_path_statements_do_not_grow_with_submissions(any_platform, tmp_path):
    world = build_world(any_platform, tmp_path)
    template = world.subs["ben"]
    bulk_insert(any_platform, 0, 200, template=template)
    small = counts(any_platform, world)
    bulk_insert(any_platform, 200, 2200, template=template)
    with any_platform.db.session() as s:
        assert s.scalar(select(m.Submission.id).order_by(m.Submission.id.desc()).limit(1)) > 2200
    large = counts(any_platform, world)
    assert large == small
    assert all(0 < n <= 20 for n in large.values()), large
    # What is waiting is still found, among all the finished ones.
    assert any_platform.runs.queue_positions("default") == {world.subs["ann_waiting"]: 1}
    assert any_platform.runs.queues_in_use() == {"default"}
    assert any_platform.runs.pending_submissions() == [world.subs["ann_waiting"]]


def test_hot_path_uses_indexes_on_postgresql(pg_url, tmp_path):
    from hub_extension.app import Platform

    platform = Platform(home=str(tmp_path / "home"), db_url=pg_url)
    try:
        world = build_world(platform, tmp_path)
        bulk_insert(platform, 0, 5000, template=world.subs["ben"])
        with platform.db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
        scans = {}
        for name, call in hot_path(platform, world).items():
            with statements(platform.db.engine) as seen:
                call()
            plans = []
            raw = platform.db.engine.raw_connection()
            try:
                cursor = raw.cursor()
                for statement, parameters in seen:
                    if not statement.lstrip().upper().startswith("SELECT"):
                        continue
                    cursor.execute("EXPLAIN " + statement, parameters)
                    plans.append("\n".join(row[0] for row in cursor.fetchall()))
            finally:
                raw.close()
            assert plans, name
            scans[name] = [plan for plan in plans if any(f"Seq Scan on {table}" in plan for table in GROWING)]
        assert scans == {name: [] for name in scans}, scans
    finally:
        platform.close()
