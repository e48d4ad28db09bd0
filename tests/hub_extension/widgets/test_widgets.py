"""The leaderboard widget and its logic, against the real REST API, with no browser.

Widgets need a kernel's comm to talk to a front end; here a recording comm
stands in for it (the messages are kept, nothing is sent), as in ipywidgets'
own tests.  Everything else is real: the service's application with a real
Platform (tests/support/service_harness.py), the client, the timer threads.
"""
from __future__ import annotations

import re
import threading
import time

import pytest

from hub_extension.client import CompeteClient
from hub_extension.widgets import Leaderboard, LeaderboardState, Refresher
from tests.support.builders import build_world, finish, results_zip
from tests.support.lab import client_for, wait_for
from tests.support.service_harness import ServiceServer

pytestmark = pytest.mark.usefixtures("widget_comms")


def leaderboard_gets(client: CompeteClient, slug: str) -> list[tuple]:
    return [e for e in list(client.request_log) if e[1] == f"competitions/{slug}/leaderboard"]


def table_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-participant="([^"]*)"', html)


# -- the timer ---------------------------------------------------------------------------------------
def test_refresher_calls_until_stopped_and_never_after():
    calls = []
    refresher = Refresher(lambda: calls.append(time.monotonic()), 0.05).start()
    wait_for(lambda: len(calls) >= 3, what="three calls")
    refresher.stop()
    assert not refresher.running
    count = len(calls)
    time.sleep(0.3)
    assert len(calls) == count


def test_refresher_waits_longer_after_failures_and_can_be_triggered():
    results = iter([False, False, True])
    calls = []

    def callback():
        calls.append(time.monotonic())
        return next(results, True)

    refresher = Refresher(callback, 0.1)
    assert refresher.delay == 0.1
    refresher.start()
    wait_for(lambda: len(calls) >= 3, what="three calls")
    refresher.stop()
    gaps = [b - a for a, b in zip(calls, calls[1:])]
    assert gaps[0] >= 0.18 and gaps[1] >= 0.38  # 2x, then 4x the interval
    assert refresher.failures == 0

    slow = Refresher(lambda: calls.append("now"), 60).start()
    slow.trigger()
    wait_for(lambda: "now" in calls, what="the triggered call")
    slow.stop()


def test_refresher_survives_a_raising_callback():
    calls = []

    def callback():
        calls.append(1)
        raise RuntimeError("boom")

    refresher = Refresher(callback, 0.02).start()
    wait_for(lambda: len(calls) >= 2, what="a second call after the error")
    refresher.stop()
    with pytest.raises(ValueError):
        Refresher(callback, 0)


# -- what the leaderboard shows ---------------------------------------------------------------------
def test_state_shows_only_visible_columns_and_boards(server, world):
    state = LeaderboardState(client_for(server, "ann"), world.slug)
    assert state.load() and state.refresh()
    assert state.phase == 1 and state.username == "ann"
    assert [b["key"] for b in state.boards] == ["main"]
    html = state.to_html()
    assert table_rows(html) == ["ben", "ann"]
    assert '<tr data-participant="ann" data-rank="2" class="compete-own-row"' in html
    assert 'class="compete-leaderboard"' in html and "Your rank: <b>2</b> of 2" in html
    for secret in (">Secret<", '"secret"', "Private", "private_score", "0.20", "0.30", "0.35", "0.40"):
        assert secret not in html, secret
    text = state.to_text()
    assert text.splitlines()[0] == "Secrets \u2014 phase 1 (Development)"
    assert ">  2  ann" in text and "secret" not in text.lower().replace("secrets", "")
    assert not state.refresh()  # a 304: nothing to redraw


def test_state_shows_only_what_it_received(server, world):
    state = LeaderboardState(client_for(server, "ann"), world.slug)
    state.load()
    # Even if an answer carried more scores than columns, only the columns are drawn.
    state.data = {"competition": world.slug, "phase": 1, "board": "main", "title": "Results", "note": "",
                  "columns": [{"key": "accuracy", "title": "Accuracy", "sorting": "desc", "precision": 3}],
                  "rows": [{"rank": 1, "participant": "ann", "submission": 1, "submitted_at": None,
                            "scores": {"accuracy": 0.5, "secret": 0.123456}}]}
    html = state.to_html()
    assert "0.500" in html and "0.123" not in html and "secret" not in html.lower().replace("secrets", "")


