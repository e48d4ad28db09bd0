"""Leaderboard answers kept as JSON by their ETag (`readers.Answers`, `readers.answer_json`).

While a board's ETag for a viewer and query is current, the answer is the
kept text and costs one statement (the one that locates the board), the same
with 20 and 400 participants; it is exactly the text a fresh read gives.
Any change the ETag stands for (a new result, a hidden submission, the
phase made blind) gives a new answer; answers naming a baseline's solution
are never kept; the kept texts stay within their byte budget.
"""
from __future__ import annotations

import json

from sqlalchemy import event, update

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor
from hub_extension.service.readers import Answers, answer_json, json_default
from tests.hub_extension.app.test_standings import fill
from tests.support.builders import simple_spec

QUERY = "phase=None&board=None&offset=0&limit=10"


def answer(platform, slug, actor, answers, **kwargs):
    return answer_json(platform.leaderboard_answer, slug, None, actor=actor, board=None, offset=0, limit=10,
                       query=QUERY, answers=answers, **kwargs)


def fresh(platform, slug, actor) -> str:
    etag, data = platform.leaderboard_answer(slug, None, actor=actor, board=None, offset=0, limit=10, query=QUERY)
    return json.dumps(data, default=json_default)


def counted(platform, fn):
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):  # noqa: ANN001 - the event's signature
        seen.append(statement)

    event.listen(platform.db.engine, "before_cursor_execute", listen)
    try:
        return fn(), seen
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", listen)


def test_a_kept_answer_costs_one_statement_at_any_size_and_is_the_fresh_text(any_platform):
    platform = any_platform
    counts = []
    for participants in (20, 400):
        spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
        spec.title = f"Kept {participants}"
        slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
        fill(platform, slug, participants, 3, keys=("accuracy",))
        # Someone at the bottom: a fresh answer reads their own row besides the page.
        viewer = Actor(platform.leaderboard_view(slug, offset=participants - 1)["rows"][-1]["participant"])
        answers = Answers()
        (etag, first), cold = counted(platform, lambda: answer(platform, slug, viewer, answers))
        (etag2, again), warm = counted(platform, lambda: answer(platform, slug, viewer, answers))
        assert etag2 == etag and again == first == fresh(platform, slug, viewer)
        assert len(warm) == 1 < len(cold), (warm, cold)
        # The client's own copy still current: 304, no text.
        (etag3, none), _ = counted(platform, lambda: answer(platform, slug, viewer, answers, if_none_match=[etag]))
        assert etag3 == etag and none is None
        # Another viewer has answers of their own.
        other = Actor("user000000")
        etag4, theirs = answer(platform, slug, other, answers)
        assert etag4 != etag and theirs == fresh(platform, slug, other)
        counts.append((len(cold), len(warm)))
    assert counts[0] == counts[1], counts


def test_a_change_gives_a_new_answer(platform):
    spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    fill(platform, slug, 30, 2, keys=("accuracy",))
    viewer = Actor("user000003")
    answers = Answers()
    etag, before = answer(platform, slug, viewer, answers)
    top = json.loads(before)["rows"][0]
    # The top submission hidden by the organizer: the board changes.
    platform.set_hidden(top["submission"], True, LOCAL_ADMIN)
    etag2, after = answer(platform, slug, viewer, answers)
    assert etag2 != etag and after == fresh(platform, slug, viewer)
    assert json.loads(after)["rows"][0]["submission"] != top["submission"]
    # The phase made blind behind the application's back: its ETag says so, and the rows go.
    with platform.db.session() as s:
        s.execute(update(m.Phase).values(hide_results=True))
    etag3, blind = answer(platform, slug, viewer, answers)
    assert etag3 != etag2 and json.loads(blind)["rows"] == [] and blind == fresh(platform, slug, viewer)


def test_answers_stay_within_their_budget_and_drop_the_least_recently_used():
    answers = Answers(max_bytes=1000)
    for i in range(12):
        answers.put(f'"e{i}"', "x" * 100)
    assert answers.size == 1000 and '"e11"' in answers and '"e1"' not in answers
    assert answers.get('"e2"') == "x" * 100  # used: now the most recent
    answers.put('"e12"', "y" * 100)
    assert answers.get('"e2"') is not None and answers.get('"e3"') is None
    answers.put('"big"', "z" * 200)  # more than an eighth of the budget: never kept
    assert answers.get('"big"') is None and answers.size <= 1000
