"""The application-layer views behind the service: what each person may see and do."""
from __future__ import annotations

import datetime as dt
import json

import pytest
import yaml

from hub_extension import models as m
from hub_extension.app import Actor, Forbidden, NotFound, PlatformError

from tests.support.builders import (
    ADMIN,
    ANN,
    ANONYMOUS,
    BEN,
    NORA,
    ORGANIZER,
    OTHER_ORGANIZER,
    PREDICTION_LOG_TEXT,
    REFERENCE_TEXT,
    SECRET_LOG_TEXT,
    build_world,
    finish,
    results_zip,
)

NOW = dt.datetime(2030, 6, 1, 12, 0)


@pytest.fixture
def blind_world(platform, tmp_path):
    return build_world(platform, tmp_path, blind=True)


# -- competition page -------------------------------------------------------------------------
def test_detail_is_public_and_sanitized(platform, world):
    detail = platform.competition_detail(world.slug, ANONYMOUS, now=NOW)
    assert detail["title"] == "Secrets"
    assert detail["registration"] == "none" and detail["is_organizer"] is False
    text = json.dumps(detail)
    assert "<script" not in text and "alert" not in text and "steal()" not in text
    assert "<h1>Hello</h1>" in detail["pages"][0]["html"]
    assert "<em>nice</em>" in detail["terms"]
    assert [p["state"] for p in detail["phases"]] == ["current", "future"]
    assert detail["phases"][0]["has_starting_kit"] and detail["phases"][0]["has_public_data"]
    assert detail["current_phase"] == 1
    assert [b["key"] for b in detail["leaderboards"]] == ["main"]  # the hidden board is not named
    assert "opened_at" not in detail["phases"][0]


def test_detail_for_participant_and_organizer(platform, world):
    as_ann = platform.competition_detail(world.slug, ANN, now=NOW)
    assert as_ann["registration"] == m.APPROVED
    assert as_ann["submissions_left"] == {"total": 8, "today": 5}  # two used of 10; none today at NOW
    assert platform.competition_detail(world.slug, NORA, now=NOW)["registration"] == "none"
    as_olga = platform.competition_detail(world.slug, ORGANIZER, now=NOW)
    assert as_olga["is_organizer"] is True
    assert [b["key"] for b in as_olga["leaderboards"]] == ["main", "private"]
    assert as_olga["organizers"] == ["olga"]
    assert platform.competition_detail(world.slug, OTHER_ORGANIZER, now=NOW)["is_organizer"] is False
    assert platform.competition_detail(world.slug, ADMIN, now=NOW)["is_organizer"] is True


def test_unknown_competition_is_not_found(platform, world):
    with pytest.raises(NotFound):
        platform.competition_detail("nope", ANN)


def test_list_search_and_status(platform, world):
    assert [c["slug"] for c in platform.list_competitions(search="secr")] == [world.slug]
    assert [c["slug"] for c in platform.list_competitions(search="SECRETS competition")] == [world.slug]
    assert platform.list_competitions(search="nothing-like-this") == []
    assert {c["slug"] for c in platform.list_competitions(status="running")} == {world.slug, world.other_slug}
    assert platform.list_competitions(status="finished") == []
    with pytest.raises(PlatformError):
        platform.list_competitions(status="sleeping")


# -- downloads: starting kit and public data, never reference data ---------------------------------
def test_downloads_need_an_approved_registration(platform, world):
    for who, error in ((ANONYMOUS, Forbidden), (NORA, Forbidden), (OTHER_ORGANIZER, Forbidden)):
        with pytest.raises(error):
            platform.phase_download(world.slug, 1, "starting_kit", who)
    path, name = platform.phase_download(world.slug, 1, "starting_kit", ANN)
    assert path.is_file() and name.endswith("starting-kit.zip")
    assert platform.phase_download(world.slug, 1, "public_data", ORGANIZER)[0].is_file()
    with pytest.raises(NotFound):
        platform.phase_download(world.slug, 2, "starting_kit", ANN)


