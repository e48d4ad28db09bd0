"""Maintained leaderboards: each board of each phase kept as ready, ranked rows.

A leaderboard request reads a page of rows from `board_rows`, never the
phase's submissions.  Whatever can change a ranking calls `refresh_phase` in
the transaction that makes the change (a score recorded, a submission hidden,
shown, selected or unselected, a competition's definition saved), so the rows
commit together with their cause and no reader ever sees one without the other.

A rebuild ranks with `scoring.leaderboard.build_leaderboard`, the one
definition of the rules, as an organizer sees the board (every column): what a
viewer may see is cut when the rows are read.  It does not load a submission
object per submission: one statement selects the columns it needs of the
rule's candidates (under the rules that keep one entry per participant, a
window function keeps each participant's latest finished, or latest chosen,
submission; `Force_Best` needs every finished one, since its ranks are taken
over all of them) joined with the scores of the board's columns.  An entrant
is a team for the submissions its members made for it (`team_entrant`), else
the participant.  The rows are
written again only when they changed; then the board's `version` goes up, and
the leaderboard's ETag with it.

Each rebuild first locks the phase's row (PostgreSQL: `SELECT ... FOR
UPDATE`; SQLite has one writer at a time), so two changes of one phase
committing at once rebuild one after the other, the second seeing the first.

A probing-resistant board (`probing`: a display precision, the Ladder) keeps
with each row what the public sees of it, `board_rows.shown` =
`{"scores": {column: shown value}, "ranks": {column: rank}, "position": n}`
(`scoring.probing.shown_rows`: its ranks and position are the public board's,
ranked on the shown values), computed in the same rebuild; a Ladder also
reads every finished submission of the phase (`Force_Latest_Multiple`'s
candidates), since an entrant's shown value follows all of theirs.

`definition` records a digest of the board definition the rows were ranked
by (and of its probing settings): a reader that finds none, or another one (a board never built, a
database written by something else than this layer), builds the board before
reading it (`Leaderboards`), which a platform also does at start for every
board that has no rows yet (`build_missing`).
"""
from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import pickle
from typing import Any, Iterable, Optional, Union

from sqlalchemy import and_, case, delete, func, insert, select
from sqlalchemy.orm import Session, selectinload

from scoring.leaderboard import Board, Column, Entry, build_leaderboard
from scoring.probing import Probing, shown_rows

from .. import models as m
from .probing import probing_of

# The registration whose submissions stand on the boards: a participant removed or banned (or pending again
# after a removal, or denied) stands on none.
ON_THE_BOARDS = m.APPROVED
# Rules under which at most one submission of each participant can stand: the window keeps it.
_LATEST_OF_EACH = {"Force_Last": False, "Add": True, "Add_And_Delete": True}
# Rules that need every candidate: (only the chosen ones?).
_ALL_OF_THEM = {"Force_Best": False, "Force_Latest_Multiple": False, "Add_And_Delete_Multiple": True}


def board_from_row(board: m.Leaderboard, phase: m.Phase) -> Board:
    """The ranking definition of a board in a phase (its columns, rule, tie-breaks)."""

    def column(c: m.Column, hidden: bool) -> Column:
        return Column(
            key=c.key,
            title=c.title,
            index=c.index,
            sorting=c.sorting,
            precision=c.precision,
            hidden=hidden,
            computation=c.computation,
            source_keys=tuple(c.source_keys or ()),
            weights=tuple(c.weights) if c.weights is not None else None,
        )

    columns = [column(c, c.hidden) for c in board.columns]
    # CodaLab computed columns may average columns of another board: bring those
    # in as hidden columns so that the computation has its inputs.
    own = {c.key for c in board.columns}
    needed = {k for c in board.columns for k in (c.source_keys or ()) if k not in own}
    next_index = max((c.index for c in board.columns), default=0) + 1
    for other in board.competition.leaderboards:
        for c in other.columns:
            if c.key in needed:
                needed.discard(c.key)
                borrowed = column(c, True)
                columns.append(dataclasses.replace(borrowed, index=next_index))
                next_index += 1
    return Board(
        key=board.key,
        title=board.title,
        columns=tuple(columns),
        primary_key=board.primary_key,
        submission_rule=phase.submission_rule or board.submission_rule,
        hidden=board.hidden,
        tie_break_by_columns=board.competition.dialect == "codabench",
    )


