"""Statistics of a competition (its organizers) and of the platform (hub admins), as tables.

Every table is made by a few aggregate SQL statements (GROUP BY day, status,
reason), never by reading each submission into Python, so a page costs the
same number of statements whatever the database holds.  A table is
`{"columns": [...], "rows": [[...], ...]}`: the same data feeds the pages'
charts, their HTML tables, the CSV files and the JSON API.

Answers are kept per scope until the database changes (a new submission,
status change or registration: `_version`), so a page viewed again costs one
small statement; while submissions keep running, an answer is also kept for
`Statistics.fresh_for` seconds (the tables say when they were made), so a
busy platform computes each scope's tables at most that often.

Definitions, said on the pages too:
- a day is a UTC day; submissions count on the day they were submitted, with
  the status they have now; participants on the day they registered;
- failure rate: failed / (finished + failed); cancelled submissions do not count;
- waiting time: from submission to the first status a worker reported
  (Preparing, Running or Scoring); run time: from then to the end (Finished or
  Failed);
- percentiles are nearest-rank: the p-th is the smallest value with at least
  p% of the values at or below it.
"""
from __future__ import annotations

import csv
import io
import re
import threading
import time
from collections import Counter
from typing import Any, Optional

from sqlalchemy import ColumnElement, Numeric, Select, case, cast, distinct, extract, func, select
from sqlalchemy.orm import Session

from .. import models as m
from ..contract import Status
from ..errors import Forbidden, NotFound
from .actors import Actor, require_organizer
from .records import get_competition

# The tables a competition's statistics hold (CSV: `?table=`), and the platform's extra ones.
COMPETITION_TABLES = ("summary", "per_day", "participants", "failures", "durations", "histogram")
PLATFORM_TABLES = COMPETITION_TABLES + ("queues", "competitions")
TOP_REASONS = 10
PERCENTILES = (50, 90, 99)
# Upper bounds (seconds) of the duration histogram's buckets, and their labels; the last is open.
BUCKETS = (10, 30, 60, 300, 900, 3600, 4 * 3600)
BUCKET_LABELS = ("< 10 s", "10–30 s", "30 s–1 min", "1–5 min", "5–15 min", "15–60 min", "1–4 h", "≥ 4 h")
# What a reason keeps of a failure message: its first line, numbers made alike, at most this long.
REASON_CHARS = 200
# A number (12, 12.5, 0x1f) or a hex id (3f9a2b1c) starting a word; `python3` keeps its 3.
_NUMBER = re.compile(r"\b(0x)?[0-9a-f]*[0-9][0-9a-f]*(\.[0-9]+)?", re.IGNORECASE)
_CACHED_SCOPES = 256
_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def failure_reason(message: Optional[str]) -> str:
    """A failure message as a reason to count: its first line, each number (or hex id) as `N`."""
    first = next((line.strip() for line in (message or "").splitlines() if line.strip()), "")
    if not first:
        return "(no reason recorded)"
    return _NUMBER.sub("N", first)[:REASON_CHARS]


def table(columns: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"columns": columns, "rows": rows}


