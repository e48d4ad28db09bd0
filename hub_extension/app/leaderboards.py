"""Leaderboards: a phase's ranked board as the viewer may see it, as data, as CSV, and the best-score history.

Ranking itself is `scoring.leaderboard`; the boards are kept ranked in the
database (`standings`: one row per entry, every column), and here a page of
those rows is read and cut to what the viewer may see (hidden boards, hidden
columns, blind phases) by the same `build_leaderboard` that ranks them, asked
for the viewer's columns without entries.  A request reads a bounded number
of rows whatever the number of submissions: the page asked for (`offset`,
`limit`; everything by default) and the viewer's own best row when it is not
on that page.  `leaderboard_etag` answers in one statement from the board's
version counter, so that an unchanged board costs a client one small read.

A baseline (an organizer's run of one of the bundle's solutions, `baselines`)
is ranked among the participants' entries, as an organizer's submission is
on Codabench: each solution stands as an entry of its own, always chosen
under the `Add` rules, and its rows say `"baseline": true` with the
solution's name.

On a probing-resistant board (`probing`) everyone but organizers reads the
rows' shown values, ranks and positions (`board_rows.shown`) in the public
order; organizers read the stored ones with the shown ones beside them.

A team stands as one entry (`standings.team_entrant`): its row shows the
team's name as `participant`, with `team` (its id) and `submitted_by` (the
member who made the submission); it is the own row of every member.
"""
from __future__ import annotations

import collections
import csv
import dataclasses
import datetime as dt
import functools
import hashlib
import io
import logging
import threading
from types import SimpleNamespace
from typing import Any, Callable, Container, Iterable, Iterator, Optional, TypeVar

from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.orm import Session, selectinload

from scoring.leaderboard import Board, Entry, Leaderboard, build_leaderboard
from scoring.probing import Probing, round_to_precision
from scoring.probing import describe as describe_probing

from .. import models as m
from ..errors import NotFound
from .actors import LOCAL_ADMIN, Actor, is_organizer, may_see, not_found
from .context import Context
from .fact_sheets import answer_cell, board_columns
from .names import Naming, is_anonymous, platform_secret
from .probing import probing_of
from .records import find_team, get_phase, phase_number, visible_competition
from .standings import (
    ON_THE_BOARDS,
    board_from_row,
    build_missing,
    definition_digest,
    entrant,
    refresh_phase,
)

log = logging.getLogger(__name__)
T = TypeVar("T")
# Rows read from the database at a time while a CSV is written.
CSV_BATCH = 1000


def entries(s: Session, ph: m.Phase) -> list[Entry]:
    """The phase's submissions that are not hidden, by approved participants, as leaderboard entries.

    A baseline enters as its solution (`baseline_entrant`), not as the
    organizer who ran it, and counts as chosen, so the board shows one
    entry per solution beside the participants'.
    """
    rows = s.execute(
        select(m.Submission, m.Participant.username)
        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
        .where(m.Submission.phase_id == ph.id, m.Submission.hidden.is_(False),
               m.Participant.status == ON_THE_BOARDS,
               m.Submission.reproduces_id.is_(None))  # a reproduction checks an entry, it is not one
        .options(selectinload(m.Submission.scores))
    ).all()
    return [
        Entry(
            submission_id=sub.id,
            participant=entrant(username, sub.baseline, sub.solution_index, sub.team_id),
            submitted_at=sub.submitted_at,
            status=sub.status,
            scores={sc.key: (float("nan") if sc.value is None else sc.value) for sc in sub.scores},
            selected=sub.selected or sub.baseline,
        )
        for sub, username in rows
    ]


def shows_average_rank(keys: list[str]) -> bool:
    """A board shows an average rank only with two columns or more: with one it is the rank itself."""
    return len(keys) > 1


def _average_rank(ranks: dict[str, Optional[int]]) -> Optional[float]:
    """The mean of a row's column ranks (the leaderboard's "average rank"); None on a one-column board."""
    if not shows_average_rank(list(ranks)):
        return None
    known = [r for r in ranks.values() if r is not None]
    return round(sum(known) / len(known), 4) if known else None


