"""Which queue a submission runs on: the one rule, and the one query that applies it to many.

A submission sent to a queue runs there (`Submission.queue`, set when it is
claimed).  Until then its queue is the phase's, else the competition's, else
the default; a queue named by a bundle but not created here (a Codabench queue
id, say) means the default queue, and creating a queue of that name moves the
competition's new runs to it.
"""
from __future__ import annotations

from typing import Any, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import models as m

DEFAULT_QUEUE = "default"


def queue_names(s: Session) -> set[str]:
    """The queues created here (the default queue has no row)."""
    return set(s.scalars(select(m.Queue.name)))


def resolve_queue(existing: set[str], *named: Optional[str]) -> str:
    """The first queue named, if it exists here; the default queue otherwise."""
    for name in named:
        if name:
            return name if name in existing else DEFAULT_QUEUE
    return DEFAULT_QUEUE


def queue_of(s: Session, comp: m.Competition, ph: m.Phase) -> str:
    """The queue a phase runs on: the phase's, else the competition's, else the default."""
    return resolve_queue(queue_names(s), ph.queue, comp.queue)


def submission_queues(s: Session, *where: Any, order_by: tuple[Any, ...] = (m.Submission.id,)) -> list[tuple[int, Optional[str], str]]:
    """`(id, queue sent to or None, queue its phase runs on)` of the submissions matching `where`."""
    q = (
        select(m.Submission.id, m.Submission.queue, m.Phase.queue, m.Competition.queue, m.Submission.reproduces_id,
               m.Submission.pinned)
        .join(m.Phase, m.Submission.phase_id == m.Phase.id)
        .join(m.Competition, m.Phase.competition_id == m.Competition.id)
        .where(*where)
        .order_by(*order_by)
    )
    rows = s.execute(q).all()
    existing = queue_names(s)
    # A reproduction runs on the queue its organizer chose (`reproduce`), when they chose one.
    return [(sid, sent, resolve_queue(existing, (pinned or {}).get("queue") if reproduces else None, pq, cq))
            for sid, sent, pq, cq, reproduces, pinned in rows]


def queue_positions(s: Session, queue: str) -> dict[int, int]:
    """Position (1 = next) of every submission of `queue` that waits for a worker, in the fair order
    the dispatcher sends them in (`queue_order`, `fairness`)."""
    from .queue_order import queue_plan  # it reads the queues through this module

    return queue_plan(s, queue).positions
