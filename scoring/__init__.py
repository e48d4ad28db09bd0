"""Pure leaderboard logic: scores files, ranking and leaderboard assembly.

Nothing here does I/O beyond reading a scores file by path, and nothing imports
a web, database or execution framework, so the service, the workers and the
notebook widget can all share these rules and test them in isolation.
"""

from scoring.leaderboard import (
    Board,
    Column,
    Entry,
    Leaderboard,
    Row,
    build_leaderboard,
    format_score,
    select_entries,
)
from scoring.ranking import compute_rank_value, compute_value, dense_ranks
from scoring.scores import ScoreFileError, parse_scores_json, parse_scores_txt, read_scores

__all__ = [
    "Board",
    "Column",
    "Entry",
    "Leaderboard",
    "Row",
    "ScoreFileError",
    "build_leaderboard",
    "compute_rank_value",
    "compute_value",
    "dense_ranks",
    "format_score",
    "parse_scores_json",
    "parse_scores_txt",
    "read_scores",
    "select_entries",
]
