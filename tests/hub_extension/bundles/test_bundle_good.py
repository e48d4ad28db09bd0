"""Every good fixture bundle loads, as a folder and as a zip, with the right facts."""
from __future__ import annotations

from datetime import datetime

import pytest

from hub_extension.bundles import DataRef, load_bundle

from tests.support.bundles import FIXTURES, GOOD, zip_folder


def load(name, as_source, store):
    return load_bundle(as_source(FIXTURES / "good" / name), dataset_exists=store.has_dataset)


@pytest.mark.parametrize("name", GOOD)
def test_good_fixture_loads_without_problems(name, as_source, store):
    with load(name, as_source, store) as bundle:
        assert bundle.spec.title
        assert bundle.spec.phases and bundle.spec.tasks and bundle.spec.leaderboards
        for task in bundle.spec.tasks:
            ref = task.scoring_program
            assert ref is not None
            if ref.kind == "path":
                assert (bundle.root / ref.value).exists()
        expected = DISCLOSED.get(name, []) + NOT_SUPPORTED.get(name, []) + CO_ORGANIZERS.get(name, [])
        unexpected = [w for w in bundle.warnings if "wrapping folder" not in w and w not in expected]
        assert unexpected == []


# What the good fixtures' boards let participants work out about hidden columns:
# said to the organizer at import (tests/scoring/test_hidden_information.py).
DISCLOSED = {
    "codabench_boards": [
        "competition.yaml: leaderboard 'public': column 'mean': is shown to participants and computed (avg) "
        "from the hidden column(s) 'errors': with the visible columns, participants can work out their values; "
        "hide this column too to keep them secret",
    ],
    "codalab_results": [
        "competition.yaml: leaderboard 'DETAILS': column 'accuracy_detail': is hidden and orders the board: "
        "participants see the order of its values (never the values themselves)",
    ],
}
# Co-organizers named by a bundle: the hub's users are not known at import, so the organizer is told.
CO_ORGANIZERS = {
    "codalab_results": [
        "competition.yaml: admin_names: alice, bob will organize this competition with its creator: each must be "
        "that person's hub user name exactly (not checked against the hub's users here); change the list on the "
        "competition's participants page",
    ],
}
# Keys of the good fixtures that this platform accepts without acting on them (docs/bundle-formats.md#known-keys).
NOT_SUPPORTED = {
    "codabench_results": [
        "competition.yaml: enable_detailed_results: accepted but not supported: enable_detailed_results (false keeps "
        "the scoring program's detailed results from participants; here a participant sees the detailed results "
        "page whenever the scoring program writes one; hide_score_output hides it)",
    ],
}


@pytest.mark.parametrize("name", sorted(DISCLOSED))
def test_import_says_what_boards_reveal_of_hidden_columns(name, as_source, store):
    with load(name, as_source, store) as bundle:
        assert [w for w in bundle.warnings if w in DISCLOSED[name]] == DISCLOSED[name]


def test_zip_bundle_temp_dir_is_removed_on_close(tmp_path, store):
    source = zip_folder(FIXTURES / "good" / "codabench_results", tmp_path / "b.zip")
    with load_bundle(source) as bundle:
        root = bundle.root
        assert (root / "competition.yaml").is_file()
    assert not root.exists()


def test_folder_bundle_is_left_alone_on_close(store):
    folder = FIXTURES / "good" / "codabench_results"
    with load_bundle(folder) as bundle:
        assert bundle.root == folder
    assert (folder / "competition.yaml").is_file()


def test_codalab_results_facts(as_source, store):
    with load("codalab_results", as_source, store) as bundle:
        spec = bundle.spec
    assert spec.dialect == "codalab"
    assert spec.registration_auto_approve is False  # has_registration: True
    assert spec.admin_names == ["alice", "bob"]
    assert spec.logo == DataRef("path", "logo.png")
    assert [p.name for p in spec.pages] == ["overview", "evaluation", "data"]
    assert spec.terms == "<p>Be nice.</p>\n"
    dev, final = spec.phases
    assert (dev.index, dev.name, final.index, final.name) == (1, "Development", 2, "Final")
    # A CodaLab phase ends when the next starts; the last at end_date.
    assert dev.start == datetime(2024, 1, 1) and dev.end == datetime(2024, 6, 1, 12)
    assert final.end == datetime(2030, 1, 1)
    assert dev.max_submissions_per_day == 10 and dev.execution_time_limit == 300
    assert final.max_submissions_per_day == 0  # CodaLab: 0 a day = no submissions
    assert final.hide_results and final.auto_migrate and final.submission_rule == "Force_Best"
    assert dev.results_only and dev.color == "green"
    assert dev.starting_kit == DataRef("path", "starting_kit.zip")
    assert len(spec.tasks) == 2
    assert spec.tasks[0].scoring_program == DataRef("path", "scoring_program.zip")
    assert spec.tasks[1].reference_data == DataRef("path", "reference_final.zip")
    assert [dev.task_indexes, final.task_indexes] == [[0], [1]]
    results, details = spec.leaderboards
    assert (results.key, details.key) == ("RESULTS", "DETAILS")
    assert results.submission_rule == "Force_Last"  # force_submission_to_leaderboard
    assert [c.key for c in results.columns] == ["avg_rank", "correct", "accuracy"]
    avg = results.columns[0]
    assert avg.computation == "rank_avg" and avg.source_keys == ["correct", "accuracy"]
    assert avg.sorting == "asc" and results.primary_key == "avg_rank"
    assert results.columns[1].precision == 0 and results.columns[2].precision == 4
    assert [c.key for c in details.columns] == ["accuracy_detail"] and details.columns[0].hidden
    assert spec.anonymous_leaderboard is False and "anonymous_leaderboard" not in spec.extra.get("competition", {})
    assert spec.published is True


