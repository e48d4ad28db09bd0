"""The application layer: every use case of the platform, in one place.

Web handlers, the `compete` CLI and the JupyterLab widgets are thin adapters
over `Platform`.  Business rules (registration, submission limits, which
phase is open, who sees what on a leaderboard) live here and nowhere else.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Iterable, Optional

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session, selectinload

from . import models as m
from .bundles.model import TASK_DATA_KINDS, BundleError, CompetitionSpec, Problem
from .config import Compete
from .convert import competition_from_spec, dataset_keys, spec_from_competition
from .db import Database
from .storage import LocalStore


DEFAULT_QUEUE = "default"


class PlatformError(Exception):
    """A request the platform refuses; the message says what to do instead."""

    status = 400
    code = "bad_request"


class NotFound(PlatformError):
    status = 404
    code = "not_found"


class Forbidden(PlatformError):
    status = 403
    code = "forbidden"


class LimitReached(PlatformError):
    status = 429
    code = "submission_limit"


@dataclasses.dataclass(frozen=True)
class Actor:
    """Who is asking.  The CLI acts as a local admin."""

    username: Optional[str]
    is_admin: bool = False
    groups: frozenset[str] = frozenset()
    # False when the request's token lacks the scopes of organizer powers (a
    # down-scoped token): the person then acts as a participant everywhere,
    # even in the competitions they created or that name them.
    organizer_powers: bool = True

    @property
    def is_anonymous(self) -> bool:
        return self.username is None


LOCAL_ADMIN = Actor("admin", is_admin=True)
# The largest offset of a page of rows (a database integer holds it on every backend).
MAX_OFFSET = 2**31 - 1
ORGANIZERS_GROUP = "organizers"


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:80] or "competition"


def _utc_day_start(now: dt.datetime) -> dt.datetime:
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


class Platform:
    """One platform instance: a database, an artifact store and the configuration."""

    def __init__(self, config: Optional[Compete] = None, *, home: Optional[str] = None, db_url: Optional[str] = None):
        self.config = config or Compete()
        if home:
            self.config.home = str(home)
        if db_url:
            self.config.db_url = db_url
        Path(self.config.home).mkdir(parents=True, exist_ok=True)
        self.db = Database(self.config.resolved_db_url())
        self.store = LocalStore(self.config.resolved_storage())

    def close(self) -> None:
        self.db.dispose()

    # -- bundles ----------------------------------------------------------------
    def unpack_limits(self):
        from .bundles import UnpackLimits

        c = self.config
        return UnpackLimits(
            max_members=c.unpack_max_members,
            max_total_bytes=c.unpack_max_total_bytes,
            max_file_bytes=c.unpack_max_file_bytes,
            max_ratio=c.unpack_max_ratio,
        )

    def _dataset_exists(self, key: str) -> bool:
        if not self.store.has_dataset(key):
            return False
        with self.db.session() as s:
            return s.get(m.Dataset, key) is not None

    def validate_bundle(self, path: str | Path) -> tuple[CompetitionSpec, list[str]]:
        """Read a bundle without storing anything; raises BundleError with every problem."""
        from .bundles import load_bundle

        with load_bundle(path, limits=self.unpack_limits(), dataset_exists=self._dataset_exists) as bundle:
            return bundle.spec, list(bundle.warnings)

    def create_competition(self, path: str | Path, actor: Actor = LOCAL_ADMIN) -> tuple[str, list[str]]:
        """Create a competition from a bundle; returns (slug, warnings).

        All or nothing: a bundle with any problem creates no row (datasets are
        content-addressed, so bytes stored before a failed insert are shared,
        never half a competition).
        """
        from .bundles import load_bundle, store_bundle_data

        self.require_organizer_role(actor)
        with load_bundle(path, limits=self.unpack_limits(), dataset_exists=self._dataset_exists) as bundle:
            stored = store_bundle_data(bundle, self.store)
            warnings = list(bundle.warnings)
        slug = self._insert_competition(stored, actor)
        existing = self._queue_names()
        named = [stored.queue] + [p.queue for p in stored.phases]
        for queue in dict.fromkeys(q for q in named if q and q not in existing):
            warnings.append(
                f"competition.yaml: queue: no queue {queue!r} here, so its runs go to the default queue until an "
                f"organizer creates it (compete queue create {queue} --competition {slug})"
            )
        return slug, warnings

    def _insert_competition(self, spec: CompetitionSpec, actor: Actor) -> str:
        with self.db.session() as s:
            for key, kind in dataset_keys(spec).items():
                if s.get(m.Dataset, key) is None:
                    s.add(m.Dataset(key=key, kind=kind, size=self.store.dataset_size(key), created_by=actor.username))
            base = slugify(spec.title)
            taken = set(s.scalars(select(m.Competition.slug).where(m.Competition.slug.like(f"{base}%"))))
            slug, n = base, 2
            while slug in taken:
                slug, n = f"{base}-{n}", n + 1
            comp = competition_from_spec(spec, slug, actor.username)
            s.add(comp)
        return slug

    def competition_spec(self, slug: str) -> CompetitionSpec:
        with self.db.session() as s:
            return spec_from_competition(self._competition(s, slug, full=True))

    def export_competition(self, slug: str, out: str | Path, *, light: bool = False, actor: Actor = LOCAL_ADMIN) -> Path:
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            self._require_organizer(actor, comp)
            spec = spec_from_competition(comp)
        from .bundles import export_bundle

        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        export_bundle(spec, self.store, out, light=light)
        return out

    # -- competitions -------------------------------------------------------------
    def list_competitions(self, now: Optional[dt.datetime] = None, search: Optional[str] = None,
                          status: Optional[str] = None) -> list[dict[str, Any]]:
        """Every competition (public), filtered by words in the title or description and by status."""
        now = now or m.utcnow()
        if status is not None and status not in COMPETITION_STATUSES:
            raise PlatformError(f"unknown status {status!r}; one of {', '.join(COMPETITION_STATUSES)}")
        words = (search or "").lower().split()
        with self.db.session() as s:
            comps = s.scalars(
                select(m.Competition).options(selectinload(m.Competition.phases)).order_by(m.Competition.id)
            ).all()
            found = []
            for c in comps:
                haystack = f"{c.slug} {c.title} {c.description or ''}".lower()
                state = competition_status(c.phases, now)
                if any(w not in haystack for w in words) or (status is not None and state != status):
                    continue
                found.append({
                    "slug": c.slug,
                    "title": c.title,
                    "dialect": c.dialect,
                    "status": state,
                    "phases": len(c.phases),
                    "created_at": c.created_at.isoformat(),
                    "logo": c.logo_key is not None,
                })
            return found

    def _competition(self, s: Session, slug: str, *, full: bool = False) -> m.Competition:
        q = select(m.Competition).where(m.Competition.slug == slug)
        if full:
            q = q.options(
                selectinload(m.Competition.pages),
                selectinload(m.Competition.tasks),
                selectinload(m.Competition.phases),
                selectinload(m.Competition.leaderboards).selectinload(m.Leaderboard.columns),
            )
        comp = s.scalars(q).first()
        if comp is None:
            raise NotFound(f"no competition {slug!r}; `compete competition list` shows the slugs")
        return comp

    @staticmethod
    def _phase(comp: m.Competition, number: Optional[int], now: Optional[dt.datetime] = None) -> m.Phase:
        """Phase by its 1-based number in the phase order, else the current one."""
        phases = sorted(comp.phases, key=lambda p: (p.index, p.id))
        if not phases:
            raise NotFound(f"competition {comp.slug!r} has no phases")
        if number is not None:
            if not 1 <= number <= len(phases):
                raise NotFound(f"competition {comp.slug!r} has phases 1 to {len(phases)}, not {number}")
            return phases[number - 1]
        return current_phase(phases, now or m.utcnow())

    @staticmethod
    def phase_number(comp: m.Competition, phase: m.Phase) -> int:
        phases = sorted(comp.phases, key=lambda p: (p.index, p.id))
        return phases.index(phase) + 1

    # -- roles -----------------------------------------------------------------------
    def is_organizer(self, actor: Actor, comp: m.Competition) -> bool:
        if actor.is_admin:
            return True
        if actor.username is None or not actor.organizer_powers:
            return False
        # The hub group `organizers` may create competitions; each competition is
        # then run by its creator and the organizers its bundle or owner names.
        return actor.username == comp.created_by or actor.username in (comp.admin_names or [])

    def _require_organizer(self, actor: Actor, comp: m.Competition) -> None:
        if not self.is_organizer(actor, comp):
            raise Forbidden(f"only the organizers of {comp.slug!r} may do this")

    @staticmethod
    def may_create_competitions(actor: Actor) -> bool:
        """Hub admins and the hub group `organizers` create competitions (and queues)."""
        return actor.is_admin or (actor.organizer_powers and ORGANIZERS_GROUP in actor.groups)

    def require_organizer_role(self, actor: Actor) -> None:
        if not self.may_create_competitions(actor):
            raise Forbidden("only members of the hub group 'organizers' may create competitions")

    def organized_competitions(self, actor: Actor) -> list[dict[str, str]]:
        """`{"slug", "title"}` of the competitions the actor organizes, by title."""
        if actor.is_anonymous:
            return []
        with self.db.session() as s:
            comps = s.scalars(select(m.Competition).order_by(m.Competition.title))
            return [{"slug": c.slug, "title": c.title} for c in comps if self.is_organizer(actor, c)]

    # -- participants ------------------------------------------------------------------
    def register(self, slug: str, username: str, actor: Optional[Actor] = None, *, accept_terms: bool = False) -> str:
        """Register `username`; returns the registration status (approved or pending).

        A user registers themselves, accepting the competition's terms when it
        has any; an organizer or admin may register anyone, which approves them
        at once.
        """
        actor = actor or Actor(username)
        with self.db.session() as s:
            comp = self._competition(s, slug)
            by_organizer = self.is_organizer(actor, comp)
            if actor.username != username and not by_organizer:
                raise Forbidden("you can register only yourself")
            part = _participant(s, comp, username)
            approve = by_organizer or comp.registration_auto_approve
            if part is None and (comp.terms or "").strip() and not by_organizer and not accept_terms:
                raise PlatformError(f"accept the terms and conditions of {slug!r} to register (accept_terms)")
            if part is None:
                part = m.Participant(
                    competition_id=comp.id, username=username, status=m.APPROVED if approve else m.PENDING
                )
                s.add(part)
            elif part.status in (m.DENIED, m.REMOVED) and not by_organizer:
                raise Forbidden(f"your registration to {slug!r} was {part.status}; contact the organizers")
            elif by_organizer:
                part.status = m.APPROVED
            return part.status

    def set_registration(self, slug: str, username: str, status: str, actor: Actor = LOCAL_ADMIN) -> None:
        if status not in (m.APPROVED, m.DENIED, m.REMOVED, m.PENDING):
            raise PlatformError(f"unknown registration status {status!r}")
        with self.db.session() as s:
            comp = self._competition(s, slug)
            self._require_organizer(actor, comp)
            part = _participant(s, comp, username)
            if part is None:
                raise NotFound(f"{username!r} is not registered in {slug!r}")
            part.status = status

    # -- submissions ---------------------------------------------------------------------
    def submit(
        self,
        slug: str,
        path: str | Path,
        *,
        username: str,
        phase: Optional[int] = None,
        actor: Optional[Actor] = None,
        now: Optional[dt.datetime] = None,
        description: str = "",
    ) -> int:
        """Record a submission of `path` (zip, folder or .ipynb); returns its id.

        Checks the phase is open, the participant approved and the limits, then
        inserts, in one transaction that holds the participant's row lock.
        """
        actor = actor or Actor(username)
        now = now or m.utcnow()
        path = Path(path)
        if not path.exists():
            raise PlatformError(f"{path.name}: no such file or folder")
        kind = submission_kind(path)
        self._check_submission_zip(path)
        file_key = self._store_submission_file(path)
        with self.db.session() as s:
            comp = self._competition(s, slug)
            if actor.username != username and not self.is_organizer(actor, comp):
                raise Forbidden("you can submit only as yourself")
            ph = self._phase(comp, phase, now)
            part = _participant(s, comp, username)
            if part is None:
                raise Forbidden(f"{username!r} is not registered in {slug!r}; register first")
            if part.status != m.APPROVED:
                raise Forbidden(f"{username!r} cannot submit to {slug!r}: registration is {part.status}")
            if ph.start and now < ph.start:
                raise PlatformError(f"phase {ph.name!r} opens at {ph.start:%Y-%m-%d %H:%M} UTC")
            if ph.end and now >= ph.end:
                raise PlatformError(f"phase {ph.name!r} closed at {ph.end:%Y-%m-%d %H:%M} UTC")
            if kind == "results" and not ph.results_only and _phase_has_ingestion(comp, ph):
                # With an ingestion program, a zip is the participant's code, as
                # on CodaLab and Codabench (no `metadata` needed).
                kind = "code"
            if ph.results_only and kind != "results":
                raise PlatformError(f"phase {ph.name!r} accepts predictions only, not {kind} submissions")
            # The row lock: concurrent submissions of one participant queue up here.
            s.execute(
                update(m.Participant)
                .where(m.Participant.id == part.id)
                .values(submission_seq=m.Participant.submission_seq + 1)
            )
            self._check_limits(s, comp, ph, part, now)
            sub = m.Submission(
                phase_id=ph.id,
                participant_id=part.id,
                kind=kind,
                filename=path.name,
                file_key=file_key,
                status=m.SUBMITTED,
                submitted_at=now,
                status_changed_at=now,
                description=description,
            )
            s.add(sub)
            s.flush()
            s.add(m.StatusChange(submission_id=sub.id, status=m.SUBMITTED, at=now))
            return sub.id

    def _counted_statuses(self, comp: m.Competition) -> tuple[str, ...]:
        """Statuses that do not use up a submission (failed never do; cancelled do in Codabench)."""
        return (m.FAILED,) if comp.dialect == "codabench" else (m.FAILED, m.CANCELLED)

    def _used_query(self, comp: m.Competition, ph: m.Phase, participant_id: int):
        """Count of the submissions that use up the participant's allowance in the phase."""
        return select(func.count(m.Submission.id)).where(
            m.Submission.phase_id == ph.id,
            m.Submission.participant_id == participant_id,
            m.Submission.status.not_in(self._counted_statuses(comp)),
            m.Submission.parent_id.is_(None),
        )

    def _check_limits(self, s: Session, comp: m.Competition, ph: m.Phase, part: m.Participant, now: dt.datetime) -> None:
        base = self._used_query(comp, ph, part.id)
        if ph.max_submissions is not None:
            total = s.scalar(base)
            if total >= ph.max_submissions:
                raise LimitReached(
                    f"you have used all {ph.max_submissions} submissions of phase {ph.name!r}"
                )
        if ph.max_submissions_per_day is not None:
            if ph.max_submissions_per_day == 0:
                raise LimitReached(f"phase {ph.name!r} accepts no submissions (0 per day)")
            today = s.scalar(base.where(m.Submission.submitted_at >= _utc_day_start(now)))
            if today >= ph.max_submissions_per_day:
                raise LimitReached(
                    f"you have used all {ph.max_submissions_per_day} submissions of today (UTC) in phase "
                    f"{ph.name!r}; try again after 00:00 UTC"
                )

    def submissions_left(self, slug: str, username: str, phase: Optional[int] = None, now: Optional[dt.datetime] = None) -> dict[str, Optional[int]]:
        now = now or m.utcnow()
        with self.db.session() as s:
            comp = self._competition(s, slug)
            ph = self._phase(comp, phase, now)
            part = _participant(s, comp, username)
            used_total = used_today = 0
            if part is not None:
                base = self._used_query(comp, ph, part.id)
                used_total = s.scalar(base)
                used_today = s.scalar(base.where(m.Submission.submitted_at >= _utc_day_start(now)))
            total = None if ph.max_submissions is None else max(ph.max_submissions - used_total, 0)
            today = None if ph.max_submissions_per_day is None else max(ph.max_submissions_per_day - used_today, 0)
            if total is not None and today is not None:
                today = min(today, total)
            return {"total": total, "today": today}

    def _check_submission_zip(self, path: Path) -> None:
        """Refuse a submission zip that breaks the unpack caps of bundles, before anything is stored.

        Reads the zip's central directory only (member count, sizes, ratios,
        paths, links): a small zip that would expand to gigabytes is refused at
        once.  The sizes it declares may lie, so the worker checks again while
        it unpacks.
        """
        from .bundles.unpack import check_zip_file

        if path.is_dir() or not zipfile.is_zipfile(path):
            return
        problems = check_zip_file(path, path.name, self.unpack_limits())
        if problems:
            lines = "; ".join(f"{p.key} {p.message}" if p.key != "(archive)" else f"it {p.message}"
                              for p in problems[:5])
            more = f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""
            raise PlatformError(
                f"the submission zip cannot be accepted: {lines}{more}. Nothing was stored; rebuild the zip "
                f"within the limits (at most {self.config.unpack_max_members} files, "
                f"{self.config.unpack_max_total_bytes} bytes unpacked in all, {self.config.unpack_max_file_bytes} "
                f"bytes per file, compression ratio up to {self.config.unpack_max_ratio:.0f}:1)"
            )

    def _store_submission_file(self, path: Path) -> str:
        if path.is_dir():
            with tempfile.TemporaryDirectory() as tmp:
                archive = Path(tmp) / "submission.zip"
                zip_folder(path, archive)
                return self.store.put_dataset_file(archive)
        if path.stat().st_size > self.config.max_upload_bytes:
            raise PlatformError(
                f"{path.name} is {path.stat().st_size} bytes; the largest accepted is {self.config.max_upload_bytes}"
            )
        return self.store.put_dataset_file(path)

    def set_status(self, submission_id: int, status: str, *, note: Optional[str] = None, error: Optional[str] = None,
                   key: Optional[str] = None, worker: Optional[str] = None, queue: Optional[str] = None) -> bool:
        """Move a submission to `status`; False (and no write) if it is already terminal.

        With `key` (a worker's report), only the current attempt may move it, and
        with `queue` only a report coming from the queue it was sent to.
        """
        if status not in m.STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = m.utcnow()
        values: dict[str, Any] = {"status": status, "status_changed_at": now}
        if status == m.RUNNING:
            values["started_at"] = func.coalesce(m.Submission.started_at, now)
        if status in m.TERMINAL_STATUSES:
            values["finished_at"] = now
        if error is not None:
            values["error"] = error
        extra = []
        if worker is not None:
            values["worker"] = worker[:300]
            # The same report twice (a worker's event seen again) changes nothing.
            extra.append(or_(m.Submission.status != status, m.Submission.worker.is_(None),
                             m.Submission.worker != values["worker"]))
        with self.db.session() as s:
            if not self._transition(s, submission_id, values, key=key, queue=queue, extra=extra):
                return False
            s.add(m.StatusChange(submission_id=submission_id, status=status, at=now, note=note))
            return True

    @staticmethod
    def _transition(s: Session, submission_id: int, values: dict[str, Any], *, key: Optional[str] = None,
                    queue: Optional[str] = None, extra: Iterable[Any] = ()) -> bool:
        """Move a non-terminal submission in one conditional UPDATE; False if it was not movable.

        Deciding and writing in one statement is what keeps concurrent reports
        (a worker's event, a scheduler's failure, a cancel) from both winning:
        the database serializes the UPDATEs and only the first finds the
        submission still open.  Raises NotFound for an unknown submission.
        """
        conditions = [m.Submission.id == submission_id, m.Submission.status.not_in(m.TERMINAL_STATUSES), *extra]
        if key is not None:
            conditions.append(m.Submission.dispatch_key == key)
        if queue is not None:
            conditions.append(m.Submission.queue == queue)
        moved = s.execute(update(m.Submission).where(*conditions).values(**values)).rowcount
        if not moved and s.get(m.Submission, submission_id) is None:
            raise NotFound(f"no submission {submission_id}")
        return bool(moved)

    def record_scores(self, submission_id: int, scores: dict[str, float]) -> None:
        """Store a finished submission's scores (replacing any earlier ones) and finish it."""
        now = m.utcnow()
        with self.db.session() as s:
            if not self._transition(s, submission_id, {"status": m.FINISHED, "status_changed_at": now,
                                                       "finished_at": now}):
                return
            sub = s.get(m.Submission, submission_id)
            sub.scores = [
                m.Score(key=k, value=None if v != v else float(v)) for k, v in sorted(scores.items())
            ]
            s.add(m.StatusChange(submission_id=sub.id, status=m.FINISHED, at=now))

    def select_for_leaderboard(self, submission_id: int, actor: Actor) -> None:
        """The participant's manual choice (rule Add): show this submission on the board."""
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            part = s.get(m.Participant, sub.participant_id)
            comp = s.get(m.Competition, part.competition_id)
            if actor.username != part.username and not self.is_organizer(actor, comp):
                raise Forbidden("you can choose only your own submissions")
            for other in s.scalars(
                select(m.Submission).where(
                    m.Submission.participant_id == part.id, m.Submission.phase_id == sub.phase_id
                )
            ):
                other.selected = other.id == sub.id

    def submissions_of(self, slug: str, username: str) -> list[dict[str, Any]]:
        """A participant's submissions in a competition, oldest first."""
        with self.db.session() as s:
            comp = self._competition(s, slug)
            ids = s.scalars(
                select(m.Submission.id)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id, m.Participant.username == username)
                .order_by(m.Submission.id)
            ).all()
        return [self.submission(sid) for sid in ids]

    def submission(self, submission_id: int) -> dict[str, Any]:
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            part = s.get(m.Participant, sub.participant_id)
            ph = s.get(m.Phase, sub.phase_id)
            comp = s.get(m.Competition, part.competition_id)
            elapsed = None
            if sub.finished_at is not None:
                elapsed = (sub.finished_at - sub.submitted_at).total_seconds()
            queue = sub.queue or self.queue_of(comp, ph)
            return {
                "id": sub.id,
                "competition": comp.slug,
                "phase": self.phase_number(comp, ph),
                "participant": part.username,
                "kind": sub.kind,
                "filename": sub.filename,
                "status": sub.status,
                "submitted_at": sub.submitted_at.isoformat(),
                "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
                "elapsed": elapsed,
                "error": sub.error,
                "selected": sub.selected,
                "scores": {sc.key: sc.value for sc in sub.scores},
                "artifacts": dict(sub.artifacts or {}),
                "warnings": list(sub.warnings or []),
                "dropped": list(sub.dropped or []),
                "history": [{"status": h.status, "at": h.at.isoformat(), "note": h.note} for h in sub.history],
                "queue": queue,
                "worker": sub.worker,
                "waiting": self._waiting(s, sub, queue),
            }

    def _waiting(self, s: Session, sub: m.Submission, queue: str) -> Optional[dict[str, Any]]:
        """Where a Submitted submission stands: its position and whether any worker can take it."""
        if sub.status != m.SUBMITTED:
            return None
        position = self.queue_positions(queue).get(sub.id)
        state = s.get(m.QueueState, queue)
        workers = list(state.workers or []) if state is not None else []
        if state is None:
            note = f"waiting on queue {queue!r} for the dispatcher"
        elif not state.connected:
            note = f"queue {queue!r} is not reachable: {state.note or 'its scheduler is down'}"
        elif not workers:
            note = f"no worker is attached to queue {queue!r}"
        else:
            note = f"waiting for a free worker of queue {queue!r} ({len(workers)} attached)"
        return {"position": position, "queue": queue, "workers": len(workers), "note": note}

    # -- execution -------------------------------------------------------------------------
    def claim(self, submission_id: int, queue: str, key: str) -> bool:
        """Atomically mark a waiting submission as sent to `queue` under Dask key `key`.

        It stays Submitted (waiting, with a position in the queue) until a
        worker reports Preparing; False if it is not waiting or already sent.
        """
        now = m.utcnow()
        with self.db.session() as s:
            claimed = s.execute(
                update(m.Submission)
                .where(m.Submission.id == submission_id, m.Submission.status == m.SUBMITTED,
                       m.Submission.dispatch_key.is_(None))
                .values(dispatch_key=key, queue=queue, dispatched_at=now,
                        dispatch_count=m.Submission.dispatch_count + 1)
            ).rowcount
            return bool(claimed)

    def release(self, submission_id: int, key: str, note: str) -> bool:
        """Put a sent submission back to waiting (its run was lost); False if `key` is not current."""
        now = m.utcnow()
        with self.db.session() as s:
            released = s.execute(
                update(m.Submission)
                .where(m.Submission.id == submission_id, m.Submission.dispatch_key == key,
                       m.Submission.status.not_in(m.TERMINAL_STATUSES))
                .values(dispatch_key=None, status=m.SUBMITTED, status_changed_at=now, worker=None)
            ).rowcount
            if released:
                s.add(m.StatusChange(submission_id=submission_id, status=m.SUBMITTED, at=now, note=note[:500]))
            return bool(released)

    def queue_of(self, comp: m.Competition, phase: m.Phase) -> str:
        """The queue a phase runs on: the phase's, else the competition's, else the default.

        A queue named by a bundle but not created here (a Codabench queue id, say)
        runs on the default queue; creating a queue of that name moves the
        competition's new runs to it.
        """
        return self._resolve_queue(self._queue_names(), phase.queue, comp.queue)

    def _queue_names(self) -> set[str]:
        with self.db.session() as s:
            return set(s.scalars(select(m.Queue.name)))

    @staticmethod
    def _resolve_queue(existing: set[str], *named: Optional[str]) -> str:
        for name in named:
            if name:
                return name if name in existing else DEFAULT_QUEUE
        return DEFAULT_QUEUE

    def pending_submissions(self, queue: Optional[str] = None) -> list[int]:
        """Waiting submissions not yet sent, oldest first (of one queue when given)."""
        with self.db.session() as s:
            rows = s.execute(
                select(m.Submission.id, m.Phase.queue, m.Competition.queue)
                .join(m.Phase, m.Submission.phase_id == m.Phase.id)
                .join(m.Competition, m.Phase.competition_id == m.Competition.id)
                .where(m.Submission.status == m.SUBMITTED, m.Submission.dispatch_key.is_(None))
                .order_by(m.Submission.id)
            ).all()
        existing = self._queue_names()
        return [sid for sid, pq, cq in rows if queue is None or self._resolve_queue(existing, pq, cq) == queue]

    def dispatched_submissions(self, queue: str) -> list[dict[str, Any]]:
        """Non-terminal submissions sent to `queue`: what the dispatcher must follow."""
        with self.db.session() as s:
            rows = s.execute(
                select(m.Submission.id, m.Submission.dispatch_key, m.Submission.status,
                       m.Submission.dispatched_at, m.Submission.dispatch_count)
                .where(m.Submission.queue == queue, m.Submission.dispatch_key.is_not(None),
                       m.Submission.status.not_in(m.TERMINAL_STATUSES))
                .order_by(m.Submission.id)
            ).all()
        return [{"id": r[0], "key": r[1], "status": r[2], "dispatched_at": r[3], "dispatch_count": r[4]}
                for r in rows]

    def job_queue(self, submission_id: int) -> str:
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            ph = s.get(m.Phase, sub.phase_id)
            return self.queue_of(s.get(m.Competition, ph.competition_id), ph)

    def queues_in_use(self) -> set[str]:
        """Queues that unfinished submissions wait on or run on."""
        with self.db.session() as s:
            rows = s.execute(
                select(m.Submission.queue, m.Phase.queue, m.Competition.queue)
                .join(m.Phase, m.Submission.phase_id == m.Phase.id)
                .join(m.Competition, m.Phase.competition_id == m.Competition.id)
                .where(m.Submission.status.not_in(m.TERMINAL_STATUSES))
                .distinct()
            ).all()
        existing = self._queue_names()
        return {sq or self._resolve_queue(existing, pq, cq) for sq, pq, cq in rows}

    def submission_status(self, submission_id: int) -> Optional[str]:
        with self.db.session() as s:
            return s.scalar(select(m.Submission.status).where(m.Submission.id == submission_id))

    def dispatch_key(self, submission_id: int) -> Optional[str]:
        with self.db.session() as s:
            return s.scalar(select(m.Submission.dispatch_key).where(m.Submission.id == submission_id))

    def job_datasets(self, job: dict[str, Any]) -> dict[str, bytes]:
        """The stored archives a job needs, as bytes, for a queue that does not share the store."""
        keys = [job["submission"]]
        for task in job["tasks"]:
            on_worker = task.get("worker_data") or {}
            for kind in TASK_DATA_KINDS:
                if task.get(kind) and kind not in on_worker:
                    keys.append(task[kind])
        data: dict[str, bytes] = {}
        total = 0
        for key in dict.fromkeys(keys):
            path = self.store.dataset_path(key)
            total += path.stat().st_size
            if total > self.config.queue_inline_data_max_bytes:
                raise PlatformError(
                    f"the data of this run is over {self.config.queue_inline_data_max_bytes} bytes, too much to send "
                    "with each run: keep large data on the queue's workers (a task's worker_data) or raise "
                    "c.Compete.queue_inline_data_max_bytes"
                )
            data[key] = path.read_bytes()
        return data

    def queue_positions(self, queue: str) -> dict[int, int]:
        """Position (1 = next) of every submission of `queue` that waits for a worker."""
        with self.db.session() as s:
            rows = s.execute(
                select(m.Submission.id, m.Submission.queue, m.Phase.queue, m.Competition.queue)
                .join(m.Phase, m.Submission.phase_id == m.Phase.id)
                .join(m.Competition, m.Phase.competition_id == m.Competition.id)
                .where(m.Submission.status == m.SUBMITTED)
                .order_by(m.Submission.submitted_at, m.Submission.id)
            ).all()
        existing = self._queue_names()
        waiting = [sid for sid, sq, pq, cq in rows if (sq or self._resolve_queue(existing, pq, cq)) == queue]
        return {sid: i + 1 for i, sid in enumerate(waiting)}

    def job_for(self, submission_id: int) -> dict[str, Any]:
        """The self-contained, JSON-able job a worker needs to run a submission."""
        c = self.config
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            ph = s.get(m.Phase, sub.phase_id)
            comp = s.get(m.Competition, ph.competition_id)
            tasks = {t.index: t for t in comp.tasks}
            job_tasks = []
            for index in ph.task_indexes or sorted(tasks):
                t = tasks[index]
                job_tasks.append(
                    {
                        "index": t.index,
                        "name": t.name,
                        "scoring_program": t.scoring_program_key,
                        "ingestion_program": t.ingestion_program_key,
                        "reference_data": t.reference_data_key,
                        "input_data": t.input_data_key,
                        "ingestion_only_during_scoring": t.ingestion_only_during_scoring,
                        "scoring_image": t.scoring_docker_image or comp.docker_image,
                        "ingestion_image": t.ingestion_docker_image or comp.docker_image,
                        "worker_data": dict(t.worker_data or {}),
                    }
                )
            return {
                "submission_id": sub.id,
                "queue": self.queue_of(comp, ph),
                "kind": sub.kind,
                "filename": sub.filename,
                "submission": sub.file_key,
                "store_root": str(self.store.root.resolve()),
                "tasks": job_tasks,
                "executor": c.executor,
                "default_image": c.default_image,
                "image_aliases": dict(c.image_aliases),
                "limits": {
                    "time_limit": ph.execution_time_limit,
                    "memory_mb": c.step_memory_mb,
                    "cpus": c.step_cpus,
                    "pids": c.step_pids,
                    "network": ph.allow_network,
                    "gpus": ph.gpus,
                },
                "step_output_mb": c.step_output_mb,
                "dataset_cache_mb": c.dataset_cache_mb,
                # Header sizes in a zip can lie: the worker checks again while it unpacks.
                "unpack_limits": {
                    "max_members": c.unpack_max_members,
                    "max_total_bytes": c.unpack_max_total_bytes,
                    "max_file_bytes": c.unpack_max_file_bytes,
                    "max_ratio": c.unpack_max_ratio,
                },
            }

    def record_result(self, submission_id: int, result: dict[str, Any], *, key: Optional[str] = None,
                      queue: Optional[str] = None) -> bool:
        """Record a worker's result exactly once; False if the submission was already terminal.

        The result is plain data validated here: unknown statuses become a
        failure, scores must be numbers.
        """
        result = _clean_result(submission_id, result,
                               host_roots=(self.store.root.resolve(), self.store.root, self.config.home))
        status = result.get("status")
        if status not in (m.FINISHED, m.FAILED, m.CANCELLED):
            status, result = m.FAILED, {**result, "error": f"the worker returned an unknown status {status!r}"}
        scores: dict[str, Optional[float]] = {}
        for name, value in (result.get("scores") or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                status, result = m.FAILED, {**result, "error": f"score {name!r} is not a number: {value!r}"}
                break
            scores[str(name)[:200]] = None if value != value else float(value)
        now = m.utcnow()
        values: dict[str, Any] = {"status": status, "status_changed_at": now, "finished_at": now,
                                  "error": result.get("error") if status != m.FINISHED else None}
        if result.get("worker"):
            values["worker"] = result["worker"]
        with self.db.session() as s:
            if not self._transition(s, submission_id, values, key=key, queue=queue):
                return False
            sub = s.get(m.Submission, submission_id)
            warnings, dropped = list(result["warnings"]), list(result["dropped"])
            for rel, data in (result.get("files") or {}).items():
                target = self.store.root / "files" / rel
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)
            attempt = 1 + max((r.attempt for r in sub.runs), default=0)
            for task in result.get("tasks") or []:
                for step in task.get("steps") or []:
                    sub.runs.append(
                        m.Run(
                            task_index=int(task.get("task_index", 0)),
                            step=str(step.get("step", "?"))[:20],
                            attempt=attempt,
                            status=m.FINISHED if step.get("exit_code") == 0 and not step.get("error") else m.FAILED,
                            worker=result.get("worker") or sub.worker,
                            exit_code=step.get("exit_code"),
                            elapsed=step.get("elapsed"),
                            image=step.get("image"),
                            image_digest=step.get("image_digest"),
                            error=step.get("error"),
                            log_path=step.get("log_path"),
                        )
                    )
            if status == m.FINISHED:
                sub.scores = [m.Score(key=k, value=v) for k, v in sorted(scores.items())]
            # An artifact is listed only when its file is there to be served.
            artifacts = {}
            for name, rel in result["artifacts"].items():
                if self.store.file_path(rel).is_file():
                    artifacts[name] = rel
                else:
                    warnings.append(f"{name.replace('_', ' ')} is not available: its file did not reach the platform")
            sub.artifacts = artifacts
            sub.warnings = warnings[:RESULT_WARNINGS_MAX]
            sub.dropped = dropped[:RESULT_WARNINGS_MAX]
            s.add(m.StatusChange(submission_id=sub.id, status=status, at=now, note=result.get("worker")))
            return True

    def rerun(self, submission_id: int, actor: Actor = LOCAL_ADMIN) -> int:
        """Run a submission again as a new submission (not counted against the limits)."""
        now = m.utcnow()
        with self.db.session() as s:
            old = s.get(m.Submission, submission_id)
            if old is None:
                raise NotFound(f"no submission {submission_id}")
            comp = s.get(m.Competition, s.get(m.Phase, old.phase_id).competition_id)
            self._require_organizer(actor, comp)
            new = m.Submission(
                phase_id=old.phase_id,
                participant_id=old.participant_id,
                kind=old.kind,
                filename=old.filename,
                file_key=old.file_key,
                status=m.SUBMITTED,
                submitted_at=now,
                status_changed_at=now,
                parent_id=old.id,
                description=f"rerun of {old.id}",
            )
            s.add(new)
            s.flush()
            s.add(m.StatusChange(submission_id=new.id, status=m.SUBMITTED, at=now, note=f"rerun of {old.id}"))
            return new.id

    def submission_logs(self, submission_id: int, max_bytes: int = 64 * 1024) -> list[dict[str, Any]]:
        """The captured output of each step, newest attempt first within each step."""
        with self.db.session() as s:
            runs = s.scalars(select(m.Run).where(m.Run.submission_id == submission_id).order_by(m.Run.id)).all()
            entries = []
            for run in runs:
                if not run.log_path:
                    continue
                for name in ("stdout", "stderr"):
                    path = self.store.file_path(f"{run.log_path}/{name}.txt")
                    if path.is_file():
                        data = path.read_bytes()[-max_bytes:]
                        entries.append(
                            {"task_index": run.task_index, "step": run.step, "name": name,
                             "text": data.decode("utf-8", "replace")}
                        )
            return entries

    def artifact_path(self, submission_id: int, name: str) -> Path:
        return self.store.file_path(f"submissions/{submission_id}/{name}")

    # -- leaderboards ----------------------------------------------------------------------
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
            "rows": [{k: r[k] for k in ("rank", "participant", "submission", "scores")} for r in view["rows"]],
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
        from scoring.leaderboard import build_leaderboard

        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            ph = self._phase(comp, phase, now)
            organizer = self.is_organizer(actor, comp)
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
            entries = self._entries(s, ph)
            result = build_leaderboard(
                board_from_row(db_board, ph),
                entries,
                viewer_is_organizer=organizer,
                blind=ph.hide_results,
            )
            return {
                "competition": comp.slug,
                "phase": self.phase_number(comp, ph),
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
                        "submission": r.submission_id,
                        "submitted_at": r.submitted_at.isoformat(),
                        "scores": {k: v for k, v in r.scores.items()},
                        "ranks": dict(r.ranks),
                        "average_rank": _average_rank(r.ranks),
                    }
                    for r in result.rows
                ],
            }

    def _entries(self, s: Session, ph: m.Phase) -> list:
        from scoring.leaderboard import Entry

        rows = s.execute(
            select(m.Submission, m.Participant.username)
            .join(m.Participant, m.Participant.id == m.Submission.participant_id)
            .where(m.Submission.phase_id == ph.id, m.Submission.hidden.is_(False))
            .options(selectinload(m.Submission.scores))
        ).all()
        return [
            Entry(
                submission_id=sub.id,
                participant=username,
                submitted_at=sub.submitted_at,
                status=sub.status,
                scores={sc.key: (float("nan") if sc.value is None else sc.value) for sc in sub.scores},
                selected=sub.selected,
            )
            for sub, username in rows
        ]


    # -- views for the service (pages, REST API) ----------------------------------------------
    # Each takes the actor and returns plain data already cut to what the actor
    # may see: adapters print it and hold no rule of their own.

    def competition_detail(self, slug: str, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """A competition as its page shows it (public: anyone may read it)."""
        from .bundles.refs import page_format
        from .bundles.sanitize import render_page, sanitize_html
        from .bundles.model import PageSpec

        now = now or m.utcnow()
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            organizer = self.is_organizer(actor, comp)
            phases = sorted(comp.phases, key=lambda p: (p.index, p.id))
            current = current_phase(phases, now) if phases else None
            part = _participant(s, comp, actor.username) if actor.username else None
            terms = None
            if comp.terms is not None:
                source = (comp.extra or {}).get("files", {}).get("terms") or "terms.html"
                terms = render_page(PageSpec(name="terms", title="Terms", content=comp.terms,
                                             format=page_format(str(source))))  # type: ignore[arg-type]
            boards = [b for b in comp.leaderboards if organizer or not b.hidden]
            detail = {
                "slug": comp.slug,
                "title": comp.title,
                "dialect": comp.dialect,
                "description": sanitize_html(comp.description or ""),
                "status": competition_status(phases, now),
                "logo": comp.logo_key is not None,
                "contact_email": comp.contact_email,
                "pages": [
                    {"name": p.name, "title": p.title,
                     "html": render_page(PageSpec(name=p.name, title=p.title, content=p.content,
                                                  format=p.format))}  # type: ignore[arg-type]
                    for p in comp.pages
                ],
                "phases": [self._phase_view(comp, ph, n, now, current, organizer)
                           for n, ph in enumerate(phases, start=1)],
                "current_phase": self.phase_number(comp, current) if current is not None else None,
                "registration": part.status if part is not None else "none",
                "registration_auto_approve": comp.registration_auto_approve,
                "terms": terms,
                "is_organizer": organizer,
                "leaderboards": [{"key": b.key, "title": b.title, "hidden": b.hidden} for b in boards],
                "enable_detailed_results": comp.enable_detailed_results,
                "submissions_left": None,
            }
            if organizer:
                detail["organizers"] = sorted({n for n in [comp.created_by, *(comp.admin_names or [])] if n})
                detail["created_at"] = comp.created_at.isoformat()
        if part is not None and part.status == m.APPROVED and current is not None:
            detail["submissions_left"] = self.submissions_left(slug, part.username, detail["current_phase"], now=now)
        return detail

    def _phase_view(self, comp: m.Competition, ph: m.Phase, number: int, now: dt.datetime,
                    current: Optional[m.Phase], organizer: bool) -> dict[str, Any]:
        is_open = (ph.start is None or ph.start <= now) and (ph.end is None or now < ph.end)
        if ph is current and is_open:
            state = "current"
        elif ph.start is not None and now < ph.start:
            state = "future"
        else:
            state = "past"
        rule = self._phase_rule(comp, ph)
        view = {
            "number": number,
            "name": ph.name,
            "description": ph.description,
            "start": ph.start.isoformat() if ph.start else None,
            "end": ph.end.isoformat() if ph.end else None,
            "state": state,
            "open": is_open,
            "max_submissions": ph.max_submissions,
            "max_submissions_per_day": ph.max_submissions_per_day,
            "execution_time_limit": ph.execution_time_limit,
            "has_starting_kit": ph.starting_kit_key is not None,
            "has_public_data": ph.public_data_key is not None,
            "gpus": ph.gpus,
            "queue": self.queue_of(comp, ph),
            "results_only": ph.results_only,
            "hide_results": ph.hide_results,
            "auto_migrate": ph.auto_migrate,
            "submission_rule": rule,
            "participant_chooses": rule in CHOOSING_RULES,
            "color": ph.color,
        }
        if organizer:
            view["opened_at"] = ph.opened_at.isoformat() if ph.opened_at else None
            view["migrated_at"] = ph.migrated_at.isoformat() if ph.migrated_at else None
        return view

    @staticmethod
    def _phase_rule(comp: m.Competition, ph: m.Phase) -> str:
        """The submission rule of a phase: its own, else its first public board's."""
        boards = [b for b in comp.leaderboards if not b.hidden] or list(comp.leaderboards)
        return ph.submission_rule or (boards[0].submission_rule if boards else "Force_Last")

    def competition_logo(self, slug: str) -> Path:
        """The logo file (public, like the competition page)."""
        with self.db.session() as s:
            comp = self._competition(s, slug)
            if comp.logo_key is None:
                raise NotFound(f"competition {slug!r} has no logo")
            return self.store.dataset_path(comp.logo_key)

    def phase_download(self, slug: str, number: int, what: str, actor: Actor) -> tuple[Path, str]:
        """(file, download name) of a phase's starting kit or public data.

        Organizers and approved participants only: data is given out with the
        terms accepted, as on CodaLab and Codabench.  Reference data has no route
        out at all.
        """
        if what not in ("starting_kit", "public_data"):
            raise NotFound(f"no download {what!r}; choose starting_kit or public_data")
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            ph = self._phase(comp, number)
            if not self.is_organizer(actor, comp):
                self._require_approved(s, comp, actor)
            key = ph.starting_kit_key if what == "starting_kit" else ph.public_data_key
            if key is None:
                raise NotFound(f"phase {number} of {slug!r} has no {what.replace('_', ' ')}")
            return self.store.dataset_path(key), f"{comp.slug}-phase{number}-{what.replace('_', '-')}.zip"

    def _require_approved(self, s: Session, comp: m.Competition, actor: Actor) -> m.Participant:
        if actor.username is None:
            raise Forbidden("log in and register first")
        part = _participant(s, comp, actor.username)
        if part is None:
            raise Forbidden(f"register to {comp.slug!r} first")
        if part.status != m.APPROVED:
            raise Forbidden(f"your registration to {comp.slug!r} is {part.status}")
        return part

    def participants(self, slug: str, actor: Actor) -> list[dict[str, Any]]:
        """Everyone registered, with their status and submission count (organizers only)."""
        with self.db.session() as s:
            comp = self._competition(s, slug)
            self._require_organizer(actor, comp)
            counts = dict(s.execute(
                select(m.Submission.participant_id, func.count(m.Submission.id))
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id)
                .group_by(m.Submission.participant_id)
            ).all())
            parts = s.scalars(
                select(m.Participant).where(m.Participant.competition_id == comp.id).order_by(m.Participant.id)
            ).all()
            return [
                {"username": p.username, "status": p.status, "registered_at": p.registered_at.isoformat(),
                 "submissions": counts.get(p.id, 0)}
                for p in parts
            ]

    # -- submissions as the viewer may see them ---------------------------------------------
    def _visible_score_keys(self, comp: m.Competition) -> set[str]:
        """Score keys a participant may see: columns that are not hidden, on boards that are not."""
        return {c.key for b in comp.leaderboards if not b.hidden for c in b.columns if not c.hidden}

    @staticmethod
    def _output_visibility(ph: m.Phase, organizer: bool) -> dict[str, bool]:
        """Which side of a run the viewer may see: `prediction` (and ingestion) and `scoring`."""
        if organizer:
            return {"prediction": True, "scoring": True}
        return {
            "prediction": not (ph.hide_output or ph.hide_prediction_output),
            "scoring": not (ph.hide_output or ph.hide_score_output or ph.hide_results),
        }

    def _submission_context(self, s: Session, submission_id: int, actor: Actor):
        """(submission, participant, phase, competition, organizer) if the actor may see it."""
        sub = s.get(m.Submission, submission_id)
        if sub is None:
            raise NotFound(f"no submission {submission_id}")
        part = s.get(m.Participant, sub.participant_id)
        ph = s.get(m.Phase, sub.phase_id)
        comp = self._competition(s, s.get(m.Competition, ph.competition_id).slug, full=True)
        organizer = self.is_organizer(actor, comp)
        if not organizer and (actor.username is None or actor.username != part.username):
            raise Forbidden(f"submission {submission_id} belongs to another participant")
        return sub, part, ph, comp, organizer

    def _submission_summary(self, sub: m.Submission, part: m.Participant, ph: m.Phase, comp: m.Competition,
                            organizer: bool, now: dt.datetime) -> dict[str, Any]:
        sides = self._output_visibility(ph, organizer)
        results_hidden = not organizer and ph.hide_results
        if results_hidden:
            scores: dict[str, Optional[float]] = {}
        elif organizer:
            scores = {sc.key: sc.value for sc in sub.scores}
        else:
            visible = self._visible_score_keys(comp)
            scores = {sc.key: sc.value for sc in sub.scores if sc.key in visible}
        running = None
        if sub.started_at is not None:
            running = ((sub.finished_at or now) - sub.started_at).total_seconds()
        elapsed = (sub.finished_at - sub.submitted_at).total_seconds() if sub.finished_at else None
        rule = self._phase_rule(comp, ph)
        summary = {
            "id": sub.id,
            "competition": comp.slug,
            "phase": self.phase_number(comp, ph),
            "phase_name": ph.name,
            "participant": part.username,
            "kind": sub.kind,
            "filename": sub.filename,
            "description": sub.description,
            "status": sub.status,
            "submitted_at": sub.submitted_at.isoformat(),
            "started_at": sub.started_at.isoformat() if sub.started_at else None,
            "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
            "elapsed": elapsed,
            "running_time": running,
            "error": sub.error,
            "selected": sub.selected,
            "hidden": sub.hidden,
            "parent": sub.parent_id,
            "scores": scores,
            "results_hidden": results_hidden,
            "outputs_hidden": not (sides["prediction"] and sides["scoring"]),
            "participant_chooses": rule in CHOOSING_RULES,
            "terminal": sub.status in m.TERMINAL_STATUSES,
        }
        if results_hidden:
            # A scoring error can quote scores or reference values.
            summary["error"] = "the results of this phase are hidden" if sub.status == m.FAILED else None
        return summary

    def submissions_view(
        self,
        slug: str,
        actor: Actor,
        *,
        username: Optional[str] = None,
        phase: Optional[int] = None,
        status: Optional[str] = None,
        offset: int = 0,
        limit: int = 50,
        now: Optional[dt.datetime] = None,
    ) -> dict[str, Any]:
        """A page of submissions, newest first: a participant's own, or everyone's for organizers."""
        now = now or m.utcnow()
        if actor.username is None:
            raise Forbidden("log in to see submissions")
        if status is not None and status not in m.STATUSES:
            raise PlatformError(f"unknown status {status!r}; one of {', '.join(m.STATUSES)}")
        offset, limit = int(offset), int(limit)
        if not 0 <= offset <= MAX_OFFSET:
            raise PlatformError(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
        limit = max(1, min(limit, 200))
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            organizer = self.is_organizer(actor, comp)
            if not organizer:
                username = actor.username
            q = (
                select(m.Submission, m.Participant)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id)
            )
            if username is not None:
                q = q.where(m.Participant.username == username)
            if phase is not None:
                q = q.where(m.Submission.phase_id == self._phase(comp, phase).id)
            if status is not None:
                q = q.where(m.Submission.status == status)
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.execute(
                q.order_by(m.Submission.id.desc()).offset(offset).limit(limit)
                .options(selectinload(m.Submission.scores))
            ).all()
            phases = {p.id: p for p in comp.phases}
            items = [self._submission_summary(sub, part, phases[sub.phase_id], comp, organizer, now)
                     for sub, part in rows]
            return {"items": items, "total": total, "offset": offset, "limit": limit}

    def submission_view(self, submission_id: int, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """One submission with its history, logs and files, as the actor may see it."""
        now = now or m.utcnow()
        with self.db.session() as s:
            sub, part, ph, comp, organizer = self._submission_context(s, submission_id, actor)
            view = self._submission_summary(sub, part, ph, comp, organizer, now)
            sides = self._output_visibility(ph, organizer)
            view["history"] = [{"status": h.status, "at": h.at.isoformat(),
                                "note": h.note if organizer else None} for h in sub.history]
            latest = self._latest_runs(sub)
            view["runs"] = [
                {"task": r.task_index, "step": r.step, "status": r.status, "exit_code": r.exit_code,
                 "elapsed": r.elapsed, "attempt": r.attempt,
                 "logs": [stream for stream in LOG_STREAMS if self._run_log(r, stream) is not None]
                 if sides[_step_side(r.step)] else [],
                 **({"image": r.image, "image_digest": r.image_digest, "worker": r.worker, "error": r.error}
                    if organizer else {})}
                for r in latest
            ]
            view["artifacts"] = sorted(
                name for name in (sub.artifacts or {}) if sides[ARTIFACT_SIDES.get(name, "scoring")]
            )
            if organizer:
                view["queue"] = sub.queue or self.queue_of(comp, ph)
                view["worker"] = sub.worker
                view["dispatch_count"] = sub.dispatch_count
            # What the run did not keep, and why (sentences, and name/bytes/reason rows): the
            # organizers always; the participant when the phase shows them both sides of the run,
            # since a warning can name a file of the scoring output.
            if organizer or (sides["prediction"] and sides["scoring"]):
                view["warnings"] = list(sub.warnings or [])
                view["dropped"] = list(sub.dropped or [])
        waiting = None
        if sub.status == m.SUBMITTED:
            waiting = self.submission(submission_id).get("waiting")
        view["waiting"] = waiting
        return view

    @staticmethod
    def _latest_runs(sub: m.Submission) -> list[m.Run]:
        """The runs of the latest attempt of each task and step."""
        latest: dict[tuple[int, str], m.Run] = {}
        for run in sub.runs:
            key = (run.task_index, run.step)
            if key not in latest or (run.attempt, run.id) > (latest[key].attempt, latest[key].id):
                latest[key] = run
        return sorted(latest.values(), key=lambda r: (r.task_index, r.id))

    def _run_log(self, run: m.Run, stream: str) -> Optional[Path]:
        if not run.log_path:
            return None
        try:
            path = self.store.file_path(f"{run.log_path}/{stream}.txt")
        except ValueError:
            return None
        return path if path.is_file() else None

    def submission_log(self, submission_id: int, actor: Actor, task: int, step: str, stream: str,
                       *, max_bytes: int = 1024 * 1024) -> str:
        """The captured stdout or stderr of one step (the last `max_bytes`)."""
        if stream not in LOG_STREAMS:
            raise NotFound(f"no log stream {stream!r}; choose stdout or stderr")
        with self.db.session() as s:
            sub, part, ph, comp, organizer = self._submission_context(s, submission_id, actor)
            if step not in STEP_SIDES:
                raise NotFound(f"no step {step!r}; steps are {', '.join(STEP_SIDES)}")
            if not self._output_visibility(ph, organizer)[_step_side(step)]:
                raise Forbidden(f"the organizers of {comp.slug!r} do not show the {step} output of this phase")
            runs = [r for r in self._latest_runs(sub) if r.task_index == int(task) and r.step == step]
            path = self._run_log(runs[0], stream) if runs else None
            if path is None:
                raise NotFound(f"submission {submission_id} has no {stream} for task {task}, step {step}")
        size = path.stat().st_size
        with open(path, "rb") as fh:
            if size > max_bytes:
                fh.seek(size - max_bytes)
            data = fh.read()
        text = data.decode("utf-8", "replace")
        if size > max_bytes:
            text = f"[the first {size - max_bytes} bytes are cut]\n" + text
        return text

    def submission_artifact(self, submission_id: int, actor: Actor, name: str) -> Path:
        """A feedback file of a submission (executed notebook, its HTML, detailed results)."""
        with self.db.session() as s:
            sub, part, ph, comp, organizer = self._submission_context(s, submission_id, actor)
            rel = (sub.artifacts or {}).get(name)
            if rel is None:
                raise NotFound(f"submission {submission_id} has no file {name!r}")
            if not self._output_visibility(ph, organizer)[ARTIFACT_SIDES.get(name, "scoring")]:
                raise Forbidden(f"the organizers of {comp.slug!r} do not show this output in this phase")
        try:
            path = self.store.file_path(rel)
        except ValueError:
            raise NotFound(f"submission {submission_id} has no file {name!r}") from None
        if not path.is_file():
            raise NotFound(f"the file {name!r} of submission {submission_id} is gone from the store")
        return path

    def submission_file(self, submission_id: int, actor: Actor) -> tuple[Path, str]:
        """The file the participant submitted (its owner and the organizers)."""
        with self.db.session() as s:
            sub, *_ = self._submission_context(s, submission_id, actor)
            if not sub.file_key or not self.store.has_dataset(sub.file_key):
                raise NotFound(f"the file of submission {submission_id} is not stored")
            return self.store.dataset_path(sub.file_key), sub.filename

    def set_hidden(self, submission_id: int, hidden: bool, actor: Actor) -> dict[str, Any]:
        """Hide a submission from the leaderboard, or show it again (organizers)."""
        with self.db.session() as s:
            sub, part, ph, comp, organizer = self._submission_context(s, submission_id, actor)
            if not organizer:
                raise Forbidden(f"only the organizers of {comp.slug!r} may hide submissions")
            sub.hidden = bool(hidden)
            s.add(m.StatusChange(submission_id=sub.id, status=sub.status, at=m.utcnow(),
                                 note=f"{'hidden' if hidden else 'shown'} by {actor.username}"))
        return self.submission_view(submission_id, actor)

    def set_selected(self, submission_id: int, selected: bool, actor: Actor) -> dict[str, Any]:
        """The participant's choice of what the leaderboard shows, where the phase's rule lets them."""
        with self.db.session() as s:
            sub, part, ph, comp, organizer = self._submission_context(s, submission_id, actor)
            if not organizer:
                self._require_approved(s, comp, actor)
            rule = self._phase_rule(comp, ph)
            if rule not in CHOOSING_RULES:
                raise PlatformError(f"in phase {ph.name!r} the leaderboard shows submissions by the rule {rule}; "
                                    "there is nothing to choose")
            if selected and sub.status != m.FINISHED:
                raise PlatformError(f"submission {submission_id} is {sub.status}; only finished ones can be shown")
            if not selected and rule == "Add" and not organizer:
                raise PlatformError("in this phase a submission shown on the leaderboard cannot be taken off")
            if selected and rule != "Add_And_Delete_Multiple":
                for other in s.scalars(select(m.Submission).where(
                        m.Submission.participant_id == part.id, m.Submission.phase_id == ph.id,
                        m.Submission.id != sub.id)):
                    other.selected = False
            sub.selected = bool(selected)
        return self.submission_view(submission_id, actor)

    def cancel_submission(self, submission_id: int, actor: Actor, dispatcher: Any = None) -> dict[str, Any]:
        """Cancel a submission that has not finished (its owner or the organizers)."""
        with self.db.session() as s:
            sub, part, ph, comp, organizer = self._submission_context(s, submission_id, actor)
            if sub.status in m.TERMINAL_STATUSES:
                raise PlatformError(f"submission {submission_id} is already {sub.status}")
        if dispatcher is not None:
            dispatcher.cancel(submission_id)
        else:
            self.set_status(submission_id, m.CANCELLED, note=f"cancelled by {actor.username}")
        return self.submission_view(submission_id, actor)

    # -- phases ---------------------------------------------------------------------------------
    def _organizer_phase(self, s: Session, slug: str, number: int, actor: Actor) -> tuple[m.Competition, m.Phase]:
        comp = self._competition(s, slug, full=True)
        self._require_organizer(actor, comp)
        return comp, self._phase(comp, int(number))

    def phases_view(self, slug: str, actor: Actor, *, now: Optional[dt.datetime] = None) -> list[dict[str, Any]]:
        return self.competition_detail(slug, actor, now=now)["phases"]

    def open_phase_now(self, slug: str, number: int, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Open a phase at once; any other open phase closes now.  Auto-migration follows."""
        from . import phase_clock

        now = now or m.utcnow()
        with self.db.session() as s:
            comp, ph = self._organizer_phase(s, slug, number, actor)
            if ph.start is None or ph.start > now:
                ph.start = now
            if ph.end is not None and ph.end <= now:
                ph.end = None
            for other in comp.phases:
                if other is not ph and (other.start is None or other.start <= now) and (other.end is None or other.end > now):
                    other.end = now
        phase_clock.tick(self, now=now, slug=slug)
        return self._phase_after(slug, number, actor, now)

    def close_phase_now(self, slug: str, number: int, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """Close a phase at once: no more submissions to it."""
        now = now or m.utcnow()
        with self.db.session() as s:
            comp, ph = self._organizer_phase(s, slug, number, actor)
            if ph.start is not None and ph.start > now:
                raise PlatformError(f"phase {ph.name!r} has not opened yet (it opens {ph.start:%Y-%m-%d %H:%M} UTC)")
            if ph.end is None or ph.end > now:
                ph.end = now
        return self._phase_after(slug, number, actor, now)

    def set_phase_dates(self, slug: str, number: int, start: Any, end: Any, actor: Actor,
                        *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """New start and end of a phase (naive UTC datetimes or ISO strings; end may be None)."""
        from . import phase_clock

        start_at, end_at = _moment(start, "start"), _moment(end, "end")
        if start_at is None:
            raise PlatformError("start: a phase needs a start date")
        if end_at is not None and end_at <= start_at:
            raise PlatformError(f"end: must be after the start ({start_at:%Y-%m-%d %H:%M}), got {end_at:%Y-%m-%d %H:%M}")
        now = now or m.utcnow()
        with self.db.session() as s:
            _, ph = self._organizer_phase(s, slug, number, actor)
            ph.start, ph.end = start_at, end_at
        phase_clock.tick(self, now=now, slug=slug)
        return self._phase_after(slug, number, actor, now)

    def _phase_after(self, slug: str, number: int, actor: Actor, now: dt.datetime) -> dict[str, Any]:
        return self.competition_detail(slug, actor, now=now)["phases"][int(number) - 1]

    def migrate_submissions(self, slug: str, from_number: int, actor: Actor, *,
                            now: Optional[dt.datetime] = None) -> list[int]:
        """Re-run each participant's last (or chosen) finished submission of a phase in the next one.

        Returns the new submissions' ids; a submission already migrated is not
        migrated again, so calling this twice is harmless.
        """
        now = now or m.utcnow()
        with self.db.session() as s:
            comp, source = self._organizer_phase(s, slug, from_number, actor)
            phases = sorted(comp.phases, key=lambda p: (p.index, p.id))
            if int(from_number) >= len(phases):
                raise PlatformError(f"phase {from_number} is the last phase of {slug!r}; there is no next phase")
            target = phases[int(from_number)]
            ids = self._migrate(s, comp, source, target, now)
            target.migrated_at = target.migrated_at or now
            return ids

    def _migrate(self, s: Session, comp: m.Competition, source: m.Phase, target: m.Phase, now: dt.datetime) -> list[int]:
        from scoring.leaderboard import select_entries

        boards = [b for b in comp.leaderboards if not b.hidden] or list(comp.leaderboards)
        entries = self._entries(s, source)
        finished = [e for e in entries if e.status == m.FINISHED]
        chosen: dict[str, Any] = {}
        if boards:
            board = board_from_row(boards[0], source)
            for entry in select_entries(board.submission_rule, finished, board):
                chosen[entry.participant] = entry  # oldest first: the latest chosen wins
        # A participant who chose nothing (rule Add) brings their last finished one.
        latest = {}
        for entry in sorted(finished, key=lambda e: (e.submitted_at, e.submission_id)):
            latest[entry.participant] = entry
        picks = {user: chosen.get(user) or latest[user] for user in latest}
        approved = set(s.scalars(select(m.Participant.username).where(
            m.Participant.competition_id == comp.id, m.Participant.status == m.APPROVED)))
        already = set(s.scalars(select(m.Submission.parent_id).where(
            m.Submission.phase_id == target.id, m.Submission.parent_id.is_not(None))))
        target_number = self.phase_number(comp, target)
        new_ids = []
        for user, entry in sorted(picks.items()):
            if user not in approved or entry.submission_id in already:
                continue
            old = s.get(m.Submission, entry.submission_id)
            kind = old.kind
            if target.results_only and kind != "results":
                continue
            if kind == "results" and not target.results_only and _phase_has_ingestion(comp, target):
                kind = "code"
            new = m.Submission(
                phase_id=target.id, participant_id=old.participant_id, kind=kind, filename=old.filename,
                file_key=old.file_key, status=m.SUBMITTED, submitted_at=now, status_changed_at=now,
                parent_id=old.id, description=f"migrated from submission {old.id} to phase {target_number}",
            )
            s.add(new)
            s.flush()
            s.add(m.StatusChange(submission_id=new.id, status=m.SUBMITTED, at=now,
                                 note=f"migrated from submission {old.id}"))
            new_ids.append(new.id)
        return new_ids

    # -- competition.yaml in the browser ------------------------------------------------------
    def _light_bundle_folder(self, comp: m.Competition, folder: Path) -> Path:
        """The competition as a light bundle (datasets by key) unpacked in `folder`."""
        from .bundles import export_bundle

        archive = folder / "light.zip"
        export_bundle(spec_from_competition(comp), self.store, archive, light=True)
        root = folder / "bundle"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root)
        archive.unlink()
        return root

    def competition_yaml(self, slug: str, actor: Actor) -> str:
        """`competition.yaml` as it would be exported light (datasets named by their keys)."""
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            self._require_organizer(actor, comp)
            with tempfile.TemporaryDirectory(prefix="compete-yaml-") as tmp:
                root = self._light_bundle_folder(comp, Path(tmp))
                return (root / "competition.yaml").read_text(encoding="utf-8")

    def update_competition_yaml(self, slug: str, text: str, actor: Actor) -> list[str]:
        """Replace the competition's definition by `text`; returns the problems (empty: saved).

        The text is validated as a bundle (with the competition's pages, terms,
        logo and stored datasets beside it); nothing is saved when there is any
        problem.  Phases keep their submissions: a phase that has some cannot be
        removed.
        """
        from .bundles import load_bundle, store_bundle_data

        if not isinstance(text, str) or not text.strip():
            return ["competition.yaml: (file): is empty"]
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            self._require_organizer(actor, comp)
            with tempfile.TemporaryDirectory(prefix="compete-yaml-") as tmp:
                root = self._light_bundle_folder(comp, Path(tmp))
                (root / "competition.yaml").write_text(text, encoding="utf-8")
                try:
                    with load_bundle(root, limits=self.unpack_limits(), dataset_exists=self._dataset_exists) as bundle:
                        spec = store_bundle_data(bundle, self.store)
                except BundleError as exc:
                    return [str(p) for p in exc.problems]
            # Problems are found before anything changes, so nothing is written then.
            return self._apply_spec(s, comp, spec, actor)

    def _apply_spec(self, s: Session, comp: m.Competition, spec: CompetitionSpec, actor: Actor) -> list[str]:
        """Bring a competition's rows to `spec` in place.

        Phases are matched by their index in the bundle, so a kept phase keeps
        its id, its submissions and its clock marks.
        """
        fresh = competition_from_spec(spec, comp.slug, comp.created_by)
        old_phases = {ph.index: ph for ph in comp.phases}
        new_phases = {ph.index: ph for ph in fresh.phases}
        numbers = {ph.id: n for n, ph in enumerate(sorted(comp.phases, key=lambda p: (p.index, p.id)), start=1)}
        problems = []
        for index, ph in sorted(old_phases.items()):
            if index in new_phases:
                continue
            used = s.scalar(select(func.count(m.Submission.id)).where(m.Submission.phase_id == ph.id))
            if used:
                problems.append(f"competition.yaml: phases: phase {numbers[ph.id]} ({ph.name!r}) has {used} "
                                "submission(s) and cannot be removed")
        if problems:
            return problems
        for key, kind in dataset_keys(spec).items():
            if s.get(m.Dataset, key) is None:
                s.add(m.Dataset(key=key, kind=kind, size=self.store.dataset_size(key), created_by=actor.username))
        for name in ("title", "dialect", "description", "logo_key", "docker_image", "queue",
                     "registration_auto_approve", "enable_detailed_results", "terms", "contact_email",
                     "admin_names", "extra"):
            setattr(comp, name, getattr(fresh, name))
        new_pages, new_tasks, new_boards = list(fresh.pages), list(fresh.tasks), list(fresh.leaderboards)
        fresh.pages, fresh.tasks, fresh.leaderboards, fresh.phases = [], [], [], []
        comp.pages.clear()
        comp.tasks.clear()
        comp.leaderboards.clear()
        for index, ph in old_phases.items():
            if index not in new_phases:
                comp.phases.remove(ph)
        s.flush()  # deletes first: tasks and boards are unique per competition by index and key
        comp.pages.extend(new_pages)
        comp.tasks.extend(new_tasks)
        comp.leaderboards.extend(new_boards)
        kept = {"id", "competition_id", "opened_at", "migrated_at"}
        columns = [c.key for c in m.Phase.__table__.columns if c.key not in kept]
        for index, new in sorted(new_phases.items()):
            if index in old_phases:
                for name in columns:
                    setattr(old_phases[index], name, getattr(new, name))
            else:
                comp.phases.append(new)
        s.flush()
        return []

    # -- leaderboards as files and charts -------------------------------------------------------
    def leaderboard_csv(self, slug: str, phase: Optional[int] = None, *, actor: Actor,
                        board: Optional[str] = None, now: Optional[dt.datetime] = None) -> str:
        """The leaderboard as the actor sees it, as CSV (full precision)."""
        import csv
        import io

        data = self.leaderboard_view(slug, phase, actor=actor, board=board, now=now)
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        keys = [c["key"] for c in data["columns"]]
        writer.writerow(["rank", "participant", "submission", "submitted_at",
                         *[c["title"] for c in data["columns"]], "average_rank"])
        for row in data["rows"]:
            writer.writerow([row["rank"], row["participant"], row["submission"], row.get("submitted_at", ""),
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
        with self.db.session() as s:
            comp = self._competition(s, slug, full=True)
            ph = self._phase(comp, phase, now)
            organizer = self.is_organizer(actor, comp)
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

    # -- administration ----------------------------------------------------------------------------
    def storage_use(self, actor: Actor) -> dict[str, Any]:
        """Bytes used by datasets, submissions and outputs, and per competition (admins)."""
        if not actor.is_admin:
            raise Forbidden("only hub admins may see the storage use")

        def tree_bytes(path: Path) -> tuple[int, int]:
            files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
            return len(files), sum(p.stat().st_size for p in files)

        root = self.store.root
        datasets = tree_bytes(root / "datasets")
        outputs = tree_bytes(root / "files")
        db_bytes = None
        if self.db.dialect == "sqlite":
            db_file = Path(self.db.engine.url.database or "")
            db_bytes = sum(p.stat().st_size for p in db_file.parent.glob(db_file.name + "*") if p.is_file())
        with self.db.session() as s:
            submission_bytes = dict(s.execute(
                select(m.Participant.competition_id, func.coalesce(func.sum(m.Dataset.size), 0))
                .join(m.Submission, m.Submission.participant_id == m.Participant.id)
                .join(m.Dataset, m.Dataset.key == m.Submission.file_key, isouter=True)
                .group_by(m.Participant.competition_id)
            ).all())
            counts = dict(s.execute(
                select(m.Participant.competition_id, func.count(m.Submission.id))
                .join(m.Submission, m.Submission.participant_id == m.Participant.id)
                .group_by(m.Participant.competition_id)
            ).all())
            competitions = []
            for comp in s.scalars(select(m.Competition).order_by(m.Competition.id)).all():
                full = self._competition(s, comp.slug, full=True)
                keys = set(dataset_keys(spec_from_competition(full)))
                size = sum(self.store.dataset_size(k) for k in keys if self.store.has_dataset(k))
                competitions.append({"slug": comp.slug, "title": comp.title, "data_bytes": size,
                                     "submissions": counts.get(comp.id, 0),
                                     "submission_bytes": int(submission_bytes.get(comp.id, 0) or 0)})
        return {
            "store": str(root),
            "total_bytes": datasets[1] + outputs[1],
            "datasets": {"files": datasets[0], "bytes": datasets[1]},
            "outputs": {"files": outputs[0], "bytes": outputs[1]},
            "database_bytes": db_bytes,
            "competitions": competitions,
        }

def board_from_row(board: m.Leaderboard, phase: m.Phase):
    from scoring.leaderboard import Board, Column

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


# Rules under which the participant picks what the leaderboard shows.
CHOOSING_RULES = frozenset({"Add", "Add_And_Delete", "Add_And_Delete_Multiple"})
LOG_STREAMS = ("stdout", "stderr")
# Which side of a run a step or a feedback file belongs to (for hide_*_output).
STEP_SIDES = {"prediction": "prediction", "ingestion": "prediction", "scoring": "scoring"}
ARTIFACT_SIDES = {"executed_notebook": "prediction", "executed_notebook_html": "prediction",
                  "detailed_results": "scoring"}


COMPETITION_STATUSES = ("upcoming", "running", "finished")


def _average_rank(ranks: dict[str, Optional[int]]) -> Optional[float]:
    """The mean of a row's column ranks (the leaderboard's "average rank")."""
    known = [r for r in ranks.values() if r is not None]
    return round(sum(known) / len(known), 4) if known else None

def _step_side(step: str) -> str:
    # Unknown steps count as scoring: the stricter side.
    return STEP_SIDES.get(step, "scoring")


def _moment(value: Any, name: str) -> Optional[dt.datetime]:
    """A naive UTC datetime from a datetime, an ISO string or None."""
    from .bundles.fields import parse_date

    if value is None or value == "":
        return None
    moment = parse_date(value)
    if moment is None:
        raise PlatformError(f"{name}: must be a date such as 2030-01-31T12:00, got {value!r}")
    return moment

def _participant(s: Session, comp: m.Competition, username: str) -> Optional[m.Participant]:
    return s.scalars(
        select(m.Participant).where(m.Participant.competition_id == comp.id, m.Participant.username == username)
    ).first()


def _phase_has_ingestion(comp: m.Competition, phase: m.Phase) -> bool:
    wanted = set(phase.task_indexes or [])
    return any(t.ingestion_program_key for t in comp.tasks if not wanted or t.index in wanted)


def current_phase(phases: list[m.Phase], now: dt.datetime) -> m.Phase:
    """The open phase (the latest-starting one if several are open); else the
    last one that started; else the first."""
    started = [p for p in phases if p.start is None or p.start <= now]
    open_ = [p for p in started if p.end is None or now < p.end]
    if open_:
        return max(open_, key=lambda p: (p.start or dt.datetime.min, p.index))
    return started[-1] if started else phases[0]


def competition_status(phases: Iterable[m.Phase], now: dt.datetime) -> str:
    phases = list(phases)
    starts = [p.start for p in phases if p.start is not None]
    if starts and now < min(starts):
        return "upcoming"
    if any((p.start is None or p.start <= now) and (p.end is None or now < p.end) for p in phases):
        return "running"
    return "finished" if phases else "upcoming"


def submission_kind(path: Path) -> str:
    """`notebook` for an .ipynb, `code` for a zip/folder with a metadata command, else `results`."""
    if path.suffix == ".ipynb":
        return "notebook"
    if path.is_dir():
        return "code" if (path / "metadata").is_file() or (path / "metadata.yaml").is_file() else "results"
    if zipfile.is_zipfile(path):
        with zipfile.ZipFile(path) as zf:
            names = {Path(n).name for n in zf.namelist() if n.count("/") <= 1}
        return "code" if names & {"metadata", "metadata.yaml"} else "results"
    raise PlatformError(f"{path.name}: submit a .zip, a folder or a .ipynb notebook")


def zip_folder(folder: Path, archive: Path) -> None:
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_symlink():
                raise PlatformError(f"{p}: symbolic links cannot be submitted")
            if p.is_file():
                info = zipfile.ZipInfo(p.relative_to(folder).as_posix(), date_time=(1980, 1, 1, 0, 0, 0))
                info.external_attr = 0o644 << 16
                info.compress_type = zipfile.ZIP_DEFLATED
                zf.writestr(info, p.read_bytes())


__all__ = [
    "Actor",
    "BundleError",
    "Forbidden",
    "LimitReached",
    "LOCAL_ADMIN",
    "NotFound",
    "Platform",
    "PlatformError",
    "Problem",
]


RESULT_FILES_MAX_BYTES = 64 * 1024 * 1024
RESULT_WARNINGS_MAX = 100
_TEMP_WORK = re.compile(r"(?:/[\w.@+-]+)*/jupyter-compete[\w.-]*(?:/[^\s'\"`<>|;,)\]]*)?")


def _no_host_paths(text: Optional[str], roots: Iterable[Any] = ()) -> Optional[str]:
    """`text` with the host paths it names reduced to their last component.

    Paths under the platform's home and store, and work folders of workers
    (`.../jupyter-compete*/...`, on the platform's machine or an organizer's),
    say where things live on a host: a participant sees `…/predictions.csv`.
    """
    if not text:
        return text

    def short(match: re.Match) -> str:
        tail = match.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f"…/{tail}" if tail else "…"

    for root in sorted({str(r).rstrip("/") for r in roots if r and str(r).strip("/")}, key=len, reverse=True):
        text = re.sub(re.escape(root) + r"(?![\w.-])(?:/[^\s'\"`<>|;,)\]]*)?", short, text)
    return _TEMP_WORK.sub(short, text)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _file_label(submission_id: int, rel: str) -> str:
    """The name an organizer knows a result file by: its path inside the run's attempt."""
    parts = rel.split("/")
    return "/".join(parts[3:]) if len(parts) > 3 and parts[:2] == ["submissions", str(submission_id)] else parts[-1]


def _text(value: Any, limit: int) -> Optional[str]:
    return None if value is None else str(value)[:limit]


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _own_path(submission_id: int, value: Any) -> Optional[str]:
    """A store path of this submission's files, or None: a worker cannot point elsewhere."""
    if not isinstance(value, str):
        return None
    parts = value.split("/")
    if parts[:2] != ["submissions", str(submission_id)] or any(p in ("", ".", "..") for p in parts) \
            or "\\" in value or len(value) > 500:
        return None
    return value


def _clean_result(submission_id: int, result: Any, host_roots: Iterable[Any] = ()) -> dict[str, Any]:
    """Reduce a worker's result to the plain, bounded shape the platform records.

    A result comes from a machine the platform does not control: every field is
    checked for its type, strings are bounded, paths must stay inside the
    submission's own files, and inline files are capped (what fits is kept,
    each file left out is listed in `dropped` and said in `warnings`).  Host
    paths (under `host_roots`, or a worker's work folders) are taken out of
    every message a participant or organizer reads.
    """
    if not isinstance(result, dict):
        return {"status": m.FAILED, "error": "the worker returned no result", "warnings": [], "dropped": [],
                "artifacts": {}, "files": {}, "tasks": []}
    roots = tuple(host_roots)

    def message(value: Any, limit: int) -> Optional[str]:
        return _no_host_paths(_text(value, limit), roots)

    clean: dict[str, Any] = {
        "status": result.get("status") if isinstance(result.get("status"), str) else None,
        "scores": result.get("scores") if isinstance(result.get("scores"), dict) else {},
        "error": message(result.get("error"), 20000),
        "worker": _text(result.get("worker"), 300),
    }
    raw_warnings = result.get("warnings")
    clean["warnings"] = [
        message(w, 1000) for w in (raw_warnings if isinstance(raw_warnings, list) else [])[:RESULT_WARNINGS_MAX]
        if isinstance(w, str) and w.strip()
    ]
    raw_dropped = result.get("dropped")
    clean["dropped"] = [
        {"name": message(d.get("name"), 300) or "?",
         "bytes": d["bytes"] if isinstance(d.get("bytes"), int) and not isinstance(d.get("bytes"), bool) else None,
         "reason": message(d.get("reason"), 500) or ""}
        for d in (raw_dropped if isinstance(raw_dropped, list) else [])[:RESULT_WARNINGS_MAX] if isinstance(d, dict)
    ]
    tasks = []
    for task in result.get("tasks") or []:
        if not isinstance(task, dict):
            continue
        steps = []
        for step in task.get("steps") or []:
            if not isinstance(step, dict):
                continue
            exit_code = step.get("exit_code")
            steps.append({
                "step": _text(step.get("step"), 20) or "?",
                "exit_code": exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
                "elapsed": _number(step.get("elapsed")),
                "image": _text(step.get("image"), 300),
                "image_digest": _text(step.get("image_digest"), 300),
                "error": message(step.get("error"), 20000),
                "log_path": _own_path(submission_id, step.get("log_path")),
            })
        index = task.get("task_index")
        tasks.append({"task_index": index if isinstance(index, int) else 0, "steps": steps})
    clean["tasks"] = tasks
    artifacts = result.get("artifacts")
    clean["artifacts"] = {
        str(k)[:100]: path for k, v in (artifacts.items() if isinstance(artifacts, dict) else [])
        if (path := _own_path(submission_id, v))
    }
    files: dict[str, bytes] = {}
    total = 0
    raw_files = result.get("files")
    for rel, data in (raw_files.items() if isinstance(raw_files, dict) else []):
        path = _own_path(submission_id, rel)
        if path is None or not isinstance(data, (bytes, bytearray)):
            continue
        if total + len(data) > RESULT_FILES_MAX_BYTES:
            # Keep what fits: a later, smaller file may still.
            name = _file_label(submission_id, path)
            reason = f"the files of one result are kept up to {_megabytes(RESULT_FILES_MAX_BYTES)} in all"
            clean["dropped"].append({"name": name, "bytes": len(data), "reason": reason})
            clean["warnings"].append(f"{name} ({_megabytes(len(data))}) was not kept: {reason}")
            continue
        total += len(data)
        files[path] = bytes(data)
    clean["files"] = files
    return clean
