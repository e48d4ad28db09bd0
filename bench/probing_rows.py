"""The cost of a probing-resistant board's shown values, against building the board without them.

    python bench/probing_rows.py [--participants 10000] [--per-participant 10] [--repeat 5] [--out bench/probing_rows.json]

At 100k submissions (10,000 participants, 10 each; one board of 3 score
columns, rule Force_Last), in one run:

- `pure`: `scoring.leaderboard.build_leaderboard` over the 100k finished
  entries (the board a rebuild makes: 10,000 rows) against
  `scoring.probing.shown_rows` over those rows: with a fixed Ladder (each
  participant's 10 submissions followed in time order on each column) and
  with a display precision alone;
- `maintained`: `Platform.rebuild_boards` of a phase on SQLite (what a
  change of the phase costs in `app.standings`: the candidates' statement,
  the ranking, the comparison with the rows kept), for three competitions
  filled alike in one database, timed in turn: without probing, with a fixed
  Ladder (which also reads every finished submission, not only each
  participant's latest), with a display precision alone.

Each figure is the median of `--repeat` runs (`--repeat 5` by default); `ratio` divides the time with
shown values by the time without.  The submissions are bulk-loaded as the
maintained-boards test loads them (`tests.hub_extension.app.test_standings.fill`).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402
from hub_extension.bundles.model import ColumnSpec  # noqa: E402
from scoring.leaderboard import Board, Column, Entry, build_leaderboard  # noqa: E402
from scoring.probing import Probing, shown_rows  # noqa: E402
from tests.hub_extension.app.test_standings import fill  # noqa: E402
from tests.support.builders import simple_spec  # noqa: E402

T0 = dt.datetime(2026, 3, 1)


def median_seconds(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        began = time.perf_counter()
        fn()
        times.append(time.perf_counter() - began)
    return statistics.median(times)


def pure(participants: int, per: int, repeat: int) -> dict:
    rng = random.Random(7)
    board = Board(key="main", title="Main", submission_rule="Force_Last", primary_key="accuracy", columns=(
        Column(key="accuracy", title="Accuracy", index=0, sorting="desc"),
        Column(key="b", title="B", index=1, sorting="asc"),
        Column(key="c", title="C", index=2, sorting="desc")))
    entries = [Entry(submission_id=n * participants + i, participant=f"user{i:06d}",
                     submitted_at=T0 + dt.timedelta(seconds=n * participants + i), status="Finished",
                     scores={"accuracy": rng.random(), "b": rng.random(), "c": rng.random()})
               for n in range(per) for i in range(participants)]
    built = build_leaderboard(board, entries, viewer_is_organizer=True)
    ladder = Probing(ladder="fixed", ladder_step=0.01)
    precision = Probing(display_precision=2)
    runs = {"build": lambda: build_leaderboard(board, entries, viewer_is_organizer=True),
            "ladder": lambda: shown_rows(board, ladder, built.rows, entries),
            "precision": lambda: shown_rows(board, precision, built.rows)}
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeat):  # interleaved, as in `maintained`
        for name, run in runs.items():
            times[name].append(median_seconds(run, 1))
    without, with_ladder, with_precision = (statistics.median(times[name]) for name in runs)
    return {"submissions": len(entries), "rows": len(built.rows), "build_s": round(without, 3),
            "shown_ladder_s": round(with_ladder, 3), "shown_precision_s": round(with_precision, 3),
            "ratio_ladder": round(with_ladder / without, 2), "ratio_precision": round(with_precision / without, 2)}


def maintained(participants: int, per: int, repeat: int) -> dict:
    settings = {"none": {}, "ladder": {"ladder": "fixed", "ladder_step": 0.01}, "precision": {"display_precision": 2}}
    with tempfile.TemporaryDirectory() as home:
        platform = Platform(home=home)
        slugs = {}
        for name, probing in settings.items():  # one competition each, filled alike, in one database
            spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
            spec.title = f"Probing {name}"
            board = spec.leaderboards[0]
            board.columns += [ColumnSpec(key="b", title="B", index=1, sorting="asc"),
                              ColumnSpec(key="c", title="C", index=2)]
            for key, value in probing.items():
                setattr(board, key, value)
            slugs[name] = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
            fill(platform, slugs[name], participants, per, keys=("accuracy", "b", "c"))
        times: dict[str, list[float]] = {name: [] for name in settings}
        for _ in range(repeat):  # interleaved, so that the machine's load weighs on each alike
            for name, slug in slugs.items():
                began = time.perf_counter()
                platform.rebuild_boards(slug)
                times[name].append(time.perf_counter() - began)
        result = {"submissions": participants * per, "database": platform.db.engine.dialect.name}
        base = statistics.median(times["none"])
        result["rebuild_s"] = round(base, 3)
        for name in ("ladder", "precision"):
            result[f"rebuild_{name}_s"] = round(statistics.median(times[name]), 3)
            result[f"ratio_{name}"] = round(statistics.median(times[name]) / base, 2)
        platform.close()
        return result


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=10_000)
    parser.add_argument("--per-participant", type=int, default=10)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--out", default="bench/probing_rows.json")
    args = parser.parse_args()
    results = {"pure": pure(args.participants, args.per_participant, args.repeat)}
    print(json.dumps(results["pure"]), flush=True)
    results["maintained"] = maintained(args.participants, args.per_participant, args.repeat)
    print(json.dumps(results["maintained"]), flush=True)
    Path(args.out).write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
