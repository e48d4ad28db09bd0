"""Real CodaLab v1.5 and Codabench v2 bundles import as their platforms read them.

Dates as organizers wrote them, early Codabench bundles without `version`,
dataset keys of another server, the tables of known keys (honoured, or said at
upload to be accepted but not supported), page order, and zips that list a
member twice.  The fixtures are `tests/fixtures/bundles/fidelity_*`.
"""
from __future__ import annotations

import shutil
import zipfile
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml

from hub_extension.bundles import BundleError, load_bundle
from hub_extension.bundles.codabench import TOP_KEYS as CODABENCH_TOP_KEYS
from hub_extension.bundles.codalab import PHASE_KEYS as CODALAB_PHASE_KEYS
from hub_extension.bundles.codalab import TOP_KEYS as CODALAB_TOP_KEYS
from hub_extension.bundles.fields import codabench_date, parse_date, read_date
from hub_extension.bundles.unpack import UnpackLimits, check_zip_file

from tests.support.bundles import FIXTURES

CODALAB = FIXTURES / "fidelity_codalab"
CODABENCH_2019 = FIXTURES / "fidelity_codabench_2019"
FOREIGN = FIXTURES / "fidelity_foreign_key"
DUPLICATES = FIXTURES / "fidelity_duplicates"
FOREIGN_KEY = "ed6a2f4c-5b1e-4c3a-9d2e-7f0a1b2c3d4e"


def copy_of(bundle: Path, tmp_path: Path) -> Path:
    return shutil.copytree(bundle, tmp_path / bundle.name)


def edit_yaml(bundle: Path, change) -> Path:
    path = bundle / "competition.yaml"
    doc = yaml.safe_load(path.read_text())
    change(doc)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return bundle


def problems_of(source: Path) -> list[str]:
    with pytest.raises(BundleError) as info:
        load_bundle(source)
    return [str(p) for p in info.value.problems]


def zip_with_folder_twice(bundle: Path, target: Path, folder: str, changed: bytes | None = None) -> Path:
    """The bundle zipped with `folder` added twice, as a zip tool does; `changed` alters the second copy."""
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as zf:
        for path in sorted(bundle.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(bundle).as_posix())
        for path in sorted((bundle / folder).rglob("*")):
            if path.is_file():
                data = path.read_bytes() if changed is None or path.name != "score.py" else changed
                with pytest.warns(UserWarning, match="Duplicate name"):
                    zf.writestr(path.relative_to(bundle).as_posix(), data)
    return target


# -- 1. dates ---------------------------------------------------------------------------------------

UTC2 = timezone(timedelta(hours=2))


@pytest.mark.parametrize("value, expected", [
    ("2012-10-1", datetime(2012, 10, 1)),  # CodaLab bundles, no leading zeros
    ("2012-1-5 9:30", datetime(2012, 1, 5, 9, 30)),
    ("8-7-2019", datetime(2019, 8, 7)),  # Codabench, month first
    ("1-31-2026", datetime(2026, 1, 31)),
    ("31-1-2026", datetime(2026, 1, 31)),  # a first number above 12 is the day, as dateutil reads it
    ("12/1/2026 13:45", datetime(2026, 12, 1, 13, 45)),
    ("2026/01/31", datetime(2026, 1, 31)),
    ("2026-01-31T10:00", datetime(2026, 1, 31, 10)),
    ("2026-01-31 10:00:30", datetime(2026, 1, 31, 10, 0, 30)),
    ("2019-09-24 17:00:00+00:00", datetime(2019, 9, 24, 17)),
    ("2026-01-31T10:00:00+02:00", datetime(2026, 1, 31, 8)),
    ("2026-01-31 10:00 +0530", datetime(2026, 1, 31, 4, 30)),
    ("2026-01-31 10:00:00Z", datetime(2026, 1, 31, 10)),
    ("2026-01-31 10:00 UTC", datetime(2026, 1, 31, 10)),
    ("2026-01-31 5:30 pm", datetime(2026, 1, 31, 17, 30)),
    ("Oct 1, 2012", datetime(2012, 10, 1)),
    ("1 October 2012", datetime(2012, 10, 1)),
    (date(2012, 10, 1), datetime(2012, 10, 1)),  # YAML already parsed these
    (datetime(2019, 9, 24, 17), datetime(2019, 9, 24, 17)),
    (datetime(2019, 9, 24, 17, tzinfo=UTC2), datetime(2019, 9, 24, 15)),
    ("tomorrow", None),
    ("2026-13-01", None),
    ("2026-02-30", None),
    ("2026-01-31 25:00", None),
    (20260131, None),
    ("", None),
])
def test_dates_as_codalab_and_codabench_accept_them(value, expected):
    assert parse_date(value) == expected


