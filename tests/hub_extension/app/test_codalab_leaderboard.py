"""A CodaLab v1.5 competition's leaderboard through the application layer: Avg of ranks, manual choice."""
from __future__ import annotations

import datetime as dt

import pytest

from hub_extension.app import LOCAL_ADMIN, Actor, LimitReached

from tests.support.builders import results_zip
from tests.support.paths import BUNDLE_FIXTURES

IN_PHASE_1 = dt.datetime(2024, 2, 1)
FIXTURE = BUNDLE_FIXTURES / "good" / "codalab_results"


def test_average_rank_orders_the_board(platform, tmp_path):
    slug, _ = platform.create_competition(FIXTURE, LOCAL_ADMIN)
    sub = results_zip(tmp_path)
    scores = {"ann": {"correct": 1, "accuracy": 0.9}, "ben": {"correct": 0, "accuracy": 0.95},
              "cat": {"correct": 0, "accuracy": 0.5}}
    for user, values in scores.items():
        platform.register(slug, user, LOCAL_ADMIN)
        sid = platform.submit(slug, sub, username=user, phase=1, actor=LOCAL_ADMIN, now=IN_PHASE_1)
        platform.runs.record_scores(sid, values)
        # CodaLab's default rule: the participant chooses the submission to show.
        platform.select_for_leaderboard(sid, Actor(user))
    board = platform.leaderboard(slug, phase=1, actor=Actor("ann"))
    # ranks: correct ann 1, ben/cat 2; accuracy ben 1, ann 2, cat 3 -> avg ann 1.5, ben 1.5, cat 2.5
    avg = {row["participant"]: row["scores"]["avg_rank"] for row in board["rows"]}
    assert avg == pytest.approx({"ann": 1.5, "ben": 1.5, "cat": 2.5})
    assert board["rows"][-1]["participant"] == "cat"
    assert board["columns"][0]["key"] == "avg_rank"


def test_forced_submission_shows_the_latest(platform, tmp_path):
    # The fixture sets force_submission_to_leaderboard: the latest finished submission is shown.
    slug, _ = platform.create_competition(FIXTURE, LOCAL_ADMIN)
    platform.register(slug, "dan", LOCAL_ADMIN)
    sub = results_zip(tmp_path)
    first = platform.submit(slug, sub, username="dan", phase=1, actor=LOCAL_ADMIN, now=IN_PHASE_1)
    platform.runs.record_scores(first, {"correct": 1, "accuracy": 1.0})
    second = platform.submit(slug, sub, username="dan", phase=1, actor=LOCAL_ADMIN,
                             now=IN_PHASE_1 + dt.timedelta(hours=1))
    platform.runs.record_scores(second, {"correct": 0, "accuracy": 0.2})
    rows = platform.leaderboard(slug, phase=1)["rows"]
    assert [(r["participant"], r["submission"]) for r in rows] == [("dan", second)]


def test_blind_phase_shows_participants_nothing(platform, tmp_path):
    # Phase 2 of the fixture is `hide_results` (and closed to new submissions:
    # CodaLab's max_submissions_per_day 0); an organizer reran a submission there.
    slug, _ = platform.create_competition(FIXTURE, LOCAL_ADMIN)
    with pytest.raises(LimitReached, match="0 per day"):
        platform.register(slug, "eve", LOCAL_ADMIN)
        platform.submit(slug, results_zip(tmp_path), username="eve", phase=2, actor=LOCAL_ADMIN,
                        now=dt.datetime(2024, 7, 1))
    first = platform.submit(slug, results_zip(tmp_path), username="eve", phase=1, actor=LOCAL_ADMIN, now=IN_PHASE_1)
    with platform.db.session() as s:
        from hub_extension import models as m

        sub = s.get(m.Submission, first)
        final = s.query(m.Phase).filter_by(competition_id=sub.phase.competition_id, name="Final").one()
        sub.phase_id = final.id
    platform.runs.record_scores(first, {"correct": 1, "accuracy": 0.7})
    assert platform.leaderboard(slug, phase=2, actor=Actor("eve"))["rows"] == []
    assert len(platform.leaderboard(slug, phase=2, actor=LOCAL_ADMIN)["rows"]) == 1
