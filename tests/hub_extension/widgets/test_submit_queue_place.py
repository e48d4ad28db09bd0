"""The Submit widget's status line while a submission waits: its place in the queue and its estimated start."""
from __future__ import annotations

import datetime as dt

from hub_extension.widgets.submit import SubmitState


def waiting_state(**extra) -> SubmitState:
    state = SubmitState(None, "demo")
    state.update({"id": 7, "status": "Submitted",
                  "waiting": {"position": 3, "note": "waiting for a free worker of queue 'default' (1 attached)"},
                  "queue_position": 3, **extra})
    return state


def test_the_estimated_start_is_said_when_there_is_one():
    soon = (dt.datetime.now(dt.timezone.utc).replace(tzinfo=None) + dt.timedelta(minutes=5)).replace(microsecond=0)
    text = waiting_state(estimated_start=soon.isoformat())._detail()
    assert text.startswith("Waiting in the queue: position 3 \u2014 waiting for a free worker"), text
    assert text.endswith(f"Expected to start about {soon:%H:%M} UTC.") or \
        text.endswith(f"Expected to start about {soon:%Y-%m-%d %H:%M} UTC."), text
    later = waiting_state(estimated_start="2099-01-02T03:04:00")._detail()
    assert later.endswith("Expected to start about 2099-01-02 03:04 UTC."), later


def test_no_estimate_says_nothing_of_a_start():
    for value in (None, "", "not a date"):
        text = waiting_state(estimated_start=value)._detail()
        assert text == "Waiting in the queue: position 3 \u2014 waiting for a free worker of queue 'default' " \
                       "(1 attached).", text
