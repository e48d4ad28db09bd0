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

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session, selectinload

from . import models as m
from .bundles.model import BundleError, CompetitionSpec, Problem
from .config import Compete
from .convert import competition_from_spec, dataset_keys, spec_from_competition
from .db import Database
from .storage import LocalStore


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

    @property
    def is_anonymous(self) -> bool:
        return self.username is None


LOCAL_ADMIN = Actor("admin", is_admin=True)
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

        self._require_organizer_role(actor)
        with load_bundle(path, limits=self.unpack_limits(), dataset_exists=self._dataset_exists) as bundle:
            stored = store_bundle_data(bundle, self.store)
            warnings = list(bundle.warnings)
        slug = self._insert_competition(stored, actor)
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
    def list_competitions(self, now: Optional[dt.datetime] = None) -> list[dict[str, Any]]:
        now = now or m.utcnow()
        with self.db.session() as s:
            comps = s.scalars(
                select(m.Competition).options(selectinload(m.Competition.phases)).order_by(m.Competition.id)
            ).all()
            return [
                {
                    "slug": c.slug,
                    "title": c.title,
                    "dialect": c.dialect,
                    "status": competition_status(c.phases, now),
                    "phases": len(c.phases),
                    "created_at": c.created_at.isoformat(),
                }
                for c in comps
            ]

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
        if actor.username is None:
            return False
        # The hub group `organizers` may create competitions; each competition is
        # then run by its creator and the organizers its bundle or owner names.
        return actor.username == comp.created_by or actor.username in (comp.admin_names or [])

    def _require_organizer(self, actor: Actor, comp: m.Competition) -> None:
        if not self.is_organizer(actor, comp):
            raise Forbidden(f"only the organizers of {comp.slug!r} may do this")

    @staticmethod
    def _require_organizer_role(actor: Actor) -> None:
        if not (actor.is_admin or ORGANIZERS_GROUP in actor.groups):
            raise Forbidden("only members of the hub group 'organizers' may create competitions")

    # -- participants ------------------------------------------------------------------
    def register(self, slug: str, username: str, actor: Optional[Actor] = None) -> str:
        """Register `username`; returns the registration status (approved or pending).

        A user registers themselves; an organizer or admin may register anyone,
        which approves them at once.
        """
        actor = actor or Actor(username)
        with self.db.session() as s:
            comp = self._competition(s, slug)
            by_organizer = self.is_organizer(actor, comp)
            if actor.username != username and not by_organizer:
                raise Forbidden("you can register only yourself")
            part = _participant(s, comp, username)
            approve = by_organizer or comp.registration_auto_approve
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
            raise PlatformError(f"{path}: no such file or folder")
        kind = submission_kind(path)
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

    def set_status(self, submission_id: int, status: str, *, note: Optional[str] = None, error: Optional[str] = None) -> bool:
        """Move a submission to `status`; False (and no write) if it is already terminal."""
        if status not in m.STATUSES:
            raise ValueError(f"unknown status {status!r}")
        now = m.utcnow()
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id, with_for_update=True)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            if sub.status in m.TERMINAL_STATUSES:
                return False
            sub.status = status
            sub.status_changed_at = now
            if status == m.RUNNING and sub.started_at is None:
                sub.started_at = now
            if status in m.TERMINAL_STATUSES:
                sub.finished_at = now
            if error is not None:
                sub.error = error
            s.add(m.StatusChange(submission_id=sub.id, status=status, at=now, note=note))
            return True

    def record_scores(self, submission_id: int, scores: dict[str, float]) -> None:
        """Store a finished submission's scores (replacing any earlier ones) and finish it."""
        now = m.utcnow()
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id, with_for_update=True)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            if sub.status in m.TERMINAL_STATUSES:
                return
            sub.scores = [
                m.Score(key=k, value=None if v != v else float(v)) for k, v in sorted(scores.items())
            ]
            sub.status = m.FINISHED
            sub.status_changed_at = now
            sub.finished_at = now
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
                "history": [{"status": h.status, "at": h.at.isoformat(), "note": h.note} for h in sub.history],
            }

    # -- execution -------------------------------------------------------------------------
    def claim(self, submission_id: int, status: str = m.PREPARING, worker: Optional[str] = None) -> bool:
        """Atomically move a Submitted submission to `status`; False if someone else has it."""
        now = m.utcnow()
        with self.db.session() as s:
            claimed = s.execute(
                update(m.Submission)
                .where(m.Submission.id == submission_id, m.Submission.status == m.SUBMITTED)
                .values(status=status, status_changed_at=now, started_at=now)
            ).rowcount
            if claimed:
                s.add(m.StatusChange(submission_id=submission_id, status=status, at=now, note=worker))
            return bool(claimed)

    def pending_submissions(self) -> list[int]:
        with self.db.session() as s:
            return list(
                s.scalars(select(m.Submission.id).where(m.Submission.status == m.SUBMITTED).order_by(m.Submission.id))
            )

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
                    }
                )
            return {
                "submission_id": sub.id,
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
            }

    def record_result(self, submission_id: int, result: dict[str, Any]) -> bool:
        """Record a worker's result exactly once; False if the submission was already terminal.

        The result is plain data validated here: unknown statuses become a
        failure, scores must be numbers.
        """
        status = result.get("status")
        if status not in (m.FINISHED, m.FAILED, m.CANCELLED):
            status, result = m.FAILED, {**result, "error": f"the worker returned an unknown status {status!r}"}
        scores: dict[str, Optional[float]] = {}
        for key, value in (result.get("scores") or {}).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                status, result = m.FAILED, {**result, "error": f"score {key!r} is not a number: {value!r}"}
                break
            scores[str(key)[:200]] = None if value != value else float(value)
        now = m.utcnow()
        with self.db.session() as s:
            sub = s.get(m.Submission, submission_id, with_for_update=True)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            if sub.status in m.TERMINAL_STATUSES:
                return False
            attempt = 1 + max((r.attempt for r in sub.runs), default=0)
            for task in result.get("tasks") or []:
                for step in task.get("steps") or []:
                    sub.runs.append(
                        m.Run(
                            task_index=int(task.get("task_index", 0)),
                            step=str(step.get("step", "?"))[:20],
                            attempt=attempt,
                            status=m.FINISHED if step.get("exit_code") == 0 and not step.get("error") else m.FAILED,
                            worker=result.get("worker"),
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
            artifacts = result.get("artifacts") or {}
            if isinstance(artifacts, dict):
                sub.artifacts = {str(k): str(v) for k, v in artifacts.items() if isinstance(v, str) and ".." not in v}
            sub.status = status
            sub.error = result.get("error") if status != m.FINISHED else None
            sub.status_changed_at = now
            sub.finished_at = now
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
                "columns": [{"key": c.key, "title": c.title, "sorting": c.sorting} for c in result.columns],
                "rows": [
                    {
                        "rank": r.rank,
                        "participant": r.participant,
                        "submission": r.submission_id,
                        "scores": {k: v for k, v in r.scores.items()},
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
