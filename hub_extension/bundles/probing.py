"""A leaderboard's probing resistance in a bundle: `display_precision`, `ladder`, `ladder_step`.

The same three keys in both dialects, on a board's entry (Codabench v2:
`leaderboards: [{key, ..., ladder: fixed, ladder_step: 0.01}]`; CodaLab v1.5:
`leaderboard: leaderboards: NAME: {label, rank, display_precision: 3}`).  The
rules themselves are `scoring.probing`; here they are read, checked (every
problem as `competition.yaml: <board>.<key>: message`) and written back.
"""
from __future__ import annotations

import math
from typing import Any

from scoring.probing import LADDERS, MAX_DISPLAY_PRECISION

from .fields import Section, describe
from .model import LeaderboardSpec

PROBING_KEYS = frozenset({"display_precision", "ladder", "ladder_step"})


def read_probing(bs: Section, board: LeaderboardSpec) -> None:
    """Set `board`'s probing resistance from its bundle entry `bs`, recording each problem on `bs`."""
    if bs.has("display_precision"):
        precision = bs.integer("display_precision", None)
        if precision is not None and precision > MAX_DISPLAY_PRECISION:
            bs.error("display_precision", f"must be at most {MAX_DISPLAY_PRECISION} decimals, got {precision}")
            precision = None
        board.display_precision = precision
    if bs.has("ladder"):
        board.ladder = bs.choice("ladder", LADDERS, None)
    if bs.has("ladder_step"):
        raw = bs.raw("ladder_step")
        step = None
        if isinstance(raw, (int, float)) and not isinstance(raw, bool):
            step = float(raw)
        elif isinstance(raw, str):
            try:
                step = float(raw.strip())
            except ValueError:
                step = None
        if step is None or not math.isfinite(step) or step <= 0:
            bs.error("ladder_step", f"must be a number greater than 0 (the smallest improvement the public "
                                    f"board shows), got {describe(raw)}")
        elif board.ladder != "fixed":
            bs.error("ladder_step", "goes with `ladder: fixed` only; add it, or remove ladder_step")
        else:
            board.ladder_step = step
    if board.ladder == "fixed" and board.ladder_step is None and not bs.has("ladder_step"):
        bs.error("ladder", "fixed needs ladder_step: the smallest improvement the public board shows, "
                           "such as 0.01")


def probing_entry(board: LeaderboardSpec) -> dict[str, Any]:
    """The keys a board's bundle entry gets for its probing resistance (none when it has none)."""
    entry: dict[str, Any] = {}
    if board.display_precision is not None:
        entry["display_precision"] = board.display_precision
    if board.ladder is not None:
        entry["ladder"] = board.ladder
    if board.ladder_step is not None:
        entry["ladder_step"] = board.ladder_step
    return entry
