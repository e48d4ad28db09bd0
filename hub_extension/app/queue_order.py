"""A queue's line as the database has it: what waits, in the fair order, and when it should start.

The reads behind `fairness` (pure): every open submission in one query (the
status index answers it: only the few not finished are read), the queues
created here, and when each waiting owner was last served (one query per
kind of owner, through the indexes on phase and participant, and on team).
So a queue's positions cost the same few statements however many
submissions the platform has ever run; the estimate of a start time adds one
bounded read of the queue's last `RECENT_RUNS` finished submissions.
"""
from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any, Hashable, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from .. import models as m
from ..contract import Status
from .fairness import RECENT_RUNS, Order, Waiting, estimated_start, fair_order, median_seconds, owner_of
from .routing import queue_names, resolve_queue

# The worker slots a run needs: GPU workers' for a phase with GPUs, any worker's otherwise.
GPU_POOL = "GPU"
CPU_POOL = None
# How far back (in submissions of the whole platform) the estimate of a start time looks for runs.
RECENT_WINDOW = 1000


@dataclass
class QueuePlan:
    """One queue's line: what was sent and waits for a worker, what waits to be sent (in order), what runs."""

    queue: str
    sent_waiting: list[int] = field(default_factory=list)  # sent, no worker took it yet (oldest sent first)
    order: Order = field(default_factory=Order)  # not sent yet, in the fair order
    pools: dict[int, Hashable] = field(default_factory=dict)  # the slot pool of every open submission
    in_flight: dict[Hashable, int] = field(default_factory=dict)  # sent and unfinished, by pool

    @property
    def positions(self) -> dict[int, int]:
        """Position (1 = next) of every submission of the queue that waits for a worker."""
        line = self.sent_waiting + self.order.ready + self.order.held
        return {sid: i + 1 for i, sid in enumerate(line)}


def queue_plan(s: Session, queue: str) -> QueuePlan:
    """The line of `queue` (see `QueuePlan`), in a fixed number of statements."""
    rows = s.execute(
        select(m.Submission.id, m.Submission.queue, m.Phase.queue, m.Competition.queue, m.Submission.status,
               m.Submission.dispatch_key, m.Submission.dispatched_at, m.Submission.participant_id,
               m.Submission.team_id, m.Submission.phase_id, m.Submission.kind, m.Submission.submitted_at,
               m.Phase.max_concurrent_submissions, m.Phase.gpus, m.Submission.reproduces_id, m.Submission.pinned)
        .join(m.Phase, m.Submission.phase_id == m.Phase.id)
        .join(m.Competition, m.Phase.competition_id == m.Competition.id)
        .where(m.Submission.status.in_(Status.STEPS))
        .order_by(m.Submission.id)
    ).all()
    existing = queue_names(s)
    plan = QueuePlan(queue=queue)
    running: dict[tuple[Hashable, int], int] = {}
    waiting: list[Waiting] = []
    sent: list[tuple[dt.datetime, int]] = []
    for (sid, sent_to, phase_queue, comp_queue, status, key, dispatched_at, participant, team, phase, kind,
         submitted_at, limit, gpus, reproduces, pinned) in rows:
        owner = owner_of(participant, team)
        pool = GPU_POOL if gpus else CPU_POOL
        if key is not None:
            # Sent and unfinished: it holds a slot of its owner's limit wherever it runs.
            running[(owner, phase)] = running.get((owner, phase), 0) + 1
            if sent_to == queue:
                plan.in_flight[pool] = plan.in_flight.get(pool, 0) + 1
                plan.pools[sid] = pool
                if status == m.SUBMITTED:
                    sent.append((dispatched_at or submitted_at, sid))
            continue
        # A reproduction runs on the queue its organizer chose, when they chose one (`routing.submission_queues`).
        chosen = (pinned or {}).get("queue") if reproduces is not None else None
        if status != m.SUBMITTED or (sent_to or resolve_queue(existing, chosen, phase_queue, comp_queue)) != queue:
            continue
        plan.pools[sid] = pool
        waiting.append(Waiting(id=sid, owner=owner, phase=phase, submitted_at=submitted_at,
                               scoring_only=kind == "results", limit=limit, pool=pool))
    plan.sent_waiting = [sid for _, sid in sorted(sent)]
    plan.order = fair_order(waiting, last_served=_last_served(s, waiting), running=running)
    return plan