def test_state_sorts_with_missing_values_last(server, world):
    state = LeaderboardState(client_for(server, "olga"), world.slug)
    state.load()
    state.refresh()
    state.data = dict(state.data, rows=[
        {"rank": 2, "participant": "bob", "scores": {"accuracy": 0.7, "secret": None}, "submitted_at": "2030-01-02"},
        {"rank": 1, "participant": "Amy", "scores": {"accuracy": 0.9, "secret": 0.2}, "submitted_at": "2030-01-01"},
        {"rank": None, "participant": "cid", "scores": {"accuracy": float("nan"), "secret": 0.1},
         "submitted_at": "2030-01-03"},
    ])
    order = lambda: [r["participant"] for r in state.rows()]  # noqa: E731
    assert order() == ["Amy", "bob", "cid"]
    state.sort_by("participant")
    assert order() == ["Amy", "bob", "cid"]
    state.sort_by("participant", reverse=True)
    assert order() == ["cid", "bob", "Amy"]
    state.sort_by("accuracy", reverse=False)  # higher is better: best first
    assert order() == ["Amy", "bob", "cid"]
    state.sort_by("secret")  # higher is better (the default sorting), missing last
    assert order() == ["Amy", "cid", "bob"]
    state.sort_by("secret", reverse=True)
    assert order() == ["cid", "Amy", "bob"]
    state.reverse = False
    state.sort_by("submitted_at")
    assert order() == ["cid", "bob", "Amy"]
    html = state.to_html()
    assert "Submitted \u25be" in html and "\u2014" in html
    with pytest.raises(ValueError, match="cannot sort by 'nope'"):
        state.sort_by("nope")


def test_blind_phase_shows_its_note_and_no_scores(platform, tmp_path):
    world = build_world(platform, tmp_path, blind=True)
    srv = ServiceServer(platform).start()
    try:
        board = Leaderboard(world.slug, client=client_for(srv, "ann"), refresh=0)
        html = board._table.value
        assert table_rows(html) == [] and 'class="compete-leaderboard-note"' in html
        assert "0.70" not in html and "0.80" not in html
        assert "No finished submission yet" not in html
        assert board.state.to_text().splitlines()[-1] == board.state.data["note"]
        board.close()
    finally:
        srv.stop()


# -- the widget ---------------------------------------------------------------------------------------
def test_widget_renders_the_table_and_a_readable_repr(server, world):
    board = Leaderboard(world.slug, client=client_for(server, "ann"), refresh=0)
    assert "compete-leaderboard-widget" in board._dom_classes
    assert table_rows(board._table.value) == ["ben", "ann"]
    assert board._phase.value == 1 and board._phase.options == (("1: Development", 1), ("2: Final", 2))
    assert board._board.layout.display == "none"  # one board: no choice to offer
    bundle = board._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert 'class="compete-leaderboard"' in bundle["text/html"] and "<script" not in bundle["text/html"]
    assert bundle["text/plain"].startswith("Secrets \u2014 phase 1")
    assert repr(board) == f"<Leaderboard {world.slug} phase 1: 2 rows>"
    assert not board.refreshing
    board.close()
    # Closed, it is no widget any more; IPython shows its HTML and text.
    from IPython.core.formatters import DisplayFormatter

    shown, _ = DisplayFormatter().format(board)
    assert "application/vnd.jupyter.widget-view+json" not in shown
    assert table_rows(shown["text/html"]) == ["ben", "ann"]


def test_widget_phase_board_and_sort_controls(server, world):
    board = Leaderboard(world.slug, client=client_for(server, "olga"), refresh=0)
    assert board._board.layout.display is None and [k for _, k in board._board.options] == ["main", "private"]
    assert "Secret" in board._table.value  # the organizer sees the hidden column
    board._board.value = "private"
    assert "Private score" in board._table.value and board.state.board == "private"
    board._phase.value = 2
    assert board.state.phase == 2 and table_rows(board._table.value) == []
    assert "No finished submission yet." in board._table.value
    board._phase.value = 1
    board._board.value = "main"
    board._sort.value = "participant"
    assert table_rows(board._table.value) == ["ann", "ben"]
    board._reverse.value = True
    assert table_rows(board._table.value) == ["ben", "ann"]
    board.close()


