"""Similarity signals for organizers: code and notebook submissions alike enough to review.

A sweep (`similarity_sweep`: the service's ticker every
`c.Compete.similarity_sweep_seconds`, or `compete competition similarity SLUG
--scan`) signs each code or notebook submission not signed yet
(`hub_extension.similarity`: its file read under caps, normalized, shingled
without the competition's starting kits and solutions, MinHashed) into
`similarity_signatures`, then compares the signature with every other
participant's of the competition at once (one numpy comparison against a
matrix kept per competition) and records the pairs at or above
`c.Compete.similarity_threshold` in `similarity_pairs`.  A file that cannot be
read is a signature row with its `error` (organizers see it), never a silent
skip and never retried forever.  Submissions of one participant, or of one
team, are never paired with each other.

Organizers list the pairs, read one with both normalized sources and record
their verdict (copy, independent, unsure); nothing is decided automatically.
Everyone else is told 403, or 404 when they may not see the competition.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
from sqlalchemy import and_, func, select
from sqlalchemy.exc import IntegrityError

from .. import models as m
from .. import similarity as sim
from ..errors import NotFound, PlatformError
from .actors import Actor, require_organizer
from .context import Context
from .records import get_competition

log = logging.getLogger("compete.similarity")

KINDS = ("code", "notebook")
VERDICTS = ("copy", "independent", "unsure")
# Submissions signed by one pass of the sweep (the next pass takes the rest).
SWEEP_BATCH = 100
# Pairs listed at most (the most alike; `total` says how many there are).
MAX_PAIRS = 1000
# Characters of each source a pair's view carries.
MAX_SOURCE_CHARS = 300_000


@dataclass
class _Signatures:
    """The signatures of one competition's submissions, as arrays (refreshed by id, never re-read whole)."""

    ids: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    users: list[str] = field(default_factory=list)
    teams: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # -1: no team
    matrix: np.ndarray = field(default_factory=lambda: np.zeros((0, sim.PERMUTATIONS), dtype=np.uint32))

    def keep(self, wanted: set[int]) -> None:
        mask = np.fromiter((int(i) in wanted for i in self.ids), dtype=bool, count=len(self.ids))
        self.ids, self.teams, self.matrix = self.ids[mask], self.teams[mask], self.matrix[mask]
        self.users = [u for u, k in zip(self.users, mask) if k]

    def add(self, rows: list[tuple[int, str, Optional[int], list[int]]]) -> None:
        if not rows:
            return
        self.ids = np.concatenate([self.ids, np.array([r[0] for r in rows], dtype=np.int64)])
        self.users += [r[1] for r in rows]
        self.teams = np.concatenate([self.teams, np.array([-1 if r[2] is None else r[2] for r in rows],
                                                          dtype=np.int64)])
        self.matrix = np.vstack([self.matrix, np.array([r[3] for r in rows], dtype=np.uint32)])


