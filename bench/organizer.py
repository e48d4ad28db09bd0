"""What an organizer's pages cost at scale: the statistics of a large competition, the phase zip.

    python bench/organizer.py [--submissions 100000] [--zip-files 100] [--zip-mb 2] [--out bench/organizer.json]

Statistics: one competition on SQLite holding `--submissions` submissions
(from 1,000 participants over 90 days; a tenth failed with one of a few
reasons, the rest finished, each with its Preparing and end status changes),
written by bulk inserts.  Reported: the seconds of `competition_statistics`
cold (first call), again with the database unchanged (kept answer), and after
one more status change (computed again), and the same for
`platform_statistics`.

Phase zip: `--zip-files` finished submissions, each of a `--zip-mb` MB
random submitted file, zipped by `service.zip_stream.zip_chunks` as the
download streams it.  Reported: the seconds, MB/s, the zip's size, the largest
chunk and the growth of the process's peak RSS while zipping (the zip is never
held whole: that growth stays near a chunk, not the zip's size).
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import func, insert, select  # noqa: E402

from hub_extension import models as m  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402
from hub_extension.service.zip_stream import zip_chunks  # noqa: E402
from tests.support.builders import simple_spec  # noqa: E402

REASONS = ["scoring program exited with code 1", "time limit of 300 s reached", "no predictions file",
           "out of memory (2048 MB)"]


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return round(time.perf_counter() - started, 3)


def fill(platform: Platform, slug: str, n: int) -> None:
    """`n` submissions of 1,000 participants over 90 days, with their status changes."""
    rng = random.Random(15)
    start = dt.datetime(2026, 1, 1)
    with platform.db.session() as s:
        comp = s.scalar(select(m.Competition).where(m.Competition.slug == slug))
        phase_id = comp.phases[0].id
        s.execute(insert(m.Participant), [
            {"competition_id": comp.id, "username": f"user{i}", "status": m.APPROVED,
             "registered_at": start + dt.timedelta(minutes=rng.randrange(90 * 24 * 60))} for i in range(1000)])
        parts = s.scalars(select(m.Participant.id).where(m.Participant.competition_id == comp.id)).all()
        base = s.scalar(select(func.max(m.Submission.id))) or 0
        subs, changes = [], []
        for i in range(base + 1, base + n + 1):
            at = start + dt.timedelta(seconds=rng.randrange(90 * 86400))
            began = at + dt.timedelta(seconds=rng.expovariate(1 / 30))
            ended = began + dt.timedelta(seconds=rng.expovariate(1 / 60))
            failed = rng.random() < 0.1
            status = m.FAILED if failed else m.FINISHED
            subs.append({"id": i, "phase_id": phase_id, "participant_id": rng.choice(parts), "kind": "results",
                         "filename": "p.zip", "status": status, "status_changed_at": ended, "submitted_at": at,
                         "started_at": began, "finished_at": ended,
                         "error": rng.choice(REASONS) if failed else None})
            changes += [{"submission_id": i, "status": m.PREPARING, "at": began},
                        {"submission_id": i, "status": status, "at": ended}]
        for table, rows in ((m.Submission, subs), (m.StatusChange, changes)):
            for k in range(0, len(rows), 20000):
                s.execute(insert(table), rows[k:k + 20000])


def bench_statistics(platform: Platform, n: int) -> dict:
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    filled = timed(lambda: fill(platform, slug, n))
    out = {"submissions": n, "fill_s": filled}
    for name, call in (("competition", lambda: platform.competition_statistics(slug, LOCAL_ADMIN)),
                       ("platform", lambda: platform.platform_statistics(LOCAL_ADMIN))):
        out[f"{name}_cold_s"] = timed(call)
        out[f"{name}_kept_s"] = timed(call)
        with platform.db.session() as s:  # one more status change: the kept answer is stale
            sub = s.get(m.Submission, s.scalar(select(func.max(m.Submission.id))))
            s.add(m.StatusChange(submission_id=sub.id, status=sub.status, at=m.utcnow()))
            sub.status_changed_at = m.utcnow()
        platform.statistics.fresh_for = 0
        out[f"{name}_changed_s"] = timed(call)
    return out


def bench_zip(platform: Platform, files: int, mb: int) -> dict:
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    with platform.db.session() as s:
        comp = s.scalar(select(m.Competition).where(m.Competition.slug == slug))
        part = m.Participant(competition_id=comp.id, username="ann", status=m.APPROVED)
        s.add(part)
        s.flush()
        for _ in range(files):
            key = platform.store.put_dataset_bytes(os.urandom(mb << 20))
            s.add(m.Submission(phase_id=comp.phases[0].id, participant_id=part.id, kind="results",
                               filename="p.zip", file_key=key, status=m.FINISHED, finished_at=m.utcnow()))
    bundle = platform.phase_bundle(slug, 1, LOCAL_ADMIN)
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    total, largest = 0, 0
    started = time.perf_counter()
    for piece in zip_chunks(bundle):
        total += len(piece)
        largest = max(largest, len(piece))
    seconds = time.perf_counter() - started
    peak_after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"files": files, "file_mb": mb, "seconds": round(seconds, 2),
            "mb_per_s": round(files * mb / seconds, 1), "zip_mb": round(total / (1 << 20), 1),
            "largest_chunk_mb": round(largest / (1 << 20), 2),
            "peak_rss_growth_mb": round((peak_after - peak_before) / 1024, 1)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--submissions", type=int, default=100_000)
    parser.add_argument("--zip-files", type=int, default=100)
    parser.add_argument("--zip-mb", type=int, default=2)
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="compete-bench-") as home:
        platform = Platform(home=home)
        try:
            res = {"zip": bench_zip(platform, args.zip_files, args.zip_mb),
                   "statistics": bench_statistics(platform, args.submissions)}
        finally:
            platform.close()
    text = json.dumps(res, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
