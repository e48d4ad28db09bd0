"""Leaderboard assembly: from a board definition and scored submissions to rows.

The application layer loads a phase's board (columns from the bundle) and the
submissions with their parsed scores, and calls :func:`build_leaderboard`. What
comes back is already cut to what the viewer may see, so every adapter (web
page, REST API, notebook widget) shows the same thing and none of them can leak
a hidden column or a blind phase's scores by forgetting a check.

The steps, in order:

1. choose the entries that stand on the board by the board's submission rule
   (:func:`select_entries`); only finished submissions ever count;
2. fill each column: plain columns from the submission's scores, computed
   columns from their sources (values or ranks), in dependency order, and give
   every column its dense ranks over the chosen entries;
3. order the rows: by the primary column's rank; then, Codabench style
   (``tie_break_by_columns=True``), by the other columns' ranks in column
   order; then by submission time, so earlier wins a tie; a missing score
   (absent, NaN) always comes after every real one;
4. cut to the viewer: organizers see everything; others lose hidden columns
   (a computed column over a hidden one is shown to them as a plain column, so
   its definition does not name the hidden key), see a hidden board as empty,
   and see no rows at all in a blind phase.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any

from scoring.ranking import (
    COMPUTATIONS,
    DEFAULT_TOLERANCE,
    RANK_COMPUTATIONS,
    SORTINGS,
    compute_rank_value,
    compute_value,
    dense_ranks,
    effective_sorting,
    is_missing,
)

__all__ = [
    "BLIND_NOTE",
    "BLIND_NOTE_FOR_ORGANIZERS",
    "FINISHED",
    "HIDDEN_BOARD_NOTE",
    "MULTIPLE_ENTRY_RULES",
    "SUBMISSION_RULES",
    "Board",
    "Column",
    "Entry",
    "Leaderboard",
    "Row",
    "build_leaderboard",
    "format_score",
    "hidden_column_disclosures",
    "select_entries",
]

SUBMISSION_RULES: tuple[str, ...] = (
    "Add",
    "Add_And_Delete",
    "Add_And_Delete_Multiple",
    "Force_Last",
    "Force_Latest_Multiple",
    "Force_Best",
)
# Rules under which one participant may hold several rows.
MULTIPLE_ENTRY_RULES: frozenset[str] = frozenset(
    {"Add_And_Delete_Multiple", "Force_Latest_Multiple"}
)
FINISHED = "Finished"

HIDDEN_BOARD_NOTE = "This leaderboard is visible to the organizers only."
BLIND_NOTE = "Results are hidden until the organizers reveal them."
BLIND_NOTE_FOR_ORGANIZERS = (
    "Participants do not see these results until you reveal them."
)


@dataclass(frozen=True)
class Column:
    """One column of a board; ``key`` is the name the scoring program writes.

    ``computation`` is one of ``sum avg min max`` (on the values of
    ``source_keys``), ``rank_avg rank_weighted mrr`` (on their ranks; see
    :mod:`scoring.ranking` for their fixed direction), or None for a plain
    column. ``weights`` go with ``rank_weighted`` only, one per source.
    """

    key: str
    title: str
    index: int
    sorting: str = "desc"
    precision: int = 2
    hidden: bool = False
    computation: str | None = None
    source_keys: tuple[str, ...] = ()
    weights: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        where = f"column {self.key!r}"
        if not self.key:
            raise ValueError("a column needs a non-empty key")
        if self.sorting not in SORTINGS:
            raise ValueError(f"{where}: sorting must be 'asc' or 'desc', got {self.sorting!r}")
        if self.precision < 0:
            raise ValueError(f"{where}: precision must be >= 0, got {self.precision}")
        if self.computation is None:
            if self.source_keys or self.weights is not None:
                raise ValueError(f"{where}: source_keys and weights need a computation")
            return
        if self.computation not in COMPUTATIONS:
            raise ValueError(
                f"{where}: unknown computation {self.computation!r}; expected one of "
                f"{', '.join(COMPUTATIONS)}"
            )
        if not self.source_keys:
            raise ValueError(f"{where}: computation {self.computation!r} needs source_keys")
        if self.computation == "rank_weighted":
            if self.weights is None or len(self.weights) != len(self.source_keys):
                raise ValueError(
                    f"{where}: rank_weighted needs one weight per source column "
                    f"({len(self.source_keys)})"
                )
        elif self.weights is not None:
            raise ValueError(f"{where}: weights apply to rank_weighted only")

    @property
    def ranked_sorting(self) -> str:
        """The direction this column is actually ranked in."""
        return effective_sorting(self.sorting, self.computation)


@dataclass(frozen=True)
class Board:
    """A leaderboard definition: its columns, primary column and submission rule.

    ``primary_key`` None means the first column by index.
    ``tie_break_by_columns`` True orders ties on the primary column by the
    other columns in index order before submission time (Codabench); False
    goes straight to submission time (CodaLab).
    """

    key: str
    title: str
    columns: tuple[Column, ...]
    primary_key: str | None = None
    submission_rule: str = "Force_Last"
    hidden: bool = False
    tie_break_by_columns: bool = True

    def __post_init__(self) -> None:
        where = f"leaderboard {self.key!r}"
        if not self.columns:
            raise ValueError(f"{where}: needs at least one column")
        keys = [column.key for column in self.columns]
        duplicates = sorted({key for key in keys if keys.count(key) > 1})
        if duplicates:
            raise ValueError(f"{where}: duplicate column keys {', '.join(duplicates)}")
        if self.primary_key is not None and self.primary_key not in keys:
            raise ValueError(f"{where}: primary column {self.primary_key!r} is not a column")
        if self.submission_rule not in SUBMISSION_RULES:
            raise ValueError(
                f"{where}: unknown submission rule {self.submission_rule!r}; expected "
                f"one of {', '.join(SUBMISSION_RULES)}"
            )
        for column in self.columns:
            missing = [key for key in column.source_keys if key not in keys]
            if missing:
                raise ValueError(
                    f"{where}: column {column.key!r} computes from unknown "
                    f"columns {', '.join(missing)}"
                )
        _evaluation_order(self.columns, where)  # raises on a cycle

    @property
    def ordered_columns(self) -> tuple[Column, ...]:
        """Columns in display order (by index; declaration order breaks ties)."""
        return tuple(sorted(self.columns, key=lambda column: column.index))

    @property
    def primary_column(self) -> Column:
        if self.primary_key is None:
            return self.ordered_columns[0]
        return next(column for column in self.columns if column.key == self.primary_key)


@dataclass(frozen=True)
class Entry:
    """One submission as the board sees it.

    ``status`` is the submission status; only ``Finished`` (any letter case,
    since CodaLab stores it lower case) counts. ``selected`` is the
    participant's own choice of what to show, used by the ``Add`` rules.
    """

    submission_id: int
    participant: str
    submitted_at: datetime
    status: str
    scores: Mapping[str, float]
    selected: bool = False


@dataclass(frozen=True)
class Row:
    """One row of a built leaderboard.

    ``rank`` is the 1-based position (unique; ties go to the earlier
    submission). ``scores`` and ``ranks`` hold one entry per visible column,
    None where the value is missing or NaN.
    """

    rank: int
    participant: str
    submission_id: int
    submitted_at: datetime
    scores: dict[str, float | None]
    ranks: dict[str, int | None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rank": self.rank,
            "participant": self.participant,
            "submission_id": self.submission_id,
            "submitted_at": self.submitted_at.isoformat(),
            "scores": dict(self.scores),
            "ranks": dict(self.ranks),
        }


@dataclass(frozen=True)
class Leaderboard:
    """A leaderboard as one viewer may see it."""

    key: str
    title: str
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    hidden_for_viewer: bool = False
    note: str = ""
    primary_key: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready form for the REST API and the notebook widget."""
        return {
            "key": self.key,
            "title": self.title,
            "primary_key": self.primary_key,
            "hidden_for_viewer": self.hidden_for_viewer,
            "note": self.note,
            "columns": [
                {
                    "key": column.key,
                    "title": column.title,
                    "index": column.index,
                    "sorting": column.ranked_sorting,
                    "precision": column.precision,
                    "hidden": column.hidden,
                    "computation": column.computation,
                }
                for column in self.columns
            ],
            "rows": [row.to_dict() for row in self.rows],
        }


