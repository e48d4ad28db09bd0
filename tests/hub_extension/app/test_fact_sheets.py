"""Fact sheets: questions edited by the organizers, answers checked at submission, shown, exported, on boards."""
from __future__ import annotations

import csv
import io

import pytest
from sqlalchemy import func, select

from hub_extension import models as m
from hub_extension.app import Forbidden, PlatformError

from tests.support.builders import ANN, BEN, NORA, ORGANIZER, finish, results_zip

QUESTIONS = [
    {"key": "method", "type": "text", "title": "Method name", "is_required": True, "is_on_leaderboard": True},
    {"key": "extra_data", "type": "checkbox", "title": "Extra data?"},
    {"key": "family", "type": "select", "title": "Model family", "selection": "tree\nnet",
     "is_on_leaderboard": True},
]


def submission_count(platform) -> int:
    with platform.db.session() as s:
        return s.scalar(select(func.count(m.Submission.id)))


@pytest.fixture
def asked(platform, world):
    edit = platform.save_fact_sheet(world.slug, QUESTIONS, ORGANIZER)
    assert edit.saved, edit.problems
    return world


def test_the_organizers_questions_are_saved_as_the_bundle_reads_them(platform, asked):
    questions = platform.fact_sheet(asked.slug, ANN)
    assert questions == [
        {"key": "method", "type": "text", "title": "Method name", "selection": [], "is_required": True,
         "is_on_leaderboard": True},
        {"key": "extra_data", "type": "checkbox", "title": "Extra data?", "selection": [], "is_required": False,
         "is_on_leaderboard": False},
        {"key": "family", "type": "select", "title": "Model family", "selection": ["tree", "net"],
         "is_required": False, "is_on_leaderboard": True},
    ]
    assert platform.competition_detail(asked.slug, ANN)["fact_sheet"] == questions
    text = platform.competition_yaml(asked.slug, ORGANIZER)
    assert "fact_sheet:" in text and "is_required: 'true'" in text
    # Every board shows the questions marked for it; saving the YAML as shown changes nothing.
    spec = platform.editable_spec(asked.slug, ORGANIZER)
    assert [b.fact_sheet_columns for b in spec.leaderboards] == [["method", "family"], ["method", "family"]]
    assert platform.save_competition_yaml(asked.slug, text, ORGANIZER).saved
    assert platform.fact_sheet(asked.slug, ANN) == questions


def test_a_malformed_question_from_the_form_is_refused_and_nothing_saved(platform, world):
    edit = platform.save_fact_sheet(world.slug, [{"key": "q", "type": "radio", "title": "T"},
                                                 {"key": "s", "type": "select", "title": "S"}], ORGANIZER)
    assert not edit.saved
    assert "competition.yaml: fact_sheet.q.type: must be one of text, checkbox, select, got 'radio'" in edit.problems
    assert any(p.startswith("competition.yaml: fact_sheet.s.selection:") for p in edit.problems)
    assert platform.fact_sheet(world.slug, ANN) == []
    with pytest.raises(Forbidden):
        platform.save_fact_sheet(world.slug, QUESTIONS, ANN)


def test_answers_are_checked_by_type_and_the_required_question_is_named(platform, asked, tmp_path):
    upload = results_zip(tmp_path)
    cases = [
        ({}, "fact sheet: 'Method name' (method) is required: answer it to submit"),
        ({"method": "  "}, "fact sheet: 'Method name' (method) is required: answer it to submit"),
        ({"method": "m", "family": "svm"}, "fact sheet: 'Model family' (family): 'svm' is not one of its "
                                           "choices: tree, net"),
        ({"method": "m", "extra_data": "perhaps"}, "fact sheet: 'Extra data?' (extra_data): answer true or "
                                                   "false, got 'perhaps'"),
        ({"method": "x" * 1001}, "fact sheet: 'Method name' (method): at most 1000 characters, got 1001"),
        ({"method": ["a"]}, "fact sheet: 'Method name' (method): answer with text, got list"),
        ({"method": "m", "colour": "red"}, "fact sheet: no question 'colour'; its questions: method, extra_data, "
                                           "family"),
    ]
    before = submission_count(platform)
    for answers, message in cases:
        with pytest.raises(PlatformError) as info:
            platform.submit(asked.slug, upload, username="ben", actor=BEN, fact_sheet=answers)
        assert str(info.value) == message
    assert submission_count(platform) == before  # nothing half made
    sid = platform.submit(asked.slug, upload, username="ben", actor=BEN,
                          fact_sheet={"method": " CNN ", "extra_data": True, "family": "net"})
    view = platform.submission_view(sid, BEN)
    assert view["fact_sheet"] == [
        {"key": "method", "title": "Method name", "type": "text", "answer": "CNN"},
        {"key": "extra_data", "title": "Extra data?", "type": "checkbox", "answer": True},
        {"key": "family", "title": "Model family", "type": "select", "answer": "net"},
    ]
    assert platform.submission_view(sid, ORGANIZER)["fact_sheet"] == view["fact_sheet"]
    with pytest.raises(Exception):
        platform.submission_view(sid, ANN)  # another participant sees neither the submission nor its answers


