"""The runs ledger: what the dispatcher reads and writes about submissions on their way through a queue.

Which submissions wait and on which queue, the claim of one for a run and its
release when the run is lost, the self-contained job a worker needs, and the
reports that come back (status moves, a worker's result).  Every move of a
submission's status is one conditional UPDATE (`transition`), so concurrent
reports never both win.
"""
from __future__ import annotations

import dataclasses
import logging
from typing import Any, Callable, Iterable, Optional, Sequence

from sqlalchemy import exists, func, or_, select, update
from sqlalchemy.orm import Session

from .. import models as m
from ..config import executor_settings
from ..contract import RESULT_WARNINGS_MAX, Job, JobResult, Status, StepLimits, TaskJob, UnpackCaps
from ..errors import NotFound
from .context import Context
from .lease import DISPATCHER_LEASE
from .messages import notify_submission
from .queue_order import QueuePlan, queue_plan
from .provenance import job_facts, run_provenance
from .reproduce import pinned_job, pinned_queue
from .routing import queue_of, queue_positions, submission_queues
from .standings import refresh_phase

log = logging.getLogger("compete.runs")

# The start of a warning said when a submission was made (about its zip): it stays
# beside the warnings its run gives.
UPLOAD_NOTE = "at submission: "

# The step name of a phase's aggregation (its own scoring program over its tasks' scoring outputs).
AGGREGATION_STEP = "aggregation"


def program_keys(s: Session, sub: m.Submission) -> dict[tuple[int, str], Optional[str]]:
    """The program each step of a submission runs, by (task index, step): the key of the
    task's scoring program (the aggregation task's for the aggregation step) or of its
    ingestion program (none for a notebook, which runs itself)."""
    ph = s.get(m.Phase, sub.phase_id)
    tasks = {t.index: t for t in s.scalars(select(m.Task).where(m.Task.competition_id == ph.competition_id))}
    keys: dict[tuple[int, str], Optional[str]] = {}
    for index, t in tasks.items():
        keys[(index, "scoring")] = t.scoring_program_key
        keys[(index, "prediction")] = t.ingestion_program_key if sub.kind == "code" else None
    aggregation = tasks.get(ph.aggregation_task) if ph.aggregation_task is not None else None
    if aggregation is not None:
        for index in list(tasks) + [aggregation.index]:
            keys[(index, AGGREGATION_STEP)] = aggregation.scoring_program_key
    return keys


def job_program_keys(job: Job) -> dict[tuple[int, str], Optional[str]]:
    """The program each step of a job runs, by (task index, step), as the job carries it
    (what `program_keys` reads from the tasks, taken when the job is sent)."""
    keys: dict[tuple[int, str], Optional[str]] = {}
    for t in job.tasks:
        keys[(t.index, "scoring")] = t.scoring_program
        keys[(t.index, "prediction")] = t.ingestion_program if job.kind == "code" else None
    if job.aggregation is not None:
        for index in [t.index for t in job.tasks] + [job.aggregation.index]:
            keys[(index, AGGREGATION_STEP)] = job.aggregation.scoring_program
    return keys