def choose_board(boards: list[Any], slug: str, board: Optional[str], organizer: bool) -> Any:
    """The board asked for (by key), else the first one the viewer may see (hidden ones: organizers only)."""
    if board is not None:
        boards = [b for b in boards if b.key == board]
        if not boards:
            raise NotFound(f"competition {slug!r} has no leaderboard {board!r}")
    elif not organizer:
        boards = [b for b in boards if not b.hidden] or boards
    if not boards:
        raise NotFound(f"competition {slug!r} has no leaderboard")
    return boards[0]


@dataclasses.dataclass(frozen=True)
class _Definition:
    """What one version of a board is ranked and shown by (kept per process, `Leaderboards._definitions`)."""

    board: Board
    digest: str
    # The column whose best-score history an organizer, and a participant, is shown (None: none).
    history_key: dict[bool, Optional[str]]
    # What the public board shows instead of the stored scores (None: them; `probing`).
    probing: Optional[Probing] = None


@dataclasses.dataclass(frozen=True)
class _Located:
    """Where a request lands, from one statement: ids, the viewer's role, the board's maintained state."""

    comp_id: int
    slug: str
    phase_id: int
    number: int
    hide_results: bool
    board_id: int
    organizer: bool
    version: Optional[int]  # None: the board was never built
    total: int
    error: Optional[str]
    definition: str  # digest of the definition the rows were ranked by
    digest: str  # digest of the rows
    anonymous: bool = False  # names are pseudonyms for everyone but organizers (`names`)
    names_stamp: str = ""  # when a display name last changed: names shown are part of the answer


@dataclasses.dataclass(frozen=True)
class _Opened:
    """A board as one viewer asks for it, its maintained state fresh."""

    at: _Located
    definition: _Definition

    @property
    def board(self) -> Board:
        return self.definition.board

    @property
    def phase_id(self) -> int:
        return self.at.phase_id

    @property
    def board_id(self) -> int:
        return self.at.board_id

    @property
    def organizer(self) -> bool:
        return self.at.organizer

    def cut(self) -> Leaderboard:
        """The board's columns, note and flags as this viewer sees them (no rows)."""
        return _cut(self.board, self.organizer, self.at.hide_results)

    @property
    def rows_shown(self) -> bool:
        return self.organizer or not (self.board.hidden or self.at.hide_results)

    @property
    def public(self) -> bool:
        """Whether this viewer reads the shown values in their order (`board_rows.shown`), not the stored."""
        return not self.organizer and self.definition.probing is not None

    @property
    def alongside(self) -> bool:
        """Whether this viewer reads the stored values with the shown ones beside them (organizers)."""
        return self.organizer and self.definition.probing is not None


@functools.lru_cache(maxsize=256)
def _cut(board: Board, organizer: bool, blind: bool) -> Leaderboard:
    return build_leaderboard(board, [], viewer_is_organizer=organizer, blind=blind)


def _history_key(db_board: m.Leaderboard, organizer: bool) -> Optional[str]:
    """The column whose best-score history the viewer is shown: the primary plain column they may see,
    else the first such."""
    plain = [c for c in db_board.columns if not c.computation and (organizer or not c.hidden)]
    if not plain:
        return None
    return next((c for c in plain if c.key == db_board.primary_key), plain[0]).key


