"""Maintained probing-resistant boards: `board_rows.shown` equals `scoring.probing.shown_rows` from scratch.

Random histories (the maintained-boards test's steps: submissions, scores,
failures, hides, selections, baselines, removals and reinstatements) on a
board with a display precision or a Ladder, on SQLite and PostgreSQL.  After
every step the kept shown values, ranks and public positions are compared
with the rule applied to every submission of the phase, and a participant's
view of the board with them; an organizer's view keeps the stored ranking.
"""
from __future__ import annotations

import dataclasses

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor
from hub_extension.app.leaderboards import entries
from hub_extension.app.probing import probing_of
from hub_extension.app.standings import board_from_row
from scoring.leaderboard import build_leaderboard
from scoring.probing import shown_rows

from tests.hub_extension.app.test_standings import STEPS, board_specs, make_competition, replay

PROBINGS = st.sampled_from([
    {"display_precision": 1},
    {"ladder": "fixed", "ladder_step": 0.3},
    {"ladder": "fixed", "ladder_step": 0.25, "display_precision": 2},
    {"ladder": "parameter_free"},
])


def check(platform, slug: str) -> None:
    with platform.db.session() as s:
        comp = s.scalars(select(m.Competition).where(m.Competition.slug == slug)).one()
        ph, db_board = comp.phases[0], comp.leaderboards[0]
        board, probing = board_from_row(db_board, ph), probing_of(db_board)
        everything = entries(s, ph)
        kept = {r.submission_id: r.shown for r in s.scalars(select(m.BoardRow).where(
            m.BoardRow.phase_id == ph.id, m.BoardRow.leaderboard_id == db_board.id))}
    full = build_leaderboard(board, everything, viewer_is_organizer=True)
    expected = shown_rows(board, probing, full.rows, everything)
    assert kept == expected
    public = sorted(expected.items(), key=lambda item: item[1]["position"])
    view = platform.leaderboard_view(slug, actor=Actor("nobody"))
    if view["rows"]:
        keys = [c["key"] for c in view["columns"]]
        assert [(r["rank"], r["submission"], r["scores"], r["ranks"]) for r in view["rows"]] == [
            (shown["position"], shown.get("submission", sid), {k: shown["scores"][k] for k in keys},
             {k: shown["ranks"][k] for k in keys})
            for sid, shown in public]
    organizer = platform.leaderboard_view(slug, actor=LOCAL_ADMIN)
    assert [(r["rank"], r["submission"]) for r in organizer["rows"]] == [(r.rank, r.submission_id) for r in full.rows]
    assert all(r["shown"]["rank"] == expected[r["submission"]]["position"] for r in organizer["rows"])


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(board_spec=board_specs(), probing=PROBINGS, steps=st.lists(STEPS, min_size=1, max_size=20))
def test_maintained_shown_values_equal_the_rule_from_scratch(any_platform, board_spec, probing, steps):
    platform = any_platform
    slug = make_competition(platform, dataclasses.replace(board_spec, **probing), "codabench")
    replay(platform, slug, steps, check)