def test_a_competition_without_a_fact_sheet_refuses_answers(platform, world, tmp_path):
    with pytest.raises(PlatformError) as info:
        platform.submit(world.slug, results_zip(tmp_path), username="ben", actor=BEN, fact_sheet={"method": "m"})
    assert str(info.value) == "fact sheet: no question 'method'; this competition asks no fact sheet"


def test_the_organizers_export_a_phases_answers_as_csv(platform, asked, tmp_path):
    upload = results_zip(tmp_path)
    first = platform.submit(asked.slug, upload, username="ben", actor=BEN,
                            fact_sheet={"method": "=HYPERLINK(1)", "family": "tree"})
    second = platform.submit(asked.slug, upload, username="ann", actor=ANN,
                             fact_sheet={"method": "GBM, tuned", "extra_data": True})
    name, text = platform.fact_sheet_csv(asked.slug, 1, ORGANIZER)
    assert name == f"{asked.slug}-phase1-fact-sheets.csv"
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["submission", "participant", "submitted_at", "status", "method", "extra_data", "family"]
    by_id = {int(r[0]): r for r in rows[1:]}
    # Submissions made before the questions have empty answers; one row per submission of the phase.
    assert set(by_id) >= {asked.subs["ann"], asked.subs["ben"], first, second}
    assert by_id[asked.subs["ann"]][4:] == ["", "", ""]
    assert by_id[first][1] == "ben" and by_id[first][4:] == ["'=HYPERLINK(1)", "false", "tree"]
    assert by_id[second][4:] == ["GBM, tuned", "true", ""]
    for actor in (ANN, NORA):
        with pytest.raises(Forbidden):
            platform.fact_sheet_csv(asked.slug, 1, actor)


def test_the_board_shows_the_chosen_questions_as_columns(platform, asked, tmp_path):
    upload = results_zip(tmp_path)
    sid = platform.submit(asked.slug, upload, username="ben", actor=BEN,
                          fact_sheet={"method": "CNN", "extra_data": True, "family": "net"})
    finish(platform, sid, {"accuracy": 0.95, "secret": 0.05, "private_score": 0.4})
    board = platform.leaderboard_view(asked.slug, 1, actor=NORA)
    assert board["fact_sheet_columns"] == [{"key": "method", "title": "Method name", "type": "text"},
                                           {"key": "family", "title": "Model family", "type": "select"}]
    rows = {r["participant"]: r for r in board["rows"]}
    assert rows["ben"]["fact_sheet"] == {"method": "CNN", "family": "net"}
    assert rows["ann"]["fact_sheet"] == {"method": None, "family": None}
    # The board's CSV carries the same columns, its cells safe to open in a spreadsheet.
    again = platform.submit(asked.slug, upload, username="ann", actor=ANN, fact_sheet={"method": "=cmd()"})
    finish(platform, again, {"accuracy": 0.99, "secret": 0.05, "private_score": 0.4})
    lines = list(csv.reader(io.StringIO(platform.leaderboard_csv(asked.slug, 1, actor=NORA))))
    assert lines[0][-2:] == ["Method name", "Model family"]
    by_name = {line[1]: line for line in lines[1:]}
    assert by_name["ben"][-2:] == ["CNN", "net"]
    assert by_name["ann"][-2:] == ["'=cmd()", ""]

    edit = platform.save_fact_sheet_columns(asked.slug, "main", ["extra_data"], ORGANIZER)
    assert edit.saved, edit.problems
    board = platform.leaderboard_view(asked.slug, 1, actor=NORA)
    assert [c["key"] for c in board["fact_sheet_columns"]] == ["extra_data"]
    assert {r["participant"]: r["fact_sheet"] for r in board["rows"]}["ben"] == {"extra_data": True}
    # The board's own choice survives the YAML view.
    assert platform.save_competition_yaml(asked.slug, platform.competition_yaml(asked.slug, ORGANIZER),
                                          ORGANIZER).saved
    assert [b.fact_sheet_columns for b in platform.editable_spec(asked.slug, ORGANIZER).leaderboards] == \
        [["extra_data"], ["method", "family"]]
    edit = platform.save_fact_sheet_columns(asked.slug, "main", ["nope"], ORGANIZER)
    assert edit.problems == ["leaderboard 'main': no fact sheet question 'nope'; questions: method, extra_data, "
                             "family"]


def test_a_rerun_keeps_the_answers_of_its_original(platform, asked, tmp_path):
    sid = platform.submit(asked.slug, results_zip(tmp_path), username="ben", actor=BEN,
                          fact_sheet={"method": "CNN", "family": "net"})
    finish(platform, sid, {"accuracy": 0.9, "secret": 0.1, "private_score": 0.4})
    new_id = platform.rerun(sid, ORGANIZER)
    answers = {q["key"]: q["answer"] for q in platform.submission_view(new_id, ORGANIZER)["fact_sheet"]}
    assert answers == {"method": "CNN", "extra_data": False, "family": "net"}