class Leaderboards:
    """The leaderboards of phases, over the shared context."""

    # Board definitions kept per process, by (phase, board, version): a version is built by one definition.
    DEFINITIONS_KEPT = 1024
    # Pages of board versions kept per process (`_page`).
    PAGES_KEPT = 512

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self._definitions: collections.OrderedDict[tuple[int, int, int, str], _Definition] = \
            collections.OrderedDict()
        self._definitions_lock = threading.Lock()
        self._pages: collections.OrderedDict[tuple, list[dict[str, Any]]] = collections.OrderedDict()

    # -- keeping boards ---------------------------------------------------------------------------
    def rebuild_boards(self, slug: Optional[str] = None) -> int:
        """Rank every board of every phase again (of one competition, or all); returns the phases rebuilt.

        For a database written by something else than this layer (a bulk load):
        the application layer keeps boards up to date by itself.
        """
        with self.ctx.db.session() as s:
            q = select(m.Phase.id).order_by(m.Phase.id)
            if slug is not None:
                q = q.join(m.Competition, m.Competition.id == m.Phase.competition_id).where(m.Competition.slug == slug)
            ids = s.scalars(q).all()
        for phase_id in ids:
            with self.ctx.db.session() as s:
                refresh_phase(s, phase_id)
        return len(ids)

    def build_missing(self) -> int:
        """Build the boards that have never been built (a database upgraded to maintained boards)."""
        with self.ctx.db.session() as s:
            return build_missing(s)

    def _locate(self, s: Session, slug: str, phase: Optional[int], actor: Actor, board: Optional[str],
                now: Optional[dt.datetime]) -> _Located:
        """The phase and board a request resolves to, and the board's state, in one statement.

        Raises NotFound as `visible_competition`, `get_phase` and `choose_board` say it.
        """
        rows = s.execute(_LOCATE, {"slug": slug}).all()
        if not rows:  # no such competition, or one without phases or boards: say which
            comp = visible_competition(s, slug, actor, full=True)
            get_phase(comp, phase, now)
            choose_board(list(comp.leaderboards), slug, board, False)
            raise NotFound(f"competition {slug!r} has no leaderboard")  # pragma: no cover - one of them raised
        comp = SimpleNamespace(id=rows[0][0], slug=slug, created_by=rows[0][1], admin_names=rows[0][2],
                               status=rows[0][17], secret=rows[0][18])
        if not may_see(actor, comp, session=s):
            raise not_found(slug)
        comp.phases = list({r[3]: SimpleNamespace(id=r[3], index=r[4], start=r[5], end=r[6], hide_results=r[7])
                            for r in rows}.values())
        ph = get_phase(comp, phase, now)  # type: ignore[arg-type]
        boards = sorted({r[8]: SimpleNamespace(id=r[8], key=r[9], hidden=r[10], index=r[11]) for r in rows}.values(),
                        key=lambda b: (b.index, b.id))
        organizer = is_organizer(actor, comp)  # type: ignore[arg-type]
        chosen = choose_board(boards, slug, board, organizer)
        state = next(r for r in rows if r[3] == ph.id and r[8] == chosen.id)
        return _Located(comp_id=comp.id, slug=slug, phase_id=ph.id,
                        number=phase_number(comp, ph), hide_results=bool(ph.hide_results),  # type: ignore[arg-type]
                        board_id=chosen.id, organizer=organizer, version=state[12], total=state[13] or 0,
                        error=state[14], definition=state[15] or "", digest=state[16] or "",
                        anonymous=is_anonymous(rows[0][19], state[20]), names_stamp=str(rows[0][21] or ""))

    def naming(self, at: _Located, actor: Actor) -> Naming:
        """How this viewer sees the entrants of the board `at` (`names`)."""
        hides = at.anonymous and not at.organizer
        return Naming(competition_id=at.comp_id, anonymous=at.anonymous, organizer=at.organizer,
                      viewer=actor.username, secret=platform_secret(self.ctx.config.home) if hides else b"")

    def _definition(self, s: Session, at: _Located) -> _Definition:
        """The definition the board's current version stands for, read once per process and version."""
        # A board saved again may come back under the same id with its version counted from 1 again: the
        # digests tell its versions apart.
        key = (at.phase_id, at.board_id, at.version or 0, at.definition)
        with self._definitions_lock:
            found = self._definitions.get(key)
            if found is not None:
                self._definitions.move_to_end(key)
                return found
        db_board = s.scalars(
            select(m.Leaderboard).where(m.Leaderboard.id == at.board_id)
            .options(selectinload(m.Leaderboard.columns), selectinload(m.Leaderboard.competition)
                     .selectinload(m.Competition.leaderboards).selectinload(m.Leaderboard.columns))
        ).one()
        board = board_from_row(db_board, s.get(m.Phase, at.phase_id))
        try:
            probing = probing_of(db_board)
        except ValueError:  # the rows say the error (`standings`)
            probing = None
        made = _Definition(board=board, digest=definition_digest(board, probing),
                           history_key={True: _history_key(db_board, True), False: _history_key(db_board, False)},
                           probing=probing)
        if made.digest == at.definition:  # only a definition the rows were built by is kept
            with self._definitions_lock:
                self._definitions[key] = made
                while len(self._definitions) > self.DEFINITIONS_KEPT:
                    self._definitions.popitem(last=False)
        return made

    def _with_board(self, slug: str, phase: Optional[int], actor: Actor, board: Optional[str],
                    now: Optional[dt.datetime], read: Callable[[Session, _Opened], T],
                    before: Optional[Callable[[_Located], bool]] = None) -> Optional[T]:
        """`read(session, opened)` on a fresh board; None, without reading, when `before(located)` says the
        caller has what it needs (a client's copy still current).

        A board never built, or built by another definition than the one stored
        now (a definition changed behind the application layer's back), is
        built first, in a transaction of its own; the application layer's own
        changes never leave it so.  A process checks the definition once per
        version of a board (`_definition`): reading an unchanged board costs the
        statement that locates it and the rows it shows.
        """
        for attempt in range(3):
            with self.ctx.db.session() as s:
                at = self._locate(s, slug, phase, actor, board, now)
                if at.version is not None:
                    definition = self._definition(s, at)
                    if definition.digest == at.definition or attempt == 2:
                        if before is not None and before(at):
                            return None
                        if at.error:
                            raise ValueError(at.error)
                        return read(s, _Opened(at, definition))
            log.info("leaderboard %s of %s (phase id %s) is built before it is read", board or "", slug, at.phase_id)
            with self.ctx.db.session() as s:
                refresh_phase(s, at.phase_id)
        raise AssertionError("unreachable")  # pragma: no cover

    # -- reading ----------------------------------------------------------------------------------
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
        data = {
            "competition": view["competition"],
            "phase": view["phase"],
            "columns": [{k: c[k] for k in ("key", "title", "sorting")} for c in view["columns"]],
            "rows": [{k: r[k] for k in ("rank", "participant", "submission", "scores", "baseline")}
                     for r in view["rows"]],
        }
        if view["probing"] is not None:  # a probing-resistant board says how it shows its scores
            data["probing"] = view["probing"]
        return data

    def leaderboard_view(
        self,
        slug: str,
        phase: Optional[int] = None,
        *,
        actor: Actor = LOCAL_ADMIN,
        board: Optional[str] = None,
        now: Optional[dt.datetime] = None,
        offset: int = 0,
        limit: Optional[int] = None,
    ) -> dict[str, Any]:
        """The leaderboard as the service shows it: `leaderboard` plus the board, its note,
        column precision, each row's column ranks, average rank and submission time.

        Rows `offset + 1` to `offset + limit` by rank (every row when `limit` is
        None), then the viewer's own best row when it is not among them; each
        row says whether it is the viewer's (`own`).  `total` counts every row
        of the board the viewer may see.
        """
        offset = max(0, int(offset or 0))

        def read(s: Session, o: _Opened) -> dict[str, Any]:
            return self._view(s, o, actor, offset, limit)

        return self._with_board(slug, phase, actor, board, now, read)  # type: ignore[return-value]

    def _view(self, s: Session, o: _Opened, actor: Actor, offset: int, limit: Optional[int]) -> dict[str, Any]:
        result = o.cut()
        keys = [c.key for c in result.columns]
        rows: list[dict[str, Any]] = []
        total = 0
        if o.rows_shown:
            total = o.at.total
            username = actor.username
            team = find_team(s, o.at.comp_id, username)
            rows = [dict(r, own=True) if _is_own(r, username, team) else r
                    for r in self._page(s, o, keys, offset, limit)]
            if username and not any(r["own"] for r in rows):
                own = s.execute(_OWN_TEAM_ROW if team is not None else _OWN_ROW,
                                {"phase_id": o.phase_id, "board_id": o.board_id, "username": username,
                                 "team_id": team.id if team is not None else None}).first()
                if own is not None:
                    rows.append(dict(_row_view(own, keys, self._names(s, o.at.comp_id, [own]), None,
                                               public=o.public, alongside=o.alongside), own=True))
            rows = self.naming(o.at, actor).rows(s, rows)
        fact_columns, rows = board_columns(s, o.at.comp_id, o.board_id, rows)
        return {
            "competition": o.at.slug,
            "phase": o.at.number,
            "board": result.key,
            "title": result.title,
            "note": result.note,
            "primary_key": result.primary_key,
            "hidden_for_viewer": result.hidden_for_viewer,
            "columns": [{"key": c.key, "title": c.title, "sorting": c.sorting, "precision": c.precision,
                         "computation": c.computation} for c in result.columns],
            "average_rank_shown": shows_average_rank(keys),
            "anonymous": o.at.anonymous,
            "total": total,
            "offset": offset,
            "limit": limit,
            "rows": rows,
            "fact_sheet_columns": fact_columns,
            # Organizers read stored scores (each row's `shown` beside them), everyone else what is shown.
            "probing": None if o.definition.probing is None else {
                **o.definition.probing.to_dict(), "shown_values": not o.organizer,
                "note": describe_probing(o.definition.probing, organizer=o.organizer)},
        }

    def _page(self, s: Session, o: _Opened, keys: list[str], offset: int,
              limit: Optional[int]) -> list[dict[str, Any]]:
        """Rows `offset + 1` to `offset + limit` of a board version, cut to `keys`, as no one's own rows.

        Kept per process (`PAGES_KEPT`): a version of a board never changes,
        so the thousands of clients polling it share one read.  Shared: never
        changed in place.
        """
        key = (o.phase_id, o.board_id, o.at.version or 0, o.at.definition, o.at.digest, tuple(keys), offset, limit,
               o.public, o.alongside)
        with self._definitions_lock:
            found = self._pages.get(key)
            if found is not None:
                self._pages.move_to_end(key)
                return found
        upto = offset + int(limit) if limit is not None else _NO_LIMIT
        if o.public:
            # The public order is the shown values' (`board_rows.shown`), not the positions': every row of
            # the version is read once, and its pages are kept as any other.
            page = public_order(s.execute(_PAGE, {"phase_id": o.phase_id, "board_id": o.board_id, "after": 0,
                                                  "upto": _NO_LIMIT}))[offset:upto]
        else:
            page = list(s.execute(_PAGE, {"phase_id": o.phase_id, "board_id": o.board_id,
                                          "after": min(offset, _NO_LIMIT), "upto": min(upto, _NO_LIMIT)}))
        names = self._names(s, o.at.comp_id, page)
        made = [_row_view(r, keys, names, None, public=o.public, alongside=o.alongside) for r in page]
        if names.get("solutions"):  # a solution's name is not part of the board's digests: read it each time
            return made
        with self._definitions_lock:
            self._pages[key] = made
            while len(self._pages) > self.PAGES_KEPT:
                self._pages.popitem(last=False)
        return made

    @staticmethod
    def _solution_names(s: Session, competition_id: int, rows: list[Any]) -> dict[int, str]:
        if not any(r.baseline for r in rows):
            return {}
        return {index: name for index, name in s.execute(
            select(m.Solution.index, m.Solution.name).where(m.Solution.competition_id == competition_id))}

    @classmethod
    def _names(cls, s: Session, competition_id: int, rows: list[Any]) -> dict[str, dict[int, str]]:
        """The names rows show besides their user names: solutions' (baselines) and teams'."""
        return {"solutions": cls._solution_names(s, competition_id, rows),
                "teams": team_names(s, {r.team_id for r in rows if r.team_id is not None})}

    def leaderboard_csv_chunks(self, slug: str, phase: Optional[int] = None, *, actor: Actor,
                               board: Optional[str] = None, now: Optional[dt.datetime] = None) -> Iterator[str]:
        """The leaderboard as the actor sees it, as CSV (full precision), in chunks of rows.

        The rows are read `CSV_BATCH` at a time in one transaction, so the
        answer is one version of the board and never held whole in memory.
        """
        opened: list[Any] = []

        def header(s: Session, o: _Opened) -> str:
            result = o.cut()
            facts, _ = board_columns(s, o.at.comp_id, o.board_id, [])
            opened.append((o.phase_id, o.board_id, o.at.comp_id, o.rows_shown, [c.key for c in result.columns],
                           self.naming(o.at, actor), o.public, o.alongside, bool(facts)))
            out = io.StringIO()
            csv.writer(out, lineterminator="\n").writerow(
                ["rank", "participant", "submission", "submitted_at", *[c.title for c in result.columns]]
                + (["average_rank"] if shows_average_rank(opened[0][4]) else [])
                + [c["title"] for c in facts]
                + ([f"{c.title} (shown)" for c in result.columns] + ["rank (shown)"] if o.alongside else []))
            return out.getvalue()

        first = self._with_board(slug, phase, actor, board, now, header)
        phase_id, board_id, competition_id, shown, keys, naming, public, alongside, with_facts = opened[0]
        yield first
        if not shown:
            return
        average = shows_average_rank(keys)
        with self.ctx.db.session() as s:
            names = {"solutions": {index: name for index, name in s.execute(
                select(m.Solution.index, m.Solution.name).where(m.Solution.competition_id == competition_id))},
                "teams": team_names(s, None, competition_id)}
            rows = s.execute(
                select(*_ROWS.c).where(_ROWS.c.phase_id == phase_id, _ROWS.c.leaderboard_id == board_id)
                .order_by(_ROWS.c.position).execution_options(yield_per=CSV_BATCH))
            batches: Iterable[Any] = rows.partitions()
            if public:  # in the shown values' order
                ordered = public_order(rows)
                batches = (ordered[i:i + CSV_BATCH] for i in range(0, len(ordered), CSV_BATCH))

            def number(value: Any) -> Any:
                return "" if value is None else repr(float(value))

            for batch in batches:
                out = io.StringIO()
                writer = csv.writer(out, lineterminator="\n")
                viewed = naming.rows(s, [_row_view(r, keys, names, None, public=public, alongside=alongside)
                                         for r in batch])
                facts: list[dict[str, Any]] = []
                if with_facts:  # the answers the board shows, as its page shows them
                    facts, viewed = board_columns(s, competition_id, board_id, viewed)
                for row in viewed:
                    # A baseline stands as its solution, as on the board's page.
                    who = f"{row.get('solution')} (baseline)" if row.get("baseline") else row["participant"]
                    writer.writerow([row["rank"], answer_cell(who), row["submission"], row.get("submitted_at", ""),
                                     *[number(row["scores"].get(k)) for k in keys]]
                                    + (["" if row["average_rank"] is None else row["average_rank"]] if average else [])
                                    + [answer_cell(row["fact_sheet"].get(c["key"])) for c in facts]
                                    + ([number(row["shown"]["scores"].get(k)) for k in keys]
                                       + [row["shown"]["rank"]] if alongside else []))
                yield out.getvalue()

    def leaderboard_csv(self, slug: str, phase: Optional[int] = None, *, actor: Actor,
                        board: Optional[str] = None, now: Optional[dt.datetime] = None) -> str:
        """The leaderboard as the actor sees it, as CSV (full precision)."""
        return "".join(self.leaderboard_csv_chunks(slug, phase, actor=actor, board=board, now=now))

    def leaderboard_etag(self, slug: str, phase: Optional[int] = None, *, actor: Actor,
                         board: Optional[str] = None, now: Optional[dt.datetime] = None,
                         query: str = "") -> Optional[str]:
        """The ETag of the leaderboard answer this viewer gets for `query`, from one statement; None when
        the board was never built (the answer builds it; ask again after it).

        It changes with the board's version (every change of its rows or
        definition), the phase and board it resolves to, and who asks (an
        organizer sees more; everyone gets their own row).
        """
        try:
            with self.ctx.db.session() as s:
                at = self._locate(s, slug, phase, actor, board, now)
        except NotFound:
            return None
        if at.version is None:
            return None
        return _etag(at, actor, query)

    def leaderboard_answer(self, slug: str, phase: Optional[int] = None, *, actor: Actor,
                           board: Optional[str] = None, offset: int = 0, limit: Optional[int] = None,
                           query: str = "", if_none_match: Iterable[str] = (),
                           now: Optional[dt.datetime] = None,
                           have: Container[str] = ()) -> tuple[Optional[str], Optional[dict[str, Any]]]:
        """(ETag, page) of a leaderboard request, in one call: the page is None when the ETag is one of
        `if_none_match` (the client's copy is current; `*` matches any) or in `have` (the caller keeps the
        answer of that ETag: an ETag names one answer)."""
        tags = set(if_none_match)
        etags: list[str] = []

        def current(at: _Located) -> bool:
            etags.append(_etag(at, actor, query))
            return etags[-1] in tags or "*" in tags or etags[-1] in have

        def read(s: Session, o: _Opened) -> dict[str, Any]:
            return self._view(s, o, actor, max(0, int(offset or 0)), limit)

        data = self._with_board(slug, phase, actor, board, now, read, before=current)
        return etags[-1], data

    def best_score_history(self, slug: str, phase: Optional[int], board_key: Optional[str], actor: Actor,
                           *, now: Optional[dt.datetime] = None) -> list[dict[str, Any]]:
        """When the best score of a board improved: [{at, value, username}], oldest first.

        The score is the board's primary column when it is a plain score the
        actor may see, else the first such column; a blind phase or a hidden
        board has no history for participants.  It is kept with the board
        (`standings`), so reading it costs one row.
        """
        def read(s: Session, o: _Opened) -> list[dict[str, Any]]:
            if not o.organizer and (o.board.hidden or o.at.hide_results):
                return []
            column = o.definition.history_key[o.organizer]
            if column is None:
                return []
            if o.public and o.definition.probing.ladder:  # exact bests would undo the Ladder (`probing`)
                return []
            history = s.scalar(select(m.BoardState.history).where(
                m.BoardState.phase_id == o.phase_id, m.BoardState.leaderboard_id == o.board_id)) or {}
            points = list(history.get(column) or [])
            if o.public:
                decimals = o.definition.probing.display_precision
                points = [dict(p, value=round_to_precision(p["value"], decimals)) for p in points]
            return self.naming(o.at, actor).history(s, points)

        return self._with_board(slug, phase, actor, board_key, now, read)


