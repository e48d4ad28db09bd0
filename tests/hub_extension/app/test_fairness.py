"""The fair order of a queue's waiting submissions (pure logic)."""
from __future__ import annotations

import datetime as dt

from hub_extension.app.fairness import (
    Order,
    Waiting,
    estimated_start,
    fair_order,
    median_seconds,
    owner_of,
    to_send,
)

T0 = dt.datetime(2030, 1, 1, 12, 0)


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def w(sid: int, owner: str, seconds: float, *, phase: int = 1, scoring_only: bool = False,
      limit=None, pool=None) -> Waiting:
    return Waiting(id=sid, owner=owner, phase=phase, submitted_at=at(seconds), scoring_only=scoring_only,
                   limit=limit, pool=pool)


def test_one_owner_alone_goes_oldest_first():
    order = fair_order([w(3, "a", 3), w(1, "a", 1), w(2, "a", 2)])
    assert order.ready == [1, 2, 3] and order.held == []


def test_owners_take_turns_instead_of_first_come_first_served():
    many = [w(i, "a", i) for i in range(1, 11)]
    late = [w(100, "b", 50), w(101, "c", 51), w(102, "d", 52)]
    order = fair_order(many + late)
    assert order.ready[:5] == [1, 100, 101, 102, 2]
    assert order.ready[5:] == list(range(3, 11))


def test_the_owner_served_longest_ago_goes_first():
    waiting = [w(1, "a", 1), w(2, "b", 2), w(3, "c", 3)]
    # a was served a minute ago, b an hour ago, c never: c, b, a.
    order = fair_order(waiting, last_served={"a": at(-60), "b": at(-3600)})
    assert order.ready == [3, 2, 1]


def test_among_owners_never_served_the_longest_waiting_goes_first():
    order = fair_order([w(1, "b", 5), w(2, "a", 1), w(3, "b", 6)])
    assert order.ready == [2, 1, 3]


def test_scoring_only_submissions_go_before_prediction_steps():
    waiting = [w(1, "a", 1), w(2, "b", 2), w(3, "c", 3, scoring_only=True), w(4, "a", 4, scoring_only=True)]
    order = fair_order(waiting)
    # Scoring first, c's (waiting longer) before a's.
    assert order.ready[:2] == [3, 4]
    # Then the predictions, where a (just served its scoring) goes after b.
    assert order.ready[2:] == [2, 1]


def test_a_phase_limit_holds_an_owner_and_lets_the_others_go():
    waiting = [w(1, "a", 1, limit=1), w(2, "a", 2, limit=1), w(3, "a", 3, limit=1), w(4, "b", 4, limit=1)]
    order = fair_order(waiting)
    assert order.ready == [1, 4]
    assert order.held == [2, 3]
    assert order.positions == {1: 1, 4: 2, 2: 3, 3: 4}


def test_running_submissions_count_against_the_limit():
    waiting = [w(1, "a", 1, limit=2), w(2, "a", 2, limit=2), w(3, "b", 3, limit=2)]
    order = fair_order(waiting, running={("a", 1): 2, ("b", 1): 1})
    assert order.ready == [3] and order.held == [1, 2]


def test_the_limit_is_per_phase():
    waiting = [w(1, "a", 1, phase=1, limit=1), w(2, "a", 2, phase=1, limit=1), w(3, "a", 3, phase=2)]
    order = fair_order(waiting, running={("a", 1): 1})
    assert order.ready == [3] and order.held == [1, 2]


def test_a_team_is_one_owner():
    assert owner_of(7, 3) == owner_of(8, 3) == ("team", 3)
    assert owner_of(7, None) == ("participant", 7) != ("team", 7)


def test_send_only_what_the_free_slots_of_each_pool_take():
    order = Order(ready=[1, 2, 3, 4, 5])
    pools = {1: "gpu", 2: "gpu", 3: None, 4: None, 5: None}
    assert to_send(order, pools, {None: 2, "gpu": 1}) == [1, 3, 4]
    assert to_send(order, pools, {None: 0}) == []


def test_five_hundred_waiting_are_ordered_in_round_robin():
    waiting = [w(p * 10 + k, f"p{p}", p * 10 + k) for p in range(50) for k in range(10)]
    order = fair_order(waiting)
    assert len(order.ready) == 500
    first_round = order.ready[:50]
    assert sorted(first_round) == [p * 10 for p in range(50)]


def test_estimated_start():
    assert estimated_start(None, now=T0, typical_seconds=10, slots=2, free=0) is None
    assert estimated_start(3, now=T0, typical_seconds=10, slots=0, free=0) is None
    assert estimated_start(1, now=T0, typical_seconds=None, slots=2, free=1) == T0
    assert estimated_start(3, now=T0, typical_seconds=None, slots=2, free=0) is None
    assert estimated_start(1, now=T0, typical_seconds=10, slots=2, free=0) == at(10)
    assert estimated_start(3, now=T0, typical_seconds=10, slots=2, free=0) == at(20)
    assert estimated_start(3, now=T0, typical_seconds=10, slots=2, free=1) == at(10)


def test_median_seconds():
    assert median_seconds([]) is None
    assert median_seconds([3.0, 1.0, 2.0, None]) == 2.0
