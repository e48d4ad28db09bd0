"""Leaderboards: a phase's ranked board as the viewer may see it, as data, as CSV, and the best-score history.

Ranking itself is `scoring.leaderboard`; here the rows of the database become
its `Board` and `Entry` values, and what the viewer may see (hidden boards,
hidden columns, blind phases) is cut.

A baseline (an organizer's run of one of the bundle's solutions, `baselines`)
is ranked among the participants' entries, as an organizer's submission is
on Codabench: each solution stands as an entry of its own, always chosen
under the `Add` rules, and its rows say `"baseline": true` with the
solution's name.
"""
from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import io
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session, selectinload

from scoring.leaderboard import Board, Column, Entry, build_leaderboard

from .. import models as m
from ..errors import NotFound
from .actors import LOCAL_ADMIN, Actor, is_organizer
from .context import Context
from .records import get_competition, get_phase, phase_number


def board_from_row(board: m.Leaderboard, phase: m.Phase) -> Board:
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


def entries(s: Session, ph: m.Phase) -> list[Entry]:
    """The phase's submissions that are not hidden, as leaderboard entries.

    A baseline enters as its solution (`baseline_entrant`), not as the
    organizer who ran it, and counts as chosen, so the board shows one
    entry per solution beside the participants'.
    """
    rows = s.execute(
        select(m.Submission, m.Participant.username)
        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
        .where(m.Submission.phase_id == ph.id, m.Submission.hidden.is_(False))
        .options(selectinload(m.Submission.scores))
    ).all()
    return [
        Entry(
            submission_id=sub.id,
            participant=baseline_entrant(username, sub.solution_index) if sub.baseline else username,
            submitted_at=sub.submitted_at,
            status=sub.status,
            scores={sc.key: (float("nan") if sc.value is None else sc.value) for sc in sub.scores},
            selected=sub.selected or sub.baseline,
        )
        for sub, username in rows
    ]


def baselines_of(s: Session, comp: m.Competition, ph: m.Phase) -> dict[int, dict[str, Any]]:
    """The phase's baseline submissions: {submission id: what their rows say instead ("participant": the
    organizer, "baseline": true, "solution": the solution's name)}."""
    names = {sol.index: sol.name for sol in comp.solutions}
    rows = s.execute(
        select(m.Submission.id, m.Submission.solution_index, m.Participant.username)
        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
        .where(m.Submission.phase_id == ph.id, m.Submission.baseline.is_(True))
    ).all()
    return {sid: {"participant": username, "baseline": True, "solution": names.get(index, f"Solution {index}")}
            for sid, index, username in rows}


def _average_rank(ranks: dict[str, Optional[int]]) -> Optional[float]:
    """The mean of a row's column ranks (the leaderboard's "average rank")."""
    known = [r for r in ranks.values() if r is not None]
    return round(sum(known) / len(known), 4) if known else None