_ROWS = m.BoardRow.__table__
_NO_LIMIT = 2 ** 31 - 1  # past any position (an INTEGER column)
# The statements of a request, made once (bound parameters): a request does not build or key them again.
_LOCATE = (
    select(m.Competition.id, m.Competition.created_by, m.Competition.admin_names,
           m.Phase.id, m.Phase.index, m.Phase.start, m.Phase.end, m.Phase.hide_results,
           m.Leaderboard.id, m.Leaderboard.key, m.Leaderboard.hidden, m.Leaderboard.index,
           m.BoardState.version, m.BoardState.total, m.BoardState.error, m.BoardState.definition,
           m.BoardState.digest, m.Competition.status, m.Competition.secret,
           m.Competition.anonymous_leaderboard, m.Leaderboard.anonymous,
           select(func.max(m.Profile.updated_at)).scalar_subquery())
    .join(m.Phase, m.Phase.competition_id == m.Competition.id)
    .join(m.Leaderboard, m.Leaderboard.competition_id == m.Competition.id)
    .outerjoin(m.BoardState, and_(m.BoardState.phase_id == m.Phase.id,
                                  m.BoardState.leaderboard_id == m.Leaderboard.id))
    .where(m.Competition.slug == bindparam("slug"))
)
_PAGE = (
    select(*_ROWS.c)
    .where(_ROWS.c.phase_id == bindparam("phase_id"), _ROWS.c.leaderboard_id == bindparam("board_id"),
           _ROWS.c.position > bindparam("after"), _ROWS.c.position <= bindparam("upto"))
    .order_by(_ROWS.c.position)
)
_OWN_ROW = (
    select(*_ROWS.c)
    .where(_ROWS.c.phase_id == bindparam("phase_id"), _ROWS.c.leaderboard_id == bindparam("board_id"),
           _ROWS.c.username == bindparam("username"), _ROWS.c.baseline.is_(False), _ROWS.c.team_id.is_(None))
    .order_by(_ROWS.c.position).limit(1)
)
# A member's own row is their team's.
_OWN_TEAM_ROW = (
    select(*_ROWS.c)
    .where(_ROWS.c.phase_id == bindparam("phase_id"), _ROWS.c.leaderboard_id == bindparam("board_id"),
           _ROWS.c.team_id == bindparam("team_id"))
    .order_by(_ROWS.c.position).limit(1)
)