def test_yaml_values_as_organizers_write_them():
    doc = yaml.safe_load("a: 2012-10-1\nb: 2012-10-01\nc: 2019-09-24 17:00:00+02:00\nd: 8-7-2019\n")
    assert isinstance(doc["a"], str) and isinstance(doc["b"], date) and isinstance(doc["c"], datetime)
    assert [parse_date(doc[k]) for k in "abcd"] == [
        datetime(2012, 10, 1), datetime(2012, 10, 1), datetime(2019, 9, 24, 15), datetime(2019, 8, 7)]


def test_what_codabench_makes_of_a_date():
    # An unquoted date-time keeps only its day there; a written offset is replaced by UTC.
    assert codabench_date(read_date(datetime(2019, 9, 24, 17, tzinfo=UTC2))) == datetime(2019, 9, 24)
    assert codabench_date(read_date("2026-01-31 10:00+02:00")) == datetime(2026, 1, 31, 10)
    assert codabench_date(read_date("2026-01-31 10:00")) == datetime(2026, 1, 31, 10)


def test_codalab_bundle_with_dates_without_leading_zeros_loads():
    with load_bundle(CODALAB) as bundle:
        phase = bundle.spec.phases[0]
        assert (phase.start, phase.end) == (datetime(2012, 10, 1), datetime(2030, 1, 31, 12))


def test_a_bad_date_names_the_field_and_a_good_value(tmp_path):
    bundle = edit_yaml(copy_of(CODALAB, tmp_path), lambda d: d["phases"][1].update(start_date="the first of May"))
    assert problems_of(bundle) == [
        "competition.yaml: phases[1].start_date: must be a date, got 'the first of May'; write it like "
        "2026-01-31 or 2026-01-31 12:00 (UTC unless an offset like +02:00 follows)"]


def test_codalab_top_start_date_must_still_be_a_date(tmp_path):
    bundle = edit_yaml(copy_of(CODALAB, tmp_path), lambda d: d.update(start_date="soon"))
    assert any(p.startswith("competition.yaml: start_date: must be a date, got 'soon'") for p in problems_of(bundle))


def test_codabench_says_when_it_would_read_a_date_otherwise(tmp_path):
    bundle = copy_of(FOREIGN, tmp_path)
    path = bundle / "competition.yaml"
    path.write_text(path.read_text().replace("start: 2019-08-07", "start: 2019-08-07 17:00:00+02:00"))
    with load_bundle(bundle) as loaded:
        assert loaded.spec.phases[0].start == datetime(2019, 8, 7, 15)
        assert ("competition.yaml: phases[0].start: Codabench would read this as 2019-08-07 00:00 UTC (it keeps "
                "only the day of a date-time written without quotes); here it is 2019-08-07 15:00 UTC, as written"
                ) in loaded.warnings


# -- 2. an early Codabench bundle without version ---------------------------------------------------

def test_codabench_2019_bundle_without_version_is_inferred():
    with load_bundle(CODABENCH_2019) as bundle:
        assert bundle.spec.dialect == "codabench"
        assert bundle.spec.registration_auto_approve is True
        assert [t.scoring_program.value for t in bundle.spec.tasks] == ["scoring_program"]
        assert bundle.spec.leaderboards[0].key == "main"
        assert bundle.warnings[0] == (
            "competition.yaml: version: is missing; read as a Codabench v2 bundle because 'phases' is a list, "
            "'tasks' is given, 'solutions' is given, 'pages' is given, 'leaderboards' have a 'key' (early "
            "Codabench bundles left out 'version: 2'; add it to say so)")


