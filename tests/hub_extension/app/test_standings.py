"""Maintained boards (`app.standings`) rank exactly as `build_leaderboard` does from scratch.

Random histories of submissions, scores, failures, hides, selections (the
`Add` rules), baselines, removals, bans, denials and reinstatements of participants go through the
application layer on SQLite and PostgreSQL; after every step the board's
maintained rows are compared with `build_leaderboard` over every submission of
the phase, as an organizer and as a participant sees them, and the best-score
history with the one computed from every score.

Run as a script, it times rebuilds of a phase of 100k submissions:
`python -m tests.hub_extension.app.test_standings [sqlite-or-postgresql-url]`.
"""
from __future__ import annotations

import datetime as dt
import math
import random
import sys
import tempfile
import time

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, event, insert, select, text

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor, Platform
from hub_extension.app.leaderboards import entries
from hub_extension.app.standings import baseline_entrant, board_from_row
from hub_extension.bundles.model import ColumnSpec, LeaderboardSpec
from hub_extension.errors import PlatformError
from scoring.leaderboard import SUBMISSION_RULES, build_leaderboard
from scoring.ranking import COMPUTATIONS

from tests.support.builders import simple_spec

T0 = dt.datetime(2026, 3, 1, 12, 0, 0)
PARTICIPANTS = ["ann", "bob", "cy", "dee"]
ORGANIZER = "olga"
# Few values, so that ties (exact and within the tolerance) are frequent; None: the key is not written.
VALUES = st.sampled_from([0.0, 0.25, 0.5, 0.5 + 1e-13, 1.0, float("nan"), None])
KEYS = ["a", "b", "zz_hidden"]


@st.composite
def board_specs(draw):
    columns = [ColumnSpec(key="a", title="A", index=0, sorting=draw(st.sampled_from(["asc", "desc"])))]
    if draw(st.booleans()):
        columns.append(ColumnSpec(key="b", title="B", index=1, sorting=draw(st.sampled_from(["asc", "desc"]))))
    if draw(st.booleans()):
        columns.append(ColumnSpec(key="zz_hidden", title="Hidden", index=2, hidden=True,
                                  sorting=draw(st.sampled_from(["asc", "desc"]))))
    if draw(st.booleans()):
        computation = draw(st.sampled_from(COMPUTATIONS))
        sources = [c.key for c in columns]
        columns.append(ColumnSpec(key="computed", title="Computed", index=draw(st.integers(-1, 3)),
                                  sorting=draw(st.sampled_from(["asc", "desc"])), computation=computation,
                                  source_keys=sources,
                                  weights=[1.0 + i for i in range(len(sources))]
                                  if computation == "rank_weighted" else None,
                                  hidden=draw(st.booleans())))
    primary = draw(st.sampled_from([None, *[c.key for c in columns]]))
    return LeaderboardSpec(key="main", title="Main", submission_rule=draw(st.sampled_from(SUBMISSION_RULES)),
                           primary_key=primary, columns=columns)


def scores_of():
    return st.fixed_dictionaries({k: VALUES for k in KEYS}).map(
        lambda d: {k: v for k, v in d.items() if v is not None})


