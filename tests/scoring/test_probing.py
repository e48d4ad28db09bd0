"""Properties of the probing-resistant board rules (`scoring.probing`)."""

import math
from decimal import Decimal

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scoring.probing import (
    Probing,
    beats,
    fixed_ladder,
    on_grid,
    parameter_free_ladder,
    parameter_free_ladder_on_losses,
    round_to_precision,
    shown_history,
)

SCORES = st.floats(min_value=-1e6, max_value=1e6, allow_nan=False, allow_infinity=False)
MAYBE = st.one_of(SCORES, st.none(), st.just(float("nan")))
STEPS = st.sampled_from([0.001, 0.01, 0.05, 0.1, 0.25, 1.0, 3.0])
SORTINGS = st.sampled_from(["asc", "desc"])


def better_or_equal(a, b, sorting):
    return a <= b if sorting == "asc" else a >= b


def decimals(value: float) -> int:
    exponent = Decimal(repr(value)).normalize().as_tuple().exponent
    return max(0, -exponent)


@given(st.lists(MAYBE, max_size=30), STEPS, SORTINGS)
def test_the_shown_best_only_improves(values, step, sorting):
    shown = fixed_ladder(values, step, sorting)
    known = [v for v in shown if v is not None]
    for before, after in zip(known, known[1:]):
        assert better_or_equal(after, before, sorting)
    # Once shown, a value never goes back to unset.
    first = next((i for i, v in enumerate(shown) if v is not None), len(shown))
    assert all(v is not None for v in shown[first:])


@given(st.lists(MAYBE, max_size=30), STEPS, SORTINGS)
def test_the_shown_value_changes_only_on_a_step_beating_submission(values, step, sorting):
    shown = fixed_ladder(values, step, sorting)
    previous = None
    for value, now in zip(values, shown):
        if now != previous:
            assert value is not None and not math.isnan(value)
            assert previous is None or beats(value, previous, step, sorting)
            assert now == on_grid(value, step)
        else:
            assert value is None or math.isnan(value) or not beats(value, previous, step, sorting)
        previous = now


@given(st.lists(SCORES, max_size=30), STEPS, SORTINGS)
def test_shown_values_lie_on_the_step_grid(values, step, sorting):
    for value in fixed_ladder(values, step, sorting):
        multiple = Decimal(repr(value)) / Decimal(repr(step))
        assert multiple == multiple.to_integral_value()
        # Within half a step of the score that set it.
    for value, now in zip(values, fixed_ladder(values, step, sorting)):
        if now == on_grid(value, step):
            assert abs(now - value) <= step / 2 + 1e-9 * max(1.0, abs(value))


@given(st.lists(MAYBE, max_size=20), st.lists(MAYBE, max_size=20), STEPS, SORTINGS)
def test_the_rule_does_not_depend_on_later_submissions(values, later, step, sorting):
    assert fixed_ladder(values + later, step, sorting)[:len(values)] == fixed_ladder(values, step, sorting)
    free = parameter_free_ladder(values + later, sorting, 3)[:len(values)]
    assert free == parameter_free_ladder(values, sorting, 3)
    probing = Probing(display_precision=2, ladder="fixed", ladder_step=step)
    assert shown_history(probing, values + later, sorting)[:len(values)] == shown_history(probing, values, sorting)


@given(MAYBE, st.integers(min_value=0, max_value=10))
def test_precision_rounding_never_reveals_more_digits(value, precision):
    shown = round_to_precision(value, precision)
    if value is None or math.isnan(value):
        assert shown is None
        return
    assert decimals(shown) <= precision
    assert abs(shown - value) <= 0.5 * 10 ** -precision + 1e-9 * max(1.0, abs(value))
    # Rounding twice is rounding once: the shown value carries nothing more.
    assert round_to_precision(shown, precision) == shown


@given(st.lists(SCORES, min_size=1, max_size=30), st.integers(min_value=0, max_value=6), SORTINGS)
def test_a_precision_only_board_shows_every_score_rounded(values, precision, sorting):
    shown = shown_history(Probing(display_precision=precision), values, sorting)
    assert shown == [round_to_precision(v, precision) for v in values]


@given(st.lists(MAYBE, max_size=30), SORTINGS, st.integers(min_value=0, max_value=6))
def test_the_boards_parameter_free_ladder_is_monotone_and_rounded(values, sorting, precision):
    shown = parameter_free_ladder(values, sorting, precision)
    known = [v for v in shown if v is not None]
    for before, after in zip(known, known[1:]):
        assert better_or_equal(after, before, sorting)
    assert all(decimals(v) <= precision for v in known)


def test_the_boards_parameter_free_ladder_ignores_changes_within_the_participants_noise():
    # Scores bouncing by 0.1 around 0.5: their spread (about 0.075) hides a gain of 0.06.
    shown = parameter_free_ladder([0.5, 0.4, 0.6, 0.5, 0.56, 0.9], "desc", 2)
    assert shown == [0.5, 0.5, 0.5, 0.5, 0.5, 0.9]