def test_a_bundle_of_both_structures_is_refused_as_ambiguous(tmp_path):
    bundle = edit_yaml(copy_of(CODABENCH_2019, tmp_path),
                       lambda d: d.update(html={"overview": "overview.md"}, leaderboard={}))
    assert problems_of(bundle) == [
        "competition.yaml: version: is missing and the structure is ambiguous: 'phases' is a list, 'tasks' is "
        "given, 'solutions' is given, 'pages' is given, 'leaderboards' have a 'key' (Codabench v2) but 'html' "
        "is given, 'leaderboard' is given (CodaLab v1.5); add 'version: 2' for a Codabench bundle, or write "
        "'phases' as a mapping (1:, 2:, ...) without 'tasks' for a CodaLab one"]


def test_without_version_and_without_tasks_it_is_codalab(tmp_path):
    bundle = edit_yaml(copy_of(CODABENCH_2019, tmp_path), lambda d: d.pop("tasks"))
    assert ("competition.yaml: phases: must be a mapping of phase numbers to phases (CodaLab v1.5); add "
            "'version: 2' at the top for a Codabench bundle") in problems_of(bundle)


# -- 3. dataset keys of another server --------------------------------------------------------------

def test_foreign_dataset_key_provided_as_a_folder_loads():
    with load_bundle(FOREIGN) as bundle:
        assert bundle.spec.tasks[0].reference_data.value == FOREIGN_KEY


def test_foreign_dataset_key_provided_as_a_zip_loads(tmp_path):
    bundle = copy_of(FOREIGN, tmp_path)
    shutil.make_archive(str(bundle / FOREIGN_KEY), "zip", bundle / FOREIGN_KEY)
    shutil.rmtree(bundle / FOREIGN_KEY)
    with load_bundle(bundle) as loaded:
        assert loaded.spec.tasks[0].reference_data.value == f"{FOREIGN_KEY}.zip"


@pytest.mark.parametrize("kind", ["reference_data", "input_data", "scoring_program", "ingestion_program"])
def test_foreign_dataset_key_missing_says_what_it_is_and_what_to_do(tmp_path, kind):
    bundle = copy_of(FOREIGN, tmp_path)
    shutil.rmtree(bundle / FOREIGN_KEY)
    edit_yaml(bundle, lambda d: d["tasks"][0].update({kind: FOREIGN_KEY}))
    problems = problems_of(bundle)
    assert f"competition.yaml: tasks[0].{kind}: 'ed6a2f4c…' is the key of a dataset held by the CodaLab or " \
           f"Codabench server this bundle was exported from ({FOREIGN_KEY}); this platform does not hold that " \
           f"server's datasets. Provide the {kind}: put its folder or zip in the bundle under that name " \
           f"('{FOREIGN_KEY}/' or '{FOREIGN_KEY}.zip'), or under any name and write that name here; a dataset " \
           "already stored on this platform is named by its 64-character key" in problems
    assert not any("not found in the bundle" in p for p in problems)


def test_task_key_beside_its_files_builds_the_task_from_the_files(tmp_path):
    bundle = edit_yaml(copy_of(FOREIGN, tmp_path),
                       lambda d: d["tasks"][0].update(key="0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0"))
    with load_bundle(bundle) as loaded:
        assert loaded.spec.tasks[0].reference_data.value == FOREIGN_KEY
        assert any(w.startswith("competition.yaml: tasks[0].key: '0b1c2d3e-4f50-6172-8394-a5b6c7d8e9f0' names a "
                                "task stored on the server this bundle came from") for w in loaded.warnings)


# -- 4. known keys: honoured or said ---------------------------------------------------------------

def test_codalab_keys_accepted_but_not_supported_are_said():
    with load_bundle(CODALAB) as bundle:
        said = [w for w in bundle.warnings if "accepted but not supported" in w]
        assert bundle.spec.allow_teams is True  # honoured, so nothing said
    assert said == [
        "competition.yaml: phases[1].datasets: accepted but not supported: datasets (would list these links on "
        "the data page; here they are not listed)",
        "competition.yaml: show_datasets_from_yaml: accepted but not supported: show_datasets_from_yaml (would "
        "list each phase's 'datasets' links on the data page; here they are not listed)",
    ]


