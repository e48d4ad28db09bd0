"""The competition editor: forms and the YAML view over one model, checked as an upload is.

Each form's save goes through the bundle reader (problems all at once, the
upload's warnings kept); a page's preview is sanitized as an uploaded page;
a new scoring program replaces the task's and the runs say which version
scored them.  A property test applies random edits through the forms and
through the YAML and finds the same model both ways.
"""
from __future__ import annotations

import copy
import datetime as dt

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hub_extension import models as m
from hub_extension.app import Forbidden

from tests.support.builders import (
    ANN,
    BEN,
    ORGANIZER,
    OTHER_ORGANIZER,
    finish,
    results_zip,
    secrets_spec,
    zip_bytes,
)


def scoring_zip(tmp_path, name: str, text: str):
    path = tmp_path / name
    path.write_bytes(zip_bytes({"metadata": "command: python score.py\n", "score.py": text}))
    return path


# -- the YAML view ----------------------------------------------------------------------------------
def test_saving_yaml_keeps_the_upload_warnings_and_says_every_problem(platform, world):
    text = platform.competition_yaml(world.slug, ORGANIZER)
    typo = text.replace("title: Secrets\n", "title: Secrets\ndescriptoin: oops\n", 1)
    edit = platform.save_competition_yaml(world.slug, typo, ORGANIZER)
    assert edit.saved
    assert any("descriptoin: unknown key" in w and "did you mean 'description'" in w for w in edit.warnings), \
        edit.warnings
    # Dropped as an upload drops it, once said; what stays true stays in view.
    assert "descriptoin" not in platform.competition_yaml(world.slug, ORGANIZER)
    assert set(platform.current_warnings(world.slug, ORGANIZER)) == set(edit.warnings) - {
        w for w in edit.warnings if "descriptoin" in w}

    broken = text.replace("sorting: desc", "sorting: sideways", 1).replace("precision: 2", "precision: many", 1)
    edit = platform.save_competition_yaml(world.slug, broken, ORGANIZER)
    assert not edit.saved
    assert any("sorting: must be one of asc, desc" in p for p in edit.problems)
    assert any("precision: must be a whole number" in p for p in edit.problems)
    # The old entry point still answers the problems alone.
    assert platform.update_competition_yaml(world.slug, broken, ORGANIZER) == edit.problems


def test_only_the_competitions_organizers_edit(platform, world, tmp_path):
    for actor in (ANN, OTHER_ORGANIZER):
        with pytest.raises(Forbidden):
            platform.save_page(world.slug, "overview", actor, title="Overview", content="x")
        with pytest.raises(Forbidden):
            platform.preview_page(world.slug, "x", "markdown", actor)
        with pytest.raises(Forbidden):
            platform.save_columns(world.slug, "main", [{"key": "accuracy", "precision": 3}], actor)
        with pytest.raises(Forbidden):
            platform.replace_data(world.slug, "task", 0, "scoring_program", scoring_zip(tmp_path, "s.zip", "pass\n"),
                                  "s.zip", actor)
        with pytest.raises(Forbidden):
            platform.editable_spec(world.slug, actor)


# -- pages -------------------------------------------------------------------------------------------
def test_a_page_in_markdown_is_previewed_and_shown_sanitized(platform, world):
    text = "# Rules\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n<script>alert(1)</script><img src=x onerror=alert(2)>"
    html = platform.preview_page(world.slug, text, "markdown", ORGANIZER)
    assert "<h1>Rules</h1>" in html and "<table>" in html
    assert "<script" not in html and "onerror" not in html
    edit = platform.save_page(world.slug, "overview", ORGANIZER, title="Overview", content=text)
    assert edit.saved, edit.problems
    shown = platform.competition_detail(world.slug, ANN)["pages"]
    assert [p["title"] for p in shown] == ["Overview"]
    assert shown[0]["html"] == html  # the participant sees what the preview showed


def test_a_page_typed_in_a_browser_keeps_its_lines(platform, world):
    edit = platform.save_page(world.slug, "overview", ORGANIZER, title="Overview", content="# A\r\n\r\nline\r\n")
    assert edit.saved, edit.problems
    assert platform.editable_spec(world.slug, ORGANIZER).pages[0].content == "# A\n\nline\n"