@given(st.lists(st.lists(st.sampled_from([0.0, 1.0]), min_size=8, max_size=8), min_size=1, max_size=15))
def test_the_papers_parameter_free_ladder_on_losses(vectors):
    shown = parameter_free_ladder_on_losses(vectors)
    assert shown[0] == on_grid(sum(vectors[0]) / 8, 1 / 8)  # the first submission is always accepted
    for before, after in zip(shown, shown[1:]):
        assert after <= before
    for value in shown:  # on the 1/n grid
        assert abs(value * 8 - round(value * 8)) < 1e-9


def test_the_papers_parameter_free_ladder_needs_a_significant_gain():
    base = [1.0] * 50 + [0.0] * 50
    one_better = [0.0] + [1.0] * 49 + [0.0] * 50  # one sample better: s/sqrt(n) = 0.1/10
    much_better = [0.0] * 30 + [1.0] * 20 + [0.0] * 50
    assert parameter_free_ladder_on_losses([base, one_better, much_better]) == [0.5, 0.5, 0.2]
    with pytest.raises(ValueError, match="one loss per sample"):
        parameter_free_ladder_on_losses([base, [0.0]])


@given(SCORES, STEPS)
def test_the_grid_is_the_nearest_multiple(value, step):
    shown = on_grid(value, step)
    assert abs(shown - value) <= step / 2 + 1e-9 * max(1.0, abs(value))
    assert on_grid(shown, step) == shown


def test_infinite_and_missing_scores():
    assert fixed_ladder([None, float("nan"), 0.5, float("inf")], 0.1, "desc") == [None, None, 0.5, float("inf")]
    assert round_to_precision(float("-inf"), 2) == float("-inf")


@pytest.mark.parametrize("kwargs, message", [
    ({"display_precision": 11}, "display_precision must be an integer from 0 to 10"),
    ({"display_precision": -1}, "display_precision must be an integer from 0 to 10"),
    ({"display_precision": True}, "display_precision must be an integer"),
    ({"ladder": "steps"}, "ladder must be one of fixed, parameter_free"),
    ({"ladder": "fixed"}, "ladder 'fixed' needs ladder_step"),
    ({"ladder": "fixed", "ladder_step": 0}, "ladder_step must be a number greater than 0"),
    ({"ladder": "fixed", "ladder_step": float("nan")}, "ladder_step must be a number greater than 0"),
    ({"ladder": "parameter_free", "ladder_step": 0.1}, "ladder_step goes with ladder: fixed only"),
])
def test_bad_settings_say_what_to_fix(kwargs, message):
    with pytest.raises(ValueError, match=message):
        Probing(**kwargs)


def test_active():
    assert not Probing().active
    assert Probing(display_precision=0).active
    assert Probing(ladder="parameter_free").active


# -- the public board ------------------------------------------------------------------------------
from datetime import datetime, timedelta  # noqa: E402

from dataclasses import replace  # noqa: E402

from scoring.leaderboard import SUBMISSION_RULES, Board, Column, Entry, build_leaderboard  # noqa: E402
from scoring.probing import shown_rows  # noqa: E402
from scoring.ranking import dense_ranks  # noqa: E402

T0 = datetime(2026, 3, 1)
BOARD_VALUES = st.sampled_from([0.0, 0.11, 0.5, 0.52, 0.58, 0.9, 1.0, float("nan")])


@st.composite
def histories(draw):
    count = draw(st.integers(0, 14))
    entries = []
    for n in range(count):
        scores = {"a": draw(BOARD_VALUES)}
        if draw(st.booleans()):
            scores["b"] = draw(BOARD_VALUES)
        entries.append(Entry(submission_id=n + 1, participant=draw(st.sampled_from(["ann", "bob", "cy"])),
                             submitted_at=T0 + timedelta(minutes=n), status="Finished", scores=scores,
                             selected=draw(st.booleans())))
    return entries


def probing_settings():
    return st.one_of(
        st.builds(Probing, display_precision=st.integers(0, 3)),
        st.builds(lambda step: Probing(ladder="fixed", ladder_step=step), STEPS),
        st.builds(lambda precision: Probing(ladder="parameter_free", display_precision=precision),
                  st.one_of(st.none(), st.integers(0, 3))),
    )