def baseline_entrant(username: str, solution_index: Optional[int]) -> str:
    """Who a baseline stands as on the board: one entrant per solution, apart from its organizer's own entry."""
    return f"{username}\x00baseline {solution_index}"


def team_entrant(team_id: int) -> str:
    """Who a team's submissions stand as on the board: the team, whichever member made them."""
    return f"\x00team {team_id}"


def entrant(username: str, baseline: bool, solution_index: Optional[int], team_id: Optional[int]) -> str:
    """Who a submission ranks as: its baseline solution, its team, or its participant."""
    if baseline:
        return baseline_entrant(username, solution_index)
    return team_entrant(team_id) if team_id is not None else username


def team_of_entrant(participant: str) -> Optional[int]:
    """The team an entrant stands for (`team_entrant`'s inverse), None for anyone else."""
    mark, _, rest = participant.partition("\x00team ")
    return int(rest) if not mark and rest.isdigit() else None


def definition_digest(board: Board, probing: Optional[Probing] = None) -> str:
    """A digest of everything the ranking of `board` depends on besides its entries (and what its public
    board shows, `probing`)."""
    shown = "" if probing is None or not probing.active else repr(probing)
    return hashlib.sha256((repr(board) + shown).encode()).hexdigest()


def taken_off(phase_id: int):
    """The ids of the phase's participants who are not approved (removed, banned...): none of their
    submissions is ranked.

    A removal keeps the submissions (reinstating the participant brings them
    back where they stood); the boards are rebuilt when a participant leaves
    or returns (`registrations`).
    """
    return (select(m.Participant.id)
            .join(m.Phase, m.Phase.competition_id == m.Participant.competition_id)
            .where(m.Phase.id == phase_id, m.Participant.status != ON_THE_BOARDS))


def _candidates(s: Session, phase_id: int, rule: str, keys: Iterable[str]) -> list[Entry]:
    """The entries `select_entries` may choose under `rule`: a superset of what it keeps, one statement.

    Only finished, not hidden submissions of the phase by approved participants; scores of `keys` only (the board's columns).  A baseline counts
    as chosen (`leaderboards.entries`).
    """
    sub = m.Submission
    conditions = [sub.phase_id == phase_id, sub.hidden.is_(False), sub.status == m.FINISHED,
                  sub.participant_id.not_in(taken_off(phase_id)),
                  sub.reproduces_id.is_(None)]  # a reproduction checks a result, it is not one
    chosen_only = _LATEST_OF_EACH.get(rule, _ALL_OF_THEM.get(rule, False))
    if chosen_only:
        conditions.append(sub.selected.is_(True) | sub.baseline.is_(True))
    columns = [sub.id, sub.participant_id, sub.submitted_at, sub.selected, sub.baseline, sub.solution_index,
               sub.team_id]
    if rule in _LATEST_OF_EACH:
        # One entrant: a team's submissions, a participant's own, or one baseline solution of theirs.
        who = (sub.team_id, case((sub.team_id.is_(None), sub.participant_id), else_=None), sub.baseline,
               case((sub.baseline.is_(True), sub.solution_index), else_=None))
        latest = func.row_number().over(partition_by=who, order_by=(sub.submitted_at.desc(), sub.id.desc()))
        inner = select(*columns, latest.label("latest")).where(*conditions).subquery()
        picked = select(inner).where(inner.c.latest == 1).subquery()
    else:
        picked = select(*columns).where(*conditions).subquery()
    keys = sorted(set(keys))
    # Through the connection: plain rows, without the ORM's per-row work.
    rows = s.connection().execute(
        select(picked.c.id, m.Participant.username, picked.c.submitted_at, picked.c.selected, picked.c.baseline,
               picked.c.solution_index, picked.c.team_id, m.Score.key, m.Score.value)
        .select_from(picked)
        .join(m.Participant, m.Participant.id == picked.c.participant_id)
        .outerjoin(m.Score, and_(m.Score.submission_id == picked.c.id, m.Score.key.in_(keys)))
        .order_by(picked.c.id)
    ).all()
    entries: list[Entry] = []
    current: Optional[int] = None
    scores: dict[str, float] = {}
    for sid, username, submitted_at, selected, baseline, solution_index, team_id, key, value in rows:
        if sid != current:
            current, scores = sid, {}
            entries.append(Entry(
                submission_id=sid,
                participant=entrant(username, baseline, solution_index, team_id),
                submitted_at=submitted_at,
                status=m.FINISHED,
                scores=scores,
                selected=bool(selected or baseline),
            ))
        if key is not None:
            scores[key] = math.nan if value is None else value
    return entries