def test_reference_data_is_never_served(platform, world):
    for what in ("reference_data", "scoring_program", "input_data", "../reference_data"):
        with pytest.raises(NotFound):
            platform.phase_download(world.slug, 1, what, ORGANIZER)
    with platform.db.session() as s:
        reference_key = [t.reference_data_key for t in s.query(m.Task).all() if t.reference_data_key][0]
    views = [
        platform.competition_detail(world.slug, ANN),
        platform.submissions_view(world.slug, ANN),
        platform.submission_view(world.subs["ann"], ANN),
        platform.leaderboard_view(world.slug, actor=ANN),
    ]
    text = json.dumps(views)
    assert reference_key not in text and REFERENCE_TEXT not in text


# -- participants --------------------------------------------------------------------------------
def test_participants_list_is_for_organizers(platform, world):
    rows = platform.participants(world.slug, ORGANIZER)
    assert {(r["username"], r["status"], r["submissions"]) for r in rows} == {
        ("ann", "approved", 2), ("ben", "approved", 1)}
    assert platform.participants(world.slug, ADMIN) == rows
    for who in (ANN, NORA, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.participants(world.slug, who)


# -- submissions ---------------------------------------------------------------------------------
def test_participant_lists_only_their_own(platform, world):
    own = platform.submissions_view(world.slug, ANN, username="ben")
    assert own["total"] == 2 and {s["participant"] for s in own["items"]} == {"ann"}
    assert [s["id"] for s in own["items"]] == [world.subs["ann_waiting"], world.subs["ann"]]  # newest first
    assert platform.submissions_view(world.slug, NORA)["total"] == 0
    assert platform.submissions_view(world.slug, OTHER_ORGANIZER)["total"] == 0
    with pytest.raises(Forbidden):
        platform.submissions_view(world.slug, ANONYMOUS)


def test_organizer_lists_everyone_with_filters_and_pages(platform, world):
    everyone = platform.submissions_view(world.slug, ORGANIZER)
    assert everyone["total"] == 3
    assert platform.submissions_view(world.slug, ORGANIZER, username="ben")["total"] == 1
    assert platform.submissions_view(world.slug, ORGANIZER, status=m.SUBMITTED)["total"] == 1
    assert platform.submissions_view(world.slug, ORGANIZER, phase=2)["total"] == 0
    page = platform.submissions_view(world.slug, ORGANIZER, offset=1, limit=1)
    assert page["total"] == 3 and len(page["items"]) == 1 and page["items"][0]["id"] == everyone["items"][1]["id"]
    assert platform.submissions_view(world.slug, ORGANIZER, limit=10_000)["limit"] == 200
    with pytest.raises(PlatformError):
        platform.submissions_view(world.slug, ORGANIZER, status="Sleeping")


def test_hidden_columns_never_reach_participants(platform, world):
    mine = platform.submission_view(world.subs["ann"], ANN)
    assert mine["scores"] == {"accuracy": 0.7}
    listed = platform.submissions_view(world.slug, ANN)["items"]
    assert all(set(s["scores"]) <= {"accuracy"} for s in listed)
    full = platform.submission_view(world.subs["ann"], ORGANIZER)
    assert set(full["scores"]) == {"accuracy", "secret", "private_score"}


def test_submission_detail_for_its_owner(platform, world):
    view = platform.submission_view(world.subs["ann"], ANN)
    assert view["status"] == m.FINISHED and view["participant"] == "ann"
    assert [h["status"] for h in view["history"]] == [m.SUBMITTED, m.FINISHED]
    assert all(h["note"] is None for h in view["history"])  # worker names are for organizers
    assert view["running_time"] is None or view["running_time"] >= 0
    assert view["artifacts"] == ["detailed_results", "executed_notebook_html"]
    assert [(r["step"], r["logs"]) for r in view["runs"]] == [
        ("prediction", ["stdout", "stderr"]), ("scoring", ["stdout", "stderr"])]
    assert "worker" not in view["runs"][0]
    waiting = platform.submission_view(world.subs["ann_waiting"], ANN)
    assert waiting["waiting"] is not None and waiting["waiting"]["position"] == 1


def test_other_people_cannot_open_a_submission(platform, world):
    sid = world.subs["ann"]
    for who in (BEN, NORA, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.submission_view(sid, who)
        with pytest.raises(Forbidden):
            platform.submission_log(sid, who, 0, "prediction", "stdout")
        with pytest.raises(Forbidden):
            platform.submission_artifact(sid, who, "detailed_results")
        with pytest.raises(Forbidden):
            platform.submission_file(sid, who)
    assert platform.submission_view(sid, ORGANIZER)["participant"] == "ann"
    assert platform.submission_view(sid, ADMIN)["participant"] == "ann"
    with pytest.raises(NotFound):
        platform.submission_view(999_999, ORGANIZER)


def test_logs_and_files_of_own_submission(platform, world):
    sid = world.subs["ann"]
    assert PREDICTION_LOG_TEXT in platform.submission_log(sid, ANN, 0, "prediction", "stdout")
    assert SECRET_LOG_TEXT in platform.submission_log(sid, ANN, 0, "scoring", "stderr")
    assert platform.submission_artifact(sid, ANN, "detailed_results").read_text().startswith("<p>detailed")
    path, name = platform.submission_file(sid, ANN)
    assert name == "predictions.zip" and path.is_file()
    for bad in ((0, "prediction", "environ"), (0, "../scoring", "stdout"), (3, "scoring", "stdout")):
        with pytest.raises(NotFound):
            platform.submission_log(sid, ANN, *bad)
    with pytest.raises(NotFound):
        platform.submission_artifact(sid, ANN, "../../datasets")


def test_long_logs_keep_their_end(platform, world):
    sid = world.subs["ben"]
    path = platform.store.file_path(f"submissions/{sid}/attempt-1/task-0/prediction/stdout.txt")
    path.write_text("x" * 5000 + "THE-END")
    text = platform.submission_log(sid, BEN, 0, "prediction", "stdout", max_bytes=100)
    assert text.endswith("THE-END") and "cut" in text.splitlines()[0]


def test_blind_phase_hides_scores_everywhere(platform, blind_world):
    world = blind_world
    sid = world.subs["ann"]
    view = platform.submission_view(sid, ANN)
    assert view["scores"] == {} and view["results_hidden"] is True
    assert view["artifacts"] == ["executed_notebook_html"]
    assert [r["logs"] for r in view["runs"] if r["step"] == "scoring"] == [[]]
    assert all(s["scores"] == {} for s in platform.submissions_view(world.slug, ANN)["items"])
    with pytest.raises(Forbidden):
        platform.submission_log(sid, ANN, 0, "scoring", "stdout")
    with pytest.raises(Forbidden):
        platform.submission_artifact(sid, ANN, "detailed_results")
    assert PREDICTION_LOG_TEXT in platform.submission_log(sid, ANN, 0, "prediction", "stdout")
    assert platform.leaderboard(world.slug, actor=ANN)["rows"] == []
    assert platform.best_score_history(world.slug, 1, None, ANN) == []
    assert platform.leaderboard_csv(world.slug, actor=ANN).count("\n") == 1  # the header only
    text = json.dumps([view, platform.submissions_view(world.slug, ANN),
                       platform.leaderboard_view(world.slug, actor=ANN)])
    assert "0.7" not in text and SECRET_LOG_TEXT not in text
    # The organizers see everything.
    assert platform.submission_view(sid, ORGANIZER)["scores"]["accuracy"] == 0.7
    assert SECRET_LOG_TEXT in platform.submission_log(sid, ORGANIZER, 0, "scoring", "stdout")
    assert len(platform.leaderboard(world.slug, actor=ORGANIZER)["rows"]) == 2


def test_hide_score_output_keeps_scores_but_not_scoring_logs(platform, tmp_path):
    world = build_world(platform, tmp_path, hide_score_output=True)
    sid = world.subs["ann"]
    view = platform.submission_view(sid, ANN)
    assert view["scores"] == {"accuracy": 0.7} and view["outputs_hidden"] is True
    with pytest.raises(Forbidden):
        platform.submission_log(sid, ANN, 0, "scoring", "stdout")
    with pytest.raises(Forbidden):
        platform.submission_artifact(sid, ANN, "detailed_results")
    assert PREDICTION_LOG_TEXT in platform.submission_log(sid, ANN, 0, "prediction", "stdout")


def test_hidden_board_history_is_for_organizers(platform, world):
    assert platform.best_score_history(world.slug, 1, "private", ANN) == []
    assert [p["value"] for p in platform.best_score_history(world.slug, 1, "private", ORGANIZER)] == [0.35, 0.4]
    with pytest.raises(NotFound):
        platform.best_score_history(world.slug, 1, "nope", ORGANIZER)


# -- organizer actions on submissions --------------------------------------------------------------
def test_hide_a_submission(platform, world):
    for who in (ANN, BEN, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.set_hidden(world.subs["ben"], True, who)
    assert platform.set_hidden(world.subs["ben"], True, ORGANIZER)["hidden"] is True
    assert [r["participant"] for r in platform.leaderboard(world.slug, actor=ANN)["rows"]] == ["ann"]
    platform.set_hidden(world.subs["ben"], False, ORGANIZER)
    assert [r["participant"] for r in platform.leaderboard(world.slug, actor=ANN)["rows"]] == ["ben", "ann"]


def test_choosing_what_the_board_shows(platform, world, tmp_path):
    with pytest.raises(PlatformError, match="Force_Last"):
        platform.set_selected(world.subs["ann"], True, ANN)
    with platform.db.session() as s:
        s.query(m.Leaderboard).filter_by(key="main").update({"submission_rule": "Add_And_Delete"})
    second = platform.submit(world.slug, results_zip(tmp_path, "b.zip"), username="ann", actor=ANN)
    finish(platform, second, {"accuracy": 0.1})
    with pytest.raises(Forbidden):
        platform.set_selected(second, True, BEN)
    with pytest.raises(PlatformError, match="only finished"):
        platform.set_selected(world.subs["ann_waiting"], True, ANN)
    assert platform.set_selected(world.subs["ann"], True, ANN)["selected"] is True
    assert platform.set_selected(second, True, ANN)["selected"] is True
    assert platform.submission_view(world.subs["ann"], ANN)["selected"] is False  # one at a time
    rows = platform.leaderboard(world.slug, actor=ANN)["rows"]
    assert [(r["participant"], r["submission"]) for r in rows] == [("ann", second)]
    assert platform.set_selected(second, False, ANN)["selected"] is False


def test_cancel(platform, world):
    waiting = world.subs["ann_waiting"]
    for who in (BEN, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.cancel_submission(waiting, who)
    with pytest.raises(PlatformError, match="already Finished"):
        platform.cancel_submission(world.subs["ann"], ANN)

    class Recorder:
        cancelled: list[int] = []

        def cancel(self, sid):
            self.cancelled.append(sid)
            return platform.runs.set_status(sid, m.CANCELLED, note="cancelled")

    recorder = Recorder()
    assert platform.cancel_submission(waiting, ANN, recorder)["status"] == m.CANCELLED
    assert recorder.cancelled == [waiting]


def test_rerun_is_for_organizers(platform, world):
    for who in (ANN, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.rerun(world.subs["ann"], who)
    new = platform.rerun(world.subs["ann"], ORGANIZER)
    assert platform.submission_view(new, ANN)["parent"] == world.subs["ann"]


# -- phases --------------------------------------------------------------------------------------
def test_phase_controls_are_for_organizers(platform, world):
    for who in (ANN, NORA, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.open_phase_now(world.slug, 2, who)
        with pytest.raises(Forbidden):
            platform.close_phase_now(world.slug, 1, who)
        with pytest.raises(Forbidden):
            platform.set_phase_dates(world.slug, 1, "2020-01-01", None, who)
        with pytest.raises(Forbidden):
            platform.migrate_submissions(world.slug, 1, who, confirm=0)


def test_open_next_phase_now_migrates_once(platform, world):
    now = m.utcnow()
    phase = platform.open_phase_now(world.slug, 2, ORGANIZER, now=now)
    assert phase["state"] == "current" and phase["opened_at"] and phase["migrated_at"]
    detail = platform.competition_detail(world.slug, ORGANIZER, now=now)
    assert detail["phases"][0]["state"] == "past" and detail["phases"][0]["end"] == now.isoformat()
    migrated = platform.submissions_view(world.slug, ORGANIZER, phase=2)["items"]
    assert {(s["participant"], s["parent"]) for s in migrated} == {("ann", world.subs["ann"]), ("ben", world.subs["ben"])}
    assert all(s["status"] == m.SUBMITTED for s in migrated)
    # Again, by hand: nothing new.
    assert platform.migrate_submissions(world.slug, 1, ORGANIZER, confirm=0) == []
    # Migrated submissions do not use up the participant's allowance.
    assert platform.submissions_left(world.slug, "ann", 2)["today"] == 5


def test_migration_takes_the_last_finished_one(platform, world, tmp_path):
    later = platform.submit(world.slug, results_zip(tmp_path, "later.zip"), username="ann", actor=ANN)
    finish(platform, later, {"accuracy": 0.2})
    ids = platform.migrate_submissions(world.slug, 1, ORGANIZER, confirm=2)
    parents = {platform.submission_view(i, ORGANIZER)["parent"] for i in ids}
    assert parents == {later, world.subs["ben"]}
    with pytest.raises(PlatformError, match="last phase"):
        platform.migrate_submissions(world.slug, 2, ORGANIZER, confirm=0)


def test_close_phase_stops_submissions(platform, world, tmp_path):
    phase = platform.close_phase_now(world.slug, 1, ORGANIZER)
    assert phase["open"] is False
    with pytest.raises(PlatformError, match="closed"):
        platform.submit(world.slug, results_zip(tmp_path), username="ann", actor=ANN)
    with pytest.raises(PlatformError, match="has not opened"):
        platform.close_phase_now(world.slug, 2, ORGANIZER)


def test_set_phase_dates(platform, world):
    phase = platform.set_phase_dates(world.slug, 2, "2099-01-01T00:00", "2099-02-01T00:00", ORGANIZER)
    assert (phase["start"], phase["end"]) == ("2099-01-01T00:00:00", "2099-02-01T00:00:00")
    with pytest.raises(PlatformError, match="after the start"):
        platform.set_phase_dates(world.slug, 2, "2099-02-01", "2099-01-01", ORGANIZER)
    with pytest.raises(PlatformError, match="must be a date"):
        platform.set_phase_dates(world.slug, 2, "tomorrow", None, ORGANIZER)
    with pytest.raises(NotFound):
        platform.set_phase_dates(world.slug, 7, "2099-01-01", None, ORGANIZER)


# -- competition.yaml ------------------------------------------------------------------------------
def test_yaml_is_for_organizers(platform, world):
    for who in (ANN, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.competition_yaml(world.slug, who)
        with pytest.raises(Forbidden):
            platform.update_competition_yaml(world.slug, "title: x\n", who)


def test_yaml_round_trip_and_edit(platform, world):
    text = platform.competition_yaml(world.slug, ORGANIZER)
    doc = yaml.safe_load(text)
    assert doc["title"] == "Secrets"
    assert platform.update_competition_yaml(world.slug, text, ORGANIZER) == []
    doc["title"] = "Secrets, edited"
    doc["phases"][1]["start"] = "2100-03-01 00:00"
    assert platform.update_competition_yaml(world.slug, yaml.safe_dump(doc, sort_keys=False), ORGANIZER) == []
    detail = platform.competition_detail(world.slug, ANN)
    assert detail["title"] == "Secrets, edited" and detail["slug"] == world.slug
    assert detail["phases"][1]["start"] == "2100-03-01T00:00:00"
    # Submissions keep their phase, and the leaderboard still shows them.
    assert [r["participant"] for r in platform.leaderboard(world.slug, actor=ANN)["rows"]] == ["ben", "ann"]


def test_bad_yaml_saves_nothing(platform, world):
    before = platform.competition_yaml(world.slug, ORGANIZER)
    problems = platform.update_competition_yaml(world.slug, "title: [unclosed\n", ORGANIZER)
    assert problems and problems[0].startswith("competition.yaml: line ")
    doc = yaml.safe_load(before)
    doc["title"] = "Changed"
    doc["phases"][0]["max_submissions"] = "many"
    problems = platform.update_competition_yaml(world.slug, yaml.safe_dump(doc, sort_keys=False), ORGANIZER)
    assert any("max_submissions" in p for p in problems)
    assert platform.competition_yaml(world.slug, ORGANIZER) == before
    assert platform.update_competition_yaml(world.slug, "  ", ORGANIZER) == ["competition.yaml: (file): is empty"]


def test_a_phase_with_submissions_cannot_be_removed(platform, world):
    doc = yaml.safe_load(platform.competition_yaml(world.slug, ORGANIZER))
    doc["phases"] = doc["phases"][1:]
    doc["title"] = "Changed"
    problems = platform.update_competition_yaml(world.slug, yaml.safe_dump(doc, sort_keys=False), ORGANIZER)
    assert problems == ["competition.yaml: phases: phase 1 ('Development') has 3 submission(s) and cannot be removed"]
    assert platform.competition_detail(world.slug, ANN)["title"] == "Secrets"


def test_a_phase_without_submissions_can_be_removed(platform, world):
    doc = yaml.safe_load(platform.competition_yaml(world.slug, ORGANIZER))
    doc["phases"] = doc["phases"][:1]
    assert platform.update_competition_yaml(world.slug, yaml.safe_dump(doc, sort_keys=False), ORGANIZER) == []
    assert [p["name"] for p in platform.competition_detail(world.slug, ANN)["phases"]] == ["Development"]
    assert platform.submissions_view(world.slug, ORGANIZER, phase=1)["total"] == 3


# -- leaderboards as CSV and history -----------------------------------------------------------------
def test_leaderboard_csv_follows_the_viewer(platform, world):
    as_ann = platform.leaderboard_csv(world.slug, actor=ANN).splitlines()
    # One column shown: its rank is the rank, so no average rank.
    assert as_ann[0] == "rank,participant,submission,submitted_at,Accuracy"
    assert [line.split(",")[1] for line in as_ann[1:]] == ["ben", "ann"]
    as_olga = platform.leaderboard_csv(world.slug, actor=ORGANIZER).splitlines()
    assert as_olga[0].split(",")[4:] == ["Accuracy", "Secret", "average_rank"]
    assert platform.leaderboard_csv(world.slug, actor=ANN, board="private").count("\n") == 1


def test_leaderboard_view_has_ranks_and_keeps_the_cli_shape(platform, world):
    assert set(platform.leaderboard(world.slug, actor=ANN)) == {"competition", "phase", "columns", "rows"}
    board = platform.leaderboard_view(world.slug, actor=ANN)
    assert board["board"] == "main" and board["columns"][0]["precision"] == 2
    assert board["average_rank_shown"] is False  # one column: the rank says it all
    assert [(r["participant"], r["ranks"], r["average_rank"]) for r in board["rows"]] == [
        ("ben", {"accuracy": 1}, None), ("ann", {"accuracy": 2}, None)]
    both = platform.leaderboard_view(world.slug, actor=ORGANIZER)
    assert [c["key"] for c in both["columns"]] == ["accuracy", "secret"] and both["average_rank_shown"] is True
    assert all(r["average_rank"] is not None for r in both["rows"])


def test_best_score_history(platform, world, tmp_path):
    better = platform.submit(world.slug, results_zip(tmp_path, "c.zip"), username="ann", actor=ANN)
    finish(platform, better, {"accuracy": 0.95})
    worse = platform.submit(world.slug, results_zip(tmp_path, "d.zip"), username="ben", actor=BEN)
    finish(platform, worse, {"accuracy": 0.5})
    history = platform.best_score_history(world.slug, 1, "main", NORA)
    assert [(p["participant"], p["value"]) for p in history] == [("ann", 0.7), ("ben", 0.8), ("ann", 0.95)]


# -- administration ----------------------------------------------------------------------------------
def test_storage_use_is_for_admins(platform, world):
    use = platform.storage_use(ADMIN)
    assert use["datasets"]["bytes"] > 0 and use["total_bytes"] >= use["datasets"]["bytes"]
    assert {c["slug"]: c["submissions"] for c in use["competitions"]} == {world.slug: 3, world.other_slug: 0}
    for who in (ORGANIZER, ANN, ANONYMOUS, Actor("x", groups=frozenset({"organizers"}))):
        with pytest.raises(Forbidden):
            platform.storage_use(who)


def test_storage_use_counts_the_stored_bytes_of_each_competition(platform, world):
    sids = [item["id"] for item in platform.submissions_view(world.slug, ORGANIZER, limit=200)["items"]]
    root = platform.store.root
    # A run's logs and outputs, as workers leave them: one attempt folder per submission.
    platform.store.put_file_bytes(f"submissions/{sids[0]}/attempt-1/task-0/scoring/stdout.txt", b"x" * 1234)
    platform.store.put_file_bytes(f"submissions/{sids[1]}/attempt-1/output/predictions.csv", b"y" * 77)
    with platform.db.session() as s:
        keys = {s.get(m.Submission, sid).file_key for sid in sids}
    submitted = sum((root / "datasets" / key[:2] / key).stat().st_size for key in keys)
    outputs = sum(p.stat().st_size for sid in sids for p in (root / "files" / "submissions" / str(sid)).rglob("*")
                  if p.is_file())
    use = {c["slug"]: c for c in platform.storage_use(ADMIN)["competitions"]}
    assert submitted > 0 and use[world.slug]["submission_bytes"] == submitted
    assert outputs >= 1234 + 77 and use[world.slug]["output_bytes"] == outputs
    assert use[world.slug]["data_bytes"] > 0  # its programs and datasets
    assert (use[world.other_slug]["submission_bytes"], use[world.other_slug]["output_bytes"]) == (0, 0)


def test_a_participant_sees_of_each_tasks_scores_what_the_board_and_the_outputs_show():
    from types import SimpleNamespace as NS

    from hub_extension.app.views import _task_scores

    comp = NS(tasks=[NS(index=0, name="A"), NS(index=1, name="B")], leaderboards=[
        NS(hidden=False, columns=[NS(key="set1_score", hidden=False), NS(key="secret", hidden=True)])])
    sub = NS(task_scores=[{"task": 0, "scores": {"set1_score": 0.5, "secret": 0.1, "score": 0.5}},
                          {"task": 1, "scores": {"score": 0.75}}])

    def keys(**cut):
        return [sorted(t["scores"]) for t in _task_scores(sub, comp, **cut)]

    assert keys(organizer=True, results_hidden=False) == [["score", "secret", "set1_score"], ["score"]]
    # Keys that are no column are in the scoring output: shown where it is.
    assert keys(organizer=False, results_hidden=False, outputs_shown=True) == [["score", "set1_score"], ["score"]]
    assert keys(organizer=False, results_hidden=False, outputs_shown=False) == [["set1_score"], []]
    assert _task_scores(sub, comp, False, True) == []