@settings(max_examples=200)
@given(histories(), probing_settings(), SORTINGS, st.sampled_from(SUBMISSION_RULES), st.booleans())
def test_the_public_board_follows_the_shown_values(entries, probing, sorting, rule, computed):
    columns = [Column(key="a", title="A", index=0, sorting=sorting), Column(key="b", title="B", index=1)]
    if computed:
        columns.append(Column(key="s", title="S", index=2, computation="sum", source_keys=("a", "b")))
    board = Board(key="main", title="Main", columns=tuple(columns), submission_rule=rule)
    built = build_leaderboard(board, entries, viewer_is_organizer=True)
    shown = shown_rows(board, probing, built.rows, entries)
    assert set(shown) == {row.submission_id for row in built.rows}
    assert sorted(s["position"] for s in shown.values()) == list(range(1, len(built.rows) + 1))
    by_position = sorted(shown.values(), key=lambda s: s["position"])
    # Ranks are dense ranks of the shown values: equal shown values share a rank, and the order follows them.
    values = [s["scores"]["a"] for s in by_position]
    assert [s["ranks"]["a"] for s in by_position] == dense_ranks(values, sorting)
    ranks = [s["ranks"]["a"] for s in by_position]
    assert [r for r in ranks if r is not None] == sorted(r for r in ranks if r is not None)
    for row in built.rows:
        own = [e for e in entries if e.participant == row.participant and e.submitted_at <= row.submitted_at]
        expected = shown_history(probing, [e.scores.get("a") for e in own], sorting)[-1] if probing.ladder else \
            round_to_precision(row.scores["a"], probing.display_precision)
        assert shown[row.submission_id]["scores"]["a"] == expected
        if computed:  # a computed column from the shown values only
            a, b = shown[row.submission_id]["scores"]["a"], shown[row.submission_id]["scores"]["b"]
            total = shown[row.submission_id]["scores"]["s"]
            assert (total is None) if (a is None or b is None) else total == pytest.approx(a + b)


@given(histories(), histories(), probing_settings(), SORTINGS)
def test_a_rows_shown_value_does_not_depend_on_later_submissions(entries, later, probing, sorting):
    board = Board(key="main", title="Main", columns=(Column(key="a", title="A", index=0, sorting=sorting),),
                  submission_rule="Force_Latest_Multiple")
    more = [Entry(submission_id=100 + e.submission_id, participant=e.participant,
                  submitted_at=e.submitted_at + timedelta(days=1), status="Finished", scores=e.scores)
            for e in later]
    before = build_leaderboard(board, entries, viewer_is_organizer=True)
    after = build_leaderboard(board, entries + more, viewer_is_organizer=True)
    first, second = shown_rows(board, probing, before.rows, entries), shown_rows(board, probing, after.rows,
                                                                                    entries + more)
    for sid, value in first.items():
        assert second[sid]["scores"] == value["scores"]


def test_a_force_best_row_stands_on_the_submission_that_set_the_shown_values():
    board = Board(key="main", title="Main", columns=(Column(key="a", title="A", index=0),), submission_rule="Force_Best")
    history = [Entry(submission_id=n, participant="ann", submitted_at=T0 + timedelta(minutes=n), status="Finished",
                     scores={"a": value}) for n, value in enumerate([0.5, 0.52, 0.55, 0.3], start=1)]
    built = build_leaderboard(board, history, viewer_is_organizer=True)
    assert [row.submission_id for row in built.rows] == [3]  # the exact best
    shown = shown_rows(board, Probing(ladder="fixed", ladder_step=0.1), built.rows, history)
    # 0.52 and 0.55 do not beat 0.5 by more than 0.1: the public sees the board stand on the first.
    assert shown[3]["submission"] == 1 and shown[3]["submitted_at"] == (T0 + timedelta(minutes=1)).isoformat()
    shown = shown_rows(board, Probing(display_precision=1), built.rows, history)
    assert shown[3]["scores"]["a"] == 0.6 and shown[3]["submission"] == 3  # 0.5 and 0.52 show 0.5
    assert "submission" not in shown_rows(replace(board, submission_rule="Force_Last"),
                                          Probing(ladder="fixed", ladder_step=0.1),
                                          build_leaderboard(replace(board, submission_rule="Force_Last"), history,
                                                            viewer_is_organizer=True).rows, history)[4]


@given(histories(), probing_settings(), SORTINGS)
def test_a_force_best_rows_public_submission_shows_the_same_and_comes_first(entries, probing, sorting):
    board = Board(key="main", title="Main", submission_rule="Force_Best", columns=(
        Column(key="a", title="A", index=0, sorting=sorting), Column(key="b", title="B", index=1)))
    built = build_leaderboard(board, entries, viewer_is_organizer=True)
    shown = shown_rows(board, probing, built.rows, entries)
    for row in built.rows:
        own = [e for e in entries if e.participant == row.participant and e.submitted_at <= row.submitted_at]
        vectors = {e.submission_id: tuple(shown_history(probing, [x.scores.get(k) for x in own[:i + 1]],
                                                        c.sorting)[-1] for k, c in (("a", board.columns[0]),
                                                                                    ("b", board.columns[1])))
                   for i, e in enumerate(own)}
        public = shown[row.submission_id]["submission"]
        assert vectors[public] == vectors[row.submission_id]
        assert all(vectors[e.submission_id] != vectors[public] for e in own if e.submitted_at < next(
            x.submitted_at for x in own if x.submission_id == public))
