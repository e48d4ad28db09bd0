"""Dense ranks and computed values, by example and by property."""

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scoring.ranking import (
    compute_rank_value,
    compute_value,
    dense_ranks,
    effective_sorting,
)

NAN = float("nan")


# --- dense ranks: examples ------------------------------------------------------


def test_dense_desc():
    assert dense_ranks([0.9, 0.5, 0.9, 0.7], "desc") == [1, 3, 1, 2]


def test_dense_asc():
    assert dense_ranks([0.9, 0.5, 0.9, 0.7], "asc") == [3, 1, 3, 2]


def test_dense_is_dense_not_competition():
    # 1, 2, 2, 3 -- not 1, 2, 2, 4
    assert dense_ranks([4.0, 3.0, 3.0, 2.0], "desc") == [1, 2, 2, 3]


def test_values_within_tolerance_share_a_rank():
    assert dense_ranks([0.5, 0.5 + 1e-13, 0.5 + 1e-11], "desc") == [2, 2, 1]


def test_tolerance_compares_with_group_opener_not_neighbour():
    # 0 .. 1.5e-12 in steps of 0.5e-12: chaining neighbours would make one group.
    values = [0.0, 0.5e-12, 1.0e-12, 1.5e-12]
    assert dense_ranks(values, "asc") == [1, 1, 1, 2]


def test_custom_tolerance():
    # 1.2 opens rank 1; 1.05 is 0.15 away so opens rank 2; 1.0 is within 0.1 of it.
    assert dense_ranks([1.0, 1.05, 1.2], "desc", tolerance=0.1) == [2, 2, 1]


def test_missing_and_nan_get_no_rank():
    assert dense_ranks([None, 0.3, NAN, 0.1], "desc") == [None, 1, None, 2]
    assert dense_ranks([None, NAN], "asc") == [None, None]
    assert dense_ranks([], "asc") == []


def test_infinities_tie_with_each_other():
    inf = float("inf")
    assert dense_ranks([inf, inf, 1.0], "desc") == [1, 1, 2]


def test_bad_sorting_is_rejected():
    with pytest.raises(ValueError, match="'asc' or 'desc'"):
        dense_ranks([1.0], "up")


# --- dense ranks: properties ------------------------------------------------------

scores = st.one_of(
    st.none(),
    st.just(NAN),
    st.floats(min_value=-1e6, max_value=1e6, allow_nan=False),
    st.sampled_from([0.0, 0.5, 0.5 + 1e-13, 1.0]),  # force near-ties
)


@given(st.lists(scores, max_size=30), st.sampled_from(["asc", "desc"]))
def test_ranks_are_dense_and_only_missing_is_unranked(values, sorting):
    ranks = dense_ranks(values, sorting)
    real = [rank for rank in ranks if rank is not None]
    assert set(real) == set(range(1, len(set(real)) + 1))
    for value, rank in zip(values, ranks):
        assert (rank is None) == (value is None or math.isnan(value))


@given(st.lists(scores, max_size=30), st.sampled_from(["asc", "desc"]))
def test_better_value_never_gets_worse_rank(values, sorting):
    ranks = dense_ranks(values, sorting)
    pairs = [(v, r) for v, r in zip(values, ranks) if r is not None]
    for a, rank_a in pairs:
        for b, rank_b in pairs:
            a_better = a > b if sorting == "desc" else a < b
            if a_better:
                assert rank_a <= rank_b
            if a == b:
                assert rank_a == rank_b


@given(st.lists(scores, max_size=20), st.randoms(use_true_random=False))
def test_ranks_follow_values_not_positions(values, random):
    order = list(range(len(values)))
    random.shuffle(order)
    ranks = dense_ranks(values, "desc")
    shuffled = dense_ranks([values[i] for i in order], "desc")
    assert shuffled == [ranks[i] for i in order]


# --- value computations (Codabench) ------------------------------------------------


def test_value_computations():
    assert compute_value("sum", [0.5, 0.25, 1.0]) == 1.75
    assert compute_value("avg", [0.5, 0.25, 1.5]) == pytest.approx(0.75)
    assert compute_value("min", [0.5, 0.25, 1.0]) == 0.25
    assert compute_value("max", [0.5, 0.25, 1.0]) == 1.0


@pytest.mark.parametrize("op", ["sum", "avg", "min", "max"])
def test_value_computation_with_missing_input_is_missing(op):
    assert compute_value(op, [0.5, None]) is None
    assert compute_value(op, [NAN, 0.5]) is None
    assert compute_value(op, []) is None


def test_unknown_value_computation():
    with pytest.raises(ValueError, match="unknown value computation 'median'"):
        compute_value("median", [1.0])


# --- rank computations (CodaLab) -----------------------------------------------------


def test_rank_average():
    assert compute_rank_value("rank_avg", [1, 2, 4]) == pytest.approx(7 / 3)


def test_rank_weighted():
    assert compute_rank_value("rank_weighted", [1, 3], weights=[0.25, 0.75]) == 2.5


def test_mean_reciprocal_rank():
    assert compute_rank_value("mrr", [1, 2, 4]) == pytest.approx((1 + 0.5 + 0.25) / 3)


@pytest.mark.parametrize("op", ["rank_avg", "mrr"])
def test_rank_computation_with_missing_rank_is_missing(op):
    assert compute_rank_value(op, [1, None]) is None
    assert compute_rank_value("rank_weighted", [None, 1], weights=[1, 1]) is None


def test_rank_weights_are_checked():
    with pytest.raises(ValueError, match="one weight per rank"):
        compute_rank_value("rank_weighted", [1, 2], weights=[1.0])
    with pytest.raises(ValueError, match="one weight per rank"):
        compute_rank_value("rank_weighted", [1, 2])
    with pytest.raises(ValueError, match="rank_weighted only"):
        compute_rank_value("rank_avg", [1, 2], weights=[1.0, 1.0])


def test_rank_computations_rank_in_their_own_direction():
    # A declared `desc` (CodaLab's default for an omitted `sort:`) must not
    # turn an average rank upside down.
    assert effective_sorting("desc", "rank_avg") == "asc"
    assert effective_sorting("desc", "rank_weighted") == "asc"
    assert effective_sorting("asc", "mrr") == "desc"
    assert effective_sorting("asc", "sum") == "asc"
    assert effective_sorting("desc", None) == "desc"
