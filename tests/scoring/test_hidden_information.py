"""What a participant can learn about hidden columns from what a board shows them.

A hidden column's key and values never reach a participant. Its order may:
when a hidden column orders the board (the primary column, or a tie-breaker of
a Codabench board) the rows are in its order for everyone, which is how a
board with a secret score is meant to work (README, "Hidden columns"). A
visible column computed from a hidden one shows what the organizer chose to
show, and the organizer is told at import what participants can work out
from it (``hidden_column_disclosures``).
"""
from __future__ import annotations

import json
import random
from datetime import datetime, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.leaderboard import Board, Column, Entry, build_leaderboard, hidden_column_disclosures

T0 = datetime(2026, 1, 1)


def _entries(values: list[tuple[float, float]]) -> list[Entry]:
    return [
        Entry(submission_id=i + 1, participant=f"p{i}", submitted_at=T0 + timedelta(minutes=i),
              status="Finished", scores={"visible": v, "secret": h})
        for i, (v, h) in enumerate(values)
    ]


def _numbers_in(payload: dict) -> set[float]:
    found: set[float] = set()

    def walk(value):
        if isinstance(value, dict):
            for item in value.values():
                walk(item)
        elif isinstance(value, (list, tuple)):
            for item in value:
                walk(item)
        elif isinstance(value, float):
            found.add(value)

    walk(payload)
    return found


# Values that cannot appear in a board by chance: ranks are small integers.
# Hidden values are spaced well beyond the ranking tolerance, so that their order is strict.
secret_values = st.lists(
    st.tuples(st.floats(0.0, 1.0, allow_nan=False), st.integers(0, 2000).map(lambda k: 1000.25 + k * 0.5)),
    min_size=2, max_size=12, unique_by=lambda pair: pair[1],
)


@settings(max_examples=60, deadline=None)
@given(secret_values)
def test_hidden_primary_column_shows_its_order_and_nothing_else(values):
    board = Board(key="main", title="Main", primary_key="secret", columns=(
        Column(key="secret", title="Secret", index=0, sorting="desc", hidden=True),
        Column(key="visible", title="Visible", index=1),
    ))
    entries = _entries(values)
    shown = build_leaderboard(board, entries).to_dict()
    text = json.dumps(shown)
    assert "secret" not in text.lower()
    secrets = {h for _, h in values}
    assert not secrets & _numbers_in(shown)
    # The order is the hidden column's order: allowed and documented.
    by_secret = [e.participant for e in sorted(entries, key=lambda e: -e.scores["secret"])]
    assert [row["participant"] for row in shown["rows"]] == by_secret
    assert shown["primary_key"] is None
    for row in shown["rows"]:
        assert set(row["scores"]) == {"visible"} and set(row["ranks"]) == {"visible"}


@settings(max_examples=60, deadline=None)
@given(secret_values)
def test_hidden_tie_breaker_orders_ties_without_showing_values(values):
    board = Board(key="main", title="Main", primary_key="visible", tie_break_by_columns=True, columns=(
        Column(key="visible", title="Visible", index=0, precision=1),
        Column(key="secret", title="Secret", index=1, hidden=True),
    ))
    shown = build_leaderboard(board, _entries([(0.5, h) for _, h in values])).to_dict()
    assert not {h for _, h in values} & _numbers_in(shown)
    assert all(set(row["ranks"]) == {"visible"} for row in shown["rows"])


def test_rank_computation_over_a_hidden_column_shows_ranks_not_values():
    rng = random.Random(7)
    values = [(rng.random(), 1000 + rng.random()) for _ in range(20)]
    board = Board(key="main", title="Main", primary_key="avg_rank", columns=(
        Column(key="avg_rank", title="Average rank", index=0, sorting="asc",
               computation="rank_avg", source_keys=("visible", "secret")),
        Column(key="visible", title="Visible", index=1),
        Column(key="secret", title="Secret", index=2, hidden=True),
    ))
    shown = build_leaderboard(board, _entries(values)).to_dict()
    assert not {h for _, h in values} & _numbers_in(shown)
    # Shown as a plain column: its definition does not name the hidden key.
    avg = next(c for c in shown["columns"] if c["key"] == "avg_rank")
    assert avg["computation"] is None
    assert "secret" not in json.dumps(shown).lower()
    disclosed = dict(hidden_column_disclosures(board.columns, board.primary_key))
    assert set(disclosed) == {"avg_rank"} and "rank on them" in disclosed["avg_rank"]


def test_value_computation_over_a_hidden_column_is_disclosed_to_the_organizer():
    # max(visible, secret) shows the secret value whenever it is the larger one:
    # the organizer chose to show it, and import says so in words.
    board = Board(key="main", title="Main", columns=(
        Column(key="best", title="Best", index=0, computation="max", source_keys=("visible", "secret")),
        Column(key="visible", title="Visible", index=1),
        Column(key="secret", title="Secret", index=2, hidden=True),
    ))
    disclosed = hidden_column_disclosures(board.columns)
    assert [key for key, _ in disclosed] == ["best"]
    assert "can work out their values" in disclosed[0][1] and "'secret'" in disclosed[0][1]


def test_boards_without_hidden_columns_disclose_nothing():
    columns = (Column(key="a", title="A", index=0),
               Column(key="b", title="B", index=1, computation="avg", source_keys=("a",)))
    assert hidden_column_disclosures(columns) == []


def test_organizers_see_the_hidden_values():
    board = Board(key="main", title="Main", primary_key="secret", columns=(
        Column(key="secret", title="Secret", index=0, hidden=True),
        Column(key="visible", title="Visible", index=1),
    ))
    shown = build_leaderboard(board, _entries([(0.1, 1500.25), (0.2, 1600.75)]), viewer_is_organizer=True)
    assert {1500.25, 1600.75} <= _numbers_in(shown.to_dict())