def test_pages_are_added_renamed_moved_and_removed(platform, world):
    assert platform.save_page(world.slug, None, ORGANIZER, title="Getting started", content="Start *here*").saved
    assert platform.save_page(world.slug, None, ORGANIZER, title="Data", content="<p>data</p>", fmt="html").saved
    names = [p.name for p in platform.editable_spec(world.slug, ORGANIZER).pages]
    assert names == ["overview", "getting-started", "data"]
    edit = platform.save_page(world.slug, None, ORGANIZER, title="Getting Started!", content="twice")
    assert not edit.saved and "already named 'getting-started'" in edit.problems[0]

    assert platform.save_page(world.slug, "getting-started", ORGANIZER, title="First steps",
                              content="Start *here*").saved
    assert platform.move_page(world.slug, "data", -1, ORGANIZER).saved
    pages = platform.editable_spec(world.slug, ORGANIZER).pages
    assert [(p.name, p.title, p.format) for p in pages] == [
        ("overview", "Overview", "markdown"), ("data", "Data", "html"), ("first-steps", "First steps", "markdown")]
    # The YAML view names the page files the forms wrote.
    doc = yaml.safe_load(platform.competition_yaml(world.slug, ORGANIZER))
    assert [p["title"] for p in doc["pages"]] == ["Overview", "Data", "First steps"]

    assert platform.delete_page(world.slug, "data", ORGANIZER).saved
    assert [p.name for p in platform.editable_spec(world.slug, ORGANIZER).pages] == ["overview", "first-steps"]
    assert platform.delete_page(world.slug, "data", ORGANIZER).problems == ["page 'data': no such page"]
    edit = platform.save_page(world.slug, "overview", ORGANIZER, title="", content="x", fmt="pdf")
    assert len(edit.problems) == 2  # both said at once


def test_codalab_pages_are_named_by_their_key(platform, tmp_path):
    spec = secrets_spec(platform.store)
    spec.dialect = "codalab"
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    assert platform.save_page(slug, None, ORGANIZER, title="Getting started", content="hello").saved
    pages = platform.editable_spec(slug, ORGANIZER).pages
    assert ("getting_started", "Getting Started") in [(p.name, p.title) for p in pages]
    edit = platform.save_page(slug, None, ORGANIZER, title="Terms", content="x")
    assert not edit.saved and "terms" in edit.problems[0]


# -- columns and phases ------------------------------------------------------------------------------
def test_column_settings_are_saved_and_every_problem_is_said(platform, world):
    edit = platform.save_columns(world.slug, "main", [
        {"key": "accuracy", "title": "Acc.", "precision": "4", "sorting": "asc"},
        {"key": "secret", "hidden": False},
    ], ORGANIZER)
    assert edit.saved, edit.problems
    board = platform.leaderboard_view(world.slug, actor=ANN)
    columns = {c["key"]: c for c in board["columns"]}
    assert columns["accuracy"]["precision"] == 4 and columns["accuracy"]["title"] == "Acc."
    assert columns["accuracy"]["sorting"] == "asc"
    assert "secret" in columns  # no longer hidden

    edit = platform.save_columns(world.slug, "main", [
        {"key": "accuracy", "precision": "lots", "sorting": "sideways"},
        {"key": "nope", "title": "x"},
    ], ORGANIZER)
    assert not edit.saved
    assert len(edit.problems) == 3, edit.problems
    assert platform.editable_spec(world.slug, ORGANIZER).leaderboards[0].columns[0].precision == 4


def test_phase_settings_are_saved_and_bad_values_refused_together(platform, world):
    edit = platform.save_phase(world.slug, 1, {"max_submissions_per_day": "9", "max_submissions": "0",
                                               "execution_time_limit": "120", "hide_output": True,
                                               "end": "2099-06-30 12:00"}, ORGANIZER)
    assert edit.saved, edit.problems
    phase = platform.editable_spec(world.slug, ORGANIZER).phases[0]
    assert (phase.max_submissions_per_day, phase.max_submissions, phase.execution_time_limit) == (9, 0, 120)
    assert phase.hide_output and phase.end == dt.datetime(2099, 6, 30, 12, 0)

    edit = platform.save_phase(world.slug, 1, {"start": "soon", "execution_time_limit": "forever",
                                               "max_submissions": "", "colour": "red"}, ORGANIZER)
    assert not edit.saved and len(edit.problems) == 4, edit.problems
    assert platform.editable_spec(world.slug, ORGANIZER).phases[0].execution_time_limit == 120


