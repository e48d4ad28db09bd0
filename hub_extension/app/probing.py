"""Probing-resistant boards in the platform: which boards limit what participants see, and how far.

The rules are `scoring.probing`; a board's settings are its `display_precision`,
`ladder` and `ladder_step` (from the bundle, or `set_probing`).  `standings`
stores what the public board shows beside the stored scores
(`board_rows.shown`), `leaderboards` gives it to everyone but organizers.

A Ladder is only as strong as its weakest outlet: a participant who can read
their own exact scores anywhere else can probe the holdout set all the same.
So, for everyone but organizers, in a competition with a Ladder board:

- a submission's scores on that board's columns are withheld (the
  submission says `scores_withheld: true`, each task's scores lose them too);
- the scoring side of every run (its logs, detailed results, score output
  files) is hidden, as if the phase hid its score output;
- the best-score history of a Ladder board is not given;
- a failed scoring step's error keeps its sentence, not the stderr it quotes.

On a board that only limits precision, a participant's own scores on its
columns are shown rounded to the same decimals.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Iterable, Optional

from scoring.probing import Probing, round_to_precision

from .. import models as m
from ..bundles.model import CompetitionSpec
from .actors import Actor
from .context import Context

if TYPE_CHECKING:  # the editor imports the boards' keeping, which imports this module
    from .editor import Edit, Editor


def probing_of(board: Any) -> Optional[Probing]:
    """A board's probing resistance (None: shown as stored).  Settings that do not hold are an error:
    the board is not built until they are fixed (the same rule as a bad column)."""
    probing = Probing(display_precision=board.display_precision, ladder=board.ladder,
                      ladder_step=board.ladder_step)
    return probing if probing.active else None


def _shown_boards(comp: m.Competition) -> Iterable[tuple[m.Leaderboard, Probing]]:
    for board in comp.leaderboards:
        if board.hidden:
            continue
        try:
            probing = probing_of(board)
        except ValueError:
            continue
        if probing is not None:
            yield board, probing


def has_ladder(comp: m.Competition) -> bool:
    """Whether a board participants see follows the Ladder: then runs' scoring side is hidden from them."""
    return any(probing.ladder for _, probing in _shown_boards(comp))


def withheld_keys(comp: m.Competition) -> set[str]:
    """The score keys a participant never reads exactly: the visible columns of Ladder boards."""
    return {c.key for board, probing in _shown_boards(comp) if probing.ladder for c in board.columns if not c.hidden}


def rounded_keys(comp: m.Competition) -> dict[str, int]:
    """The score keys a participant reads rounded, with their decimals (the fewest when on several boards)."""
    found: dict[str, int] = {}
    for board, probing in _shown_boards(comp):
        if probing.display_precision is None:
            continue
        for c in board.columns:
            found[c.key] = min(found.get(c.key, probing.display_precision), probing.display_precision)
    return found


def cut_scores(comp: m.Competition, scores: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """A participant's own scores as they may read them: (scores, whether some were withheld)."""
    withheld = withheld_keys(comp)
    rounded = rounded_keys(comp)
    cut: dict[str, Any] = {}
    for key, value in scores.items():
        if key in withheld:
            continue
        if key in rounded and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = round_to_precision(float(value), rounded[key])
        cut[key] = value
    return cut, any(key in withheld for key in scores)


# How a worker's error quotes a failing program's stderr (`dask_workers.pipeline._with_tail`).
STDERR_TAIL_MARK = "\n--- last lines of stderr ---\n"


def cut_error(comp: m.Competition, error: Optional[str]) -> Optional[str]:
    """A failed submission's error as a participant reads it: in a competition with a Ladder board, without
    the stderr a scoring program left (scoring output, which can quote exact scores)."""
    if not error or not has_ladder(comp):
        return error
    head, mark, _ = error.partition(STDERR_TAIL_MARK)
    if mark and "scoring" in head:
        return f"{head} (the scoring program's output is not shown in this competition)"
    return error


class Probings:
    """Setting a board's probing resistance (organizers), saved as every edit is: through the bundle reader,
    so the competition's YAML says it and its boards are rebuilt with the change."""

    def __init__(self, ctx: Context, editor: "Editor"):
        self.ctx = ctx
        self.editor = editor

    def set_probing(self, slug: str, board: str, actor: Actor, *, display_precision: Any = None,
                    ladder: Any = None, ladder_step: Any = None) -> "Edit":
        """Set what the public board `board` shows (all None: the stored scores)."""
        from .editor import board_of  # the editor reaches this module through the standings: read when a board is set

        def change(spec: CompetitionSpec) -> list[str]:
            found = board_of(spec, slug, board)
            try:
                Probing(display_precision=display_precision, ladder=ladder, ladder_step=ladder_step)
            except ValueError as exc:
                return [f"leaderboard {board!r}: {exc}"]
            found.display_precision, found.ladder = display_precision, ladder
            found.ladder_step = None if ladder_step is None else float(ladder_step)
            return []

        return self.editor.save_spec(slug, actor, change)
