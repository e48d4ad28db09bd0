"""Probing-resistant public boards: what a participant is shown instead of a stored score.

A participant who sees exact scores of many submissions can fit the holdout
set (the "boosting attack" of Blum & Hardt, "The Ladder: A Reliable
Leaderboard for Machine Learning Competitions", ICML 2015).  A board can show
less than it stores; organizers and the final ranking keep the stored scores.
Two rules, either or both:

- display precision: shown values are the stored ones rounded to
  ``display_precision`` decimals (half to even, on the decimal value), so a
  shown value never carries more digits than that;
- the Ladder (the paper's Algorithm 1), per participant and per column, over
  their submissions in submission order: the shown value starts unset and
  changes only when a submission beats it by more than ``ladder_step`` (lower
  is better on an ``asc`` column, higher on ``desc``); it is then the new
  score rounded to the grid of multiples of ``ladder_step``.

The parameter-free Ladder (the paper's Algorithm 2) needs per-sample losses:
it accepts a submission when its mean loss beats the shown one by more than
``s / sqrt(n)``, where ``s`` is the sample standard deviation of the
per-sample differences between the submission's losses and those of the
submission last accepted, and shows the mean loss rounded to the grid ``1/n``.
:func:`parameter_free_ladder_on_losses` is that rule on loss vectors.

A board only has each submission's aggregate score, not its per-sample
losses, so boards use a simplification (:func:`parameter_free_ladder`): the
threshold is the sample standard deviation of the participant's own scores
on the column so far (their spread stands in for the per-sample spread; no
``sqrt(n)`` since no ``n`` is known), and the shown value is the score
rounded to the column's display decimals.  It is a heuristic: it keeps the
Ladder's form (a change shows only when it stands out of the participant's
own noise) but not the paper's guarantee.

Everything here is pure: values in, shown values out.  A missing value (None,
NaN) never moves a ladder; an infinite one is shown as it is.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from decimal import Decimal
from typing import Any

from scoring.leaderboard import FINISHED, Board, Entry, Row, build_leaderboard

__all__ = [
    "LADDERS",
    "MAX_DISPLAY_PRECISION",
    "Probing",
    "beats",
    "describe",
    "fixed_ladder",
    "on_grid",
    "parameter_free_ladder",
    "parameter_free_ladder_on_losses",
    "round_to_precision",
    "shown_history",
    "shown_rows",
]

LADDERS: tuple[str, ...] = ("fixed", "parameter_free")
MAX_DISPLAY_PRECISION = 10
# Decimals a parameter-free board shows when the organizer set no display precision.
DEFAULT_FREE_PRECISION = 4


@dataclass(frozen=True)
class Probing:
    """A board's probing resistance: all None is a board shown as stored."""

    display_precision: int | None = None
    ladder: str | None = None
    ladder_step: float | None = None

    def __post_init__(self) -> None:
        precision = self.display_precision
        if precision is not None and (isinstance(precision, bool) or not isinstance(precision, int)
                                      or not 0 <= precision <= MAX_DISPLAY_PRECISION):
            raise ValueError(f"display_precision must be an integer from 0 to {MAX_DISPLAY_PRECISION}, "
                             f"got {precision!r}")
        if self.ladder is not None and self.ladder not in LADDERS:
            raise ValueError(f"ladder must be one of {', '.join(LADDERS)}, got {self.ladder!r}")
        step = self.ladder_step
        if step is not None and (isinstance(step, bool) or not isinstance(step, (int, float))
                                 or not math.isfinite(step) or step <= 0):
            raise ValueError(f"ladder_step must be a number greater than 0, got {step!r}")
        if self.ladder == "fixed" and step is None:
            raise ValueError("ladder 'fixed' needs ladder_step (the smallest improvement the board shows)")
        if self.ladder != "fixed" and step is not None:
            raise ValueError("ladder_step goes with ladder: fixed only")

    @property
    def active(self) -> bool:
        """Whether the public board shows anything else than the stored scores."""
        return self.display_precision is not None or self.ladder is not None

    def to_dict(self) -> dict[str, object]:
        return {"display_precision": self.display_precision, "ladder": self.ladder,
                "ladder_step": self.ladder_step}


def _missing(value: float | None) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def round_to_precision(value: float | None, precision: int) -> float | None:
    """``value`` rounded to ``precision`` decimals (the float nearest the rounded decimal, as Python's
    ``round``: half to even on the exact binary value); None stays None."""
    if _missing(value):
        return None
    value = float(value)  # type: ignore[arg-type]
    if not math.isfinite(value):
        return value
    return round(value, precision)


@functools.lru_cache(maxsize=64)
def _decimals(step: float) -> int:
    """How many decimals the shortest form of ``step`` has (0.05: 2; 1e-07: 7)."""
    exponent = Decimal(repr(step)).as_tuple().exponent
    return max(0, -int(exponent))


