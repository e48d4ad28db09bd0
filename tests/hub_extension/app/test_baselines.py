"""Baselines: an organizer runs a Codabench bundle's solutions of a phase as marked submissions of their own."""
from __future__ import annotations

import datetime as dt
import json
import zipfile

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor, Forbidden, LimitReached, PlatformError
from hub_extension.cli import main as compete

from tests.support.builders import finish, results_zip
from tests.support.paths import BUNDLE_FIXTURES

BUNDLE = BUNDLE_FIXTURES / "solutions_codabench"
NOW = dt.datetime(2025, 6, 1, 12, 0)  # in the Development phase
OLGA = Actor("olga", groups=frozenset({"organizers"}))


@pytest.fixture
def slug(platform):
    slug, _ = platform.create_competition(BUNDLE, OLGA)
    return slug


def test_a_phase_runs_the_solutions_it_lists_in_its_order(platform, slug):
    done = platform.run_baselines(slug, 1, OLGA, now=NOW)
    assert done["competition"] == slug and done["phase"] == 1 and done["skipped"] == []
    assert [(s["solution"], s["name"], s["kind"]) for s in done["submissions"]] == [
        (1, "Always circle", "results"), (0, "Careful", "results")]
    with platform.db.session() as s:
        subs = [s.get(m.Submission, entry["id"]) for entry in done["submissions"]]
        assert all(sub.baseline and sub.status == m.SUBMITTED for sub in subs)
        assert [sub.solution_index for sub in subs] == [1, 0]
        assert {s.get(m.Participant, sub.participant_id).username for sub in subs} == {"olga"}
        comp = s.query(m.Competition).filter_by(slug=slug).one()
        # The submitted file is the stored solution itself (its content key).
        assert [sub.file_key for sub in subs] == [comp.solutions[1].data_key, comp.solutions[0].data_key]
        assert subs[1].filename == "solution.zip" and subs[0].filename == "constant.zip"
        with zipfile.ZipFile(platform.store.dataset_path(subs[1].file_key)) as zf:
            assert zf.read("predictions.txt") == (BUNDLE / "solution" / "predictions.txt").read_bytes()


def test_without_a_list_a_phase_runs_the_solutions_of_its_tasks(platform, slug):
    listed = platform.phase_solutions(slug, OLGA)
    assert [[sol["index"] for sol in p["solutions"]] for p in listed] == [[1, 0], [0, 1]]
    done = platform.run_baselines(slug, 2, OLGA, now=NOW)  # before the phase opens: organizers check it first
    assert [s["solution"] for s in done["submissions"]] == [0, 1]


def test_baselines_count_against_no_limit(platform, slug, tmp_path):
    # Development allows one submission, one a day.
    platform.run_baselines(slug, 1, OLGA, now=NOW)
    platform.run_baselines(slug, 1, OLGA, now=NOW)
    assert platform.submissions_left(slug, "olga", 1, now=NOW) == {"total": 1, "today": 1}
    platform.submit(slug, results_zip(tmp_path), username="olga", phase=1, actor=OLGA, now=NOW)
    with pytest.raises(LimitReached):
        platform.submit(slug, results_zip(tmp_path), username="olga", phase=1, actor=OLGA, now=NOW)


def test_baselines_are_ranked_with_a_badge_one_entry_per_solution(platform, slug, tmp_path):
    platform.register(slug, "ann", LOCAL_ADMIN)
    ann = platform.submit(slug, results_zip(tmp_path), username="ann", phase=1, now=NOW)
    first = platform.run_baselines(slug, 1, OLGA, now=NOW)["submissions"]
    again = platform.run_baselines(slug, 1, OLGA, now=NOW + dt.timedelta(minutes=1))["submissions"]
    finish(platform, ann, {"accuracy": 0.5}, with_outputs=False)
    for entry, value in zip(first + again, (0.25, 0.75, 0.2, 0.7)):
        finish(platform, entry["id"], {"accuracy": value}, with_outputs=False)
    board = platform.leaderboard(slug, 1, actor=Actor("ann"), now=NOW)
    # Force_Last: the latest run of each solution stands, beside ann's entry.
    assert [(r["rank"], r["participant"], r["baseline"], r["scores"]["accuracy"]) for r in board["rows"]] == [
        (1, "olga", True, 0.7), (2, "ann", False, 0.5), (3, "olga", True, 0.2)]
    view = platform.leaderboard_view(slug, 1, actor=Actor("ann"), now=NOW)
    assert [r.get("solution") for r in view["rows"]] == ["Careful", None, "Always circle"]
    assert [r["submission"] for r in view["rows"]] == [again[1]["id"], ann, again[0]["id"]]


def test_a_baseline_rerun_stays_a_baseline_and_baselines_are_not_migrated(platform, slug):
    done = platform.run_baselines(slug, 1, OLGA, now=NOW)["submissions"]
    for entry in done:
        finish(platform, entry["id"], {"accuracy": 0.5}, with_outputs=False)
    again = platform.rerun(done[0]["id"], OLGA)
    with platform.db.session() as s:
        sub = s.get(m.Submission, again)
        assert sub.baseline and sub.solution_index == done[0]["solution"]
    assert platform.migrate_submissions(slug, 1, OLGA, confirm=0, now=NOW) == []


def test_only_organizers_run_baselines(platform, slug):
    platform.register(slug, "ann", LOCAL_ADMIN)
    with pytest.raises(Forbidden):
        platform.run_baselines(slug, 1, Actor("ann"), now=NOW)
    with pytest.raises(Forbidden):
        platform.phase_solutions(slug, Actor("ann"))
    with pytest.raises(PlatformError, match="another organizer"):
        platform.run_baselines(slug, 1, OLGA, username="ann", now=NOW)


def test_a_phase_without_solutions_says_where_they_come_from(platform, tmp_path):
    from tests.support.builders import simple_spec

    slug = platform.competitions.insert_competition(simple_spec("codabench"), LOCAL_ADMIN)
    with pytest.raises(PlatformError, match="has no solutions to run as baselines: a Codabench bundle lists"):
        platform.run_baselines(slug, 1, LOCAL_ADMIN)


def test_cli_runs_the_baselines_of_a_phase(tmp_path, capsys):
    home = tmp_path / "home"
    assert compete(["--home", str(home), "competition", "create", str(BUNDLE)]) == 0
    slug = capsys.readouterr().out.strip().splitlines()[-1]
    code = compete(["--home", str(home), "--executor", "process", "baseline", "run", slug, "--phase", "2",
                    "--wait", "--json"])
    out = capsys.readouterr().out.strip().splitlines()
    done = json.loads(out[-1])
    assert code == 0, out
    assert [(s["solution"], s["status"], s["scores"]) for s in done["submissions"]] == [
        (0, "Finished", {"accuracy": 0.75}), (1, "Finished", {"accuracy": 0.25})]
    assert compete(["--home", str(home), "leaderboard", slug, "--phase", "2", "--json"]) == 0
    board = json.loads(capsys.readouterr().out)
    assert [(r["participant"], r["baseline"]) for r in board["rows"]] == [("admin", True), ("admin", True)]