def _history(s: Session, phase_id: int, key: str, sorting: str) -> list[dict[str, Any]]:
    """When the best value of column `key` improved over the phase's finished, shown submissions.

    The database keeps only the rows better than every earlier one (a running
    best over the previous rows), so only those travel.
    """
    sub = m.Submission
    order = (sub.submitted_at, sub.id)
    best_before = (func.min if sorting == "asc" else func.max)(m.Score.value).over(
        order_by=order, rows=(None, -1))
    inner = (
        select(sub.submitted_at.label("at"), sub.id.label("id"), m.Score.value.label("value"),
               m.Participant.username.label("username"), best_before.label("before"))
        .join(m.Score, m.Score.submission_id == sub.id)
        .join(m.Participant, m.Participant.id == sub.participant_id)
        .where(sub.phase_id == phase_id, sub.status == m.FINISHED, sub.hidden.is_(False),
               sub.participant_id.not_in(taken_off(phase_id)), m.Score.key == key, m.Score.value.is_not(None))
        .subquery()
    )
    better = inner.c.value < inner.c.before if sorting == "asc" else inner.c.value > inner.c.before
    rows = s.execute(
        select(inner.c.at, inner.c.value, inner.c.username)
        .where(inner.c.before.is_(None) | better)
        .order_by(inner.c.at, inner.c.id)
    ).all()
    return [{"at": at.isoformat(), "value": value, "username": username, "column": key}
            for at, value, username in rows]


def _extended_history(s: Session, history: dict[str, Any], submission_id: int,
                      columns: list[tuple[str, str]]) -> Optional[dict[str, Any]]:
    """The history after submission `submission_id` finished, when that is only a point at its end
    (it was submitted after the last point); None when the whole history must be read again.

    Every submission after the last point is no better than it, so a newer one
    is a new point exactly when it beats the last point's value.
    """
    found = s.execute(
        select(m.Submission.submitted_at, m.Submission.hidden, m.Submission.status, m.Participant.username,
               m.Participant.status)
        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
        .where(m.Submission.id == submission_id)
    ).first()
    if found is None:
        return None
    at, hidden, status, username, registration = found
    if hidden or status != m.FINISHED or registration != ON_THE_BOARDS:
        return dict(history)
    values = dict(s.execute(select(m.Score.key, m.Score.value).where(
        m.Score.submission_id == submission_id, m.Score.key.in_([key for key, _ in columns]))).all())
    extended = {}
    for key, sorting in columns:
        points = list(history.get(key) or [])
        value = values.get(key)
        if points and at.isoformat() <= points[-1]["at"]:
            return None
        if value is not None and (not points or (value < points[-1]["value"] if sorting == "asc"
                                                 else value > points[-1]["value"])):
            points.append({"at": at.isoformat(), "value": value, "username": username, "column": key})
        extended[key] = points
    return extended


def history_columns(db_board: m.Leaderboard) -> list[tuple[str, str]]:
    """(key, sorting) of the columns whose best-score history a viewer may be shown: an organizer's and a
    participant's (the primary plain column each may see, else the first such)."""
    found: list[tuple[str, str]] = []
    for organizer in (True, False):
        plain = [c for c in db_board.columns if not c.computation and (organizer or not c.hidden)]
        if plain:
            column = next((c for c in plain if c.key == db_board.primary_key), plain[0])
            if (column.key, column.sorting) not in found:
                found.append((column.key, column.sorting))
    return found


def _by_submission_time(s: Session, ids: Iterable[int]) -> list[int]:
    """`ids` in the order they were submitted (the order their history points would come)."""
    return list(s.scalars(select(m.Submission.id).where(m.Submission.id.in_(list(ids)))
                          .order_by(m.Submission.submitted_at, m.Submission.id)))


def _lock_phase(s: Session, phase_id: int) -> Optional[m.Phase]:
    return s.scalars(select(m.Phase).where(m.Phase.id == phase_id).with_for_update()).first()