def _evaluation_order(columns: Sequence[Column], where: str) -> list[Column]:
    """Columns ordered so that every computed column follows its sources."""
    by_key = {column.key: column for column in columns}
    done: dict[str, bool] = {}  # False while being visited, True when placed
    order: list[Column] = []

    def visit(column: Column, path: tuple[str, ...]) -> None:
        state = done.get(column.key)
        if state is True:
            return
        if state is False:
            cycle = " -> ".join(path + (column.key,))
            raise ValueError(f"{where}: computed columns depend on each other: {cycle}")
        done[column.key] = False
        for source in column.source_keys:
            visit(by_key[source], path + (column.key,))
        done[column.key] = True
        order.append(column)

    for column in columns:
        visit(column, ())
    return order


def _without_hidden_sources(column: Column, hidden_keys: set[str]) -> Column:
    """The column as a participant may see it.

    A computed column over a hidden column would name that column in its
    ``source_keys``; participants get it as a plain column instead, ranked in
    the same direction, so its values stay and the hidden key does not leak.
    """
    if not hidden_keys.intersection(column.source_keys):
        return column
    return replace(
        column,
        sorting=column.ranked_sorting,
        computation=None,
        source_keys=(),
        weights=None,
    )


def hidden_column_disclosures(
    columns: Iterable[Any], primary_key: str | None = None
) -> list[tuple[str, str]]:
    """What a board shows participants about its hidden columns: (column key, sentence).

    Participants never get a hidden column's key or values, but a board can
    still let them work something out from what it shows:

    - the rows are ordered by the primary column, so a hidden primary column
      shows the order of its values (allowed: it is how a board with a secret
      score is meant to work);
    - a visible value computation (sum, avg, min, max) over a hidden column
      lets a participant solve for the hidden values from the visible ones;
    - a visible rank computation over a hidden column shows each row's rank
      on it.

    ``columns`` are any objects with ``key``, ``hidden``, ``computation`` and
    ``source_keys`` (a bundle's column specs or :class:`Column`). The import of
    a bundle says these sentences to the organizer, so the choice is theirs
    and never silent.
    """
    columns = list(columns)
    hidden = {column.key for column in columns if column.hidden}
    if not hidden:
        return []
    found: list[tuple[str, str]] = []
    primary = primary_key or (min(columns, key=lambda column: column.index).key if columns else None)
    if primary in hidden:
        found.append((primary, "is hidden and orders the board: participants see the order of its "
                               "values (never the values themselves)"))
    for column in columns:
        if column.hidden or not column.computation:
            continue
        sources = [key for key in column.source_keys if key in hidden]
        if not sources:
            continue
        named = ", ".join(repr(key) for key in sources)
        if column.computation in RANK_COMPUTATIONS:
            found.append((column.key, f"is shown to participants and computed ({column.computation}) from the "
                                      f"ranks of the hidden column(s) {named}: participants can work out each "
                                      f"row's rank on them; hide this column too to keep those ranks secret"))
        else:
            found.append((column.key, f"is shown to participants and computed ({column.computation}) from the "
                                      f"hidden column(s) {named}: with the visible columns, participants can "
                                      f"work out their values; hide this column too to keep them secret"))
    return found