def transition(s: Session, submission_id: int, values: dict[str, Any], *, key: Optional[str] = None,
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


# The statuses of a submission still waiting or running: query them with IN, which the status index answers.
OPEN_STATUSES = Status.STEPS


def is_open() -> Any:
    """The condition that a submission is not terminal, as an `IN` the status index answers.

    (`status NOT IN (terminal)` cannot use the index: on every dispatcher tick it
    would read every submission ever made instead of the few still open.)
    """
    return m.Submission.status.in_(OPEN_STATUSES)


def holds_dispatcher_lease(holder: str) -> Any:
    """The condition that `holder` still holds the dispatcher lease (no other process has taken it)."""
    return exists(select(m.Lease.name).where(m.Lease.name == DISPATCHER_LEASE, m.Lease.holder == holder))


class Runs:
    """The ledger of runs, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        # Who ranks the boards again after a result (phase id, submission id); None: the recording call,
        # before it returns.  A long-running dispatcher hands it to a `refresher.BoardRefresher`.
        self.after_finish: Optional[Callable[[int, int], None]] = None

    # -- waiting and sent ----------------------------------------------------------------------
    def claim(self, submission_id: int, queue: str, key: str, *, holder: Optional[str] = None,
              scheduler: Optional[str] = None) -> bool:
        """Atomically mark a waiting submission as sent to `queue` under Dask key `key`.

        It stays Submitted (waiting, with a position in the queue) until a
        worker reports Preparing; False if it is not waiting or already sent,
        or (with `holder`, a dispatcher's lease id) when another process has
        taken the dispatcher lease.  `scheduler` is the Dask id of the scheduler it
        is sent to, kept with it until it is sent again.
        """
        now = m.utcnow()
        fence = [holds_dispatcher_lease(holder)] if holder is not None else []
        with self.ctx.db.session() as s:
            claimed = s.execute(
                update(m.Submission)
                .where(m.Submission.id == submission_id, m.Submission.status == m.SUBMITTED,
                       m.Submission.dispatch_key.is_(None), *fence)
                .values(dispatch_key=key, queue=queue, dispatched_at=now, dispatch_scheduler=scheduler,
                        dispatch_count=m.Submission.dispatch_count + 1)
            ).rowcount
            return bool(claimed)

    def release(self, submission_id: int, key: str, note: str, *, holder: Optional[str] = None) -> bool:
        """Put a sent submission back to waiting (its run was lost); False if `key` is not current
        (or, with `holder`, when another process has taken the dispatcher lease)."""
        now = m.utcnow()
        fence = [holds_dispatcher_lease(holder)] if holder is not None else []
        with self.ctx.db.session() as s:
            released = s.execute(
                update(m.Submission)
                .where(m.Submission.id == submission_id, m.Submission.dispatch_key == key,
                       m.Submission.status.not_in(m.TERMINAL_STATUSES), *fence)
                .values(dispatch_key=None, dispatch_scheduler=None, status=m.SUBMITTED, status_changed_at=now,
                        worker=None)
            ).rowcount
            if released:
                s.add(m.StatusChange(submission_id=submission_id, status=m.SUBMITTED, at=now, note=note[:500]))
            return bool(released)

    def queue_of(self, comp: m.Competition, phase: m.Phase) -> str:
        """The queue a phase runs on (see `routing`)."""
        with self.ctx.db.session() as s:
            return queue_of(s, comp, phase)

    def pending_submissions(self, queue: Optional[str] = None) -> list[int]:
        """Waiting submissions not yet sent, oldest first (of one queue when given)."""
        with self.ctx.db.session() as s:
            rows = submission_queues(s, m.Submission.status == m.SUBMITTED,
                                             m.Submission.dispatch_key.is_(None))
        return [sid for sid, _, resolved in rows if queue is None or resolved == queue]

    def dispatched_submissions(self, queue: str) -> list[dict[str, Any]]:
        """Non-terminal submissions sent to `queue`: what the dispatcher must follow."""
        with self.ctx.db.session() as s:
            rows = s.execute(
                select(m.Submission.id, m.Submission.dispatch_key, m.Submission.status,
                       m.Submission.dispatched_at, m.Submission.dispatch_count, m.Submission.dispatch_scheduler)
                .where(m.Submission.queue == queue, m.Submission.dispatch_key.is_not(None), is_open())
                .order_by(m.Submission.id)
            ).all()
        return [{"id": r[0], "key": r[1], "status": r[2], "dispatched_at": r[3], "dispatch_count": r[4],
                 "scheduler": r[5]} for r in rows]

    def job_queue(self, submission_id: int) -> str:
        """The queue a submission's phase runs on now."""
        with self.ctx.db.session() as s:
            rows = submission_queues(s, m.Submission.id == submission_id)
        if not rows:
            raise NotFound(f"no submission {submission_id}")
        return rows[0][2]

    def queues_in_use(self) -> set[str]:
        """Queues that unfinished submissions wait on or run on."""
        with self.ctx.db.session() as s:
            rows = submission_queues(s, is_open())
        return {sent or resolved for _, sent, resolved in rows}

    def queue_positions(self, queue: str) -> dict[int, int]:
        """Position (1 = next) of every submission of `queue` that waits for a worker."""
        with self.ctx.db.session() as s:
            return queue_positions(s, queue)

    def fair_queue(self, queue: str) -> QueuePlan:
        """The line of `queue`: what was sent and waits, what waits to be sent in the fair order
        (`fairness`), and the runs sent and unfinished per slot pool."""
        with self.ctx.db.session() as s:
            return queue_plan(s, queue)

    def submission_status(self, submission_id: int) -> Optional[str]:
        with self.ctx.db.session() as s:
            return s.scalar(select(m.Submission.status).where(m.Submission.id == submission_id))

    def dispatch_key(self, submission_id: int) -> Optional[str]:
        with self.ctx.db.session() as s:
            return s.scalar(select(m.Submission.dispatch_key).where(m.Submission.id == submission_id))

    def note_programs(self, job: Job) -> None:
        """Keep, as runs waiting for their result, the programs a job carries when it is sent: its
        result's runs name these even if an organizer replaces a program while it runs."""
        with self.ctx.db.session() as s:
            sub = s.get(m.Submission, job.submission_id)
            if sub is None:
                return
            for run in [r for r in sub.runs if r.status == m.SUBMITTED]:
                sub.runs.remove(run)  # an earlier sending that never reported (lost, sent again)
            facts = {"job": job_facts(job)}
            for (index, step), key in job_program_keys(job).items():
                if key:
                    sub.runs.append(m.Run(task_index=index, step=step, attempt=0, status=m.SUBMITTED,
                                          program_key=key, provenance=facts))

    # -- the job ---------------------------------------------------------------------------------
    def job_for(self, submission_id: int) -> Job:
        """The self-contained job a worker needs to run a submission."""
        c = self.ctx.config
        with self.ctx.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            ph = s.get(m.Phase, sub.phase_id)
            comp = s.get(m.Competition, ph.competition_id)
            tasks = {t.index: t for t in comp.tasks}
            indexes = list(ph.task_indexes or sorted(index for index in tasks if index != ph.aggregation_task))
            # A CodaLab 1.8 parent's children, in task order: their outputs are res_<number> to its aggregation.
            numbers = ((comp.extra or {}).get("parallel") or {}).get(str(ph.index)) or []

            def task_job(t: m.Task, number: Any = None) -> TaskJob:
                return TaskJob(
                    index=t.index,
                    name=t.name,
                    scoring_program=t.scoring_program_key,
                    ingestion_program=t.ingestion_program_key,
                    reference_data=t.reference_data_key,
                    input_data=t.input_data_key,
                    ingestion_only_during_scoring=t.ingestion_only_during_scoring,
                    scoring_image=t.scoring_docker_image or comp.docker_image,
                    ingestion_image=t.ingestion_docker_image or comp.docker_image,
                    worker_data=dict(t.worker_data or {}),
                    phase_number=number if isinstance(number, int) and not isinstance(number, bool) else None,
                )

            job_tasks = tuple(task_job(tasks[index], numbers[position] if position < len(numbers) else None)
                              for position, index in enumerate(indexes))
            aggregation = tasks.get(ph.aggregation_task) if ph.aggregation_task is not None else None
            if aggregation is not None and not aggregation.scoring_program_key:
                aggregation = None
            job = Job(
                submission_id=sub.id,
                queue=pinned_queue(s, sub) or queue_of(s, comp, ph),
                kind=sub.kind,
                filename=sub.filename,
                submission=sub.file_key,
                store_root=str(self.ctx.store.root.resolve()) if self.ctx.store.root is not None else None,
                tasks=job_tasks,
                aggregation=task_job(aggregation) if aggregation is not None else None,
                executor=c.executor,
                executor_config=executor_settings(c.config),
                default_image=c.default_image,
                image_aliases=dict(c.image_aliases),
                limits=StepLimits(
                    time_limit=ph.execution_time_limit,
                    memory_mb=c.step_memory_mb,
                    cpus=c.step_cpus,
                    pids=c.step_pids,
                    network=ph.allow_network,
                    gpus=ph.gpus,
                ),
                step_output_mb=c.step_output_mb,
                dataset_cache_mb=c.dataset_cache_mb,
                # Header sizes in a zip can lie: the worker checks again while it unpacks.
                unpack_limits=UnpackCaps(
                    max_members=c.unpack_max_members,
                    max_total_bytes=c.unpack_max_total_bytes,
                    max_file_bytes=c.unpack_max_file_bytes,
                    max_ratio=c.unpack_max_ratio,
                ),
            )
            # A reproduction runs what its original ran: programs, data and images as pinned.
            return pinned_job(job, sub.pinned) if sub.reproduces_id is not None else job

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
        if status in (m.RUNNING, m.SCORING):  # a results submission's run starts with its scoring
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
        with self.ctx.db.session() as s:
            if not transition(s, submission_id, values, key=key, queue=queue, extra=extra):
                return False
            s.add(m.StatusChange(submission_id=submission_id, status=status, at=now, note=note))
            phase_id = s.get(m.Submission, submission_id).phase_id
        if status == m.FINISHED:
            self._finished(phase_id, submission_id)
        notify_submission(self.ctx, submission_id, status)
        return True

    def record_scores(self, submission_id: int, scores: dict[str, float]) -> None:
        """Store a finished submission's scores (replacing any earlier ones) and finish it."""
        now = m.utcnow()
        with self.ctx.db.session() as s:
            if not transition(s, submission_id, {"status": m.FINISHED, "status_changed_at": now,
                                                 "finished_at": now}):
                return
            sub = s.get(m.Submission, submission_id)
            sub.scores = [
                m.Score(key=k, value=None if v != v else float(v)) for k, v in sorted(scores.items())
            ]
            s.add(m.StatusChange(submission_id=sub.id, status=m.FINISHED, at=now))
            phase_id = sub.phase_id
        self._finished(phase_id, submission_id)
        notify_submission(self.ctx, submission_id, m.FINISHED)

    def _finished(self, phase_id: int, submission_id: int) -> None:
        if self.after_finish is not None:
            self.after_finish(phase_id, submission_id)
        else:
            self.refresh_boards(phase_id, (submission_id,))

    def refresh_boards(self, phase_id: int, finished: Sequence[int]) -> None:
        """Rank the phase's boards again after submissions `finished` finished, in a transaction of its own.

        Not in the transaction that recorded the result: the rebuild locks the
        phase's row, and a transaction that takes it after a submission's row
        while another takes them the other way round deadlocks (PostgreSQL
        then aborts one of them, and a run that had finished was recorded as
        failed).  A rebuild that fails leaves the boards as they were until
        the next change; the result stays recorded.
        """
        try:
            with self.ctx.db.session() as s:
                refresh_phase(s, phase_id, finished=finished)
        except Exception:  # noqa: BLE001 - the run is recorded whatever happens to the board
            log.exception("the leaderboards of phase %s were not ranked again after submissions %s finished",
                          phase_id, ", ".join(map(str, finished)))

    def _expects_aggregation(self, submission_id: int) -> bool:
        """The submission's phase has an aggregation step its job sends (a parent's scoring program)."""
        with self.ctx.db.session() as s:
            row = s.execute(
                select(m.Phase.aggregation_task, m.Phase.competition_id)
                .join(m.Submission, m.Submission.phase_id == m.Phase.id)
                .where(m.Submission.id == submission_id)
            ).first()
            if row is None or row[0] is None:
                return False
            return bool(s.scalar(select(m.Task.scoring_program_key).where(
                m.Task.competition_id == row[1], m.Task.index == row[0])))

    def _noted_job_facts(self, submission_id: int) -> dict[str, Any]:
        """The job's facts noted when it was sent (`note_programs`); else the job as it would be sent now."""
        with self.ctx.db.session() as s:
            for facts in s.scalars(select(m.Run.provenance).where(m.Run.submission_id == submission_id,
                                                                  m.Run.status == m.SUBMITTED)):
                if isinstance(facts, dict) and isinstance(facts.get("job"), dict):
                    return facts["job"]
        try:
            return job_facts(self.job_for(submission_id))
        except Exception:  # noqa: BLE001 - provenance is a record: the result is recorded whatever happens here
            log.exception("the job of submission %s could not be read for its provenance", submission_id)
            return {}

    def record_result(self, submission_id: int, result: Any, *, key: Optional[str] = None,
                      queue: Optional[str] = None) -> bool:
        """Record a worker's result exactly once; False if the submission was already terminal.

        The result is untrusted plain data (`JobResult.from_untrusted` checks
        every field); an unknown status becomes a failure, scores must be
        numbers.
        """
        store, config = self.ctx.store, self.ctx.config
        result = JobResult.from_untrusted(
            submission_id, result,
            host_roots=(store.root.resolve(), store.root, config.home) if store.root is not None else (config.home,),
            files_max_bytes=int(config.result_files_max_mb * 1024 * 1024),
        )
        status, error = result.status, result.error
        if status not in Status.TERMINAL:
            status, error = Status.FAILED, f"the worker returned an unknown status {status!r}"
        scores: dict[str, Optional[float]] = {}
        for name, value in result.scores.items():
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                status, error = Status.FAILED, f"score {name!r} is not a number: {value!r}"
                break
            scores[str(name)[:200]] = None if value != value else float(value)
        if (status == Status.FINISHED and self._expects_aggregation(submission_id)
                and not any(step.step == AGGREGATION_STEP for task in result.tasks for step in task.steps)):
            status, error = Status.FAILED, (
                "the phase's own scoring program (its aggregation step over the tasks' outputs) did not run: "
                "the worker that ran this submission is older than the platform; update Jupyter Compete on "
                "the queue's machines, then rerun it")
        noted = self._noted_job_facts(submission_id)
        now = m.utcnow()
        values: dict[str, Any] = {"status": status, "status_changed_at": now, "finished_at": now,
                                  "error": error if status != Status.FINISHED else None}
        if result.worker:
            values["worker"] = result.worker
        with self.ctx.db.session() as s:
            if not transition(s, submission_id, values, key=key, queue=queue):
                return False
            sub = s.get(m.Submission, submission_id)
            # What was said when it was submitted (its zip, say) stays; the run's own follow.
            warnings = [w for w in (sub.warnings or []) if isinstance(w, str) and w.startswith(UPLOAD_NOTE)]
            warnings += list(result.warnings)
            for rel, data in result.files.items():
                store.put_file_bytes(rel, data)
            sent = {(r.task_index, r.step): r for r in sub.runs if r.status == m.SUBMITTED}
            for run in sent.values():
                sub.runs.remove(run)
            attempt = 1 + max((r.attempt for r in sub.runs), default=0)
            # The programs noted when the job was sent; the tasks' current ones only for a job sent without.
            programs = {**program_keys(s, sub), **{k: r.program_key for k, r in sent.items()}}
            for task in result.tasks:
                for step in task.steps:
                    sub.runs.append(
                        m.Run(
                            task_index=task.task_index,
                            step=step.step,
                            attempt=attempt,
                            status=Status.FINISHED if step.succeeded else Status.FAILED,
                            worker=result.worker or sub.worker,
                            exit_code=step.exit_code,
                            elapsed=step.elapsed,
                            image=step.image,
                            image_digest=step.image_digest,
                            error=step.error,
                            log_path=step.log_path,
                            program_key=programs.get((task.task_index, step.step)),
                            provenance=run_provenance(
                                noted, result.provenance, task_index=task.task_index, step=step.step,
                                image=step.image, image_digest=step.image_digest, exit_code=step.exit_code,
                                elapsed=step.elapsed, program_key=programs.get((task.task_index, step.step))),
                        )
                    )
            if status == Status.FINISHED:
                sub.scores = [m.Score(key=k, value=v) for k, v in sorted(scores.items())]
            # Each task's own scores (not the aggregation step's: those are `scores`), NaN as null.
            sub.task_scores = [
                {"task": task.task_index,
                 "scores": {k: None if v != v else v for k, v in sorted(task.scores.items())}}
                for task in result.tasks
                if not task.steps or any(step.step != AGGREGATION_STEP for step in task.steps)
            ]
            # An artifact is listed only when its file is there to be served.
            artifacts = {}
            for name, rel in result.artifacts.items():
                if store.file_path(rel).is_file():
                    artifacts[name] = rel
                else:
                    warnings.append(f"{name.replace('_', ' ')} is not available: its file did not reach the platform")
            sub.artifacts = artifacts
            sub.warnings = warnings[:RESULT_WARNINGS_MAX]
            sub.dropped = [dataclasses.asdict(d) for d in result.dropped[:RESULT_WARNINGS_MAX]]
            s.add(m.StatusChange(submission_id=sub.id, status=status, at=now, note=result.worker))
            phase_id = sub.phase_id
        if status == Status.FINISHED:
            self._finished(phase_id, submission_id)
        notify_submission(self.ctx, submission_id, status)
        return True
