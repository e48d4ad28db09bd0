"""Leaderboard assembly by example: columns, ordering, rules, visibility."""

from datetime import datetime, timedelta, timezone

import pytest

from scoring.leaderboard import (
    BLIND_NOTE,
    Board,
    Column,
    Entry,
    build_leaderboard,
    format_score,
    select_entries,
)

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
NAN = float("nan")


def at(minutes: int) -> datetime:
    return T0 + timedelta(minutes=minutes)


_next_id = iter(range(1, 10_000))


def entry(participant, minutes, status="Finished", selected=False, sid=None, **scores):
    return Entry(
        submission_id=sid if sid is not None else next(_next_id),
        participant=participant,
        submitted_at=at(minutes),
        status=status,
        scores=scores,
        selected=selected,
    )


def board(*columns, **options):
    return Board(key="main", title="Results", columns=tuple(columns), **options)


ACC = Column("acc", "Accuracy", 0)
LOSS = Column("loss", "Loss", 1, sorting="asc")


def order(leaderboard):
    return [row.participant for row in leaderboard.rows]


# --- ordering ----------------------------------------------------------------------


def test_rows_ordered_by_primary_column_desc():
    lb = build_leaderboard(
        board(ACC),
        [entry("ann", 0, acc=0.5), entry("bob", 1, acc=0.9), entry("cy", 2, acc=0.7)],
    )
    assert order(lb) == ["bob", "cy", "ann"]
    assert [row.rank for row in lb.rows] == [1, 2, 3]
    assert [row.ranks["acc"] for row in lb.rows] == [1, 2, 3]


def test_primary_column_asc_and_explicit_primary_key():
    lb = build_leaderboard(
        board(ACC, LOSS, primary_key="loss"),
        [entry("ann", 0, acc=0.9, loss=0.3), entry("bob", 1, acc=0.1, loss=0.2)],
    )
    assert lb.primary_key == "loss"
    assert order(lb) == ["bob", "ann"]


def test_primary_defaults_to_first_column_by_index_not_declaration():
    late_first = Column("f1", "F1", 0)
    lb = build_leaderboard(
        board(Column("acc", "Accuracy", 5), late_first),
        [entry("ann", 0, acc=0.9, f1=0.1), entry("bob", 1, acc=0.1, f1=0.9)],
    )
    assert lb.primary_key == "f1"
    assert [column.key for column in lb.columns] == ["f1", "acc"]
    assert order(lb) == ["bob", "ann"]


def test_codabench_tie_break_by_other_columns_then_time():
    entries = [
        entry("early", 0, acc=0.8, loss=0.5),
        entry("better_loss", 5, acc=0.8, loss=0.1),
        entry("late_same", 9, acc=0.8, loss=0.5),
        entry("top", 10, acc=0.9, loss=0.9),
    ]
    lb = build_leaderboard(board(ACC, LOSS), entries)
    assert order(lb) == ["top", "better_loss", "early", "late_same"]


def test_codalab_tie_break_by_time_only():
    entries = [
        entry("early", 0, acc=0.8, loss=0.5),
        entry("better_loss", 5, acc=0.8, loss=0.1),
        entry("top", 10, acc=0.9, loss=0.9),
    ]
    lb = build_leaderboard(board(ACC, LOSS, tie_break_by_columns=False), entries)
    assert order(lb) == ["top", "early", "better_loss"]


def test_tie_within_tolerance_goes_to_earlier_submission():
    lb = build_leaderboard(
        board(ACC), [entry("late", 5, acc=0.5 + 1e-13), entry("early", 0, acc=0.5)]
    )
    assert order(lb) == ["early", "late"]
    assert [row.ranks["acc"] for row in lb.rows] == [1, 1]
    assert [row.rank for row in lb.rows] == [1, 2]


def test_missing_and_nan_primary_never_above_a_real_score():
    entries = [
        entry("missing", 0, loss=0.1),
        entry("nan", 1, acc=NAN, loss=0.1),
        entry("worst_real", 2, acc=0.0, loss=0.9),
        entry("best", 3, acc=0.4, loss=0.9),
    ]
    lb = build_leaderboard(board(ACC, LOSS), entries)
    assert order(lb) == ["best", "worst_real", "missing", "nan"]
    assert lb.rows[2].scores["acc"] is None and lb.rows[2].ranks["acc"] is None
    assert lb.rows[3].scores["acc"] is None  # NaN is shown as missing