def _as_value(raw: object) -> float | None:
    """A stored score as a rankable float, or None when it cannot rank."""
    if isinstance(raw, bool) or not isinstance(raw, (int, float)):
        return None
    value = float(raw)
    return None if math.isnan(value) else value


@dataclass
class _Scored:
    entry: Entry
    values: dict[str, float | None]
    ranks: dict[str, int | None]


def _score(board: Board, entries: Sequence[Entry], tolerance: float) -> list[_Scored]:
    """Fill every column's values and dense ranks over the given entries."""
    scored = [_Scored(entry, {}, {}) for entry in entries]
    for column in _evaluation_order(board.columns, f"leaderboard {board.key!r}"):
        for row in scored:
            if column.computation is None:
                value = _as_value(row.entry.scores.get(column.key))
            elif column.computation in RANK_COMPUTATIONS:
                value = compute_rank_value(
                    column.computation,
                    [row.ranks[key] for key in column.source_keys],
                    column.weights,
                )
            else:
                value = compute_value(
                    column.computation, [row.values[key] for key in column.source_keys]
                )
            row.values[column.key] = value
        ranks = dense_ranks(
            [row.values[column.key] for row in scored], column.ranked_sorting, tolerance
        )
        for row, rank in zip(scored, ranks):
            row.ranks[column.key] = rank
    return scored


def _order(board: Board, scored: Iterable[_Scored]) -> list[_Scored]:
    """Rows best first; see the module docstring for the order of keys."""
    primary = board.primary_column.key
    tie_breakers = (
        [column.key for column in board.ordered_columns if column.key != primary]
        if board.tie_break_by_columns
        else []
    )

    def rank_key(rank: int | None) -> float:
        return math.inf if rank is None else rank

    def sort_key(row: _Scored) -> tuple[Any, ...]:
        return (
            rank_key(row.ranks[primary]),
            *(rank_key(row.ranks[key]) for key in tie_breakers),
            row.entry.submitted_at,
            row.entry.submission_id,
        )

    return sorted(scored, key=sort_key)