def table_csv(found: dict[str, Any]) -> str:
    """A table as CSV; a text cell a spreadsheet would run as a formula (a failure message) starts with '."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(found["columns"])
    for row in found["rows"]:
        writer.writerow(["" if v is None else f"'{v}" if isinstance(v, str) and v[:1] in _FORMULA else v
                         for v in row])
    return out.getvalue()


class Statistics:
    """The statistics use cases: `competition_statistics`, `platform_statistics` (tables, cached)."""

    # Seconds an answer stands for, even when the database changed meanwhile (0: never past a change).
    fresh_for = 30.0

    def __init__(self, ctx):
        self.ctx = ctx
        self._lock = threading.Lock()
        self._cache: dict[str, tuple[tuple[Any, ...], float, dict[str, Any]]] = {}

    # -- use cases ------------------------------------------------------------------------------
    def competition_statistics(self, slug: str, actor: Actor) -> dict[str, Any]:
        """The tables of one competition (its organizers and hub admins): see the module's docstring."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            phases = select(m.Phase.id).where(m.Phase.competition_id == comp.id).scalar_subquery()
            scope = _Scope(m.Submission.phase_id.in_(phases), m.Participant.competition_id == comp.id)
            tables = self._cached(s, f"competition:{comp.id}", scope)
            head = {"scope": "competition", "competition": comp.slug, "title": comp.title}
        return {**head, **tables}

    def platform_statistics(self, actor: Actor) -> dict[str, Any]:
        """The tables of the whole platform, with each queue's workers and each competition's totals (admins)."""
        if not actor.is_admin:
            raise Forbidden("only hub admins may see the platform's statistics")
        with self.ctx.db.session() as s:
            tables = self._cached(s, "platform", _Scope(None, None))
            # What the dispatcher saw of the queues changes every few seconds: read each time (a small table).
            queues = _queues(s)
        return {"scope": "platform", **tables, "queues": queues}

    def statistics_table(self, name: str, actor: Actor, slug: Optional[str] = None) -> dict[str, Any]:
        """One table of a competition's statistics (`slug`) or of the platform's, by name."""
        known = COMPETITION_TABLES if slug else PLATFORM_TABLES
        if name not in known:
            self._may_see(actor, slug)  # who may not see the tables is told that first
            raise NotFound(f"no statistics table {name!r}; the tables are {', '.join(known)}")
        found = self.competition_statistics(slug, actor) if slug else self.platform_statistics(actor)
        return found[name]

    def _may_see(self, actor: Actor, slug: Optional[str]) -> None:
        if slug is None:
            if not actor.is_admin:
                raise Forbidden("only hub admins may see the platform's statistics")
            return
        with self.ctx.db.session() as s:
            require_organizer(actor, get_competition(s, slug))

    def statistics_csv(self, name: str, actor: Actor, slug: Optional[str] = None) -> str:
        """One statistics table as CSV, its columns as the header."""
        return table_csv(self.statistics_table(name, actor, slug))

    # -- the cache ------------------------------------------------------------------------------
    def _cached(self, s: Session, key: str, scope: "_Scope") -> dict[str, Any]:
        with self._lock:
            kept = self._cache.get(key)
        if kept is not None and time.monotonic() - kept[1] < self.fresh_for:
            return kept[2]
        version = _version(s)
        if kept is not None and kept[0] == version:
            return kept[2]
        tables = _tables(s, scope, self.ctx.db.dialect)
        if scope.submissions is None:
            tables["competitions"] = _competitions(s)
        tables["version"] = "-".join(str(v) for v in version)
        tables["computed_at"] = m.utcnow().isoformat(timespec="seconds")
        with self._lock:
            if len(self._cache) >= _CACHED_SCOPES:
                self._cache.pop(next(iter(self._cache)))
            self._cache[key] = (version, time.monotonic(), tables)
        return tables


class _Scope:
    """Which submissions and which registrations count (None: all of them)."""

    def __init__(self, submissions: Optional[ColumnElement[bool]], participants: Optional[ColumnElement[bool]]):
        self.submissions = submissions
        self.participants = participants

    def subs(self, query: Select) -> Select:
        return query if self.submissions is None else query.where(self.submissions)

    def parts(self, query: Select) -> Select:
        return query if self.participants is None else query.where(self.participants)


def _version(s: Session) -> tuple[Any, ...]:
    """What changes when any table the statistics read changes (ids only grow; counts catch deletions)."""
    row = s.execute(select(
        select(func.max(m.Submission.id)).scalar_subquery(),
        select(func.count()).select_from(m.Submission).scalar_subquery(),
        select(func.max(m.StatusChange.id)).scalar_subquery(),
        select(func.max(m.Participant.id)).scalar_subquery(),
        select(func.count()).select_from(m.Participant).scalar_subquery(),
        select(func.count()).select_from(m.Competition).scalar_subquery(),
    )).one()
    return tuple(row)


def _day(column: Any) -> Any:
    return func.date(column)


def _seconds(later: Any, earlier: Any, dialect: str) -> Any:
    """`later - earlier` in seconds, as the database computes it, to the millisecond.

    Rounded: SQLite's day fractions make 30 s into 29.9999…, which would fall in the wrong bucket.
    """
    if dialect == "sqlite":
        seconds = (func.julianday(later) - func.julianday(earlier)) * 86400.0
    else:
        seconds = extract("epoch", later - earlier)
    return func.round(cast(seconds, Numeric), 3)