def test_a_column_added_then_removed_gives_the_model_back(platform, world):
    before = platform.editable_spec(world.slug, ORGANIZER)
    board = before.leaderboards[0].key
    bad = platform.add_column(world.slug, board, {"key": "has space", "title": "X"}, ORGANIZER)
    assert not bad.saved and any("has space" in p for p in bad.problems), bad.problems
    edit = platform.add_column(world.slug, board, {"key": "recall", "title": "Recall", "sorting": "asc",
                                                   "precision": "3"}, ORGANIZER)
    assert edit.saved, edit.problems
    added = platform.editable_spec(world.slug, ORGANIZER).leaderboards[0].columns[-1]
    assert (added.key, added.title, added.sorting, added.precision) == ("recall", "Recall", "asc", 3)
    assert "key: recall" in platform.competition_yaml(world.slug, ORGANIZER)
    again = platform.add_column(world.slug, board, {"key": "recall"}, ORGANIZER)
    assert not again.saved and "already has a column 'recall'" in again.problems[0]
    assert platform.remove_column(world.slug, board, "recall", ORGANIZER).saved
    assert platform.editable_spec(world.slug, ORGANIZER).leaderboards == before.leaderboards


def test_the_only_column_is_not_removed(platform, world):
    spec = platform.editable_spec(world.slug, ORGANIZER)
    board = spec.leaderboards[0]
    for column in board.columns[1:]:
        assert platform.remove_column(world.slug, board.key, column.key, ORGANIZER).saved
    edit = platform.remove_column(world.slug, board.key, board.columns[0].key, ORGANIZER)
    assert not edit.saved and "only column" in edit.problems[0]


def test_a_phase_added_then_removed_gives_the_model_back_and_one_with_submissions_stays(platform, world):
    before = platform.editable_spec(world.slug, ORGANIZER)
    last = sorted(before.phases, key=lambda p: p.index)[-1]
    assert not platform.add_phase(world.slug, {"name": "Late", "start": "soon"}, ORGANIZER).saved
    edit = platform.add_phase(world.slug, {"name": "Late", "start": "2101-01-01 00:00"}, ORGANIZER)
    assert edit.saved, edit.problems
    spec = platform.editable_spec(world.slug, ORGANIZER)
    added = sorted(spec.phases, key=lambda p: p.index)[-1]
    assert (added.name, added.start, added.task_indexes) == ("Late", dt.datetime(2101, 1, 1), last.task_indexes)
    assert "Late" in platform.competition_yaml(world.slug, ORGANIZER)
    assert sorted(spec.phases, key=lambda p: p.index)[-2].end == (last.end or added.start)
    assert platform.remove_phase(world.slug, len(spec.phases), ORGANIZER).saved
    if last.end is None:
        assert platform.save_phase(world.slug, len(before.phases), {"end": ""}, ORGANIZER).saved
    assert platform.editable_spec(world.slug, ORGANIZER).phases == before.phases
    # The phase the submissions were made in is refused, with the reason.
    with platform.db.session() as s:
        used = s.get(m.Phase, s.get(m.Submission, world.subs["ann"]).phase_id).index
    number = 1 + [p.index for p in sorted(before.phases, key=lambda p: p.index)].index(used)
    refused = platform.remove_phase(world.slug, number, ORGANIZER)
    assert not refused.saved and any("submission" in p for p in refused.problems), refused.problems


def test_the_terms_are_edited_in_the_overview_and_shown_sanitized(platform, world):
    edit = platform.save_overview(world.slug, {"terms": "<p>Be fair.</p>\r\n<script>x()</script>"}, ORGANIZER)
    assert edit.saved, edit.problems
    spec = platform.editable_spec(world.slug, ORGANIZER)
    assert spec.terms == "<p>Be fair.</p>\n<script>x()</script>"
    shown = platform.competition_detail(world.slug, ANN)["terms"]
    assert "Be fair." in shown and "script" not in shown
    assert platform.terms_format(spec) == "html"
    assert platform.save_overview(world.slug, {"terms": "  "}, ORGANIZER).saved
    assert platform.editable_spec(world.slug, ORGANIZER).terms is None
    too_long = platform.save_overview(world.slug, {"terms": "x" * 1_000_001}, ORGANIZER)
    assert not too_long.saved and "at most" in too_long.problems[0]