def on_grid(value: float, step: float) -> float:
    """``value`` rounded to the nearest multiple of ``step`` (half to even), as the float nearest that
    multiple's decimal value (so 7 steps of 0.01 shows as 0.07, not 0.07000000000000001)."""
    if not math.isfinite(value):
        return value
    return round(round(value / step) * step, _decimals(step))


def beats(value: float, best: float | None, margin: float, sorting: str) -> bool:
    """Whether ``value`` improves on ``best`` by more than ``margin`` in the column's direction."""
    if best is None:
        return True
    if sorting == "asc":
        return value < best - margin
    if sorting == "desc":
        return value > best + margin
    raise ValueError(f"sorting must be 'asc' or 'desc', got {sorting!r}")


def fixed_ladder(values: Sequence[float | None], step: float, sorting: str) -> list[float | None]:
    """The shown value after each of a participant's submissions (Algorithm 1), in submission order."""
    if not (step > 0 and math.isfinite(step)):
        raise ValueError(f"ladder_step must be a number greater than 0, got {step!r}")
    if sorting not in ("asc", "desc"):
        raise ValueError(f"sorting must be 'asc' or 'desc', got {sorting!r}")
    lower_is_better = sorting == "asc"
    shown: float | None = None
    out: list[float | None] = []
    for value in values:
        # `beats` inlined: a board's every submission goes through here.
        if value is not None and value == value and (
                shown is None or (value < shown - step if lower_is_better else value > shown + step)):
            shown = on_grid(float(value), step)
        out.append(shown)
    return out


def _sample_std(values: Sequence[float]) -> float:
    """The sample standard deviation (n - 1); 0 for fewer than two values."""
    if len(values) < 2:
        return 0.0
    mean = math.fsum(values) / len(values)
    return math.sqrt(math.fsum((v - mean) ** 2 for v in values) / (len(values) - 1))


def parameter_free_ladder(values: Sequence[float | None], sorting: str,
                          precision: int = DEFAULT_FREE_PRECISION) -> list[float | None]:
    """The boards' parameter-free Ladder on aggregate scores (see the module docstring: a
    simplification, not the paper's rule): the shown value after each submission.

    A submission moves the shown value when it beats it by more than the
    sample standard deviation of the participant's scores so far (this one
    included; 0 while there is only one), and it is then shown rounded to
    ``precision`` decimals.
    """
    shown: float | None = None
    seen: list[float] = []
    out: list[float | None] = []
    for value in values:
        if not _missing(value):
            value = float(value)  # type: ignore[arg-type]
            if math.isfinite(value):
                seen.append(value)
            if beats(value, shown, _sample_std(seen), sorting):
                shown = round_to_precision(value, precision)
        out.append(shown)
    return out


def parameter_free_ladder_on_losses(losses: Sequence[Sequence[float]]) -> list[float]:
    """The paper's parameter-free Ladder (Algorithm 2) on per-sample loss vectors, lower is better:
    the shown loss after each submission.

    Every vector holds one submission's loss on each of the same ``n``
    holdout samples.  A submission is accepted when its mean loss is below
    the shown one by more than ``s / sqrt(n)``, ``s`` the sample standard
    deviation of its losses minus those of the submission accepted last (of
    its own losses for the first); the shown loss is then its mean rounded to
    the grid ``1/n``.  Before any acceptance the shown loss is infinity.
    """
    shown = math.inf
    leader: Sequence[float] | None = None
    out: list[float] = []
    for vector in losses:
        n = len(vector)
        if n == 0:
            raise ValueError("a loss vector needs at least one sample")
        if leader is not None and len(leader) != n:
            raise ValueError(f"loss vectors must have one loss per sample: {len(leader)} then {n}")
        differences = list(vector) if leader is None else [a - b for a, b in zip(vector, leader)]
        threshold = _sample_std(differences) / math.sqrt(n)
        mean = math.fsum(vector) / n
        if mean < shown - threshold:
            shown = on_grid(mean, 1.0 / n)
            leader = vector
        out.append(shown)
    return out


def shown_history(probing: Probing, values: Sequence[float | None], sorting: str) -> list[float | None]:
    """What the public sees after each of one participant's submissions on one column, in submission
    order: the Ladder's value when the board has one, rounded to the display precision when it has one."""
    if probing.ladder == "fixed":
        shown = fixed_ladder(values, probing.ladder_step, sorting)  # type: ignore[arg-type]
    elif probing.ladder == "parameter_free":
        shown = parameter_free_ladder(values, sorting, DEFAULT_FREE_PRECISION if probing.display_precision is None
                                      else probing.display_precision)
    else:
        shown = [None if _missing(v) else float(v) for v in values]  # type: ignore[arg-type]
    if probing.display_precision is None:
        return shown
    return [round_to_precision(v, probing.display_precision) for v in shown]