def _last_served(s: Session, waiting: list[Waiting]) -> dict[Hashable, dt.datetime]:
    """When each owner of `waiting` last had a submission sent (owners never served are absent)."""
    served: dict[Hashable, dt.datetime] = {}
    people = {w.owner[1] for w in waiting if w.owner[0] == "participant"}
    phases = {w.phase for w in waiting if w.owner[0] == "participant"}
    teams = {w.owner[1] for w in waiting if w.owner[0] == "team"}
    if people:
        for participant, at in s.execute(
            select(m.Submission.participant_id, func.max(m.Submission.dispatched_at))
            .where(m.Submission.phase_id.in_(phases), m.Submission.participant_id.in_(people),
                   m.Submission.team_id.is_(None), m.Submission.dispatched_at.is_not(None))
            .group_by(m.Submission.participant_id)
        ):
            served[owner_of(participant, None)] = at
    if teams:
        for team, at in s.execute(
            select(m.Submission.team_id, func.max(m.Submission.dispatched_at))
            .where(m.Submission.team_id.in_(teams), m.Submission.dispatched_at.is_not(None))
            .group_by(m.Submission.team_id)
        ):
            served[owner_of(0, team)] = at
    return served


def typical_run_seconds(s: Session, queue: str) -> Optional[float]:
    """The median time of the last `RECENT_RUNS` submissions that finished on `queue`, among the
    platform's last `RECENT_WINDOW` submissions (None: none there).

    Read from the newest submissions down (the primary key's index, a bounded read): no index
    leads with a submission's queue, and the finished ones are most of the table.
    """
    recent = (select(m.Submission.id, m.Submission.queue, m.Submission.status, m.Submission.started_at,
                     m.Submission.finished_at)
              .order_by(m.Submission.id.desc()).limit(RECENT_WINDOW).subquery())
    rows = s.execute(
        select(recent.c.started_at, recent.c.finished_at)
        .where(recent.c.queue == queue, recent.c.status == m.FINISHED, recent.c.started_at.is_not(None))
        .order_by(recent.c.id.desc())
        .limit(RECENT_RUNS)
    ).all()
    return median_seconds([(finished - started).total_seconds() for started, finished in rows if finished])


def slots_of(workers: list[Any], pool: Hashable) -> int:
    """Runs the queue's workers (as the dispatcher last saw them) take at once in `pool`."""
    total = 0
    for worker in workers or []:
        if not isinstance(worker, dict) or worker.get("status", "running") != "running":
            continue
        if pool == GPU_POOL:
            total += int(float((worker.get("resources") or {}).get("GPU", 0) or 0))
        else:
            total += int(worker.get("nthreads") or 0)
    return total


def waiting_estimate(s: Session, plan: QueuePlan, sid: int, now: dt.datetime) -> dict[str, Any]:
    """`queue_position` and `estimated_start` (ISO text or None) of a submission waiting in `plan`'s queue."""
    position = plan.positions.get(sid)
    if position is None:
        return {"queue_position": None, "estimated_start": None}
    state = s.get(m.QueueState, plan.queue)
    workers = list(state.workers or []) if state is not None and state.connected else []
    pool = plan.pools.get(sid)
    slots = slots_of(workers, pool)
    # Free slots for the line: those not taken by a run a worker already has (the runs sent that
    # no worker took yet are the head of the line).
    sent_waiting = sum(1 for other in plan.sent_waiting if plan.pools.get(other) == pool)
    free = slots - (plan.in_flight.get(pool, 0) - sent_waiting)
    typical = typical_run_seconds(s, plan.queue) if position > max(0, free) and slots > 0 else None
    start = estimated_start(position, now=now, typical_seconds=typical, slots=slots, free=free)
    return {"queue_position": position, "estimated_start": start.isoformat() if start is not None else None}