def team_names(s: Session, ids: Optional[set[int]], competition_id: Optional[int] = None) -> dict[int, str]:
    """Teams' names by id: of `ids`, or (None) of every team of the competition."""
    q = select(m.Team.id, m.Team.name)
    if ids is not None:
        if not ids:
            return {}
        q = q.where(m.Team.id.in_(sorted(ids)))
    else:
        q = q.where(m.Team.competition_id == competition_id)
    return dict(s.execute(q).all())


def _is_own(row: dict[str, Any], username: Optional[str], team: Optional[m.Team]) -> bool:
    """Whether a row is the viewer's: their team's, or (outside a team) their own."""
    if not username or row["baseline"]:
        return False
    if team is not None:
        return row.get("team") == team.id
    return row.get("team") is None and row["submitted_by"] == username


def _etag(at: _Located, actor: Actor, query: str) -> str:
    """The ETag of an answer: the board's version, where the request landed (the phase's number and
    blindness too), who asks, what they asked, and how names are shown."""
    key = (f"{at.comp_id}:{at.slug}:{at.phase_id}:{at.number}:{int(at.hide_results)}:{at.board_id}:{at.version}:"
           f"{at.definition}:{at.digest}:{int(at.organizer)}:{actor.username or ''}:{query}:"
           f"{int(at.anonymous)}:{at.names_stamp}")
    return '"lb-' + hashlib.sha256(key.encode()).hexdigest()[:40] + '"'