def test_widget_refreshes_with_etag_and_stops_when_closed(server, world, platform, monkeypatch):
    monkeypatch.setattr(Leaderboard, "min_refresh", 0.1)
    client = client_for(server, "ann")
    board = Leaderboard(world.slug, client=client, refresh=0.1)
    assert board.refreshing
    wait_for(lambda: len(leaderboard_gets(client, world.slug)) >= 4, what="refreshes")
    gets = leaderboard_gets(client, world.slug)
    assert gets[0][2] == 200 and {g[2] for g in gets[1:]} == {304}
    renders = board.renders
    time.sleep(0.3)
    assert board.renders == renders  # a 304 redraws nothing
    assert "Updated" in board._status.value and "refreshed every 0.1 s" in board._status.value

    finish(platform, world.subs["ann_waiting"], {"accuracy": 0.95, "secret": 0.0, "private_score": 0.1})
    wait_for(lambda: table_rows(board._table.value) == ["ann", "ben"], what="the new row")
    assert board.renders > renders and "Your rank: <b>1</b>" in board._table.value

    board.close()
    assert not board.refreshing
    count = len(leaderboard_gets(client, world.slug))
    time.sleep(0.5)
    assert len(leaderboard_gets(client, world.slug)) == count
    assert "Closed" in board._status.value
    assert board.refresh_now() is False and len(leaderboard_gets(client, world.slug)) == count


def test_refresh_is_never_faster_than_the_floor(server, world):
    board = Leaderboard(world.slug, client=client_for(server, "ann"), refresh=0.01)
    try:
        assert board.refresh_interval == Leaderboard.min_refresh == 5.0
    finally:
        board.close()


def test_widget_shows_errors_and_keeps_the_last_table(platform, tmp_path, monkeypatch):
    monkeypatch.setattr(Leaderboard, "min_refresh", 0.05)
    world = build_world(platform, tmp_path)
    srv = ServiceServer(platform).start()
    client = client_for(srv, "ann", timeout=1)
    board = Leaderboard(world.slug, client=client, refresh=0.05)
    assert table_rows(board._table.value) == ["ben", "ann"]
    srv.stop()
    wait_for(lambda: board.state.error is not None, what="the refresh error")
    html = board._table.value
    assert table_rows(html) == ["ben", "ann"]  # the last good table stays
    assert 'class="compete-leaderboard-error"' in html
    assert "cannot reach the competition service" in html or "did not answer in time" in html
    assert "Could not refresh" in board._status.value
    wait_for(lambda: board._refresher.failures >= 2, what="a backoff")
    assert board._refresher.delay > board.refresh_interval
    board.close()


def test_widget_for_an_unknown_competition_or_without_a_service(server, world, monkeypatch):
    board = Leaderboard("no-such-competition", client=client_for(server, "ann"), refresh=30)
    assert "no-such-competition" in board._table.value and "compete-leaderboard-error" in board._table.value
    assert "not found" in board._table.value or "no competition" in board._table.value
    board.close()
    for name in ("COMPETE_SERVICE_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    offline = Leaderboard(world.slug)
    assert offline.client is None and not offline.refreshing
    assert "COMPETE_SERVICE_URL" in offline._table.value and "COMPETE_SERVICE_URL" in offline.state.to_text()
    offline.close()


def test_closing_while_a_refresh_runs_waits_for_it(server, world, monkeypatch):
    """`close()` returns only when the timer thread is done: no request can start after it."""
    monkeypatch.setattr(Leaderboard, "min_refresh", 0.01)
    client = client_for(server, "ann")
    started = threading.Event()
    release = threading.Event()
    original = client.get_cached

    def slow_get(*args, **kwargs):
        started.set()
        release.wait(5)
        return original(*args, **kwargs)

    board = Leaderboard(world.slug, client=client, refresh=0.01)
    client.get_cached = slow_get
    assert started.wait(5)
    closer = threading.Thread(target=board.close)
    closer.start()
    time.sleep(0.2)
    assert closer.is_alive()  # waiting for the refresh in flight
    release.set()
    closer.join(5)
    count = len(leaderboard_gets(client, world.slug))
    time.sleep(0.2)
    assert len(leaderboard_gets(client, world.slug)) == count


def test_new_submission_appears_after_the_next_refresh(server, world, platform, tmp_path):
    board = Leaderboard(world.slug, client=client_for(server, "nora"), refresh=0)
    assert "compete-own-row" not in board._table.value
    platform.register(world.slug, "nora", accept_terms=True)
    sid = platform.submit(world.slug, results_zip(tmp_path), username="nora")
    finish(platform, sid, {"accuracy": 0.99, "secret": 0.5, "private_score": 0.5})
    assert board.refresh_now() is True
    assert table_rows(board._table.value) == ["nora", "ben", "ann"]
    assert '<tr data-participant="nora" data-rank="1" class="compete-own-row"' in board._table.value
    board.close()
