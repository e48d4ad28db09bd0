"""A competition's and the platform's statistics: exact tables from submissions of known statuses and times.

Submissions are made through the application, then their times are set to
known values (submitted, first reported by a worker, finished) so that every
count, rate and percentile can be written down; on SQLite and PostgreSQL.
"""
from __future__ import annotations

import datetime as dt

import pytest
from sqlalchemy import delete, select, update

from bench.scale import bulk_insert
from hub_extension import models as m
from hub_extension.app import Forbidden, NotFound
from hub_extension.app.statistics import failure_reason
from tests.hub_extension.test_hot_path import statements
from tests.support.builders import ADMIN, ANN, BEN, NORA, ORGANIZER, OTHER_ORGANIZER, build_world, results_zip

DAY1 = dt.datetime(2030, 3, 1, 10, 0)
DAY2 = dt.datetime(2030, 3, 2, 9, 0)


def as_dicts(found: dict) -> list[dict]:
    return [dict(zip(found["columns"], row)) for row in found["rows"]]


def set_times(platform, sid: int, submitted: dt.datetime, *, wait: float | None = None,
              run: float | None = None) -> None:
    """Submission `sid` submitted at `submitted`, first reported `wait` seconds later, ended `run` seconds after."""
    with platform.db.session() as s:
        s.execute(delete(m.StatusChange).where(m.StatusChange.submission_id == sid,
                                               m.StatusChange.status.in_((m.PREPARING, m.RUNNING, m.SCORING))))
        values = {"submitted_at": submitted}
        if wait is not None:
            picked = submitted + dt.timedelta(seconds=wait)
            s.add(m.StatusChange(submission_id=sid, status=m.PREPARING, at=picked))
            s.add(m.StatusChange(submission_id=sid, status=m.RUNNING, at=picked + dt.timedelta(seconds=1)))
            if run is not None:
                values["finished_at"] = picked + dt.timedelta(seconds=run)
        s.execute(update(m.Submission).where(m.Submission.id == sid).values(**values))


def fail(platform, sid: int, error: str) -> None:
    assert platform.runs.record_result(sid, {"status": "Failed", "error": error, "scores": {}, "tasks": []})


@pytest.fixture
def stats_world(any_platform, tmp_path):
    """`secrets` with 8 submissions over two days (known times and statuses); `other` with one."""
    platform = any_platform
    world = build_world(platform, tmp_path)
    upload = results_zip(tmp_path)
    with platform.db.session() as s:
        s.execute(update(m.Participant).where(m.Participant.username == "ann").values(registered_at=DAY1))
        s.execute(update(m.Participant).where(m.Participant.username == "ben").values(registered_at=DAY2))
    subs = dict(world.subs)
    made = [platform.submit(world.slug, upload, username=who.username, actor=who) for who in (ANN, BEN, BEN, ANN, BEN)]
    fail(platform, made[0], "Traceback (most recent call last):\n  File x\nValueError: bad")
    fail(platform, made[1], "scoring program exited with code 1 after 12.5 s\nmore")
    fail(platform, made[2], "scoring program exited with code 137 after 600 s")
    platform.cancel_submission(made[3], ORGANIZER)
    # made[4] waits, never picked up
    other = platform.submit(world.other_slug, upload, username="ann", actor=ANN) if platform.register(
        world.other_slug, "ann", ANN, accept_terms=True) else None
    # day 1: ann's finished (wait 10 s, run 100 s), ann's waiting, made[0] failed (wait 20, run 50), made[3] cancelled
    set_times(platform, subs["ann"], DAY1, wait=10, run=100)
    set_times(platform, subs["ann_waiting"], DAY1 + dt.timedelta(hours=1))
    set_times(platform, made[0], DAY1 + dt.timedelta(hours=2), wait=20, run=50)
    set_times(platform, made[3], DAY1 + dt.timedelta(hours=3))
    # day 2: ben's finished (wait 40, run 400), made[1] (wait 5000, run 5), made[2] (wait 30, run 600), made[4] waiting
    set_times(platform, subs["ben"], DAY2, wait=40, run=400)
    set_times(platform, made[1], DAY2 + dt.timedelta(hours=1), wait=5000, run=5)
    set_times(platform, made[2], DAY2 + dt.timedelta(hours=2), wait=30, run=600)
    set_times(platform, made[4], DAY2 + dt.timedelta(hours=3))
    return platform, world, other