def public_order(rows: Iterable[Any]) -> list[Any]:
    """Maintained rows in the order of the public board: by their shown position (`board_rows.shown`)."""
    return sorted(rows, key=lambda r: ((r.shown or {}).get("position", _NO_LIMIT), r.position))


def _row_view(r: Any, keys: list[str], names: dict[str, dict[int, str]], username: Optional[str], *,
              public: bool = False, alongside: bool = False) -> dict[str, Any]:
    """A maintained row as a viewer gets it: the columns they may see, their average rank.

    `public`: the values and ranks shown to the public (a probing-resistant
    board, `probing`) in place of the stored ones; `alongside`: the stored
    ones, with the shown ones as `shown` (organizers)."""
    shown = r.shown or {}
    scores = (shown.get("scores") or {}) if public else (r.scores or {})
    ranks = {k: ((shown.get("ranks") if public else r.ranks) or {}).get(k) for k in keys}
    row: dict[str, Any] = {"rank": shown.get("position") if public else r.position, "participant": r.username,
                           "baseline": False}
    if r.baseline:
        row.update({"baseline": True,
                    "solution": names["solutions"].get(r.solution_index, f"Solution {r.solution_index}")})
    row.update({"team": r.team_id, "submitted_by": r.username})
    if r.team_id is not None:
        row["participant"] = names["teams"].get(r.team_id, f"Team {r.team_id}")
    row.update({
        # On a probing-resistant Force_Best board, the public row stands on a submission that shows the same.
        "submission": shown.get("submission", r.submission_id) if public else r.submission_id,
        "submitted_at": (shown.get("submitted_at") if public else None) or r.submitted_at.isoformat(),
        "scores": {k: scores.get(k) for k in keys},
        "ranks": ranks,
        "average_rank": _average_rank(ranks),
        "own": bool(username) and not r.baseline and r.team_id is None and r.username == username,
    })
    if r.team_id is not None:
        row["team_id"] = r.team_id
    if alongside:
        row["shown"] = {"rank": shown.get("position"),
                        "scores": {k: (shown.get("scores") or {}).get(k) for k in keys}}
    return row