def test_codalab_code_facts(as_source, store):
    with load("codalab_code", as_source, store) as bundle:
        spec = bundle.spec
    (phase,) = spec.phases
    (task,) = spec.tasks
    assert task.ingestion_program == DataRef("path", "ingestion_program.zip")
    assert task.input_data == DataRef("path", "input_data.zip")
    assert phase.public_data == DataRef("path", "input_data.zip")
    assert not phase.results_only and phase.execution_time_limit == 120
    assert phase.max_submissions == 100 and phase.max_submissions_per_day == 999  # CodaLab defaults
    assert phase.end == datetime(2031, 1, 1)
    assert spec.docker_image == "codalab/codalab-legacy:py3"
    assert spec.leaderboards[0].submission_rule == "Add"  # CodaLab's manual choice
    assert spec.leaderboards[0].primary_key == "accuracy"  # first column by rank


def test_codabench_results_facts(as_source, store):
    with load("codabench_results", as_source, store) as bundle:
        spec = bundle.spec
    assert spec.dialect == "codabench"
    assert spec.contact_email == "organizers@example.org" and spec.docker_image == "python:3.11-slim"
    assert [(p.name, p.title, p.format, p.source) for p in spec.pages] == [
        ("overview", "Overview", "markdown", "pages/overview.md"), ("data", "Data", "html", "pages/data.html")]
    assert spec.terms == "Be nice.\n"
    assert spec.tasks[0].scoring_program == DataRef("path", "scoring_program")
    dev, final = spec.phases
    assert dev.start == datetime(2024, 1, 1) and dev.end == datetime(2029, 12, 31)
    assert dev.max_submissions_per_day is None  # Codabench: 0 a day = unlimited
    assert dev.max_submissions == 50
    assert final.max_submissions_per_day == 5 and final.execution_time_limit == 600  # Codabench defaults
    assert final.end is None and final.auto_migrate and final.hide_output
    board = spec.leaderboards[0]
    assert board.submission_rule == "Force_Last" and board.primary_key == "accuracy"
    assert [(c.key, c.sorting, c.precision) for c in board.columns] == [("accuracy", "desc", 3), ("errors", "asc", 2)]
    assert [(s.index, s.task_indexes, s.data, s.source) for s in spec.solutions] == [
        (0, [0], DataRef("path", "solution"), "solution")]
    assert "solutions" not in spec.extra["competition"]
    assert spec.extra["competition"]["make_programs_available"] is False
    assert spec.extra["tasks"] == {"0": {"is_public": False}}


def test_codabench_code_facts(as_source, store):
    with load("codabench_code", as_source, store) as bundle:
        spec = bundle.spec
    (task,) = spec.tasks
    assert task.ingestion_program == DataRef("path", "ingestion_program")
    assert task.ingestion_only_during_scoring is True
    assert spec.phases[0].start == datetime(2024, 1, 1, 8, 30)
    assert spec.phases[0].max_submissions_per_day == 3 and spec.phases[0].execution_time_limit == 60
    assert spec.queue == "gpu-queue"
    assert spec.registration_auto_approve is False  # Codabench default


def test_codabench_multitask_facts(as_source, store):
    with load("codabench_multitask", as_source, store) as bundle:
        spec = bundle.spec
    assert [p.task_indexes for p in spec.phases] == [[0, 1], [1]]
    assert [t.name for t in spec.tasks] == ["Easy", "Hard"]
    assert spec.leaderboards[0].primary_key == "accuracy"  # primary_index: 1


def test_codabench_boards_facts(as_source, store):
    with load("codabench_boards", as_source, store) as bundle:
        spec = bundle.spec
    public, private = spec.leaderboards
    assert public.submission_rule == "Force_Best" and private.submission_rule == "Add_And_Delete_Multiple"
    assert private.hidden and not public.hidden
    assert [c.hidden for c in public.columns] == [False, True, False]
    mean = public.columns[2]
    assert (mean.computation, mean.source_keys, mean.precision) == ("avg", ["accuracy", "errors"], 4)
    assert public.primary_key == "mean"
    assert spec.tasks[0].scoring_program == DataRef("path", "scoring_program.zip")


def test_wrapped_bundle_warns_and_uses_inner_root(as_source, store):
    with load("wrapped", as_source, store) as bundle:
        assert bundle.root.name == "my_competition"
        assert bundle.warnings == [
            "bundle: competition.yaml: found in 'my_competition/'; the bundle has a wrapping folder"]


def test_stored_key_fixture_refers_to_the_store(as_source, store):
    with load("stored_key", as_source, store) as bundle:
        ref = bundle.spec.tasks[0].reference_data
    assert ref is not None and ref.kind == "key" and store.has_dataset(ref.value)