# -- programs and data -------------------------------------------------------------------------------
def test_a_new_scoring_program_scores_the_rerun_and_the_runs_say_which_version(platform, world, tmp_path):
    sid = world.subs["ann"]
    old_key = platform.editable_spec(world.slug, ORGANIZER).tasks[0].scoring_program.value
    view = platform.submission_view(sid, ORGANIZER)
    scoring = next(r for r in view["runs"] if r["step"] == "scoring")
    assert scoring["program"]["key"] == old_key and scoring["program"]["current"]

    edit = platform.replace_data(world.slug, "task", 0, "scoring_program",
                                 scoring_zip(tmp_path, "upload.zip", "print('v2')\n"), "score_v2.zip", ORGANIZER)
    assert edit.saved, edit.problems
    new_key = platform.editable_spec(world.slug, ORGANIZER).tasks[0].scoring_program.value
    assert new_key != old_key
    assert new_key in platform.competition_yaml(world.slug, ORGANIZER)
    assert platform.store.has_dataset(old_key)  # the version that scored earlier runs stays
    assert platform.dataset_info([new_key])[new_key]["name"] == "score_v2.zip"
    assert platform.runs.job_for(sid).tasks[0].scoring_program == new_key

    rerun = platform.rerun(sid, ORGANIZER)
    finish(platform, rerun, {"accuracy": 0.5, "secret": 0.5, "private_score": 0.25})
    with platform.db.session() as s:
        keys = {r.step: r.program_key for r in s.get(m.Submission, rerun).runs}
    assert keys == {"prediction": None, "scoring": new_key}  # a results submission runs no ingestion program
    shown = next(r for r in platform.submission_view(rerun, ORGANIZER)["runs"] if r["step"] == "scoring")
    assert shown["program"] == {"key": new_key, "short": new_key[:12], "name": "score_v2.zip",
                                "stored_at": shown["program"]["stored_at"], "current": True}
    earlier = next(r for r in platform.submission_view(sid, ORGANIZER)["runs"] if r["step"] == "scoring")
    assert earlier["program"]["key"] == old_key and not earlier["program"]["current"]
    # Participants are not told which program scored them.
    assert "program" not in next(r for r in platform.submission_view(sid, ANN)["runs"] if r["step"] == "scoring")


def test_an_upload_that_is_no_program_is_refused_or_warned_as_in_a_bundle(platform, world, tmp_path):
    not_zip = tmp_path / "score.py"
    not_zip.write_text("print(1)\n")
    edit = platform.replace_data(world.slug, "task", 0, "scoring_program", not_zip, "score.py", ORGANIZER)
    assert not edit.saved and "must be a .zip file" in edit.problems[0]
    bare = tmp_path / "bare.zip"
    bare.write_bytes(zip_bytes({"score.py": "print 'python 2'\n"}))
    edit = platform.replace_data(world.slug, "task", 0, "scoring_program", bare, "bare.zip", ORGANIZER)
    assert edit.saved
    assert any("bare.zip" in w and "no 'metadata' file" in w for w in edit.warnings), edit.warnings
    assert any("Python 2" in w for w in edit.warnings), edit.warnings
    kit = tmp_path / "kit.zip"
    kit.write_bytes(zip_bytes({"README.md": "new kit"}))
    assert platform.replace_data(world.slug, "phase", 1, "starting_kit", kit, "kit.zip", ORGANIZER).saved
    path, _ = platform.phase_download(world.slug, 1, "starting_kit", ANN)
    assert b"new kit" in path.read_bytes()


def test_a_program_recorded_for_each_step_of_a_code_submission(platform, world, tmp_path):
    ingestion = tmp_path / "ingest.zip"
    ingestion.write_bytes(zip_bytes({"metadata": "command: python ingest.py\n", "ingest.py": "pass\n"}))
    assert platform.replace_data(world.slug, "task", 0, "ingestion_program", ingestion, "ingest.zip",
                                 ORGANIZER).saved
    code = tmp_path / "code.zip"
    code.write_bytes(zip_bytes({"metadata": "command: python run.py\n", "run.py": "pass\n"}))
    sid = platform.submit(world.slug, code, username="ben", actor=BEN)
    finish(platform, sid, {"accuracy": 0.1, "secret": 0.9, "private_score": 0.05})
    spec = platform.editable_spec(world.slug, ORGANIZER)
    with platform.db.session() as s:
        sub = s.get(m.Submission, sid)
        keys = {r.step: r.program_key for r in sub.runs}
        kind = sub.kind
    assert kind == "code"
    assert keys == {"prediction": spec.tasks[0].ingestion_program.value,
                    "scoring": spec.tasks[0].scoring_program.value}


