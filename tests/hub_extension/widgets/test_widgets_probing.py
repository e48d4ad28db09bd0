"""The leaderboard widget on a Ladder board: a participant's notebook draws the shown values, in their order,
and says why; the stored scores never reach it."""
from __future__ import annotations

import re

import pytest

from hub_extension import models as m
from hub_extension.widgets import Leaderboard
from tests.support.builders import ANN, BEN, ORGANIZER, finish, results_zip, secrets_spec
from tests.support.lab import client_for
from tests.support.service_harness import ServiceServer

pytestmark = pytest.mark.usefixtures("widget_comms")


def test_the_widget_draws_the_shown_values(platform, tmp_path):
    spec = secrets_spec(platform.store)
    spec.leaderboards[0].ladder, spec.leaderboards[0].ladder_step = "fixed", 0.05
    spec.leaderboards[0].columns[0].precision = 4
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    upload = results_zip(tmp_path)
    for actor, scores in ((BEN, [0.8, 0.8234]), (ANN, [0.7, 0.7789])):
        assert platform.register(slug, actor.username, actor, accept_terms=True) == m.APPROVED
        for value in scores:
            sid = platform.submit(slug, upload, username=actor.username, actor=actor)
            finish(platform, sid, {"accuracy": value, "secret": 0.5, "private_score": value})
    srv = ServiceServer(platform).start()
    try:
        board = Leaderboard(slug, client=client_for(srv, "ann"), refresh=0)
        html = board._table.value
        # Both shown as 0.8 and tied: the earlier row's submission (ben's 0.8234, before ann's 0.7789) first.
        assert re.findall(r'<tr data-participant="([^"]*)"', html) == ["ben", "ann"]
        assert html.count(">0.8000<") == 2 and "0.8234" not in html and "0.7789" not in html
        assert 'class="compete-leaderboard-probing"' in html and "by more than 0.05" in html
        assert "by more than 0.05" in board.state.to_text()
        board.close()
        organizer = Leaderboard(slug, client=client_for(srv, "olga"), refresh=0)
        assert "0.8234" in organizer._table.value
        organizer.close()
    finally:
        srv.stop()
