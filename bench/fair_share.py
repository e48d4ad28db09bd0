"""The cost of the fair order of a queue, against a plain FIFO `ORDER BY`, measured in the same run.

    python bench/fair_share.py [--participants 50] [--per 10] [--history 1000] [--repeat 50]
                               [--db-url URL] [--out bench/fair_share.json]

One results competition (the bench's scale bundle, no submission limits);
`--participants` participants each make one submission that a worker runs to
the end (`bench.scale.finish_as_worker`: so each owner has a time it was
last served), then `--history` more finished submissions are copied row for
row (`bench.scale.bulk_insert`), then every participant submits `--per` more
that wait: 500 waiting by default, submitted participant by participant
(the backlog a busy queue has).

Measured, each `--repeat` times (median and p90, milliseconds):

- `fair`: what the dispatcher reads and computes each round for the queue
  (`Runs.fair_queue`: the open submissions, the queues, the owners' last
  service, and `fairness.fair_order`);
- `fair_order_only`: the ordering alone (`fairness.fair_order` on the rows
  already read), to tell the database's share from the ordering's;
- `fifo_order_by`: the baseline, one `SELECT id ... WHERE status = 'Submitted'
  AND dispatch_key IS NULL ORDER BY submitted_at, id` (what a FIFO
  dispatcher reads, without the queue's resolution);
- `fifo_pending`: the FIFO read the dispatcher made before fair share
  (`Runs.pending_submissions`: the same, with each submission's queue).

Ratios: `fair` / `fifo_order_by` and `fair` / `fifo_pending`.  The run also
checks the order: the first `--participants` places go to as many distinct
participants.
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import select  # noqa: E402

from bench.scale import bulk_insert, finish_as_worker, make_bundle, predictions  # noqa: E402
from hub_extension import models as m  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402
from hub_extension.app.fairness import Waiting, fair_order, owner_of  # noqa: E402


def timed(call: Callable[[], Any], repeat: int) -> dict[str, float]:
    call()  # once to warm what is read once per process
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        times.append((time.perf_counter() - started) * 1000)
    times.sort()
    return {"median_ms": round(statistics.median(times), 3),
            "p90_ms": round(times[min(len(times) - 1, int(0.9 * len(times)))], 3), "n": repeat}


def waiting_rows(platform: Platform) -> tuple[list[Waiting], dict]:
    """The waiting submissions as `fair_order` takes them, and the owners' last service (read once)."""
    with platform.db.session() as s:
        rows = s.execute(
            select(m.Submission.id, m.Submission.participant_id, m.Submission.team_id, m.Submission.phase_id,
                   m.Submission.submitted_at, m.Submission.kind)
            .where(m.Submission.status == m.SUBMITTED, m.Submission.dispatch_key.is_(None))
        ).all()
        served = dict(s.execute(
            select(m.Submission.participant_id, m.Submission.dispatched_at)
            .where(m.Submission.dispatched_at.is_not(None))).all())
    waiting = [Waiting(id=sid, owner=owner_of(p, t), phase=ph, submitted_at=at, scoring_only=kind == "results")
               for sid, p, t, ph, at, kind in rows]
    return waiting, {owner_of(p, None): at for p, at in served.items()}


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--participants", type=int, default=50)
    parser.add_argument("--per", type=int, default=10, help="waiting submissions per participant")
    parser.add_argument("--history", type=int, default=1000, help="finished submissions besides")
    parser.add_argument("--repeat", type=int, default=50)
    parser.add_argument("--db-url", default=None, help="a database URL (default: a SQLite file)")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="fair-share-") as tmp_name:
        tmp = Path(tmp_name)
        platform = Platform(home=str(tmp / "home"), db_url=args.db_url)
        try:
            slug, _ = platform.create_competition(make_bundle(tmp), LOCAL_ADMIN)
            upload = predictions(tmp)
            users = [f"p{i}" for i in range(args.participants)]
            last = None
            for k, user in enumerate(users):
                platform.register(slug, user, LOCAL_ADMIN)
                last = platform.submit(slug, upload, username=user, actor=LOCAL_ADMIN)
                finish_as_worker(platform, last, k)
            if args.history:
                bulk_insert(platform, 0, args.history, template=last)
            made = time.perf_counter()
            for user in users:
                for _ in range(args.per):
                    platform.submit(slug, upload, username=user, actor=LOCAL_ADMIN)
            submit_seconds = time.perf_counter() - made
            waiting_count = args.participants * args.per

            plan = platform.runs.fair_queue("default")
            assert len(plan.order.ready) == waiting_count, len(plan.order.ready)
            with platform.db.session() as s:
                owners = dict(s.execute(select(m.Submission.id, m.Submission.participant_id)
                                        .where(m.Submission.id.in_(plan.order.ready[:args.participants]))).all())
            distinct_first = len(set(owners.values()))
            assert distinct_first == args.participants, distinct_first

            def fifo_order_by() -> list[int]:
                with platform.db.session() as s:
                    return list(s.scalars(
                        select(m.Submission.id)
                        .where(m.Submission.status == m.SUBMITTED, m.Submission.dispatch_key.is_(None))
                        .order_by(m.Submission.submitted_at, m.Submission.id)))

            assert len(fifo_order_by()) == waiting_count
            waiting, served = waiting_rows(platform)

            results = {
                "fair": timed(lambda: platform.runs.fair_queue("default"), args.repeat),
                "fair_order_only": timed(lambda: fair_order(waiting, last_served=served), args.repeat),
                "fifo_order_by": timed(fifo_order_by, args.repeat),
                "fifo_pending": timed(lambda: platform.runs.pending_submissions("default"), args.repeat),
            }
            dialect = platform.db.engine.dialect.name
        finally:
            platform.close()

    fair = results["fair"]["median_ms"]
    report = {
        "command": "python bench/fair_share.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "database": dialect,
        "waiting": waiting_count,
        "participants": args.participants,
        "history": args.history,
        "first_places_distinct_participants": distinct_first,
        "submit_seconds": round(submit_seconds, 2),
        **results,
        "ratio_fair_vs_fifo_order_by": round(fair / results["fifo_order_by"]["median_ms"], 2),
        "ratio_fair_vs_fifo_pending": round(fair / results["fifo_pending"]["median_ms"], 2),
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