def _tables(s: Session, scope: _Scope, dialect: str) -> dict[str, Any]:
    per_day, totals = _per_day(s, scope)
    failures = _failures(s, scope)
    durations, histogram = _durations(s, scope, dialect)
    finished, failed = totals.get(m.FINISHED, 0), totals.get(m.FAILED, 0)
    rate = round(failed / (finished + failed), 4) if finished + failed else None
    participants = _participants(s, scope)
    registered = participants["rows"][-1][2] if participants["rows"] else 0
    summary = table(["measure", "value"], [
        ["submissions", sum(totals.values())],
        *[[status.lower(), totals.get(status, 0)] for status in m.STATUSES],
        ["failure_rate", rate],
        ["participants", registered],
    ])
    return {"summary": summary, "per_day": per_day, "participants": participants, "failures": failures,
            "durations": durations, "histogram": histogram}


def _per_day(s: Session, scope: _Scope) -> tuple[dict[str, Any], dict[str, int]]:
    """Submissions per day by their status now, and the totals by status."""
    day = _day(m.Submission.submitted_at).label("day")
    rows = s.execute(scope.subs(
        select(day, m.Submission.status, func.count()).group_by(day, m.Submission.status).order_by(day)
    )).all()
    days: dict[str, dict[str, int]] = {}
    totals: Counter[str] = Counter()
    for when, status, count in rows:
        days.setdefault(str(when), {})[status] = count
        totals[status] += count
    columns = ["day", *[status.lower() for status in m.STATUSES], "total"]
    out = [[when, *[by.get(status, 0) for status in m.STATUSES], sum(by.values())] for when, by in days.items()]
    return table(columns, out), dict(totals)


def _participants(s: Session, scope: _Scope) -> dict[str, Any]:
    """Registrations per day with their running total, and who submitted that day."""
    day = _day(m.Participant.registered_at).label("day")
    registered = {str(d): c for d, c in s.execute(scope.parts(select(day, func.count()).group_by(day)))}
    sub_day = _day(m.Submission.submitted_at).label("day")
    active = {str(d): c for d, c in s.execute(scope.subs(
        select(sub_day, func.count(distinct(m.Participant.username)))
        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
        .group_by(sub_day)))}
    rows, total = [], 0
    for when in sorted(set(registered) | set(active)):
        total += registered.get(when, 0)
        rows.append([when, registered.get(when, 0), total, active.get(when, 0)])
    return table(["day", "registered", "registered_total", "submitting"], rows)