def test_codabench_2019_fact_sheet_and_approval_are_honoured_without_a_warning():
    with load_bundle(CODABENCH_2019) as bundle:
        # The fact sheet is honoured: its question read (the keys it leaves out take their defaults).
        assert bundle.spec.fact_sheet == [{"key": "method", "type": "text", "title": "Describe your method",
                                           "selection": [], "is_required": True, "is_on_leaderboard": False}]
        assert not any("fact_sheet" in w for w in bundle.warnings)
        assert bundle.spec.registration_auto_approve is True  # honoured, so nothing said
        assert not any("registration_auto_approve" in w for w in bundle.warnings)


def test_a_value_that_asks_for_nothing_different_is_not_reported(tmp_path):
    bundle = edit_yaml(copy_of(CODALAB, tmp_path), lambda d: d.update(
        allow_teams=False, enable_forum=False, anonymous_leaderboard=False, show_datasets_from_yaml=False))
    with load_bundle(bundle) as loaded:
        assert [w for w in loaded.warnings if "accepted but not supported" in w] == [
            "competition.yaml: phases[1].datasets: accepted but not supported: datasets (would list these links "
            "on the data page; here they are not listed)"]
        # honoured: read into the competition, not kept aside
        assert loaded.spec.anonymous_leaderboard is False
        assert "anonymous_leaderboard" not in loaded.spec.extra.get("competition", {})


def test_a_false_flag_can_be_what_is_not_supported(tmp_path):
    bundle = edit_yaml(copy_of(CODABENCH_2019, tmp_path), lambda d: d.update(auto_run_submissions=False))
    with load_bundle(bundle) as loaded:
        assert ("competition.yaml: auto_run_submissions: accepted but not supported: auto_run_submissions (false "
                "would hold submissions until an organizer runs them; here every submission runs at once)"
                ) in loaded.warnings


def test_unknown_keys_are_still_typos_with_a_suggestion(tmp_path):
    bundle = edit_yaml(copy_of(CODALAB, tmp_path), lambda d: d.update(anonymous_leaderbord=True))
    with load_bundle(bundle) as loaded:
        assert ("competition.yaml: anonymous_leaderbord: unknown key, ignored (did you mean "
                "'anonymous_leaderboard'?)") in loaded.warnings


def test_codalab_queue_and_hide_flags_are_honoured(tmp_path):
    bundle = edit_yaml(copy_of(CODALAB, tmp_path), lambda d: (
        d.update(queue="gpu"), d["phases"][1].update(hide_output=True, hide_score_output=True)))
    with load_bundle(bundle) as loaded:
        assert loaded.spec.queue == "gpu"
        phase = loaded.spec.phases[0]
        assert (phase.hide_output, phase.hide_prediction_output, phase.hide_score_output) == (True, False, True)
        assert not any("queue" in w or "hide_" in w for w in loaded.warnings)


def test_key_tables_list_every_key_the_platforms_read():
    # CodaLab: the Competition and CompetitionPhase fields its importer fills from the YAML.
    for key in ("allow_teams", "enable_teams", "anonymous_leaderboard", "enable_forum", "show_datasets_from_yaml",
                "disallow_leaderboard_modifying", "allow_public_submissions", "require_team_approval",
                "hide_top_three", "hide_chart", "reward", "enable_per_submission_metadata", "published",
                "enable_medical_image_viewer", "enable_detailed_results", "competition_docker_image"):
        assert key in CODALAB_TOP_KEYS
    for key in ("phase_never_ends", "default_docker_image", "disable_custom_docker_image", "datasets",
                "is_parallel_parent", "parent_phasenumber", "scoring_program_docker_image"):
        assert key in CODALAB_PHASE_KEYS
    # Codabench: the fields of its v2 unpacker and export.
    for key in ("registration_auto_approve", "fact_sheet", "forum_enabled", "auto_run_submissions",
                "can_participants_make_submissions_public", "make_programs_available", "make_input_data_available",
                "show_detailed_results_in_submission_panel", "show_detailed_results_in_leaderboard",
                "competition_type", "reward", "contact_email", "queue", "solutions", "enable_detailed_results"):
        assert key in CODABENCH_TOP_KEYS
    for table in (CODALAB_TOP_KEYS, CODALAB_PHASE_KEYS, CODABENCH_TOP_KEYS):
        for key, known in table.items():
            assert known.honoured or known.effect, key


