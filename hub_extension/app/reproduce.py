"""Reproductions, provenance shown to organizers, and signed manifests of submissions.

A reproduction runs a finished submission again exactly: a new submission
(`reproduces_id` set) pinned to what the original's runs recorded
(`Run.provenance`): the submission's content key, each task's programs and
datasets by key and each step's image by digest.  The job of a reproduction
carries the digests as the steps' images (`pinned_job`); a worker never
replaces an image named by digest (see `kernels.images.is_digest_reference`),
so when that image is not on the worker the run fails saying so.  The
organizer may choose the queue it runs on (`pinned["queue"]`).

Reproductions stay off every leaderboard (`standings`), count against no
limit (`submissions`) and are not listed to participants (`views`).
Organizers reproduce any submission; its owner too when the phase allows it
(`allow_reproduce`).  `comparison` sets the scores side by side and lists
the inputs that differed; `reproduce_top` reproduces the top N of a phase's
primary board.

`manifest` gives organizers a signed record of a submission (see
`hub_extension.manifest`).
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import manifest as signing
from .. import models as m
from ..contract import Job
from ..errors import Forbidden, NotFound, PlatformError
from .actors import Actor, require_organizer
from .context import Context
from .records import get_competition, get_phase, phase_number, require_active
from .routing import DEFAULT_QUEUE, queue_names
from .visibility import latest_runs, submission_context

# At most this many submissions reproduced by one `reproduce_top`.
TOP_MAX = 100
# The steps whose image a task's job names: a prediction runs in the ingestion image.
_IMAGE_FIELD = {"prediction": "ingestion_image", "scoring": "scoring_image", "aggregation": "scoring_image"}


# -- pins --------------------------------------------------------------------------------------------
def pins_of(original: m.Submission, runs: list[m.Run], queue: Optional[str]) -> dict[str, Any]:
    """What a reproduction of `original` is pinned to, from its latest runs' provenance."""
    images: dict[str, Optional[str]] = {}
    programs: dict[str, dict[str, Any]] = {}
    data: dict[str, dict[str, Any]] = {}
    submission_key = original.file_key
    executor = None
    for run in runs:
        p = run.provenance or {}
        image = p.get("image") or {}
        if image.get("digest"):
            images[f"{run.task_index}:{run.step}"] = image["digest"]
        if p.get("programs"):
            programs[str(run.task_index)] = dict(p["programs"])
        if p.get("datasets"):
            data[str(run.task_index)] = dict(p["datasets"])
        if (p.get("submission") or {}).get("key"):
            submission_key = p["submission"]["key"]
        executor = executor or (p.get("executor") or {}).get("name")
    digests = sorted(set(images.values()))
    return {
        "image_digest": digests[0] if len(digests) == 1 else (digests or None),
        "images": images,
        "program_keys": programs,
        "data_keys": data,
        "submission_key": submission_key,
        "executor": executor,
        "queue": queue,
    }


def pinned_queue(s: Session, sub: m.Submission) -> Optional[str]:
    """The queue a reproduction was sent to by the organizer who asked for it (None: the phase's)."""
    if sub.reproduces_id is None:
        return None
    queue = (sub.pinned or {}).get("queue")
    return queue if isinstance(queue, str) and queue else None


def pinned_job(job: Job, pinned: dict[str, Any]) -> Job:
    """`job` with the programs, data and images a reproduction is pinned to."""
    pinned = pinned or {}
    images = pinned.get("images") or {}
    programs = pinned.get("program_keys") or {}
    data = pinned.get("data_keys") or {}

    def pin(task: Any, steps: tuple[str, ...]) -> Any:
        if task is None:
            return None
        changes: dict[str, Any] = {}
        for kind, key in {**(programs.get(str(task.index)) or {}), **(data.get(str(task.index)) or {})}.items():
            if kind in ("scoring_program", "ingestion_program", "reference_data", "input_data") and \
                    (key is None or isinstance(key, str)):
                changes[kind] = key
        for step in steps:
            digest = images.get(f"{task.index}:{step}")
            if isinstance(digest, str) and digest:
                changes[_IMAGE_FIELD[step]] = digest
        return dataclasses.replace(task, **changes)

    tasks = tuple(pin(t, ("prediction", "scoring")) for t in job.tasks)
    aggregation = pin(job.aggregation, ("aggregation",))
    submission = pinned.get("submission_key") if isinstance(pinned.get("submission_key"), str) else job.submission
    return job.with_changes(tasks=tasks, aggregation=aggregation, submission=submission or job.submission)


# -- the part ----------------------------------------------------------------------------------------
def _runs_view(sub: m.Submission) -> list[dict[str, Any]]:
    return [{"task": r.task_index, "step": r.step, "attempt": r.attempt, "status": r.status,
             "exit_code": r.exit_code, "elapsed": r.elapsed, "provenance": dict(r.provenance or {})}
            for r in latest_runs(sub)]