def _failures(s: Session, scope: _Scope) -> dict[str, Any]:
    """The most common reasons of failed submissions, by the first line of their message."""
    message = func.substr(m.Submission.error, 1, REASON_CHARS * 2).label("message")
    grouped = s.execute(scope.subs(
        select(message, func.count(), func.max(m.Submission.id))
        .where(m.Submission.status == m.FAILED).group_by(message)
    ).execution_options(yield_per=1000))
    counts: Counter[str] = Counter()
    latest: dict[str, int] = {}
    for text, count, last_id in grouped:
        reason = failure_reason(text)
        counts[reason] += count
        latest[reason] = max(latest.get(reason, 0), last_id)
    failed = sum(counts.values())
    top = sorted(counts.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return table(["reason", "count", "share", "latest_submission"],
                 [[reason, count, round(count / failed, 4), latest[reason]] for reason, count in top])


def _durations(s: Session, scope: _Scope, dialect: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """Waiting and run time: count, mean, percentiles and maximum; and a histogram of both.

    One statement: each submission's two times are worked out once, ranked by a window function on
    each, and summed up by conditional aggregates (a percentile is the value at its rank).
    """
    picked = (
        select(m.StatusChange.submission_id.label("sid"), func.min(m.StatusChange.at).label("at"))
        .where(m.StatusChange.status.in_(Status.REPORTED))
        .group_by(m.StatusChange.submission_id)
        .subquery()
    )
    sub = m.Submission
    ended = sub.status.in_((m.FINISHED, m.FAILED)) & sub.finished_at.is_not(None)
    times = scope.subs(
        select(sub.id.label("id"),
               _seconds(picked.c.at, sub.submitted_at, dialect).label("waiting"),
               case((ended, _seconds(sub.finished_at, picked.c.at, dialect))).label("running"))
        .join(picked, picked.c.sid == sub.id)
    ).subquery()
    ranked = select(
        times.c.waiting, times.c.running,
        func.row_number().over(order_by=(times.c.waiting, times.c.id)).label("waiting_rank"),
        func.row_number().over(partition_by=times.c.running.is_(None),
                               order_by=(times.c.running, times.c.id)).label("running_rank"),
        func.count().over().label("waiting_n"),
        func.count(times.c.running).over().label("running_n"),
    ).subquery()
    columns: list[Any] = []
    for name in ("waiting", "running"):
        value, rank, n = ranked.c[name], ranked.c[f"{name}_rank"], ranked.c[f"{name}_n"]
        columns += [func.max(n), func.avg(value),
                    *[func.max(case(((value.is_not(None)) & (rank == (p * n + 99) // 100), value)))
                      for p in PERCENTILES],
                    func.max(value)]
        columns += [func.sum(case(((value.is_not(None)) & _in_bucket(value, i), 1), else_=0))
                    for i in range(len(BUCKET_LABELS))]
    row = list(s.execute(select(*columns)).one())
    width = 3 + len(PERCENTILES) + len(BUCKET_LABELS)
    summary_rows, histogram_counts = [], []
    for i, name in enumerate(("waiting", "running")):
        part = row[i * width:(i + 1) * width]
        n = int(part[0] or 0)
        figures = [None if v is None or not n else round(float(v), 3) for v in part[1:3 + len(PERCENTILES)]]
        summary_rows.append([name, n, *figures])
        histogram_counts.append([int(v or 0) for v in part[3 + len(PERCENTILES):]])
    summary = table(["measure", "count", "mean_s", *[f"p{p}_s" for p in PERCENTILES], "max_s"], summary_rows)
    histogram = table(["bucket", "waiting", "running"],
                      [[label, histogram_counts[0][i], histogram_counts[1][i]] for i, label in enumerate(BUCKET_LABELS)])
    return summary, histogram


def _in_bucket(value: Any, i: int) -> ColumnElement[bool]:
    """`value` falls in bucket `i` of BUCKETS: at least the bound before, below its own (the last is open)."""
    low = BUCKETS[i - 1] if i else None
    high = BUCKETS[i] if i < len(BUCKETS) else None
    if low is None:
        return value < high
    if high is None:
        return value >= low
    return (value >= low) & (value < high)


def _queues(s: Session) -> dict[str, Any]:
    """Each queue the dispatcher watches: connected or not, its workers now, and its submissions waiting."""
    waiting = dict(s.execute(
        select(m.Submission.queue, func.count()).where(m.Submission.status == m.SUBMITTED)
        .group_by(m.Submission.queue)).all())
    active = dict(s.execute(
        select(m.Submission.queue, func.count())
        .where(m.Submission.status.in_(Status.REPORTED)).group_by(m.Submission.queue)).all())
    rows = []
    for state in s.scalars(select(m.QueueState).order_by(m.QueueState.name)):
        rows.append([state.name, bool(state.connected), len(state.workers or []), waiting.get(state.name, 0),
                     active.get(state.name, 0), state.updated_at.isoformat() if state.updated_at else None])
    seen = {row[0] for row in rows}
    # A queue submissions wait on that no dispatcher has looked at yet still shows (no workers seen).
    for name in sorted((set(waiting) | set(active)) - seen - {None}):
        rows.append([name, False, 0, waiting.get(name, 0), active.get(name, 0), None])
    if waiting.get(None):
        rows.append(["(not sent yet)", False, 0, waiting[None], active.get(None, 0), None])
    return table(["queue", "connected", "workers", "waiting", "running", "seen_at"], rows)


def _competitions(s: Session) -> dict[str, Any]:
    """Each competition's totals: registrations, submissions, failed ones, the last submission."""
    parts = dict(s.execute(select(m.Participant.competition_id, func.count()).group_by(m.Participant.competition_id)).all())
    subs = {
        cid: (total, failed, last)
        for cid, total, failed, last in s.execute(
            select(m.Phase.competition_id, func.count(m.Submission.id),
                   func.count(case((m.Submission.status == m.FAILED, 1))), func.max(m.Submission.submitted_at))
            .join(m.Phase, m.Phase.id == m.Submission.phase_id)
            .group_by(m.Phase.competition_id)).all()
    }
    rows = []
    for cid, slug, title, status in s.execute(
            select(m.Competition.id, m.Competition.slug, m.Competition.title, m.Competition.status)
            .order_by(m.Competition.slug)).all():
        total, failed, last = subs.get(cid, (0, 0, None))
        rows.append([slug, title, status, parts.get(cid, 0), total, failed,
                     last.isoformat() if hasattr(last, "isoformat") else last])
    return table(["competition", "title", "status", "participants", "submissions", "failed", "last_submission"],
                 rows)