# -- 5. page order ----------------------------------------------------------------------------------

def test_codalab_pages_come_in_codalab_order():
    with load_bundle(CODALAB) as bundle:
        assert [p.name for p in bundle.spec.pages] == ["overview", "evaluation", "faq", "data"]
        assert [p.title for p in bundle.spec.pages] == ["Overview", "Evaluation", "Faq", "Data"]
        assert bundle.spec.terms is not None and "Play fair" in bundle.spec.terms


def test_codabench_pages_keep_the_order_of_the_list(tmp_path):
    bundle = copy_of(CODABENCH_2019, tmp_path)
    (bundle / "data.md").write_text("# Data\n")
    edit_yaml(bundle, lambda d: d.update(version=2, pages=[{"title": "Data", "file": "data.md"},
                                                          {"title": "Overview", "file": "overview.md"}]))
    with load_bundle(bundle) as loaded:
        assert [p.title for p in loaded.spec.pages] == ["Data", "Overview"]


# -- 6. members listed twice ------------------------------------------------------------------------

def test_identical_duplicate_members_are_accepted_with_a_warning(tmp_path):
    archive = zip_with_folder_twice(DUPLICATES, tmp_path / "bundle.zip", "scoring_program")
    with load_bundle(archive) as bundle:
        assert (bundle.root / "scoring_program" / "score.py").read_bytes() == \
            (DUPLICATES / "scoring_program" / "score.py").read_bytes()
        assert sorted(w for w in bundle.warnings if "twice" in w) == [
            "bundle.zip: scoring_program/metadata: appears twice in the archive with the same contents; one copy "
            "is used",
            "bundle.zip: scoring_program/score.py: appears twice in the archive with the same contents; one copy "
            "is used",
        ]


def test_duplicate_members_with_different_contents_are_refused(tmp_path):
    archive = zip_with_folder_twice(DUPLICATES, tmp_path / "bundle.zip", "scoring_program", changed=b"print(1)\n")
    assert problems_of(archive) == [
        "bundle.zip: scoring_program/score.py: appears twice in the archive with different contents (also as "
        "'scoring_program/score.py'); keep one copy and rebuild the zip"]


def test_a_nested_zip_with_identical_duplicates_is_accepted_with_a_warning(tmp_path):
    bundle = copy_of(DUPLICATES, tmp_path)
    inner = tmp_path / "scoring_program.zip"
    zip_with_folder_twice(bundle / "scoring_program", inner, ".")
    shutil.rmtree(bundle / "scoring_program")
    shutil.move(inner, bundle / "scoring_program.zip")
    edit_yaml(bundle, lambda d: d["tasks"][0].update(scoring_program="scoring_program.zip"))
    with load_bundle(bundle) as loaded:
        assert loaded.spec.tasks[0].scoring_program.value == "scoring_program.zip"
        assert any(w.startswith("scoring_program.zip: score.py: appears twice") for w in loaded.warnings)


def test_submission_zip_with_identical_duplicates_passes_the_same_check(tmp_path):
    solution = DUPLICATES / "solution"
    archive = zip_with_folder_twice(solution, tmp_path / "submission.zip", ".")
    warnings: list[str] = []
    assert check_zip_file(archive, "submission.zip", UnpackLimits(), warnings) == []
    assert warnings == ["submission.zip: predictions.txt: appears twice in the archive with the same contents; "
                        "one copy is used"]
    # the zip-bomb caps still hold for duplicated members
    tight = UnpackLimits(max_total_bytes=len((solution / "predictions.txt").read_bytes()) * 2 - 1)
    assert [p.key for p in check_zip_file(archive, "submission.zip", tight)] == ["(archive)"]
