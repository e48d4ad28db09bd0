"""Submission limits: total, per UTC day, per-dialect 0, failures not counted, atomic under concurrency."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, LimitReached, Platform

from tests.support.builders import results_zip, simple_spec


def _setup(platform: Platform, tmp_path, dialect="codabench", **phase):
    slug = platform.competitions.insert_competition(simple_spec(dialect, **phase), LOCAL_ADMIN)
    platform.register(slug, "alice", LOCAL_ADMIN)
    return slug, results_zip(tmp_path)


def test_total_limit(platform, tmp_path):
    slug, sub = _setup(platform, tmp_path, max_submissions=2, max_submissions_per_day=None)
    platform.submit(slug, sub, username="alice")
    platform.submit(slug, sub, username="alice")
    with pytest.raises(LimitReached, match="all 2 submissions"):
        platform.submit(slug, sub, username="alice")
    assert platform.submissions_left(slug, "alice") == {"total": 0, "today": None}


def test_daily_limit_resets_at_utc_midnight(platform, tmp_path):
    slug, sub = _setup(platform, tmp_path, max_submissions=10, max_submissions_per_day=1)
    day = dt.datetime(2026, 3, 1, 23, 59)
    platform.submit(slug, sub, username="alice", now=day)
    with pytest.raises(LimitReached, match="today"):
        platform.submit(slug, sub, username="alice", now=day + dt.timedelta(seconds=30))
    platform.submit(slug, sub, username="alice", now=day + dt.timedelta(minutes=2))


def test_failed_submissions_do_not_count(platform, tmp_path):
    slug, sub = _setup(platform, tmp_path, max_submissions=1, max_submissions_per_day=None)
    first = platform.submit(slug, sub, username="alice")
    platform.runs.set_status(first, m.FAILED, error="boom")
    second = platform.submit(slug, sub, username="alice")
    assert second != first
    with pytest.raises(LimitReached):
        platform.submit(slug, sub, username="alice")


def test_cancelled_counts_in_codabench_not_in_codalab(platform, tmp_path):
    for dialect, counts in (("codabench", True), ("codalab", False)):
        slug, sub = _setup(platform, tmp_path, dialect=dialect, max_submissions=1, max_submissions_per_day=None)
        first = platform.submit(slug, sub, username="alice")
        platform.runs.set_status(first, m.CANCELLED)
        if counts:
            with pytest.raises(LimitReached):
                platform.submit(slug, sub, username="alice")
        else:
            platform.submit(slug, sub, username="alice")


def test_zero_per_day_blocks_when_stored_as_zero(platform, tmp_path):
    # CodaLab's 0 per day is read as 0 (closed); Codabench's 0 is read as None (unlimited).
    slug, sub = _setup(platform, tmp_path, dialect="codalab", max_submissions=5, max_submissions_per_day=0)
    with pytest.raises(LimitReached, match="0 per day"):
        platform.submit(slug, sub, username="alice")
    slug2, _ = _setup(platform, tmp_path, max_submissions=5, max_submissions_per_day=None)
    for _ in range(5):
        platform.submit(slug2, sub, username="alice")


def test_unregistered_and_closed_phase_are_refused(platform, tmp_path):
    from hub_extension.app import Forbidden, PlatformError

    slug, sub = _setup(platform, tmp_path, end=dt.datetime(2021, 1, 1))
    with pytest.raises(Forbidden, match="not registered"):
        platform.submit(slug, sub, username="bob")
    with pytest.raises(PlatformError, match="closed"):
        platform.submit(slug, sub, username="alice")


def test_concurrent_submissions_accept_exactly_the_limit(any_platform, tmp_path):
    """20 submissions at once against a limit of 5: exactly 5 accepted, on SQLite and PostgreSQL."""
    slug, sub = _setup(any_platform, tmp_path, max_submissions=5, max_submissions_per_day=None)
    barrier = threading.Barrier(20)
    accepted, refused, errors = [], [], []

    def attempt():
        barrier.wait()
        try:
            accepted.append(any_platform.submit(slug, sub, username="alice"))
        except LimitReached:
            refused.append(1)
        except Exception as exc:  # noqa: BLE001 - any other error fails the test below
            errors.append(repr(exc))

    threads = [threading.Thread(target=attempt) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert len(accepted) == 5 and len(refused) == 15
    with any_platform.db.session() as s:
        from sqlalchemy import func, select

        assert s.scalar(select(func.count(m.Submission.id))) == 5