def test_failed_submissions_never_rank():
    # A failed run can still carry scores (a crash after writing them).
    entries = [
        entry("ann", 0, status="Failed", acc=1.0),
        entry("ann", 1, acc=0.2),
        entry("bob", 2, status="Cancelled", acc=1.0),
        entry("cy", 3, acc=0.1),
    ]
    lb = build_leaderboard(board(ACC), entries)
    assert order(lb) == ["ann", "cy"]
    assert lb.rows[0].scores["acc"] == 0.2


def test_status_case_from_codalab_is_accepted():
    lb = build_leaderboard(board(ACC), [entry("ann", 0, status="finished", acc=0.3)])
    assert order(lb) == ["ann"]


def test_unknown_score_keys_are_dropped():
    lb = build_leaderboard(board(ACC), [entry("ann", 0, acc=0.3, duration=12.0)])
    assert lb.rows[0].scores == {"acc": 0.3}
    assert lb.rows[0].ranks == {"acc": 1}


def test_no_entries_gives_no_rows():
    lb = build_leaderboard(board(ACC), [])
    assert lb.rows == () and [c.key for c in lb.columns] == ["acc"]


# --- computed columns ----------------------------------------------------------------


def test_codabench_value_computations():
    columns = (
        Column("s1", "Set 1", 0),
        Column("s2", "Set 2", 1),
        Column("total", "Sum", 2, computation="sum", source_keys=("s1", "s2")),
        Column("mean", "Avg", 3, computation="avg", source_keys=("s1", "s2")),
        Column("low", "Min", 4, computation="min", source_keys=("s1", "s2")),
        Column("high", "Max", 5, computation="max", source_keys=("s1", "s2")),
    )
    entries = [entry("ann", 0, s1=0.5, s2=0.25), entry("bob", 1, s1=0.5)]
    lb = build_leaderboard(board(*columns), entries)
    ann = next(row for row in lb.rows if row.participant == "ann")
    bob = next(row for row in lb.rows if row.participant == "bob")
    assert (ann.scores["total"], ann.scores["mean"], ann.scores["low"], ann.scores["high"]) == (
        0.75, 0.375, 0.25, 0.5,
    )
    assert all(bob.scores[key] is None for key in ("total", "mean", "low", "high"))


def test_codabench_primary_on_computed_column():
    columns = (
        Column("s1", "Set 1", 0),
        Column("s2", "Set 2", 1),
        Column("mean", "Avg", 2, computation="avg", source_keys=("s1", "s2")),
    )
    lb = build_leaderboard(
        board(*columns, primary_key="mean"),
        [entry("ann", 0, s1=0.9, s2=0.1), entry("bob", 1, s1=0.6, s2=0.6)],
    )
    assert order(lb) == ["bob", "ann"]


def codalab_avg_rank_board(**column_options):
    return board(
        Column(
            "avg", "Average rank", 0,
            computation="rank_avg", source_keys=("set1", "set2"), **column_options,
        ),
        Column("set1", "Set 1", 1),
        Column("set2", "Set 2", 2, sorting="asc"),
    )


def test_codalab_average_of_ranks():
    entries = [
        entry("ann", 0, set1=0.9, set2=5.0),  # ranks 1, 3 -> 2.0
        entry("bob", 1, set1=0.8, set2=1.0),  # ranks 2, 1 -> 1.5
        entry("cy", 2, set1=0.7, set2=2.0),   # ranks 3, 2 -> 2.5
    ]
    lb = build_leaderboard(codalab_avg_rank_board(), entries)
    assert order(lb) == ["bob", "ann", "cy"]
    assert [row.scores["avg"] for row in lb.rows] == [1.5, 2.0, 2.5]
    assert [row.ranks["avg"] for row in lb.rows] == [1, 2, 3]