def refresh_phase(s: Session, phase_id: int, *, finished: Union[None, int, Iterable[int]] = None,
                  history: bool = True, new_version: bool = False) -> None:
    """Bring every board of the phase up to date, in the caller's transaction.

    `finished`: the change is that submission (or those submissions)
    finishing: their best-score history points, if any, are added without
    reading the phase's scores again when they are the latest;
    `history=False`: the change cannot move the best-score history (a
    participant's choice of what the board shows); `new_version`: each
    board gets a new version even when its rows stay the same (a saved
    definition may change what its readers keep per version, such as a
    solution's name).
    """
    s.flush()
    ph = _lock_phase(s, phase_id)
    if ph is None:
        return
    boards = s.scalars(
        select(m.Leaderboard).where(m.Leaderboard.competition_id == ph.competition_id)
        .options(selectinload(m.Leaderboard.columns), selectinload(m.Leaderboard.competition)
                 .selectinload(m.Competition.leaderboards).selectinload(m.Leaderboard.columns))
        .order_by(m.Leaderboard.index, m.Leaderboard.id)
    ).all()
    candidates: dict[tuple[str, tuple[str, ...]], list[Entry]] = {}
    ids = None if finished is None else (finished,) if isinstance(finished, int) else tuple(finished)
    for db_board in boards:
        _rebuild(s, ph, db_board, candidates, finished=ids, keep_history=not history, new_version=new_version)


def refresh_competition(s: Session, competition_id: int, *, new_version: bool = True) -> None:
    """Bring every board of every phase of a competition up to date (its definition changed; or, with
    `new_version=False`, who stands on its boards)."""
    s.flush()
    for phase_id in s.scalars(select(m.Phase.id).where(m.Phase.competition_id == competition_id)
                              .order_by(m.Phase.id)).all():
        refresh_phase(s, phase_id, new_version=new_version)


def _rebuild(s: Session, ph: m.Phase, db_board: m.Leaderboard,
             candidates: dict[tuple[str, tuple[str, ...]], list[Entry]], *,
             finished: Optional[tuple[int, ...]] = None, keep_history: bool = False,
             new_version: bool = False) -> m.BoardState:
    state = s.get(m.BoardState, (ph.id, db_board.id))
    error: Optional[str] = None
    rows: list[dict[str, Any]] = []
    definition = ""
    try:
        board = board_from_row(db_board, ph)
        probing = probing_of(db_board)
        definition = definition_digest(board, probing)
        keys = tuple(sorted(c.key for c in board.columns))
        wanted = (board.submission_rule, keys)
        if probing is not None and probing.ladder is not None:
            # A Ladder follows each entrant's every finished submission, not only the rows': those are a
            # superset of any rule's candidates, so the rule chooses among them too (one statement).
            wanted = ("Force_Latest_Multiple", keys)
        if wanted not in candidates:
            candidates[wanted] = _candidates(s, ph.id, wanted[0], keys)
        built = build_leaderboard(board, candidates[wanted], viewer_is_organizer=True)
        shown: dict[int, dict[str, Any]] = {}
        if probing is not None:
            # Force_Best's candidates are every finished submission too: the rows stand on what is shown.
            needs_history = probing.ladder is not None or board.submission_rule == "Force_Best"
            shown = shown_rows(board, probing, built.rows, candidates[wanted] if needs_history else ())
    except ValueError as exc:
        error = str(exc)
    else:
        teams = {row.submission_id: team_of_entrant(row.participant) for row in built.rows}
        submitters = _submitters(s, [sid for sid, team in teams.items() if team is not None])
        for row in built.rows:
            username, baseline, solution_index = entrant_of(row.participant)
            username = submitters.get(row.submission_id, username)
            rows.append({
                "phase_id": ph.id,
                "leaderboard_id": db_board.id,
                "position": row.rank,
                "submission_id": row.submission_id,
                "username": username,
                "baseline": baseline,
                "solution_index": solution_index,
                "submitted_at": row.submitted_at,
                "team_id": teams[row.submission_id],
                "scores": dict(row.scores),
                "ranks": dict(row.ranks),
                "shown": shown.get(row.submission_id),
            })
    # What the rows say, to write them only when it changed (pickle: fast, and the same bytes for the same rows;
    # a submission's time never changes, so its id stands for it).
    digest = hashlib.sha256(pickle.dumps(
        [error, *[(r["position"], r["submission_id"], r["username"], r["baseline"], r["solution_index"],
                   r["scores"], r["ranks"], r["team_id"], r["shown"]) for r in rows]], protocol=4)).hexdigest()
    wanted_history = history_columns(db_board)
    history: Optional[dict[str, Any]] = None
    if state is not None and state.definition == definition and set(state.history or {}) == {
            key for key, _ in wanted_history}:
        if keep_history:
            history = state.history
        elif finished:
            history = state.history
            for submission_id in _by_submission_time(s, finished):
                history = _extended_history(s, history, submission_id, wanted_history)
                if history is None:
                    break
    if history is None:
        history = {key: _history(s, ph.id, key, sorting) for key, sorting in wanted_history}
    now = m.utcnow()
    if state is None:
        state = m.BoardState(phase_id=ph.id, leaderboard_id=db_board.id, version=0)
        s.add(state)
    elif (not new_version and state.digest == digest and state.definition == definition
          and state.history == history):
        state.built_at = now  # checked against every result until now (`stale_phases`)
        s.flush()
        return state
    if state.digest != digest:
        s.execute(delete(m.BoardRow).where(m.BoardRow.phase_id == ph.id,
                                           m.BoardRow.leaderboard_id == db_board.id))
        if rows:
            _insert_rows(s, rows)
    state.version = (state.version or 0) + 1
    state.definition, state.digest, state.total, state.error = definition, digest, len(rows), error
    state.history, state.built_at = history, now
    s.flush()
    return state


