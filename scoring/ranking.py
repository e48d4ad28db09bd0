"""Ranking primitives of the leaderboard: dense ranks and computed columns.

Both bundle dialects rank each column on its own and derive extra columns from
others; the leaderboard module assembles these pieces into a board.

- Dense ranks (CodaLab): equal values share a rank and the next value gets the
  next integer (1, 2, 2, 3). Values within ``tolerance`` of the value that
  opened a rank group are equal, so float noise from a metric does not split a
  tie. Missing values (None or NaN) get no rank at all and sort after every
  real value.
- Value computations (Codabench ``computation``): ``sum``, ``avg``, ``min``,
  ``max`` over the values of the source columns.
- Rank computations (CodaLab ``computed``): ``rank_avg`` is the mean of the
  source columns' ranks, ``rank_weighted`` their weighted sum, ``mrr`` the mean
  of 1/rank.

Any missing input makes a computed value missing: a half-scored submission must
not look better than one scored on every column.

A rank computation has a direction of its own: a lower average or weighted rank
is better, a higher MRR is better. :func:`effective_sorting` returns that
direction and ignores the column's declared ``sorting``, because CodaLab's
default for an omitted ``sort:`` is ``desc``, which on an average-rank column
would put the worst participant first.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

__all__ = [
    "COMPUTATIONS",
    "DEFAULT_TOLERANCE",
    "RANK_COMPUTATIONS",
    "SORTINGS",
    "VALUE_COMPUTATIONS",
    "Sorting",
    "compute_rank_value",
    "compute_value",
    "dense_ranks",
    "effective_sorting",
    "is_missing",
]

Sorting = Literal["asc", "desc"]
SORTINGS: tuple[str, ...] = ("asc", "desc")
VALUE_COMPUTATIONS: tuple[str, ...] = ("sum", "avg", "min", "max")
RANK_COMPUTATIONS: tuple[str, ...] = ("rank_avg", "rank_weighted", "mrr")
COMPUTATIONS: tuple[str, ...] = VALUE_COMPUTATIONS + RANK_COMPUTATIONS
DEFAULT_TOLERANCE = 1e-12

# The direction in which each rank computation improves.
_RANK_COMPUTATION_SORTING: dict[str, Sorting] = {
    "rank_avg": "asc",
    "rank_weighted": "asc",
    "mrr": "desc",
}


def is_missing(value: float | None) -> bool:
    """True for a value that must not be ranked: None or NaN."""
    return value is None or (isinstance(value, float) and math.isnan(value))


def _check_sorting(sorting: str) -> None:
    if sorting not in SORTINGS:
        raise ValueError(f"sorting must be 'asc' or 'desc', got {sorting!r}")


def effective_sorting(sorting: str, computation: str | None = None) -> Sorting:
    """The direction a column is ranked in, given its computation, if any."""
    if computation in _RANK_COMPUTATION_SORTING:
        return _RANK_COMPUTATION_SORTING[computation]
    _check_sorting(sorting)
    return "asc" if sorting == "asc" else "desc"


def dense_ranks(
    values: Sequence[float | None],
    sorting: str,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[int | None]:
    """Dense rank of each value, best first; None for a missing value.

    ``sorting`` is ``"desc"`` when a higher value is better, ``"asc"`` when a
    lower one is. The result is aligned with ``values``.
    """
    _check_sorting(sorting)
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0, got {tolerance!r}")
    present = [
        (float(value), position)
        for position, value in enumerate(values)
        if not is_missing(value)
    ]
    present.sort(key=lambda pair: pair[0], reverse=(sorting == "desc"))
    ranks: list[int | None] = [None] * len(values)
    rank = 0
    opener: float | None = None
    for value, position in present:
        # Comparing with the group's opener (not the previous value) keeps a
        # long chain of near-equal values from merging into one group.
        # `==` covers two infinities, whose difference is NaN.
        if opener is None or not (value == opener or abs(value - opener) <= tolerance):
            rank += 1
            opener = value
        ranks[position] = rank
    return ranks


def compute_value(op: str, values: Sequence[float | None]) -> float | None:
    """A value computation over the source columns' values of one row.

    None when any value is missing, or when there are no values at all.
    """
    if op not in VALUE_COMPUTATIONS:
        raise ValueError(
            f"unknown value computation {op!r}; expected one of "
            f"{', '.join(VALUE_COMPUTATIONS)}"
        )
    if not values or any(is_missing(value) for value in values):
        return None
    numbers = [float(value) for value in values]  # type: ignore[arg-type]
    if op == "sum":
        return math.fsum(numbers)
    if op == "avg":
        return math.fsum(numbers) / len(numbers)
    if op == "min":
        return min(numbers)
    return max(numbers)


def compute_rank_value(
    op: str,
    ranks: Sequence[int | None],
    weights: Sequence[float] | None = None,
) -> float | None:
    """A rank computation over the source columns' ranks of one row.

    ``weights`` is required by ``rank_weighted`` (one per rank) and refused by
    the others. None when any rank is missing, or when there are no ranks.
    """
    if op not in RANK_COMPUTATIONS:
        raise ValueError(
            f"unknown rank computation {op!r}; expected one of "
            f"{', '.join(RANK_COMPUTATIONS)}"
        )
    if op == "rank_weighted":
        if weights is None or len(weights) != len(ranks):
            given = "none" if weights is None else str(len(weights))
            raise ValueError(
                f"rank_weighted needs one weight per rank: {len(ranks)} ranks, "
                f"{given} weights"
            )
    elif weights is not None:
        raise ValueError(f"weights apply to rank_weighted only, not {op!r}")
    if not ranks or any(rank is None for rank in ranks):
        return None
    present = [int(rank) for rank in ranks]  # type: ignore[arg-type]
    if op == "rank_avg":
        return math.fsum(present) / len(present)
    if op == "rank_weighted":
        return math.fsum(w * r for w, r in zip(weights, present))  # type: ignore[arg-type]
    return math.fsum(1.0 / rank for rank in present) / len(present)