def test_a_competitions_statistics_count_each_day_status_reason_and_duration(stats_world):
    platform, world, _ = stats_world
    stats = platform.competition_statistics(world.slug, ORGANIZER)

    assert stats["per_day"]["columns"] == ["day", "submitted", "preparing", "running", "scoring", "finished",
                                           "failed", "cancelled", "total"]
    assert stats["per_day"]["rows"] == [["2030-03-01", 1, 0, 0, 0, 1, 1, 1, 4],
                                        ["2030-03-02", 1, 0, 0, 0, 1, 2, 0, 4]]
    summary = dict(stats["summary"]["rows"])
    assert summary["submissions"] == 8 and summary["failed"] == 3 and summary["finished"] == 2
    assert summary["failure_rate"] == 0.6  # 3 failed of 5 ended (cancelled ones do not count)
    assert summary["participants"] == 2

    assert as_dicts(stats["participants"]) == [
        {"day": "2030-03-01", "registered": 1, "registered_total": 1, "submitting": 1},
        {"day": "2030-03-02", "registered": 1, "registered_total": 2, "submitting": 1},
    ]

    failures = as_dicts(stats["failures"])
    assert [(f["reason"], f["count"]) for f in failures] == [
        ("scoring program exited with code N after N s", 2),
        ("Traceback (most recent call last):", 1),
    ]
    assert failures[0]["share"] == round(2 / 3, 4)

    durations = {row["measure"]: row for row in as_dicts(stats["durations"])}
    # waiting: 10, 20, 30, 40, 5000 -> p50 = 3rd = 30, p90 = p99 = max = 5000
    assert durations["waiting"] == {"measure": "waiting", "count": 5, "mean_s": 1020.0, "p50_s": 30.0,
                                    "p90_s": 5000.0, "p99_s": 5000.0, "max_s": 5000.0}
    # running (finished and failed only): 5, 50, 100, 400, 600
    assert durations["running"] == {"measure": "running", "count": 5, "mean_s": 231.0, "p50_s": 100.0,
                                    "p90_s": 600.0, "p99_s": 600.0, "max_s": 600.0}
    histogram = {row["bucket"]: (row["waiting"], row["running"]) for row in as_dicts(stats["histogram"])}
    assert histogram["< 10 s"] == (0, 1) and histogram["10–30 s"] == (2, 0) and histogram["30 s–1 min"] == (2, 1)
    assert histogram["1–5 min"] == (0, 1) and histogram["5–15 min"] == (0, 2) and histogram["1–4 h"] == (1, 0)
    assert sum(w for w, _ in histogram.values()) == 5


def test_the_platform_statistics_add_queues_and_every_competition(stats_world):
    platform, world, other = stats_world
    with platform.db.session() as s:
        s.add(m.QueueState(name="default", connected=True, workers=[{"name": "w1"}, {"name": "w2"}]))
        s.add(m.QueueState(name="gpus", connected=False, workers=[]))
    with platform.db.session() as s:
        s.execute(update(m.Submission).where(m.Submission.status == m.SUBMITTED).values(queue="default"))
    stats = platform.platform_statistics(ADMIN)
    assert dict(stats["summary"]["rows"])["submissions"] == 9
    queues = {row["queue"]: row for row in as_dicts(stats["queues"])}
    assert (queues["default"]["workers"], queues["default"]["connected"], queues["default"]["waiting"]) == (2, True, 3)
    assert (queues["gpus"]["workers"], queues["gpus"]["waiting"]) == (0, 0)
    comps = {row["competition"]: row for row in as_dicts(stats["competitions"])}
    assert (comps[world.slug]["submissions"], comps[world.slug]["failed"], comps[world.slug]["participants"]) == (8, 3, 2)
    assert (comps[world.other_slug]["submissions"], comps[world.other_slug]["participants"]) == (1, 1)