def _time_key(entry: Entry) -> tuple[datetime, int]:
    return (entry.submitted_at, entry.submission_id)


def select_entries(
    rule: str,
    entries: Iterable[Entry],
    board_for_best: Board,
    *,
    tolerance: float = DEFAULT_TOLERANCE,
) -> list[Entry]:
    """The entries that stand on the board under ``rule``, oldest first.

    ``Force_Last``: each participant's latest finished submission.
    ``Force_Best``: each participant's best finished submission by the order of
    ``board_for_best`` (ranks taken over all finished submissions).
    ``Add``, ``Add_And_Delete``: the participant's selected submission (the
    latest if several); a participant who selected none is not on the board.
    ``Add_And_Delete_Multiple``: every selected submission.
    ``Force_Latest_Multiple``: every finished submission.
    """
    if rule not in SUBMISSION_RULES:
        raise ValueError(
            f"unknown submission rule {rule!r}; expected one of {', '.join(SUBMISSION_RULES)}"
        )
    finished = sorted(
        (entry for entry in entries if entry.status.lower() == FINISHED.lower()),
        key=_time_key,
    )
    if rule == "Force_Latest_Multiple":
        return finished
    if rule == "Add_And_Delete_Multiple":
        return [entry for entry in finished if entry.selected]

    chosen: dict[str, Entry] = {}
    if rule == "Force_Best":
        # The first row of each participant in board order is their best.
        for row in _order(board_for_best, _score(board_for_best, finished, tolerance)):
            chosen.setdefault(row.entry.participant, row.entry)
    else:
        candidates = finished
        if rule in ("Add", "Add_And_Delete"):
            candidates = [entry for entry in finished if entry.selected]
        for entry in candidates:  # oldest first, so the latest overwrites
            chosen[entry.participant] = entry
    return sorted(chosen.values(), key=_time_key)


def build_leaderboard(
    board: Board,
    entries: Sequence[Entry],
    *,
    viewer_is_organizer: bool = False,
    blind: bool = False,
    tolerance: float = DEFAULT_TOLERANCE,
) -> Leaderboard:
    """Build ``board`` from ``entries`` as the viewer may see it.

    ``blind`` is a phase whose results are hidden from participants
    (CodaLab ``hide_results``): a non-organizer gets the visible columns, no
    rows and a note. A hidden board gives a non-organizer no columns and no
    rows, with ``hidden_for_viewer=True``.
    """
    if board.hidden and not viewer_is_organizer:
        # Return before touching any entry: nothing computed, nothing to leak.
        return Leaderboard(
            key=board.key,
            title=board.title,
            columns=(),
            rows=(),
            hidden_for_viewer=True,
            note=HIDDEN_BOARD_NOTE,
        )
    if viewer_is_organizer:
        visible = board.ordered_columns
    else:
        hidden_keys = {column.key for column in board.columns if column.hidden}
        visible = tuple(
            _without_hidden_sources(column, hidden_keys)
            for column in board.ordered_columns
            if not column.hidden
        )
    primary = board.primary_column.key
    shown_primary = primary if any(column.key == primary for column in visible) else None
    if blind and not viewer_is_organizer:
        return Leaderboard(
            key=board.key,
            title=board.title,
            columns=visible,
            rows=(),
            note=BLIND_NOTE,
            primary_key=shown_primary,
        )

    selected = select_entries(board.submission_rule, entries, board, tolerance=tolerance)
    ordered = _order(board, _score(board, selected, tolerance))
    rows = tuple(
        Row(
            rank=position,
            participant=row.entry.participant,
            submission_id=row.entry.submission_id,
            submitted_at=row.entry.submitted_at,
            scores={column.key: row.values[column.key] for column in visible},
            ranks={column.key: row.ranks[column.key] for column in visible},
        )
        for position, row in enumerate(ordered, start=1)
    )
    return Leaderboard(
        key=board.key,
        title=board.title,
        columns=visible,
        rows=rows,
        note=BLIND_NOTE_FOR_ORGANIZERS if blind else "",
        primary_key=shown_primary,
    )


def format_score(value: float | None, precision: int) -> str:
    """A score as shown in a cell: ``precision`` decimals, ``-`` when missing."""
    if is_missing(value):
        return "-"
    return f"{float(value):.{max(0, int(precision))}f}"  # type: ignore[arg-type]