def test_a_run_names_the_program_it_was_sent_with_even_if_replaced_while_it_runs(platform, world, tmp_path):
    old_key = platform.editable_spec(world.slug, ORGANIZER).tasks[0].scoring_program.value
    sid = platform.rerun(world.subs["ann"], ORGANIZER)
    platform.runs.note_programs(platform.runs.job_for(sid))  # what the dispatcher does when it sends the job
    edit = platform.replace_data(world.slug, "task", 0, "scoring_program",
                                 scoring_zip(tmp_path, "upload.zip", "print('v2')\n"), "score_v2.zip", ORGANIZER)
    assert edit.saved, edit.problems
    new_key = platform.editable_spec(world.slug, ORGANIZER).tasks[0].scoring_program.value
    assert new_key != old_key
    # While it runs, no outcome is shown for a step not reported yet.
    assert platform.submission_view(sid, ORGANIZER)["runs"] == []
    finish(platform, sid, {"accuracy": 0.5, "secret": 0.5, "private_score": 0.25})
    with platform.db.session() as s:
        runs = [(r.step, r.status, r.program_key) for r in s.get(m.Submission, sid).runs]
    assert sorted(runs) == [("prediction", "Finished", None), ("scoring", "Finished", old_key)]


# -- forms and YAML are equivalent -------------------------------------------------------------------
COLUMN_EDITS = st.fixed_dictionaries({}, optional={
    "title": st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=12).map(str.strip).filter(bool),
    "sorting": st.sampled_from(["asc", "desc"]),
    "precision": st.integers(min_value=0, max_value=8),
    "hidden": st.booleans(),
})
PHASE_EDITS = st.fixed_dictionaries({}, optional={
    "max_submissions": st.integers(min_value=0, max_value=500),
    "max_submissions_per_day": st.integers(min_value=0, max_value=50),
    "execution_time_limit": st.integers(min_value=1, max_value=7200),
    "hide_output": st.booleans(),
    "name": st.text(alphabet="abcdefgh XYZ", min_size=1, max_size=12).map(str.strip).filter(bool),
})
EDITS = st.lists(st.one_of(
    st.tuples(st.just("column"), st.sampled_from(["accuracy", "secret"]), COLUMN_EDITS),
    st.tuples(st.just("phase"), st.sampled_from([1, 2]), PHASE_EDITS),
), min_size=1, max_size=4)


def _through_yaml(text: str, kind: str, which, values: dict) -> str:
    """The same edit written into a Codabench competition.yaml."""
    doc = yaml.safe_load(text)
    if kind == "column":
        column = next(c for c in doc["leaderboards"][0]["columns"] if c["key"] == which)
        column.update(values)
    else:
        phase = sorted(doc["phases"], key=lambda p: p["index"])[which - 1]
        phase.update(values)
    return yaml.safe_dump(doc, sort_keys=False)


@settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(edits=EDITS)
def test_edits_through_forms_and_through_yaml_give_the_same_model(platform, edits):
    spec = secrets_spec(platform.store)
    by_form = platform.competitions.insert_competition(copy.deepcopy(spec), ORGANIZER)
    by_yaml = platform.competitions.insert_competition(spec, ORGANIZER)
    for kind, which, values in edits:
        if kind == "column":
            form = platform.save_columns(by_form, "main", [{"key": which, **values}], ORGANIZER)
        else:
            form = platform.save_phase(by_form, which, {k: str(v) if isinstance(v, int) and not isinstance(v, bool)
                                                        else v for k, v in values.items()}, ORGANIZER)
        text = _through_yaml(platform.competition_yaml(by_yaml, ORGANIZER), kind, which, values)
        through = platform.save_competition_yaml(by_yaml, text, ORGANIZER)
        assert form.saved and through.saved, (form.problems, through.problems)
        assert platform.editable_spec(by_form, ORGANIZER) == platform.editable_spec(by_yaml, ORGANIZER)
    # What the forms saved reads back from the YAML view to the same model.
    before = platform.editable_spec(by_form, ORGANIZER)
    assert platform.save_competition_yaml(by_form, platform.competition_yaml(by_form, ORGANIZER), ORGANIZER).saved
    assert platform.editable_spec(by_form, ORGANIZER) == before


def test_a_results_submission_still_scores_after_an_edit(platform, world, tmp_path):
    assert platform.save_columns(world.slug, "main", [{"key": "accuracy", "precision": 1}], ORGANIZER).saved
    sid = platform.submit(world.slug, results_zip(tmp_path, "again.zip"), username="ann", actor=ANN)
    finish(platform, sid, {"accuracy": 0.95, "secret": 0.05, "private_score": 0.4})
    rows = platform.leaderboard(world.slug, actor=ANN)["rows"]
    assert any(r["scores"].get("accuracy") == 0.95 for r in rows)