def test_statistics_are_kept_a_while_then_until_the_database_changes(platform, tmp_path):
    world = build_world(platform, tmp_path)
    first = platform.competition_statistics(world.slug, ORGANIZER)
    assert first["computed_at"] <= m.utcnow().isoformat()
    platform.submit(world.slug, results_zip(tmp_path), username="ben", actor=BEN)
    # Within `fresh_for` seconds, the answer stands (it says when it was made).
    assert platform.competition_statistics(world.slug, ORGANIZER) == first
    platform.statistics.fresh_for = 0
    again = platform.competition_statistics(world.slug, ORGANIZER)
    assert again["version"] != first["version"]
    assert dict(again["summary"]["rows"])["submissions"] == dict(first["summary"]["rows"])["submissions"] + 1
    assert platform.competition_statistics(world.slug, ORGANIZER) == again  # nothing changed since


def test_an_empty_competition_has_empty_tables(platform, tmp_path):
    world = build_world(platform, tmp_path)
    stats = platform.competition_statistics(world.other_slug, OTHER_ORGANIZER)
    for name in ("per_day", "participants", "failures"):
        assert stats[name]["rows"] == [], name
    assert dict(stats["summary"]["rows"]) == {"submissions": 0, "submitted": 0, "preparing": 0, "running": 0,
                                              "scoring": 0, "finished": 0, "failed": 0, "cancelled": 0,
                                              "failure_rate": None, "participants": 0}
    assert [row[:2] for row in stats["durations"]["rows"]] == [["waiting", 0], ["running", 0]]
    assert all(row[1:] == [0, 0] for row in stats["histogram"]["rows"])


def test_only_the_organizers_and_admins_see_statistics(platform, tmp_path):
    world = build_world(platform, tmp_path)
    assert platform.competition_statistics(world.slug, ADMIN)["competition"] == world.slug
    for actor in (ANN, NORA, OTHER_ORGANIZER):
        with pytest.raises(Forbidden):
            platform.competition_statistics(world.slug, actor)
        with pytest.raises(Forbidden):
            platform.platform_statistics(actor)
    with pytest.raises(Forbidden):
        platform.platform_statistics(ORGANIZER)
    with pytest.raises(NotFound):
        platform.competition_statistics("nope", ADMIN)
    with pytest.raises(NotFound, match="the tables are summary, per_day"):
        platform.statistics_table("everything", ORGANIZER, world.slug)
    with pytest.raises(Forbidden):
        platform.statistics_table("everything", ANN, world.slug)
    with pytest.raises(Forbidden):
        platform.statistics_table("everything", ORGANIZER)
    assert platform.statistics_table("queues", ADMIN)["columns"][0] == "queue"


@pytest.mark.parametrize("message, reason", [
    (None, "(no reason recorded)"),
    ("\n  \n", "(no reason recorded)"),
    ("  the step took longer than 600 s  \nkilled", "the step took longer than N s"),
    ("container 3f9a2b1c exited 137 after 12.5s in python3", "container N exited N after Ns in python3"),
    ("x" * 500, "x" * 200),
])
def test_a_failure_reason_is_the_first_line_with_numbers_made_alike(message, reason):
    assert failure_reason(message) == reason


def test_statistics_statements_do_not_grow_with_submissions(any_platform, tmp_path):
    world = build_world(any_platform, tmp_path)
    template = world.subs["ben"]
    calls = {"competition": lambda: any_platform.competition_statistics(world.slug, ORGANIZER),
             "platform": lambda: any_platform.platform_statistics(ADMIN)}

    def counted() -> dict[str, int]:
        found = {}
        for name, call in calls.items():
            any_platform.statistics._cache.clear()
            with statements(any_platform.db.engine) as seen:
                call()
            found[name] = len(seen)
        return found

    bulk_insert(any_platform, 0, 200, template=template)
    small = counted()
    bulk_insert(any_platform, 200, 2200, template=template)
    large = counted()
    assert large == small and all(n <= 15 for n in large.values()), large
    any_platform.statistics.fresh_for = 0  # past a change at once: the version is read each time
    stats = calls["competition"]()
    assert dict(stats["summary"]["rows"])["submissions"] == 3 + 2200
    with statements(any_platform.db.engine) as seen:
        assert calls["competition"]() == stats
    assert len(seen) == 2  # the competition, and the version that says nothing changed