def _scores(sub: m.Submission) -> dict[str, Optional[float]]:
    return {sc.key: sc.value for sc in sub.scores}


def _compare_inputs(original: list[dict[str, Any]], reproduced: list[dict[str, Any]]) -> list[str]:
    """What differed between the inputs of two submissions' runs, one sentence per difference."""
    before = {(r["task"], r["step"]): r["provenance"] for r in original}
    after = {(r["task"], r["step"]): r["provenance"] for r in reproduced}
    differ = []
    for key in sorted(set(before) | set(after)):
        where = f"task {key[0]} {key[1]}"
        if key not in before or key not in after:
            differ.append(f"{where}: ran {'only in the reproduction' if key in after else 'only in the original'}")
            continue
        a, b = before[key], after[key]
        facts = {
            "image digest": lambda p: (p.get("image") or {}).get("digest"),
            "program": lambda p: p.get("program"),
            "datasets": lambda p: p.get("datasets"),
            "submission": lambda p: (p.get("submission") or {}).get("key"),
            "package list": lambda p: p.get("packages_sha256"),
            "executor": lambda p: (p.get("executor") or {}).get("name"),
        }
        for name, read in facts.items():
            if read(a) != read(b):
                differ.append(f"{where}: {name} {read(a)!r} then {read(b)!r}")
    return differ


