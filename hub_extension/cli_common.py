"""What the `compete` commands that run the platform share: the platform from the global options, printing, errors.

The commands of `cli_platform`, `cli_run`, `cli_queue` and `cli_db` import this
module; `compete` (hub_extension/cli.py) loads them only when one of them runs.
"""
from __future__ import annotations

import argparse
import json
import sys
from typing import Any, Optional

from .app import Platform, PlatformError
from .bundles.model import BundleError
from .config import LoadedConfig, load_config
from .db import SchemaError

# Errors a command reports in a line or a few, without a traceback.
REPORTED_ERRORS = (BundleError, PlatformError, SchemaError)


def loaded_config(args: argparse.Namespace) -> LoadedConfig:
    """The configuration of this run (`--home`, `--db`, `--executor` over the config file), read once."""
    loaded = getattr(args, "loaded_config", None)
    if loaded is None:
        loaded = load_config(home=args.home, db_url=args.db, executor=getattr(args, "executor", None))
        args.loaded_config = loaded
    return loaded


def platform(args: argparse.Namespace) -> Platform:
    return Platform(loaded_config(args).compete)


def report(exc: Exception) -> int:
    """Print one of REPORTED_ERRORS to stderr (a bundle's problems one a line); the exit code."""
    if isinstance(exc, BundleError):
        for problem in exc.problems:
            print(problem, file=sys.stderr)
    else:
        print(f"error: {exc}", file=sys.stderr)
    return 1


def print_json(data: Any) -> None:
    print(json.dumps(data, sort_keys=False, default=str))


def fmt(value: Optional[float], precision: int = 4) -> str:
    if value is None or value != value:
        return "-"
    return f"{value:.{precision}f}"


def print_leaderboard(board: dict[str, Any]) -> None:
    cols = board["columns"]
    header = ["#", "participant", "submission"] + [c["title"] for c in cols]
    lines = [header]
    for row in board["rows"]:
        lines.append(
            [str(row["rank"]), row["participant"], str(row["submission"])]
            + [fmt(row["scores"].get(c["key"]), 4 if c.get("precision") is None else c["precision"]) for c in cols]
        )
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    print(f"{board['competition']} — phase {board['phase']}")
    for n, line in enumerate(lines):
        print("  ".join(cell.ljust(w) for cell, w in zip(line, widths)).rstrip())
        if n == 0:
            print("  ".join("-" * w for w in widths))
    if not board["rows"]:
        print("(no submissions on the leaderboard yet)")
    if (board.get("probing") or {}).get("note"):
        print(board["probing"]["note"])


def print_scores(info: dict[str, Any], indent: str = "  ") -> None:
    """A submission's scores, one a line, headed and rounded as their leaderboard columns say."""
    columns = {c["key"]: c for c in info.get("score_columns") or []}
    for key, value in info["scores"].items():
        column = columns.get(key, {})
        precision = column.get("precision")
        print(f"{indent}{column.get('title') or key}: {fmt(value, 6 if precision is None else precision)}")


def submission_line(info: dict[str, Any]) -> dict[str, Any]:
    """The one-line JSON of `compete submit --json`."""
    return {
        "id": info["id"],
        "status": info["status"],
        "scores": {k: v for k, v in info["scores"].items() if v is not None},
        "error": info["error"],
        "elapsed": info["elapsed"],
    }
