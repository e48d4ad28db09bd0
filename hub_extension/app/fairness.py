"""Fair share of a queue: the order in which waiting submissions go to free workers.

Pure logic, no I/O: the runs ledger (`runs.Runs.fair_queue`) reads what waits
and what runs in one query, and the dispatcher sends the head of the order
this module gives, as many as the queue has free worker slots.

The order, for the submissions of one queue that wait to be sent:

1. submissions that only score (results submissions, whose job has no
   prediction step) before those that run a prediction step first: scoring
   is short, and the participant who sent predictions waits for a number;
2. within each of these two classes, round-robin across owners (a team, or a
   participant without a team): the owner served longest ago goes first
   (never served: first of all, the one whose oldest submission waits
   longest leading), and once it is served it goes to the back;
3. within an owner, the oldest submission first.

A phase's `max_concurrent_submissions` holds an owner to that many
submissions of the phase sent and unfinished at once: the others are held
(listed after every submission that may go now, in the same order), never
refused.  EvalAI refuses such a submission instead (HTTP 406).

The order is a simulation of the dispatcher's picks, so the position of a
waiting submission is the number of picks before its own.
"""
from __future__ import annotations

import datetime as dt
import heapq
import math
import statistics
from dataclasses import dataclass, field
from typing import Hashable, Iterable, Mapping, Optional, Sequence

# An owner: ("team", team id) or ("participant", participant id).
Owner = tuple[str, int]

# How many recent runs of a queue the estimate of a start time reads.
RECENT_RUNS = 50


def owner_of(participant_id: int, team_id: Optional[int]) -> Owner:
    """Whose turn a submission takes: its team's when it was made for a team, else its participant's."""
    return ("team", team_id) if team_id is not None else ("participant", participant_id)


@dataclass(slots=True)
class Waiting:
    """A submission waiting to be sent, as the order needs it."""

    id: int
    owner: Hashable
    phase: int
    submitted_at: dt.datetime
    scoring_only: bool = False  # its job has no prediction step (a results submission)
    limit: Optional[int] = None  # its phase's max_concurrent_submissions (None: no limit)
    pool: Hashable = None  # the kind of worker slot it needs (GPU or not): slots are counted per pool


@dataclass
class Order:
    """The dispatch order of a queue's waiting submissions."""

    ready: list[int] = field(default_factory=list)  # may go now, in this order
    held: list[int] = field(default_factory=list)  # their owner is at their phase's limit, in order after `ready`

    @property
    def positions(self) -> dict[int, int]:
        """Position (1 = next) of every waiting submission: the ready ones, then the held ones."""
        return {sid: i + 1 for i, sid in enumerate(self.ready + self.held)}


def fair_order(waiting: Iterable[Waiting], *, last_served: Mapping[Hashable, dt.datetime] = {},
               running: Mapping[tuple[Hashable, int], int] = {}) -> Order:
    """The order in which `waiting` goes to workers (see the module's docstring).

    `last_served`: when each owner last had a submission sent (owners absent
    were never served); `running`: submissions sent and unfinished, by
    (owner, phase), which count against the phases' limits.
    """
    classes: dict[bool, list[Waiting]] = {True: [], False: []}
    for w in waiting:
        classes[bool(w.scoring_only)].append(w)
    in_use = dict(running)
    # Served times as sortable keys: never served (0, …) first, then by time; each pick of
    # the simulation is later than any real time (2, pick number).
    served: dict[Hashable, tuple] = {owner: (1, at) for owner, at in last_served.items()}
    picks = 0
    order = Order()
    for scoring_only in (True, False):
        by_owner: dict[Hashable, list[Waiting]] = {}
        for w in sorted(classes[scoring_only], key=lambda w: (w.submitted_at, w.id)):
            by_owner.setdefault(w.owner, []).append(w)
        heap = [(served.get(owner, (0,)), (items[0].submitted_at, items[0].id), n, owner)
                for n, (owner, items) in enumerate(by_owner.items())]
        heapq.heapify(heap)
        held: list[Waiting] = []
        next_of = {owner: 0 for owner in by_owner}
        while heap:
            _, _, n, owner = heapq.heappop(heap)
            items = by_owner[owner]
            i = next_of[owner]
            pick = None
            while i < len(items):
                w = items[i]
                i += 1
                if w.limit is not None and in_use.get((owner, w.phase), 0) >= w.limit:
                    held.append(w)  # a simulated pick never frees a slot of its owner: held to the end
                    continue
                pick = w
                break
            next_of[owner] = i
            if pick is None:
                continue
            order.ready.append(pick.id)
            in_use[(owner, pick.phase)] = in_use.get((owner, pick.phase), 0) + 1
            picks += 1
            served[owner] = (2, picks)
            if i < len(items):
                heapq.heappush(heap, (served[owner], (items[i].submitted_at, items[i].id), n, owner))
        order.held.extend(w.id for w in sorted(held, key=lambda w: (w.submitted_at, w.id)))
    return order


def to_send(order: Order, pools: Mapping[int, Hashable], free: Mapping[Hashable, int]) -> list[int]:
    """The head of `order.ready` that fits the free slots of each pool (`free`, by pool; a pool not named
    has none), skipping a submission whose pool is full so that it does not block another pool's."""
    left = dict(free)
    chosen = []
    for sid in order.ready:
        pool = pools.get(sid)
        if left.get(pool, 0) > 0:
            left[pool] -= 1
            chosen.append(sid)
    return chosen


def median_seconds(durations: Sequence[float]) -> Optional[float]:
    """The median of recent run times (seconds); None without any."""
    usable = [d for d in durations if d is not None and d >= 0]
    return statistics.median(usable) if usable else None


def estimated_start(position: Optional[int], *, now: dt.datetime, typical_seconds: Optional[float],
                    slots: int, free: int) -> Optional[dt.datetime]:
    """When a submission at `position` should start: now while a free slot waits for it, else after
    as many rounds of typical runs on `slots` slots as there are submissions before it past the free ones.

    None when it cannot be told: no position, no worker slot, or no run finished on the queue yet.
    """
    if position is None or slots <= 0:
        return None
    if position <= max(0, free):
        return now
    if typical_seconds is None:
        return None
    rounds = math.ceil((position - max(0, free)) / slots)
    return now + dt.timedelta(seconds=rounds * typical_seconds)