class Reproductions:
    """Reproducing submissions, comparing them, and signed manifests, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- provenance ----------------------------------------------------------------------------------
    def run_provenance(self, submission_id: int, actor: Actor) -> list[dict[str, Any]]:
        """Each latest run of a submission with its provenance (organizers)."""
        with self.ctx.db.session() as s:
            sub, _, _, comp, organizer = submission_context(s, submission_id, actor)
            if not organizer:
                raise Forbidden("only the competition's organizers see where and with what a run ran")
            return _runs_view(sub)

    # -- manifest ------------------------------------------------------------------------------------
    def submission_manifest(self, submission_id: int, actor: Actor) -> dict[str, Any]:
        """A submission's signed manifest (organizers): {"manifest": {...}, "signature": {...}}."""
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            if not organizer:
                raise Forbidden("only the competition's organizers may have a submission's signed manifest")
            record = {
                "submission": {
                    "id": sub.id, "kind": sub.kind, "filename": sub.filename, "file_key": sub.file_key,
                    "participant": part.username, "team_id": sub.team_id, "status": sub.status,
                    "submitted_at": sub.submitted_at.isoformat() if sub.submitted_at else None,
                    "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
                    "parent_id": sub.parent_id, "reproduces_id": sub.reproduces_id,
                    "pinned": dict(sub.pinned or {}), "worker": sub.worker, "queue": sub.queue,
                },
                "phase": {"number": phase_number(comp, ph), "index": ph.index, "name": ph.name},
                "competition": {"slug": comp.slug, "title": comp.title},
                "runs": _runs_view(sub),
                "scores": _scores(sub),
                "issued_at": m.utcnow().replace(microsecond=0).isoformat(),
                "issued_by": actor.username,
            }
        # The canonical form refuses NaN: a score that is not a number is null in the manifest.
        record = _without_nan(record)
        home = self.ctx.config.home
        return signing.sign(record, signing.load_key(home), signing.load_signing_key(home))

    # -- reproducing ---------------------------------------------------------------------------------
    def _may_reproduce(self, s: Session, sub: m.Submission, actor: Actor) -> tuple[m.Competition, bool]:
        sub, part, ph, comp, organizer = submission_context(s, sub.id, actor)
        if not organizer:
            if not ph.allow_reproduce:
                raise Forbidden(f"phase {ph.name!r} does not let participants reproduce their submissions; "
                                "ask its organizers")
            if part.username != actor.username:
                raise Forbidden("participants reproduce only their own submissions")
        return comp, organizer

    def _check_queue(self, s: Session, comp: m.Competition, queue: Optional[str], actor: Actor,
                     organizer: bool) -> Optional[str]:
        if queue is None or queue == "":
            return None
        if not organizer:
            raise Forbidden("only organizers choose the queue a reproduction runs on")
        if queue == DEFAULT_QUEUE:
            return queue
        if queue not in queue_names(s):
            raise NotFound(f"no queue {queue!r}: create it first (`compete queue create`), or leave the queue out "
                           "to run on the phase's")
        row = s.scalar(select(m.Queue).where(m.Queue.name == queue))
        if not (actor.is_admin or row.competition_id == comp.id or (row.owner and row.owner == actor.username)):
            raise Forbidden(f"queue {queue!r} is not one of this competition's or yours")
        return queue

    def _add(self, s: Session, original: m.Submission, actor: Actor, queue: Optional[str]) -> m.Submission:
        if original.reproduces_id is not None:
            raise PlatformError(f"submission {original.id} is a reproduction: reproduce submission "
                                f"{original.reproduces_id} instead")
        if original.status != m.FINISHED:
            raise PlatformError(f"submission {original.id} is {original.status}: only a finished submission, "
                                "whose runs recorded what they ran with, can be reproduced")
        runs = latest_runs(original)
        if not any(r.provenance for r in runs):
            raise PlatformError(f"submission {original.id} ran before runs recorded their provenance: rerun it "
                                "instead (`compete rerun`)")
        now = m.utcnow()
        note = f"reproduction of {original.id} by {actor.username}"
        new = m.Submission(
            phase_id=original.phase_id, participant_id=original.participant_id, kind=original.kind,
            filename=original.filename, file_key=original.file_key, status=m.SUBMITTED, submitted_at=now,
            status_changed_at=now, description=note, team_id=original.team_id,
            fact_sheet=dict(original.fact_sheet or {}), reproduces_id=original.id,
            pinned=pins_of(original, runs, queue),
        )
        s.add(new)
        s.flush()
        s.add(m.StatusChange(submission_id=new.id, status=m.SUBMITTED, at=now, note=note))
        return new

    def reproduce(self, submission_id: int, actor: Actor, *, queue: Optional[str] = None) -> dict[str, Any]:
        """Reproduce a finished submission: a new submission pinned to what it ran with; its summary."""
        with self.ctx.db.session() as s:
            original = s.get(m.Submission, submission_id)
            if original is None:
                raise NotFound(f"no submission {submission_id}")
            comp, organizer = self._may_reproduce(s, original, actor)
            require_active(comp, "reproducing submissions")
            queue = self._check_queue(s, comp, queue, actor, organizer)
            new = self._add(s, original, actor, queue)
            return {"id": new.id, "reproduces": original.id, "status": new.status, "pinned": dict(new.pinned)}

    def reproduce_top(self, slug: str, number: int, top: Any, actor: Actor, *,
                      queue: Optional[str] = None) -> dict[str, Any]:
        """Reproduce the top `top` (1 to 100) submissions of a phase's primary board (organizers)."""
        from .leaderboards import Leaderboards  # the board as organizers see it

        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            require_active(comp, "reproducing submissions")
            get_phase(comp, number)
        if isinstance(top, bool) or not isinstance(top, int) or not 1 <= top <= TOP_MAX:
            raise PlatformError(f'"top" must be a whole number from 1 to {TOP_MAX}, got {top!r}')
        board = Leaderboards(self.ctx).leaderboard(slug, number, actor=actor)
        chosen = [row["submission"] for row in sorted(board["rows"], key=lambda r: (r["rank"], r["submission"]))]
        chosen = list(dict.fromkeys(chosen))[:top]
        made, skipped = [], []
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            queue = self._check_queue(s, comp, queue, actor, True)
            for sid in chosen:
                original = s.get(m.Submission, sid)
                try:
                    with s.begin_nested():
                        new = self._add(s, original, actor, queue)
                    made.append({"id": new.id, "reproduces": sid})
                except PlatformError as exc:
                    skipped.append({"submission": sid, "reason": str(exc)})
        return {"competition": slug, "phase": number, "top": top, "reproductions": made, "skipped": skipped}

    # -- comparing -----------------------------------------------------------------------------------
    def reproduction_comparison(self, submission_id: int, actor: Actor) -> dict[str, Any]:
        """An original and its reproduction side by side (of a reproduction, or of an original: its latest one)."""
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            if not organizer and not ph.allow_reproduce:
                raise Forbidden("only the competition's organizers compare reproductions")
            if sub.reproduces_id is not None:
                original, reproduction = s.get(m.Submission, sub.reproduces_id), sub
            else:
                original = sub
                reproduction = s.scalar(select(m.Submission).where(m.Submission.reproduces_id == sub.id)
                                        .order_by(m.Submission.id.desc()).limit(1))
                if reproduction is None:
                    raise NotFound(f"submission {submission_id} has not been reproduced")
            before, after = _scores(original), _scores(reproduction)
            scores = []
            for key in sorted(set(before) | set(after)):
                a, b = before.get(key), after.get(key)
                difference = None if a is None or b is None or a != a or b != b else b - a
                scores.append({"key": key, "original": a, "reproduced": b, "equal": a == b and a is not None,
                               "difference": difference})
            done = reproduction.status in m.TERMINAL_STATUSES
            view = {
                "original": {"id": original.id, "status": original.status},
                "reproduction": {"id": reproduction.id, "status": reproduction.status, "error": reproduction.error,
                                 "pinned": dict(reproduction.pinned or {})},
                "scores": scores if done else [],
                "equal": done and reproduction.status == m.FINISHED and all(row["equal"] for row in scores),
            }
            if organizer:
                view["inputs_differ"] = _compare_inputs(_runs_view(original), _runs_view(reproduction)) if done else []
            else:
                view["inputs_differ"] = []
            return _without_nan(view)


def _without_nan(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _without_nan(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_without_nan(v) for v in value]
    return value