def test_average_rank_is_ascending_even_when_declared_desc():
    entries = [entry("ann", 0, set1=0.9, set2=5.0), entry("bob", 1, set1=0.8, set2=1.0)]
    lb = build_leaderboard(codalab_avg_rank_board(sorting="desc"), entries)
    # ann ranks 1,2 -> 1.5 ; bob ranks 2,1 -> 1.5: a tie, so time decides.
    assert [row.scores["avg"] for row in lb.rows] == [1.5, 1.5]
    entries.append(entry("cy", 2, set1=1.0, set2=0.5))
    lb = build_leaderboard(codalab_avg_rank_board(sorting="desc"), entries)
    assert order(lb)[0] == "cy"


def test_average_rank_with_a_missing_source_goes_last():
    entries = [entry("ann", 0, set1=0.9), entry("bob", 1, set1=0.1, set2=9.0)]
    lb = build_leaderboard(codalab_avg_rank_board(), entries)
    assert order(lb) == ["bob", "ann"]
    assert lb.rows[1].scores["avg"] is None


def test_codalab_weighted_ranks():
    columns = (
        Column(
            "w", "Weighted", 0, computation="rank_weighted",
            source_keys=("set1", "set2"), weights=(0.75, 0.25),
        ),
        Column("set1", "Set 1", 1),
        Column("set2", "Set 2", 2),
    )
    entries = [
        entry("ann", 0, set1=0.9, set2=0.1),  # ranks 1, 2 -> 0.75 + 0.5 = 1.25
        entry("bob", 1, set1=0.1, set2=0.9),  # ranks 2, 1 -> 1.5 + 0.25 = 1.75
    ]
    lb = build_leaderboard(board(*columns), entries)
    assert order(lb) == ["ann", "bob"]
    assert [row.scores["w"] for row in lb.rows] == [1.25, 1.75]


def test_mrr_is_descending():
    columns = (
        Column("mrr", "MRR", 0, computation="mrr", source_keys=("a", "b"), sorting="asc"),
        Column("a", "A", 1),
        Column("b", "B", 2),
    )
    entries = [
        entry("ann", 0, a=0.9, b=0.1),  # ranks 1, 3 -> (1 + 1/3) / 2
        entry("bob", 1, a=0.5, b=0.5),  # ranks 2, 2 -> 0.5
        entry("cy", 2, a=0.1, b=0.9),   # ranks 3, 1 -> (1/3 + 1) / 2
    ]
    lb = build_leaderboard(board(*columns), entries)
    assert order(lb) == ["ann", "cy", "bob"]
    assert lb.rows[0].scores["mrr"] == pytest.approx(2 / 3)


def test_computed_from_computed_column():
    columns = (
        Column("a", "A", 0),
        Column("b", "B", 1),
        Column("total", "Total", 3, computation="sum", source_keys=("mean", "a")),
        Column("mean", "Mean", 2, computation="avg", source_keys=("a", "b")),
    )
    lb = build_leaderboard(board(*columns), [entry("ann", 0, a=1.0, b=3.0)])
    assert lb.rows[0].scores["total"] == 3.0


def test_computed_value_overrides_a_written_score():
    columns = (Column("a", "A", 0), Column("t", "T", 1, computation="sum", source_keys=("a",)))
    lb = build_leaderboard(board(*columns), [entry("ann", 0, a=1.0, t=99.0)])
    assert lb.rows[0].scores["t"] == 1.0


