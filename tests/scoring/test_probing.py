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
