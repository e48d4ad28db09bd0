"""Properties every built leaderboard must have, over generated boards and entries."""

from datetime import datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from scoring.leaderboard import (
    MULTIPLE_ENTRY_RULES,
    SUBMISSION_RULES,
    Board,
    Column,
    Entry,
    build_leaderboard,
)
from scoring.ranking import COMPUTATIONS, RANK_COMPUTATIONS

T0 = datetime(2026, 3, 1, tzinfo=timezone.utc)
PARTICIPANTS = ["ann", "bob", "cy", "dee"]
# Few distinct values so that ties (exact and within 1e-12) happen often.
VALUES = st.sampled_from([0.0, 0.25, 0.5, 0.5 + 1e-13, 1.0, float("nan")])


@st.composite
def boards(draw):
    count = draw(st.integers(min_value=1, max_value=3))
    columns = []
    for number in range(count):
        hidden = draw(st.booleans())
        # Hidden keys are spelled so that they cannot appear by accident elsewhere.
        key = f"zzsecret{number}" if hidden else f"col{number}"
        columns.append(
            Column(
                key=key,
                title=key.upper(),
                index=number,
                sorting=draw(st.sampled_from(["asc", "desc"])),
                hidden=hidden,
            )
        )
    if draw(st.booleans()):
        computation = draw(st.sampled_from(COMPUTATIONS))
        sources = tuple(
            draw(st.lists(st.sampled_from([c.key for c in columns]), min_size=1, max_size=3))
        )
        hidden = draw(st.booleans())
        key = "zzsecretcomputed" if hidden else "computed"
        columns.append(
            Column(
                key=key,
                title=key.upper(),
                index=draw(st.integers(min_value=-1, max_value=count)),
                sorting=draw(st.sampled_from(["asc", "desc"])),
                hidden=hidden,
                computation=computation,
                source_keys=sources,
                weights=(
                    tuple(draw(st.floats(0.0, 2.0)) for _ in sources)
                    if computation == "rank_weighted"
                    else None
                ),
            )
        )
    primary = draw(st.one_of(st.none(), st.sampled_from([c.key for c in columns])))
    return Board(
        key="board",
        title="Board",
        columns=tuple(draw(st.permutations(columns))),
        primary_key=primary,
        submission_rule=draw(st.sampled_from(SUBMISSION_RULES)),
        hidden=draw(st.booleans()),
        tie_break_by_columns=draw(st.booleans()),
    )


@st.composite
def entry_lists(draw, board):
    plain = [c.key for c in board.columns if c.computation is None]
    count = draw(st.integers(min_value=0, max_value=12))
    entries = []
    for submission_id in range(1, count + 1):
        scores = {
            key: draw(VALUES)
            for key in plain
            if draw(st.integers(0, 5))  # about one score in six is absent
        }
        if draw(st.booleans()):
            scores["not_a_column"] = 3.0
        entries.append(
            Entry(
                submission_id=submission_id,
                participant=draw(st.sampled_from(PARTICIPANTS)),
                submitted_at=T0 + timedelta(minutes=draw(st.integers(0, 5))),
                status=draw(st.sampled_from(["Finished", "Finished", "Failed", "Cancelled"])),
                scores=scores,
                selected=draw(st.booleans()),
            )
        )
    return entries


@st.composite
def cases(draw):
    board = draw(boards())
    return board, draw(entry_lists(board))


def organizer_view(board, entries, **options):
    return build_leaderboard(board, entries, viewer_is_organizer=True, **options)


@given(cases())
def test_row_ranks_are_one_to_n(case):
    board, entries = case
    lb = organizer_view(board, entries)
    assert [row.rank for row in lb.rows] == list(range(1, len(lb.rows) + 1))


@given(cases(), st.randoms(use_true_random=False), st.booleans(), st.booleans())
def test_entry_order_does_not_matter(case, random, organizer, blind):
    board, entries = case
    shuffled = list(entries)
    random.shuffle(shuffled)
    options = {"viewer_is_organizer": organizer, "blind": blind}
    expected = build_leaderboard(board, entries, **options)
    assert build_leaderboard(board, shuffled, **options) == expected


@given(cases())
def test_missing_primary_never_above_a_real_one(case):
    board, entries = case
    lb = organizer_view(board, entries)
    primary = [row.scores[lb.primary_key] for row in lb.rows]
    first_missing = next((i for i, v in enumerate(primary) if v is None), len(primary))
    assert all(value is None for value in primary[first_missing:])


@given(cases())
def test_rows_follow_primary_rank(case):
    board, entries = case
    lb = organizer_view(board, entries)
    ranks = [row.ranks[lb.primary_key] for row in lb.rows]
    as_numbers = [float("inf") if rank is None else rank for rank in ranks]
    assert as_numbers == sorted(as_numbers)
    real = sorted({rank for rank in ranks if rank is not None})
    assert real == list(range(1, len(real) + 1))


@given(cases())
def test_only_finished_submissions_are_on_the_board(case):
    board, entries = case
    lb = organizer_view(board, entries)
    finished = {e.submission_id for e in entries if e.status == "Finished"}
    assert {row.submission_id for row in lb.rows} <= finished
    assert len({row.submission_id for row in lb.rows}) == len(lb.rows)


@given(cases())
def test_single_entry_rules_give_one_row_per_participant(case):
    board, entries = case
    if board.submission_rule in MULTIPLE_ENTRY_RULES:
        return
    lb = organizer_view(board, entries)
    eligible = {
        e.participant
        for e in entries
        if e.status == "Finished"
        and (e.selected or board.submission_rule not in ("Add", "Add_And_Delete"))
    }
    participants = [row.participant for row in lb.rows]
    assert len(participants) == len(set(participants))
    assert set(participants) == eligible


@given(cases())
def test_better_primary_value_never_below_a_worse_one(case):
    board, entries = case
    column = board.primary_column
    if column.computation in RANK_COMPUTATIONS:
        return  # its value is itself a rank over the rows, checked by rank order
    lb = organizer_view(board, entries)
    values = [row.scores[column.key] for row in lb.rows if row.scores[column.key] is not None]
    for earlier, later in zip(values, values[1:]):
        if column.sorting == "desc":
            assert earlier >= later - 1e-12
        else:
            assert earlier <= later + 1e-12


@settings(max_examples=400)
@given(cases(), st.booleans())
def test_participant_never_sees_a_hidden_column(case, blind):
    board, entries = case
    lb = build_leaderboard(board, entries, blind=blind)
    text = repr(lb) + repr(lb.to_dict())
    assert "zzsecret" not in text and "ZZSECRET" not in text


@given(cases())
def test_participant_view_of_hidden_board_or_blind_phase_has_no_rows(case):
    board, entries = case
    blind = build_leaderboard(board, entries, blind=True)
    assert blind.rows == ()
    if board.hidden:
        lb = build_leaderboard(board, entries)
        assert lb.hidden_for_viewer and lb.columns == () and lb.rows == ()


@given(cases())
def test_participant_sees_the_organizers_order(case):
    board, entries = case
    if board.hidden:
        return
    theirs = build_leaderboard(board, entries)
    ours = organizer_view(board, entries)
    assert [r.submission_id for r in theirs.rows] == [r.submission_id for r in ours.rows]
    visible = {c.key for c in board.columns if not c.hidden}
    for mine, full in zip(theirs.rows, ours.rows):
        assert mine.scores == {k: v for k, v in full.scores.items() if k in visible}