# --- definitions that cannot work ---------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sorting": "up"}, "sorting must be 'asc' or 'desc'"),
        ({"precision": -1}, "precision must be >= 0"),
        ({"computation": "median", "source_keys": ("a",)}, "unknown computation 'median'"),
        ({"computation": "sum"}, "needs source_keys"),
        (
            {"computation": "rank_weighted", "source_keys": ("a", "b"), "weights": (1.0,)},
            "one weight per source",
        ),
        (
            {"computation": "rank_avg", "source_keys": ("a",), "weights": (1.0,)},
            "rank_weighted only",
        ),
        ({"source_keys": ("a",)}, "need a computation"),
    ],
)
def test_bad_column(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Column("c", "C", 0, **kwargs)


def test_bad_boards():
    with pytest.raises(ValueError, match="duplicate column keys acc"):
        board(ACC, Column("acc", "Again", 1))
    with pytest.raises(ValueError, match="primary column 'f1' is not a column"):
        board(ACC, primary_key="f1")
    with pytest.raises(ValueError, match="unknown submission rule 'Best'"):
        board(ACC, submission_rule="Best")
    with pytest.raises(ValueError, match="computes from unknown columns nope"):
        board(Column("s", "S", 0, computation="sum", source_keys=("nope",)))
    with pytest.raises(ValueError, match="depend on each other: x -> y -> x"):
        board(
            Column("x", "X", 0, computation="sum", source_keys=("y",)),
            Column("y", "Y", 1, computation="sum", source_keys=("x",)),
        )
    with pytest.raises(ValueError, match="at least one column"):
        board()


# --- submission rules --------------------------------------------------------------


def ids(entries):
    return sorted(e.submission_id for e in entries)


HISTORY = [
    entry("ann", 0, sid=1, acc=0.9),
    entry("ann", 1, sid=2, acc=0.5, selected=True),
    entry("ann", 2, sid=3, acc=0.7),
    entry("ann", 3, sid=4, status="Failed", acc=1.0),
    entry("bob", 0, sid=5, acc=0.2, selected=True),
    entry("bob", 1, sid=6, acc=0.4, selected=True),
    entry("cy", 0, sid=7, acc=0.3),
    entry("dee", 0, sid=8, status="Failed", acc=0.9, selected=True),
]


def test_force_last():
    assert ids(select_entries("Force_Last", HISTORY, board(ACC))) == [3, 6, 7]


def test_force_best():
    assert ids(select_entries("Force_Best", HISTORY, board(ACC))) == [1, 6, 7]


def test_force_best_uses_board_direction_and_tie_breaks():
    entries = [
        entry("ann", 0, sid=1, loss=0.3, acc=0.1),
        entry("ann", 1, sid=2, loss=0.2, acc=0.1),
        entry("ann", 2, sid=3, loss=0.2, acc=0.5),
        entry("ann", 3, sid=4, loss=0.2, acc=0.5),
    ]
    codabench = board(LOSS, ACC, primary_key="loss")
    assert ids(select_entries("Force_Best", entries, codabench)) == [3]
    codalab = board(LOSS, ACC, primary_key="loss", tie_break_by_columns=False)
    assert ids(select_entries("Force_Best", entries, codalab)) == [2]


def test_force_best_prefers_a_real_score_over_a_missing_one():
    entries = [
        entry("ann", 0, sid=1),
        entry("ann", 1, sid=2, acc=0.01),
        entry("ann", 2, sid=3, acc=NAN),
    ]
    assert ids(select_entries("Force_Best", entries, board(ACC))) == [2]


@pytest.mark.parametrize("rule", ["Add", "Add_And_Delete"])
def test_add_rules_take_latest_selected(rule):
    # cy selected nothing and dee's selected submission failed: both off the board.
    assert ids(select_entries(rule, HISTORY, board(ACC))) == [2, 6]


def test_add_and_delete_multiple_takes_every_selected():
    assert ids(select_entries("Add_And_Delete_Multiple", HISTORY, board(ACC))) == [2, 5, 6]


def test_force_latest_multiple_takes_every_finished():
    assert ids(select_entries("Force_Latest_Multiple", HISTORY, board(ACC))) == [1, 2, 3, 5, 6, 7]


def test_unknown_rule():
    with pytest.raises(ValueError, match="unknown submission rule 'Force_First'"):
        select_entries("Force_First", HISTORY, board(ACC))


def test_selection_comes_back_oldest_first():
    chosen = select_entries("Force_Latest_Multiple", list(reversed(HISTORY)), board(ACC))
    assert [(e.submitted_at, e.submission_id) for e in chosen] == sorted(
        (e.submitted_at, e.submission_id) for e in chosen
    )


def test_multiple_rule_puts_a_participant_on_several_rows():
    lb = build_leaderboard(board(ACC, submission_rule="Force_Latest_Multiple"), HISTORY)
    assert [row.submission_id for row in lb.rows] == [1, 3, 2, 6, 7, 5]
    assert order(lb) == ["ann", "ann", "ann", "bob", "cy", "bob"]
    assert [row.rank for row in lb.rows] == [1, 2, 3, 4, 5, 6]


def test_board_rule_is_applied_by_build():
    lb = build_leaderboard(board(ACC, submission_rule="Force_Best"), HISTORY)
    assert [(row.participant, row.submission_id) for row in lb.rows] == [
        ("ann", 1), ("bob", 6), ("cy", 7),
    ]


# --- visibility --------------------------------------------------------------------

SECRET = Column("secret", "Private test", 1, hidden=True)


def test_hidden_column_removed_for_participants():
    lb = build_leaderboard(board(ACC, SECRET), [entry("ann", 0, acc=0.3, secret=0.8)])
    assert [c.key for c in lb.columns] == ["acc"]
    assert lb.rows[0].scores == {"acc": 0.3}
    assert lb.rows[0].ranks == {"acc": 1}
    assert "secret" not in str(lb.to_dict())


def test_computed_column_over_hidden_column_does_not_name_it():
    mean = Column("mean", "Mean", 2, computation="rank_avg", source_keys=("acc", "secret"))
    entries = [entry("ann", 0, acc=0.3, secret=0.8), entry("bob", 1, acc=0.9, secret=0.1)]
    lb = build_leaderboard(board(ACC, SECRET, mean, primary_key="mean"), entries)
    shown = next(c for c in lb.columns if c.key == "mean")
    assert "secret" not in repr(lb)
    assert shown.computation is None and shown.sorting == "asc"
    assert [row.scores["mean"] for row in lb.rows] == [1.5, 1.5]
    organizer = build_leaderboard(
        board(ACC, SECRET, mean, primary_key="mean"), entries, viewer_is_organizer=True
    )
    assert next(c for c in organizer.columns if c.key == "mean") == mean


def test_hidden_column_shown_to_organizers():
    lb = build_leaderboard(
        board(ACC, SECRET), [entry("ann", 0, acc=0.3, secret=0.8)], viewer_is_organizer=True
    )
    assert [c.key for c in lb.columns] == ["acc", "secret"]
    assert lb.rows[0].scores == {"acc": 0.3, "secret": 0.8}


def test_hidden_primary_column_still_orders_rows():
    lb = build_leaderboard(
        board(ACC, SECRET, primary_key="secret"),
        [entry("ann", 0, acc=0.9, secret=0.1), entry("bob", 1, acc=0.1, secret=0.9)],
    )
    assert order(lb) == ["bob", "ann"]
    assert lb.primary_key is None
    assert all("secret" not in row.scores for row in lb.rows)


def test_hidden_board_for_participants():
    lb = build_leaderboard(board(ACC, hidden=True), [entry("ann", 0, acc=0.3)])
    assert lb.hidden_for_viewer
    assert lb.columns == () and lb.rows == ()
    assert lb.note


def test_hidden_board_for_organizers():
    lb = build_leaderboard(
        board(ACC, hidden=True), [entry("ann", 0, acc=0.3)], viewer_is_organizer=True
    )
    assert not lb.hidden_for_viewer
    assert order(lb) == ["ann"]


def test_blind_phase_for_participants():
    lb = build_leaderboard(board(ACC, SECRET), [entry("ann", 0, acc=0.3)], blind=True)
    assert lb.rows == ()
    assert lb.note == BLIND_NOTE
    assert "organizers reveal" in lb.note
    assert [c.key for c in lb.columns] == ["acc"]
    assert not lb.hidden_for_viewer


def test_blind_phase_for_organizers():
    lb = build_leaderboard(
        board(ACC), [entry("ann", 0, acc=0.3)], blind=True, viewer_is_organizer=True
    )
    assert order(lb) == ["ann"]
    assert lb.rows[0].scores == {"acc": 0.3}
    assert "until you reveal" in lb.note


def test_to_dict_is_json_ready():
    import json

    lb = build_leaderboard(board(ACC), [entry("ann", 0, acc=NAN), entry("bob", 1, acc=0.5)])
    data = json.loads(json.dumps(lb.to_dict(), allow_nan=False))
    assert data["rows"][0]["participant"] == "bob"
    assert data["rows"][1]["scores"] == {"acc": None}
    assert data["rows"][0]["submitted_at"] == at(1).isoformat()


# --- display -----------------------------------------------------------------------


def test_format_score():
    assert format_score(0.123456, 2) == "0.12"
    assert format_score(2, 0) == "2"
    assert format_score(0.5, 4) == "0.5000"
    assert format_score(None, 2) == "-"
    assert format_score(NAN, 2) == "-"