_ROW_COLUMNS = ("phase_id", "leaderboard_id", "position", "submission_id", "username", "baseline",
                "solution_index", "submitted_at", "team_id", "scores", "ranks", "shown")


def _submitters(s: Session, ids: list[int]) -> dict[int, str]:
    """Who made each of these submissions (a team's row names the member who made its submission)."""
    if not ids:
        return {}
    return dict(s.execute(select(m.Submission.id, m.Participant.username)
                          .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                          .where(m.Submission.id.in_(ids))).all())


def _insert_rows(s: Session, rows: list[dict[str, Any]]) -> None:
    """Write a board's rows: PostgreSQL by COPY (one round trip), others by one executemany."""
    conn = s.connection()
    if conn.dialect.name != "postgresql":
        s.execute(insert(m.BoardRow.__table__), rows)
        return
    with conn.connection.dbapi_connection.cursor() as cursor:
        with cursor.copy(f"COPY board_rows ({', '.join(_ROW_COLUMNS)}) FROM STDIN") as copy:
            for r in rows:
                copy.write_row([*(r[c] for c in _ROW_COLUMNS[:-3]), json.dumps(r["scores"]), json.dumps(r["ranks"]),
                                None if r["shown"] is None else json.dumps(r["shown"])])


def entrant_of(participant: str) -> tuple[str, bool, Optional[int]]:
    """(username, is a baseline, solution index) of who a row ranks as (`baseline_entrant`'s inverse)."""
    username, mark, rest = participant.partition("\x00baseline ")
    if not mark:
        return participant, False, None
    return username, True, int(rest) if rest.lstrip("-").isdigit() else None


def build_missing(s: Session) -> int:
    """Build every board of every phase that has no rows yet, or that missed a result (`stale_phases`);
    returns how many phases were built."""
    missing = set(s.execute(
        select(m.Phase.id)
        .join(m.Leaderboard, m.Leaderboard.competition_id == m.Phase.competition_id)
        .outerjoin(m.BoardState, and_(m.BoardState.phase_id == m.Phase.id,
                                      m.BoardState.leaderboard_id == m.Leaderboard.id))
        .where(m.BoardState.phase_id.is_(None))
        .distinct()
    ).scalars().all())
    missing |= set(stale_phases(s))
    for phase_id in sorted(missing):
        refresh_phase(s, phase_id)
    return len(missing)


def stale_phases(s: Session) -> list[int]:
    """Phases with a result recorded after one of their boards was last ranked: a process that ranks
    boards after results (`refresher`) stopped before it ranked them."""
    sub = m.Submission
    return sorted(s.execute(
        select(m.BoardState.phase_id)
        .join(sub, sub.phase_id == m.BoardState.phase_id)
        .where(sub.status == m.FINISHED, sub.status_changed_at > m.BoardState.built_at)
        .distinct()
    ).scalars().all())