def shown_rows(board: Board, probing: Probing, rows: Sequence[Row],
               history: Sequence[Entry] = ()) -> dict[int, dict[str, Any]]:
    """What the public board shows of each row of a built board (`build_leaderboard`, every column), by
    submission id: ``{"scores": {column: shown value}, "ranks": {column: rank}, "position": rank}``, and
    on a ``Force_Best`` board the submission the public sees the row stand on (``"submission"``,
    ``"submitted_at"``).

    A plain column's shown value is :func:`shown_history` over the row's
    entrant's finished submissions up to and including the row's own
    (``history``: the entries of the board's entrants, of which the finished
    count; a Ladder needs them, and so does ``Force_Best``; without them a row
    shows its own score alone).  A computed column is computed again from the
    shown values, so it tells nothing they do not.  The public order and
    ranks are those of the board's ranking rules on the shown values: equal
    shown values share a rank, and further ties go as the board breaks them
    (other columns, then submission time).

    ``Force_Best`` chooses each entrant's row by the exact scores, so its
    submission (and its time, which breaks ties) would tell the entrant which
    of their submissions is exactly best: the public row stands instead on the
    earliest of their submissions that shows the same on every plain column
    (on a Ladder, the one that set the shown values).
    """
    plain = [column for column in board.columns if column.computation is None]
    shown_at: dict[int, dict[str, float | None]] = {}
    stands_on: dict[int, Entry] = {}
    by_best = board.submission_rule == "Force_Best"
    if probing.ladder is not None or by_best:
        wanted = {row.submission_id for row in rows}
        by_entrant: dict[str, list[Entry]] = {}
        for entry in history:
            if entry.status.lower() == FINISHED.lower():
                by_entrant.setdefault(entry.participant, []).append(entry)
        for entries in by_entrant.values():
            entries.sort(key=lambda e: (e.submitted_at, e.submission_id))
            # Each row's value is the rule's after its own submission: only those are kept.
            kept = [(i, entry.submission_id) for i, entry in enumerate(entries) if entry.submission_id in wanted]
            if not kept:
                continue
            found: dict[int, dict[str, float | None]] = {sid: {} for _, sid in kept}
            sequences = []
            for column in plain:
                key = column.key
                values = [entry.scores.get(key) for entry in entries]
                values = [v if v.__class__ is float else _score(v) for v in values]
                seq = shown_history(probing, values, column.sorting)
                sequences.append(seq)
                for i, sid in kept:
                    found[sid][key] = seq[i]
            shown_at.update(found)
            if by_best:
                for i, sid in kept:
                    same = next(j for j in range(i + 1) if all(_same(seq[j], seq[i]) for seq in sequences))
                    stands_on[sid] = entries[same]
    public_entries = []
    for row in rows:
        found = shown_at.get(row.submission_id)
        if found is None and probing.ladder is None:  # a precision-only board: each row's own score, rounded
            found = {column.key: round_to_precision(_score(row.scores.get(column.key)),
                                                    probing.display_precision)  # type: ignore[arg-type]
                     for column in plain}
        elif found is None:  # a row without history (not among `history`): its own score alone
            found = {column.key: shown_history(probing, [row.scores.get(column.key)], column.sorting)[0]
                     for column in plain}
        shown_as = stands_on.get(row.submission_id)
        public_entries.append(Entry(
            submission_id=row.submission_id, participant=row.participant,
            submitted_at=row.submitted_at if shown_as is None else shown_as.submitted_at,
            status=FINISHED, scores={key: (math.nan if value is None else value) for key, value in found.items()},
            selected=True))
    # Every row stands already: rank them all, by the board's columns and tie-breaks.
    public = replace(board, submission_rule="Force_Latest_Multiple", hidden=False)
    built = build_leaderboard(public, public_entries, viewer_is_organizer=True)
    made: dict[int, dict[str, Any]] = {}
    for row in built.rows:
        made[row.submission_id] = {"scores": dict(row.scores), "ranks": dict(row.ranks), "position": row.rank}
        shown_as = stands_on.get(row.submission_id)
        if shown_as is not None:
            made[row.submission_id].update(submission=shown_as.submission_id,
                                           submitted_at=shown_as.submitted_at.isoformat())
    return made


def _same(a: float | None, b: float | None) -> bool:
    return a == b or (a is None and b is None)


def _score(raw: object) -> float | None:
    if raw.__class__ is float:  # the usual case, first
        return None if raw != raw else raw  # type: ignore[return-value]
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    return None if math.isnan(raw) else float(raw)


def describe(probing: Probing, *, organizer: bool = False) -> str:
    """What a probing-resistant board shows, in one sentence for the people reading it."""
    if organizer:
        return ("Participants and visitors see this board's shown values (each row's \"shown\") in their own "
                "order; you, an organizer, see the stored scores.")
    parts = []
    if probing.display_precision is not None:
        parts.append(f"to {probing.display_precision} decimal(s)")
    if probing.ladder == "fixed":
        parts.append(f"by the Ladder: an entry's shown score changes only when a new submission beats it by more "
                     f"than {probing.ladder_step:g}")
    elif probing.ladder == "parameter_free":
        parts.append("by the Ladder: an entry's shown score changes only when a new submission beats it by more "
                     "than the spread of that entry's own scores")
    return f"Scores on this board are shown {', '.join(parts)}; the final ranking uses the exact scores."