class Leaderboards:
    """The leaderboards of phases, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def leaderboard(
        self,
        slug: str,
        phase: Optional[int] = None,
        *,
        actor: Actor = LOCAL_ADMIN,
        board: Optional[str] = None,
        now: Optional[dt.datetime] = None,
    ) -> dict[str, Any]:
        """The leaderboard of a phase as plain data: the shape of `compete leaderboard --json`."""
        view = self.leaderboard_view(slug, phase, actor=actor, board=board, now=now)
        return {
            "competition": view["competition"],
            "phase": view["phase"],
            "columns": [{k: c[k] for k in ("key", "title", "sorting")} for c in view["columns"]],
            "rows": [{k: r[k] for k in ("rank", "participant", "submission", "scores", "baseline")}
                     for r in view["rows"]],
        }

    def leaderboard_view(
        self,
        slug: str,
        phase: Optional[int] = None,
        *,
        actor: Actor = LOCAL_ADMIN,
        board: Optional[str] = None,
        now: Optional[dt.datetime] = None,
    ) -> dict[str, Any]:
        """The leaderboard as the service shows it: `leaderboard` plus the board, its note,
        column precision, each row's column ranks, average rank and submission time."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            ph = get_phase(comp, phase, now)
            organizer = is_organizer(actor, comp)
            boards = comp.leaderboards
            if board is not None:
                boards = [b for b in boards if b.key == board]
                if not boards:
                    raise NotFound(f"competition {slug!r} has no leaderboard {board!r}")
            elif not organizer:
                boards = [b for b in boards if not b.hidden] or boards
            if not boards:
                raise NotFound(f"competition {slug!r} has no leaderboard")
            db_board = boards[0]
            result = build_leaderboard(
                board_from_row(db_board, ph),
                entries(s, ph),
                viewer_is_organizer=organizer,
                blind=ph.hide_results,
            )
            baselines = baselines_of(s, comp, ph)
            return {
                "competition": comp.slug,
                "phase": phase_number(comp, ph),
                "board": result.key,
                "title": result.title,
                "note": result.note,
                "primary_key": result.primary_key,
                "hidden_for_viewer": result.hidden_for_viewer,
                "columns": [{"key": c.key, "title": c.title, "sorting": c.sorting, "precision": c.precision,
                             "computation": c.computation} for c in result.columns],
                "rows": [
                    {
                        "rank": r.rank,
                        "participant": r.participant,
                        "baseline": False,
                        **baselines.get(r.submission_id, {}),
                        "submission": r.submission_id,
                        "submitted_at": r.submitted_at.isoformat(),
                        "scores": {k: v for k, v in r.scores.items()},
                        "ranks": dict(r.ranks),
                        "average_rank": _average_rank(r.ranks),
                    }
                    for r in result.rows
                ],
            }

    def leaderboard_csv(self, slug: str, phase: Optional[int] = None, *, actor: Actor,
                        board: Optional[str] = None, now: Optional[dt.datetime] = None) -> str:
        """The leaderboard as the actor sees it, as CSV (full precision)."""
        data = self.leaderboard_view(slug, phase, actor=actor, board=board, now=now)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        keys = [c["key"] for c in data["columns"]]
        writer.writerow(["rank", "participant", "submission", "submitted_at",
                         *[c["title"] for c in data["columns"]], "average_rank"])
        for row in data["rows"]:
            # A baseline stands as its solution, as on the board's page.
            who = f"{row.get('solution')} (baseline)" if row.get("baseline") else row["participant"]
            writer.writerow([row["rank"], who, row["submission"], row.get("submitted_at", ""),
                             *["" if row["scores"].get(k) is None else repr(float(row["scores"][k])) for k in keys],
                             "" if row.get("average_rank") is None else row["average_rank"]])
        return out.getvalue()

    def best_score_history(self, slug: str, phase: Optional[int], board_key: Optional[str], actor: Actor,
                           *, now: Optional[dt.datetime] = None) -> list[dict[str, Any]]:
        """When the best score of a board improved: [{at, value, username}], oldest first.

        The score is the board's primary column when it is a plain score the
        actor may see, else the first such column; a blind phase or a hidden
        board has no history for participants.
        """
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            ph = get_phase(comp, phase, now)
            organizer = is_organizer(actor, comp)
            boards = [b for b in comp.leaderboards if board_key is None or b.key == board_key]
            if board_key is not None and not boards:
                raise NotFound(f"competition {slug!r} has no leaderboard {board_key!r}")
            if not organizer:
                boards = [b for b in boards if not b.hidden]
                if not boards or ph.hide_results:
                    return []
            if not boards:
                return []
            db_board = boards[0]
            plain = [c for c in db_board.columns if not c.computation and (organizer or not c.hidden)]
            if not plain:
                return []
            column = next((c for c in plain if c.key == db_board.primary_key), plain[0])
            rows = s.execute(
                select(m.Submission.submitted_at, m.Score.value, m.Participant.username)
                .join(m.Score, m.Score.submission_id == m.Submission.id)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Submission.phase_id == ph.id, m.Submission.status == m.FINISHED,
                       m.Submission.hidden.is_(False), m.Score.key == column.key, m.Score.value.is_not(None))
                .order_by(m.Submission.submitted_at, m.Submission.id)
            ).all()
            better = (lambda a, b: a < b) if column.sorting == "asc" else (lambda a, b: a > b)
            history, best = [], None
            for at, value, username in rows:
                if best is None or better(value, best):
                    best = value
                    history.append({"at": at.isoformat(), "value": value, "username": username,
                                    "column": column.key})
            return history
