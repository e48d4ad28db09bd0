"""The leaderboard widget where participants choose what the board shows (submission rule `Add`).

A finished submission is not on such a board until its author puts it there.
The widget says so and offers a button per own finished submission that is
not shown; the button calls the service's API, and the board then shows the
participant's row.  Everything is real but the front end (a recording comm,
as in test_widgets.py): the service's application with a real Platform, the
client, the widget.
"""
from __future__ import annotations

import re

import pytest

from hub_extension.widgets import Leaderboard
from tests.support.builders import ANN, BEN, ORGANIZER, finish, results_zip, simple_spec
from tests.support.lab import client_for
from tests.support.service_harness import ServiceServer

pytestmark = pytest.mark.usefixtures("widget_comms")


def table_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-participant="([^"]*)"', html)


def competition(platform, tmp_path, rule: str) -> tuple[str, dict[str, int]]:
    """A competition whose board has `rule`; ann and ben each have one finished submission."""
    spec = simple_spec()
    spec.leaderboards[0].submission_rule = rule
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    subs = {}
    for actor, accuracy in ((ANN, 0.7), (BEN, 0.8)):
        platform.register(slug, actor.username, actor, accept_terms=True)
        sid = platform.submit(slug, results_zip(tmp_path), username=actor.username, actor=actor)
        finish(platform, sid, {"accuracy": accuracy}, with_outputs=False)
        subs[actor.username] = sid
    return slug, subs


@pytest.fixture
def service(platform):
    srv = ServiceServer(platform).start()
    yield srv
    srv.stop()


def test_under_add_the_widget_says_how_to_get_on_the_board_and_its_button_puts_the_submission_there(
        platform, service, tmp_path):
    slug, subs = competition(platform, tmp_path, "Add")
    platform.set_selected(subs["ben"], True, BEN)  # ben chose his; ann has not yet
    board = Leaderboard(slug, client=client_for(service, "ann"), refresh=0)
    try:
        html = board._table.value
        assert table_rows(html) == ["ben"]
        how = re.search(r'<p class="compete-leaderboard-how">([^<]*)</p>', html).group(1)
        assert "submission rule Add" in how and "not on it until you choose it" in how
        assert "No finished submission yet" not in html
        # Ann's finished submission is offered, with its score, and a button for it.
        assert re.findall(r'<li data-submission="(\d+)">', html) == [str(subs["ann"])]
        assert f"Submission {subs['ann']}" in html and "Accuracy 0.70" in html
        assert list(board.choice_buttons) == [subs["ann"]]
        assert board.choice_buttons[subs["ann"]].description == "Put on the leaderboard"
        text = board.state.to_text()
        assert f"CompeteClient().select({subs['ann']})" in text

        board.choice_buttons[subs["ann"]].click()  # as a click in the front end does

        assert client_for(service, "ann").submission(subs["ann"])["selected"] is True
        html = board._table.value
        assert table_rows(html) == ["ben", "ann"]
        assert 'class="compete-own-row"' in html and "Your rank: <b>2</b>" in html
        assert f"Submission {subs['ann']} is on the leaderboard now." in html
        assert board.choice_buttons == {} and board._choices.children == ()
        assert "<li data-submission" not in html
    finally:
        board.close()


def test_under_add_with_nothing_chosen_the_board_is_empty_and_says_why(platform, service, tmp_path):
    slug, subs = competition(platform, tmp_path, "Add")
    board = Leaderboard(slug, client=client_for(service, "ben"), refresh=0)
    try:
        html = board._table.value
        assert table_rows(html) == []
        assert "No submission is on the leaderboard yet." in html and "No finished submission yet" not in html
        assert list(board.choice_buttons) == [subs["ben"]]  # ben's own only, never ann's
    finally:
        board.close()


def test_a_refused_choice_is_said_and_the_board_stays(platform, service, tmp_path):
    slug, subs = competition(platform, tmp_path, "Add")
    board = Leaderboard(slug, client=client_for(service, "ann"), refresh=0)
    try:
        assert board.choose(subs["ben"]) is False  # not hers: the service refuses
        html = board._table.value
        assert "could not be put on the leaderboard" in html and "belongs to another participant" in html
        assert table_rows(html) == [] and list(board.choice_buttons) == [subs["ann"]]
    finally:
        board.close()


def test_where_the_board_shows_the_latest_nothing_is_offered(platform, service, tmp_path):
    slug, _ = competition(platform, tmp_path, "Force_Last")
    board = Leaderboard(slug, client=client_for(service, "ann"), refresh=0)
    try:
        html = board._table.value
        assert table_rows(html) == ["ben", "ann"]
        assert "compete-leaderboard-how" not in html and board.choice_buttons == {}
        # No request for the participant's submissions where there is nothing to choose.
        assert not [e for e in board.client.request_log if e[1].endswith("/submissions")]
    finally:
        board.close()