# One step of a history; submission references are indexes into the submissions made so far.
STEPS = st.one_of(
    st.tuples(st.just("submit"), st.sampled_from(PARTICIPANTS), st.integers(0, 4)),
    st.tuples(st.just("finish"), st.integers(0, 30), scores_of()),
    st.tuples(st.just("fail"), st.integers(0, 30)),
    st.tuples(st.just("hide"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("select"), st.integers(0, 30)),
    st.tuples(st.just("set_selected"), st.integers(0, 30), st.booleans()),
    st.tuples(st.just("baseline"), st.integers(0, 1), scores_of()),
    st.tuples(st.just("remove"), st.sampled_from(PARTICIPANTS)),
    st.tuples(st.just("ban"), st.sampled_from(PARTICIPANTS)),
    st.tuples(st.just("deny"), st.sampled_from(PARTICIPANTS)),
    st.tuples(st.just("reinstate"), st.sampled_from(PARTICIPANTS)),
)


def make_competition(platform, board_spec, dialect: str) -> str:
    spec = simple_spec(dialect=dialect, max_submissions=None, max_submissions_per_day=None)
    spec.leaderboards = [board_spec]
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    for user in [*PARTICIPANTS, ORGANIZER]:
        platform.register(slug, user, LOCAL_ADMIN)
    return slug


def add_submission(platform, slug: str, username: str, at: dt.datetime, *, baseline: bool = False,
                   solution_index=None) -> int:
    """A waiting submission, as `submit` or `run_baselines` would leave it (their file checks aside)."""
    with platform.db.session() as s:
        comp = s.scalars(select(m.Competition).where(m.Competition.slug == slug)).one()
        part = s.scalars(select(m.Participant).where(m.Participant.competition_id == comp.id,
                                                     m.Participant.username == username)).one()
        sub = m.Submission(phase_id=comp.phases[0].id, participant_id=part.id, kind="results",
                           filename="predictions.zip", status=m.SUBMITTED, submitted_at=at,
                           baseline=baseline, solution_index=solution_index)
        s.add(sub)
        s.flush()
        return sub.id


def history_from_scratch(s, ph, db_board, organizer: bool) -> list[dict]:
    """The best-score history as every finished score gives it (the rule `best_score_history` keeps)."""
    plain = [c for c in db_board.columns if not c.computation and (organizer or not c.hidden)]
    if not plain:
        return []
    column = next((c for c in plain if c.key == db_board.primary_key), plain[0])
    rows = s.execute(
        select(m.Submission.submitted_at, m.Score.value, m.Participant.username)
        .join(m.Score, m.Score.submission_id == m.Submission.id)
        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
        .where(m.Submission.phase_id == ph.id, m.Submission.status == m.FINISHED,
               m.Submission.hidden.is_(False), m.Participant.status == m.APPROVED,
               m.Score.key == column.key, m.Score.value.is_not(None))
        .order_by(m.Submission.submitted_at, m.Submission.id)
    ).all()
    better = (lambda a, b: a < b) if column.sorting == "asc" else (lambda a, b: a > b)
    history, best = [], None
    for at, value, username in rows:
        if best is None or better(value, best):
            best = value
            history.append({"at": at.isoformat(), "value": value, "username": username, "column": column.key})
    return history


def check_board(platform, slug: str) -> None:
    """The maintained rows against `build_leaderboard` over every submission of the phase."""
    with platform.db.session() as s:
        comp = s.scalars(select(m.Competition).where(m.Competition.slug == slug)).one()
        ph, db_board = comp.phases[0], comp.leaderboards[0]
        board = board_from_row(db_board, ph)
        everything = entries(s, ph)
        kept = s.scalars(select(m.BoardRow).where(m.BoardRow.phase_id == ph.id,
                                                  m.BoardRow.leaderboard_id == db_board.id)
                         .order_by(m.BoardRow.position)).all()
        got = [(r.position, baseline_entrant(r.username, r.solution_index) if r.baseline else r.username,
                 r.submission_id, r.scores, r.ranks) for r in kept]
        expected_history = history_from_scratch(s, ph, db_board, True)
    full = build_leaderboard(board, everything, viewer_is_organizer=True)
    assert got == [(r.rank, r.participant, r.submission_id, r.scores, r.ranks) for r in full.rows]

    # As each viewer sees it, through the application layer.
    for actor, organizer in ((LOCAL_ADMIN, True), (Actor("ann"), False)):
        view = platform.leaderboard_view(slug, actor=actor)
        expected = build_leaderboard(board, everything, viewer_is_organizer=organizer)
        assert [c["key"] for c in view["columns"]] == [c.key for c in expected.columns]
        assert view["total"] == len(expected.rows) and view["note"] == expected.note
        assert [(r["rank"], r["submission"], r["scores"], r["ranks"]) for r in view["rows"]] == [
            (r.rank, r.submission_id, r.scores, r.ranks) for r in expected.rows]
        assert [r["participant"] for r in view["rows"]] == [r.participant.split("\x00")[0] for r in expected.rows]
    history = platform.best_score_history(slug, None, None, LOCAL_ADMIN)
    assert all(p["participant"] == p["username"] for p in history)  # no display names set here
    assert [{k: v for k, v in p.items() if k != "participant"} for p in history] == expected_history


def play(platform, board_spec, dialect: str, steps) -> None:
    slug = make_competition(platform, board_spec, dialect)
    check_board(platform, slug)
    replay(platform, slug, steps, check_board)


def replay(platform, slug: str, steps, check) -> None:
    """Play `steps` (see `STEPS`) on the competition `slug`, calling `check(platform, slug)` after each."""
    subs: list[int] = []
    for number, step in enumerate(steps):
        kind = step[0]
        if kind == "submit":
            subs.append(add_submission(platform, slug, step[1], T0 + dt.timedelta(minutes=step[2] + number // 3)))
            continue
        if kind == "baseline":
            sid = add_submission(platform, slug, ORGANIZER, T0 + dt.timedelta(minutes=number),
                                 baseline=True, solution_index=step[1])
            platform.runs.record_scores(sid, step[2])
        elif kind in ("remove", "ban", "deny", "reinstate"):
            status = {"remove": m.REMOVED, "ban": m.BANNED, "deny": m.DENIED, "reinstate": m.APPROVED}[kind]
            platform.registrations.set_registration(slug, step[1], status, LOCAL_ADMIN)
        else:
            if not subs:
                continue
            sid = subs[step[1] % len(subs)]
            if kind == "finish":
                platform.runs.record_scores(sid, step[2])
            elif kind == "fail":
                platform.runs.set_status(sid, m.FAILED, error="it broke")
            elif kind == "hide":
                platform.submissions.set_hidden(sid, step[2], LOCAL_ADMIN)
            elif kind == "select":
                platform.submissions.select_for_leaderboard(sid, LOCAL_ADMIN)
            elif kind == "set_selected":
                try:
                    platform.submissions.set_selected(sid, step[2], LOCAL_ADMIN)
                except PlatformError:
                    pass  # not a rule where one chooses, or not finished: nothing changes
        check(platform, slug)


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(board_spec=board_specs(), dialect=st.sampled_from(["codabench", "codalab"]),
       steps=st.lists(STEPS, min_size=1, max_size=25))
def test_maintained_boards_equal_build_leaderboard(any_platform, board_spec, dialect, steps):
    play(any_platform, board_spec, dialect, steps)


def test_every_rule_over_a_long_history(any_platform):
    """Each submission rule, many participants and submissions, ties and baselines (a seeded history)."""
    for rule in SUBMISSION_RULES:
        rng = random.Random(rule)
        spec = LeaderboardSpec(key="main", title="Main", submission_rule=rule, primary_key="a", columns=[
            ColumnSpec(key="a", title="A", index=0, sorting="desc"),
            ColumnSpec(key="b", title="B", index=1, sorting="asc"),
            ColumnSpec(key="avg", title="Avg", index=2, computation="rank_avg", source_keys=["a", "b"])])
        steps = []
        for _ in range(60):
            roll = rng.random()
            if roll < 0.4:
                steps.append(("submit", rng.choice(PARTICIPANTS), rng.randrange(5)))
            elif roll < 0.75:
                steps.append(("finish", rng.randrange(31), {"a": rng.choice([0.1, 0.2, 0.2, 0.3, math.nan]),
                                                            "b": rng.choice([1.0, 2.0, 2.0])}))
            elif roll < 0.8:
                steps.append(("hide", rng.randrange(31), rng.random() < 0.7))
            elif roll < 0.9:
                steps.append(("select", rng.randrange(31)))
            elif roll < 0.95:
                steps.append(("baseline", rng.randrange(2), {"a": rng.choice([0.1, 0.3]), "b": 1.0}))
            else:
                steps.append(("fail", rng.randrange(31)))
        play(any_platform, spec, rng.choice(["codabench", "codalab"]), steps)


# -- what a request costs ----------------------------------------------------------------------------
def fill(platform, slug: str, participants: int, per_participant: int, *, keys=("a", "b")) -> None:
    """A bulk load of finished, scored submissions (what the application layer writes), then a rebuild."""
    with platform.db.session() as s:
        comp = s.scalars(select(m.Competition).where(m.Competition.slug == slug)).one()
        phase_id = comp.phases[0].id
        start = s.scalar(select(m.Participant.id).order_by(m.Participant.id.desc()).limit(1)) or 0
        s.execute(insert(m.Participant), [
            {"id": start + 1 + i, "competition_id": comp.id, "username": f"user{i:06d}", "status": m.APPROVED,
             "registered_at": T0, "submission_seq": 0} for i in range(participants)])
        first = (s.scalar(select(m.Submission.id).order_by(m.Submission.id.desc()).limit(1)) or 0) + 1
        subs, scores = [], []
        sid = first
        for n in range(per_participant):
            for i in range(participants):
                at = T0 + dt.timedelta(seconds=n * participants + i)
                subs.append({"id": sid, "phase_id": phase_id, "participant_id": start + 1 + i, "kind": "results",
                             "filename": "predictions.zip", "status": m.FINISHED, "status_changed_at": at,
                             "submitted_at": at, "finished_at": at, "selected": n == 0, "hidden": False,
                             "description": "", "artifacts": {}, "warnings": [], "dropped": [],
                             "dispatch_count": 1, "baseline": False, "task_scores": []})
                for k, key in enumerate(keys):
                    scores.append({"submission_id": sid, "key": key, "value": ((sid * 7919 + k * 104729) % 1000) / 1000})
                sid += 1
        for chunk in range(0, len(subs), 20000):
            s.execute(insert(m.Submission), subs[chunk:chunk + 20000])
        for chunk in range(0, len(scores), 20000):
            s.execute(insert(m.Score), scores[chunk:chunk + 20000])
        if s.get_bind().dialect.name == "postgresql":  # ids were given: the sequences follow them
            for table in ("participants", "submissions"):
                s.execute(text(f"SELECT setval(pg_get_serial_sequence('{table}', 'id'), (SELECT max(id) FROM {table}))"))
    platform.rebuild_boards(slug)


def count_statements(platform, fn) -> list[str]:
    seen: list[str] = []

    def listen(conn, cursor, statement, parameters, context, executemany):
        seen.append(statement)

    event.listen(platform.db.engine, "before_cursor_execute", listen)
    try:
        fn()
    finally:
        event.remove(platform.db.engine, "before_cursor_execute", listen)
    return seen


def test_a_request_is_a_bounded_number_of_statements(any_platform):
    platform = any_platform
    counts = []
    for participants in (20, 400):
        spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
        spec.title = f"Bounded {participants}"
        slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
        fill(platform, slug, participants, 3, keys=("accuracy",))
        # Someone at the bottom: their own row is read besides the page.
        viewer = Actor(platform.leaderboard_view(slug, offset=participants - 1)["rows"][-1]["participant"])
        page = count_statements(platform, lambda: platform.leaderboard_view(slug, actor=viewer, limit=10))
        etag = count_statements(platform, lambda: platform.leaderboard_etag(slug, actor=viewer, query="x"))
        history = count_statements(platform, lambda: platform.best_score_history(slug, None, None, viewer))
        counts.append((len(page), len(etag), len(history)))
        view = platform.leaderboard_view(slug, actor=viewer, limit=10)
        assert len(view["rows"]) == 11 and view["rows"][-1]["own"] and view["total"] == participants
        assert [r["rank"] for r in view["rows"]] == [*range(1, 11), participants]
    assert counts[0] == counts[1], counts
    assert counts[0][1] == 1  # the ETag: one statement


def test_postgresql_reads_the_board_by_its_indexes(pg_url, tmp_path):
    platform = Platform(home=str(tmp_path / "home"), db_url=pg_url)
    try:
        spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
        slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
        fill(platform, slug, 3000, 2, keys=("accuracy",))
        with platform.db.engine.connect() as conn:
            conn.exec_driver_sql("ANALYZE")
            conn.commit()
        viewer = Actor("user002500")
        captured: list[tuple[str, object]] = []

        def listen(conn, cursor, statement, parameters, context, executemany):
            captured.append((statement, parameters))

        event.listen(platform.db.engine, "before_cursor_execute", listen)
        try:
            view = platform.leaderboard_view(slug, actor=viewer, offset=100, limit=50)
            platform.leaderboard_etag(slug, actor=viewer)
        finally:
            event.remove(platform.db.engine, "before_cursor_execute", listen)
        assert [r["rank"] for r in view["rows"]][:50] == list(range(101, 151)) and view["rows"][-1]["own"]
        plans = []
        with platform.db.engine.connect() as conn:
            for statement, parameters in captured:
                plan = "\n".join(r[0] for r in conn.exec_driver_sql("EXPLAIN " + statement, parameters))
                plans.append(plan)
                assert "Seq Scan on submissions" not in plan and "Seq Scan on scores" not in plan, plan
                assert "Seq Scan on board_rows" not in plan, plan
        board_reads = [p for p in plans if "board_rows" in p]
        assert len(board_reads) == 2 and all("Index" in p for p in board_reads), board_reads
    finally:
        platform.close()


# -- the cost of a rebuild ---------------------------------------------------------------------------
def time_rebuilds(url: str, participants: int = 10_000, per_participant: int = 10) -> None:
    with tempfile.TemporaryDirectory() as home:
        platform = Platform(home=home, db_url=url or None)
        for rule in ("Force_Last", "Add", "Force_Best"):
            spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
            spec.title = f"Scale {rule}"
            spec.leaderboards[0].submission_rule = rule
            spec.leaderboards[0].columns += [ColumnSpec(key="b", title="B", index=1, sorting="asc"),
                                             ColumnSpec(key="c", title="C", index=2)]
            slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
            began = time.perf_counter()
            fill(platform, slug, participants, per_participant, keys=("accuracy", "b", "c"))
            loaded = time.perf_counter() - began
            began = time.perf_counter()
            platform.rebuild_boards(slug)
            rebuilt = time.perf_counter() - began
            began = time.perf_counter()
            platform.leaderboard_view(slug, actor=Actor("user000042"), limit=50)
            read = time.perf_counter() - began
            print(f"{platform.db.engine.dialect.name} {rule}: {participants * per_participant} submissions of "
                  f"{participants} participants (bulk load {loaded:.1f} s): rebuild {rebuilt:.2f} s, "
                  f"a page of 50 {read * 1000:.0f} ms", flush=True)
        platform.close()


if __name__ == "__main__":
    time_rebuilds(sys.argv[1] if len(sys.argv) > 1 else "")


def test_a_database_without_built_boards_gets_them_when_the_platform_opens(any_db_url, tmp_path):
    """After `compete db upgrade` to maintained boards, the boards exist before any request."""
    home = str(tmp_path / "home")
    platform = Platform(home=home, db_url=any_db_url)
    spec = simple_spec(max_submissions=None, max_submissions_per_day=None)
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    fill(platform, slug, 30, 2, keys=("accuracy",))
    before = platform.leaderboard_view(slug)
    with platform.db.session() as s:
        s.execute(delete(m.BoardRow))
        s.execute(delete(m.BoardState))
    platform.close()
    platform = Platform(home=home, db_url=any_db_url)
    try:
        with platform.db.session() as s:
            assert s.scalar(select(m.BoardState.total)) == 30
        assert platform.leaderboard_etag(slug, actor=LOCAL_ADMIN) is not None
        statements = count_statements(platform, lambda: platform.leaderboard_view(slug))
        assert not any("INSERT" in sql or "DELETE" in sql for sql in statements)  # read, never built
        assert platform.leaderboard_view(slug) == before
    finally:
        platform.close()
