"""The submit box's fact sheet, against the real REST API: fields built from the questions, answers sent."""
from __future__ import annotations

import re

import pytest

from hub_extension.widgets import Leaderboard, Submit
from tests.support.builders import BEN, ORGANIZER, finish, results_zip
from tests.support.lab import client_for, wait_for

pytestmark = pytest.mark.usefixtures("widget_comms")

QUESTIONS = [
    {"key": "method", "type": "text", "title": "Method name", "is_required": True},
    {"key": "extra_data", "type": "checkbox", "title": "Extra data?", "is_required": True},
    {"key": "family", "type": "select", "title": "Model family", "selection": ["tree", "net"]},
]


@pytest.fixture
def cwd(monkeypatch, tmp_path):
    monkeypatch.setattr(Submit, "follow_interval", 0.02)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    results_zip(folder, "predictions.zip")
    return folder


def test_the_box_asks_the_questions_and_sends_the_answers(server, world, platform, cwd):
    assert platform.save_fact_sheet(world.slug, QUESTIONS, ORGANIZER).saved
    box = Submit(world.slug, client=client_for(server, "ann"))
    sheet = box._fact_sheet
    assert sheet in box.children and "compete-fact-sheet" in sheet._dom_classes
    fields = sheet.fields
    assert [type(f).__name__ for f in fields.values()] == ["Text", "Checkbox", "Dropdown"]
    assert fields["method"].description == "Method name *"
    assert fields["family"].options == (("\u2014", ""), ("tree", "tree"), ("net", "net"))

    # A required question left empty is said before anything is uploaded.
    fields["method"].value = "Boosting"
    before = len(platform.submissions_view(world.slug, ORGANIZER)["items"])
    box._button.click()
    assert box.state.stage == "error"
    assert box.state.error == ("fact sheet: 'Extra data?' (extra_data) is required: tick it to submit. "
                               "Nothing was submitted.")
    assert len(platform.submissions_view(world.slug, ORGANIZER)["items"]) == before

    fields["extra_data"].value = True
    fields["family"].value = "tree"
    box._button.click()
    wait_for(lambda: box.state.info is not None, 20, "the submission")
    sid = box.state.info["id"]
    answers = {q["key"]: q["answer"] for q in platform.submission_view(sid, ORGANIZER)["fact_sheet"]}
    assert answers == {"method": "Boosting", "extra_data": True, "family": "tree"}
    box.close()


def test_a_competition_without_questions_shows_no_fact_sheet(server, world, cwd):
    box = Submit(world.slug, client=client_for(server, "ann"))
    assert box._fact_sheet.questions == [] and box._fact_sheet.layout.display == "none"
    assert box._fact_sheet.answers() == {}
    box.close()


def test_the_leaderboard_widget_shows_the_answers_the_board_shows(server, world, platform, cwd):
    marked = [dict(q, is_on_leaderboard=q["key"] == "family") for q in QUESTIONS]
    assert platform.save_fact_sheet(world.slug, marked, ORGANIZER).saved
    sid = platform.submit(world.slug, cwd / "predictions.zip", username="ben", actor=BEN,
                          fact_sheet={"method": "m", "extra_data": True, "family": "tree"})
    finish(platform, sid, {"accuracy": 0.99, "secret": 0, "private_score": 0})
    board = Leaderboard(world.slug, client=client_for(server, "ann"), refresh=0)
    table = board._table.value
    assert '<th data-fact-sheet="family"' in table and ">Model family</th>" in table
    assert re.search(r'data-participant="ben".*?<td data-fact-sheet="family"[^>]*>tree</td>', table, re.S)
    board.close()