class Similarity:
    def __init__(self, ctx: Context, limits: sim.ReadLimits = sim.ReadLimits()):
        self.ctx = ctx
        self.limits = limits
        self._lock = threading.Lock()
        self._signatures: dict[int, _Signatures] = {}
        self._kits: dict[tuple[str, ...], tuple[set[int], list[str]]] = {}
        # What of each competition's kit could not be read, as the last sweep found it (shown to organizers).
        self._kit_problems: dict[int, list[str]] = {}

    # -- the sweep --------------------------------------------------------------------------------------
    def similarity_sweep(self, *, competition_id: Optional[int] = None, limit: int = SWEEP_BATCH) -> dict[str, int]:
        """Sign up to `limit` code and notebook submissions not signed yet and record their pairs.

        {"signed", "errors", "pairs", "pending"}: signatures made, of which
        with an error, pairs recorded, and submissions still waiting.
        """
        with self._lock:
            done = {"signed": 0, "errors": 0, "pairs": 0}
            for sid in self._unsigned(competition_id, limit):
                outcome = self._sign_one(sid)
                if outcome is None:
                    continue
                done["signed"] += 1
                done["errors"] += outcome[0]
                done["pairs"] += outcome[1]
            done["pending"] = self._pending_count(competition_id)
            return done

    def _unsigned_query(self, competition_id: Optional[int]):
        q = (select(m.Submission.id)
             .join(m.SimilaritySignature, m.SimilaritySignature.submission_id == m.Submission.id, isouter=True)
             .where(m.SimilaritySignature.submission_id.is_(None), m.Submission.kind.in_(KINDS),
                    m.Submission.file_key.is_not(None), m.Submission.baseline.is_(False),
                    # Reruns and reproductions carry their original's file: it speaks for them.
                    m.Submission.parent_id.is_(None), m.Submission.reproduces_id.is_(None)))
        if competition_id is not None:
            q = q.join(m.Participant, m.Participant.id == m.Submission.participant_id).where(
                m.Participant.competition_id == competition_id)
        return q

    def _unsigned(self, competition_id: Optional[int], limit: int) -> list[int]:
        with self.ctx.db.session() as s:
            return list(s.scalars(self._unsigned_query(competition_id).order_by(m.Submission.id).limit(limit)))

    def _pending_count(self, competition_id: Optional[int]) -> int:
        with self.ctx.db.session() as s:
            return s.scalar(select(func.count()).select_from(self._unsigned_query(competition_id).subquery())) or 0

    def _sign_one(self, sid: int) -> Optional[tuple[int, int]]:
        """(1 if the signature has an error else 0, pairs recorded); None when the submission went away."""
        with self.ctx.db.session() as s:
            row = s.execute(
                select(m.Submission.file_key, m.Submission.filename, m.Submission.team_id,
                       m.Participant.username, m.Participant.competition_id)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Submission.id == sid)).first()
        if row is None:
            return None
        file_key, filename, team_id, username, comp_id = row
        signed: Optional[sim.Signed] = None
        try:
            kit, _ = self._kit(comp_id)  # what of the kit could not be read: `kit_problems` of the listing
            data = self._read(file_key, filename)
            signed = sim.sign(data, filename, kit, self.limits)
            error = signed.error
        except sim.UnreadableSubmission as exc:
            error = str(exc)
        except Exception as exc:  # noqa: BLE001 - recorded for the organizers, the sweep goes on
            log.exception("similarity: submission %s could not be signed", sid)
            error = f"could not be read: {type(exc).__name__}: {exc}"[:4000]
        values = [] if signed is None or signed.signature is None else [int(v) for v in signed.signature]
        matches: list[tuple[int, float]] = []
        if values:
            matches = self._matches(comp_id, sid, username, team_id, np.array(values, dtype=np.uint32))
        threshold = self.ctx.config.similarity_threshold
        try:
            with self.ctx.db.session() as s:
                s.add(m.SimilaritySignature(submission_id=sid, competition_id=comp_id, username=username,
                                            tokens=signed.shingles if signed and values else 0,
                                            signature=values, error=error, computed_at=m.utcnow()))
                s.flush()
                for other, value in matches:
                    if value >= threshold:
                        first, second = sorted((sid, other))
                        s.add(m.SimilarityPair(competition_id=comp_id, first_id=first, second_id=second,
                                               similarity=round(value, 4), found_at=m.utcnow()))
        except IntegrityError:
            # Another process signed it first, or a submission of a pair was deleted meanwhile: the
            # next pass sees what is left.
            log.info("similarity: submission %s was signed elsewhere or changed meanwhile", sid)
            self._signatures.pop(comp_id, None)
            return None
        if values:
            cache = self._signatures.get(comp_id)
            if cache is not None:
                cache.add([(sid, username, team_id, values)])
        recorded = sum(1 for _, v in matches if v >= threshold)
        return (1 if error else 0), recorded

    def _read(self, key: str, filename: str) -> bytes:
        if not self.ctx.store.has_dataset(key):
            raise sim.UnreadableSubmission(f"{filename}: the submitted file is gone from the store")
        with self.ctx.store.open_dataset(key) as fh:
            data = fh.read(self.limits.max_file_bytes + 1)
        return data

    def _kit(self, comp_id: int) -> tuple[set[int], list[str]]:
        """The shingles of the competition's starting kits and solutions (kept per set of keys)."""
        with self.ctx.db.session() as s:
            keys = set(s.scalars(select(m.Phase.starting_kit_key).where(
                m.Phase.competition_id == comp_id, m.Phase.starting_kit_key.is_not(None))))
            keys |= set(s.scalars(select(m.Solution.data_key).where(m.Solution.competition_id == comp_id)))
        ident = tuple(sorted(keys))
        if ident not in self._kits:
            files = []
            problems = []
            for key in ident:
                try:
                    files.append((self._read(key, f"dataset {key[:12]}"), f"{key}.zip"))
                except sim.UnreadableSubmission as exc:
                    problems.append(str(exc))
            shingles, unreadable = sim.kit_shingles(files, self.limits)
            problems += unreadable
            if problems:
                log.warning("similarity: the starting kit of competition %s is read in part: %s", comp_id,
                            "; ".join(problems))
            self._kits[ident] = (shingles, problems)
        self._kit_problems[comp_id] = self._kits[ident][1]
        return self._kits[ident]

    def _matches(self, comp_id: int, sid: int, username: str, team_id: Optional[int],
                 values: np.ndarray) -> list[tuple[int, float]]:
        """(submission id, similarity) of every other participant's signed submission of the competition."""
        cache = self._refreshed(comp_id)
        if len(cache.ids) == 0:
            return []
        scores = sim.similarities(cache.matrix, values)
        mask = (cache.ids != sid) & (np.array(cache.users, dtype=object) != username)
        if team_id is not None:
            mask &= cache.teams != team_id
        found = np.nonzero(mask & (scores >= self.ctx.config.similarity_threshold))[0]
        return [(int(cache.ids[i]), float(scores[i])) for i in found]

    def _refreshed(self, comp_id: int) -> _Signatures:
        cache = self._signatures.setdefault(comp_id, _Signatures())
        with self.ctx.db.session() as s:
            wanted = set(s.scalars(select(m.SimilaritySignature.submission_id).where(
                m.SimilaritySignature.competition_id == comp_id, m.SimilaritySignature.tokens > 0)))
            have = set(int(i) for i in cache.ids)
            if have - wanted:
                cache.keep(wanted)
            missing = wanted - have
            if missing:
                rows = s.execute(
                    select(m.SimilaritySignature.submission_id, m.SimilaritySignature.username,
                           m.Submission.team_id, m.SimilaritySignature.signature)
                    .join(m.Submission, m.Submission.id == m.SimilaritySignature.submission_id)
                    .where(m.SimilaritySignature.competition_id == comp_id,
                           m.SimilaritySignature.submission_id.in_(sorted(missing)))).all()
                cache.add([tuple(r) for r in rows if len(r[3]) == sim.PERMUTATIONS])
        return cache

    # -- organizers -------------------------------------------------------------------------------------
    def scan_similarity(self, slug: str, actor: Actor) -> dict[str, int]:
        """Sign every submission of the competition not signed yet, now (organizers)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            comp_id = comp.id
        total = {"signed": 0, "errors": 0, "pairs": 0, "pending": 0}
        while True:
            done = self.similarity_sweep(competition_id=comp_id)
            for key in ("signed", "errors", "pairs"):
                total[key] += done[key]
            total["pending"] = done["pending"]
            if done["signed"] == 0 or done["pending"] == 0:
                return total

    def similarity_pairs(self, slug: str, actor: Actor, minimum: Optional[float] = None) -> dict[str, Any]:
        """The competition's pairs at or above `minimum` (default: the threshold), the `MAX_PAIRS` most alike
        first (`total`: how many); what could not be signed; how many are signed and waiting (organizers)."""
        threshold = self.ctx.config.similarity_threshold
        if minimum is not None and not 0.0 <= minimum <= 1.0:
            raise PlatformError(f"min must be between 0 and 1, got {minimum}")
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            where = (m.SimilarityPair.competition_id == comp.id,
                     m.SimilarityPair.similarity >= (threshold if minimum is None else minimum))
            total = s.scalar(select(func.count()).select_from(m.SimilarityPair).where(*where)) or 0
            pairs = s.scalars(select(m.SimilarityPair).where(*where)
                              .order_by(m.SimilarityPair.similarity.desc(), m.SimilarityPair.id)
                              .limit(MAX_PAIRS)).all()
            sides = self._sides(s, {i for p in pairs for i in (p.first_id, p.second_id)})
            errors = s.execute(
                select(m.SimilaritySignature.submission_id, m.SimilaritySignature.username,
                       m.SimilaritySignature.error, m.SimilaritySignature.tokens, m.Submission.filename)
                .join(m.Submission, m.Submission.id == m.SimilaritySignature.submission_id)
                .where(m.SimilaritySignature.competition_id == comp.id, m.SimilaritySignature.error.is_not(None))
                .order_by(m.SimilaritySignature.submission_id)).all()
            signed = s.scalar(select(func.count()).select_from(m.SimilaritySignature).where(
                m.SimilaritySignature.competition_id == comp.id)) or 0
            comp_id, title = comp.id, comp.title
        return {
            "competition": slug, "title": title, "threshold": threshold,
            "min": threshold if minimum is None else minimum,
            "signed": signed, "pending": self._pending_count(comp_id),
            "pairs": [self._pair_view(p, sides) for p in pairs], "total": total,
            "errors": [{"submission_id": e[0], "username": e[1], "error": e[2], "compared": e[3] > 0,
                        "filename": e[4]} for e in errors],
            "kit_problems": list(self._kit_problems.get(comp_id, [])),
        }

    def similarity_pair(self, slug: str, pair_id: int, actor: Actor) -> dict[str, Any]:
        """One pair with both submissions' sources, as read and normalized, for a diff (organizers)."""
        with self.ctx.db.session() as s:
            comp, pair = self._pair(s, slug, pair_id, actor)
            sides = self._sides(s, {pair.first_id, pair.second_id})
            view = self._pair_view(pair, sides)
            files = {sid: s.execute(select(m.Submission.file_key, m.Submission.filename)
                                    .where(m.Submission.id == sid)).first() for sid in (pair.first_id, pair.second_id)}
        for side in ("first", "second"):
            key, filename = files[view[side]["submission_id"]]
            try:
                text, normalized = sim.normalized_text(self._read(key, filename), filename, self.limits)
            except sim.UnreadableSubmission as exc:
                text = normalized = f"# {exc}\n"
            view[side]["source"] = text[:MAX_SOURCE_CHARS]
            view[side]["normalized"] = normalized[:MAX_SOURCE_CHARS]
        return view

    def set_similarity_verdict(self, slug: str, pair_id: int, verdict: Optional[str], actor: Actor) -> dict[str, Any]:
        """Record the organizers' verdict on a pair (copy, independent, unsure; None clears it)."""
        if verdict is not None and verdict not in VERDICTS:
            raise PlatformError(f"verdict must be one of {', '.join(VERDICTS)} or null, got {verdict!r}")
        with self.ctx.db.session() as s:
            comp, pair = self._pair(s, slug, pair_id, actor)
            pair.verdict = verdict
            pair.reviewed_by = actor.username if verdict is not None else None
            s.flush()
            return self._pair_view(pair, self._sides(s, {pair.first_id, pair.second_id}))

    # -- views ------------------------------------------------------------------------------------------
    @staticmethod
    def _pair(s, slug: str, pair_id: int, actor: Actor) -> tuple[m.Competition, m.SimilarityPair]:
        comp = get_competition(s, slug)
        require_organizer(actor, comp)
        pair = s.get(m.SimilarityPair, pair_id)
        if pair is None or pair.competition_id != comp.id:
            raise NotFound(f"no similarity pair {pair_id} in {slug!r}")
        return comp, pair

    @staticmethod
    def _sides(s, ids: set[int]) -> dict[int, dict[str, Any]]:
        if not ids:
            return {}
        rows = s.execute(
            select(m.Submission.id, m.Participant.username, m.Submission.filename, m.Submission.kind,
                   m.Submission.submitted_at, m.Phase.name, m.Submission.team_id)
            .join(m.Participant, m.Participant.id == m.Submission.participant_id)
            .join(m.Phase, and_(m.Phase.id == m.Submission.phase_id))
            .where(m.Submission.id.in_(sorted(ids)))).all()
        return {r[0]: {"submission_id": r[0], "username": r[1], "filename": r[2], "kind": r[3],
                       "submitted_at": r[4], "phase": r[5], "team_id": r[6]} for r in rows}

    @staticmethod
    def _pair_view(pair: m.SimilarityPair, sides: dict[int, dict[str, Any]]) -> dict[str, Any]:
        return {"id": pair.id, "similarity": pair.similarity, "verdict": pair.verdict,
                "reviewed_by": pair.reviewed_by, "found_at": pair.found_at,
                "first": dict(sides.get(pair.first_id, {"submission_id": pair.first_id})),
                "second": dict(sides.get(pair.second_id, {"submission_id": pair.second_id}))}
