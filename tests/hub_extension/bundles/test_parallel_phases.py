"""CodaLab 1.8 parallel phases: a parent phase and its children read as one phase with a task per child.

The fixture `parallel_codalab` has a parent phase 1 (`is_parallel_parent`),
children 2 and 3 (`parent_phasenumber: 1`, same start, each with its own
scoring program and reference data, writing `set1_score` and `set2_score`)
and an ordinary phase 4.  Reading, refusals, export and re-import are checked
here, and one submission to the parent end to end on the docker executor,
whose scores are what each child's own scoring program computes by hand.
"""
from __future__ import annotations

import datetime as dt
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from hub_extension.bundles import BundleError, export_bundle, load_bundle, store_bundle_data
from hub_extension.bundles.codalab import codalab_document
from hub_extension.bundles.model import DataRef
from hub_extension.contract import Job, JobResult
from tests.hub_extension.bundles.test_bundles_end_to_end import NOW, Stack, run_scoring, unzip, zip_of
from tests.support.builders import ORGANIZER
from tests.support.paths import BUNDLE_FIXTURES
from tests.support.service_harness import ServiceServer, ok

PARALLEL = BUNDLE_FIXTURES / "parallel_codalab"
AUTODL = BUNDLE_FIXTURES / "parallel_autodl"
SUBMISSION = BUNDLE_FIXTURES / "parallel_submission"


def edited(tmp_path: Path, edit) -> Path:
    """A copy of the fixture whose competition.yaml `edit(doc)` changed."""
    bundle = shutil.copytree(PARALLEL, tmp_path / "bundle")
    doc = yaml.safe_load((bundle / "competition.yaml").read_text())
    edit(doc)
    (bundle / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return bundle


def warnings_of(bundle: Path) -> list[str]:
    with load_bundle(bundle) as loaded:
        return list(loaded.warnings)


def refused(bundle: Path) -> str:
    with pytest.raises(BundleError) as info:
        load_bundle(bundle)
    return str(info.value)


# -- reading ------------------------------------------------------------------------

def test_parent_and_children_are_one_phase_with_a_task_per_child():
    with load_bundle(PARALLEL) as loaded:
        spec = loaded.spec
    assert [p.index for p in spec.phases] == [1, 4]
    parent, final = spec.phases
    assert parent.name == "All datasets"
    assert (parent.start, parent.end) == (dt.datetime(2025, 1, 1), dt.datetime(2026, 1, 1))
    assert (parent.max_submissions, parent.max_submissions_per_day, parent.execution_time_limit) == (20, 5, 120)
    assert parent.results_only
    assert parent.task_indexes == [0, 1]
    a, b = spec.tasks[0], spec.tasks[1]
    assert (a.name, a.description) == ("Dataset A", "Accuracy on dataset A.")
    assert (a.scoring_program, a.reference_data) == (
        DataRef("path", "scoring_a.zip"), DataRef("path", "reference_a.zip"))
    assert (b.name, b.scoring_program, b.reference_data) == (
        "Dataset B", DataRef("path", "scoring_b.zip"), DataRef("path", "reference_b.zip"))
    # The ordinary phase after the parent keeps its own task, even with the same files as child 2.
    assert final.task_indexes == [2] and spec.tasks[2].name == "Final"
    assert (final.start, final.end) == (dt.datetime(2026, 1, 1), dt.datetime(2030, 1, 1))
    assert spec.extra["parallel"] == {"1": [2, 3]}


def test_one_warning_says_what_became_of_each_child():
    warnings = warnings_of(PARALLEL)
    about = [w for w in warnings if "parallel parent" in w]
    assert len(about) == 1, warnings
    (text,) = about
    assert text.startswith("competition.yaml: phases[1].is_parallel_parent:")
    assert "phase 2 'Dataset A' became task 0;" in text
    assert "phase 3 'Dataset B' became task 1 (its own max_submissions: 5, execution_time_limit: 600 not used)" in text
    assert "the leaderboard takes the higher task's value (both stay in the scores per task" in text
    assert "give the parent a scoring_program that reads input/res_<phasenumber>" in text
    assert not [w for w in warnings if "parent_phasenumber" in w or "not supported" in w], warnings


def test_child_naming_a_missing_parent_is_refused(tmp_path):
    bundle = edited(tmp_path, lambda doc: doc["phases"][3].update(parent_phasenumber=7))
    message = refused(bundle)
    assert "phases[3].parent_phasenumber: names phase 7, which is not in phases (phase numbers: 1, 2, 3, 4)" in message


def test_children_of_a_phase_not_marked_parallel_parent_are_refused(tmp_path):
    bundle = edited(tmp_path, lambda doc: doc["phases"][1].pop("is_parallel_parent"))
    message = refused(bundle)
    for child in (2, 3):
        assert (f"phases[{child}].parent_phasenumber: names phase 1, which is not a parallel parent: add "
                f"'is_parallel_parent: true' to phase 1") in message
    # Not the old reading (children as phases of their own, starting with their parent).
    assert "must be after the start of phase" not in message


def test_a_child_of_a_child_and_a_phase_naming_itself_are_refused(tmp_path):
    def edit(doc):
        doc["phases"][2]["is_parallel_parent"] = True
        doc["phases"][4]["parent_phasenumber"] = 4
    message = refused(edited(tmp_path, edit))
    assert "phases[2].is_parallel_parent: this phase is also a child of phase 1" in message
    assert "phases[4].parent_phasenumber: is this phase's own number (4)" in message


def test_parent_without_children_is_an_ordinary_phase(tmp_path):
    def edit(doc):
        del doc["phases"][2], doc["phases"][3]
        doc["phases"][1].update(scoring_program="scoring_a.zip", reference_data="reference_a.zip")
    bundle = edited(tmp_path, edit)
    with load_bundle(bundle) as loaded:
        assert [len(p.task_indexes) for p in loaded.spec.phases] == [1, 1]
        assert "parallel" not in loaded.spec.extra
        assert any("phases[1].is_parallel_parent: no phase names this one in parent_phasenumber" in w
                   for w in loaded.warnings)


def test_parent_data_without_a_scoring_program_and_child_dates_are_reported(tmp_path):
    def edit(doc):
        doc["phases"][1].update(reference_data="reference_a.zip", input_data="reference_b.zip")
        doc["phases"][3]["start_date"] = "2025-02-01"
    with load_bundle(edited(tmp_path, edit)) as loaded:
        spec, warnings = loaded.spec, loaded.warnings
    assert spec.phases[0].task_indexes == [0, 1] and spec.phases[0].aggregation_task is None
    text = next(w for w in warnings if "parallel parent" in w)
    assert "The parent's own input_data, reference_data is not used and not exported" in text
    assert "The parent has no scoring program of its own, so the leaderboard takes the union" in text
    assert any("phases[3].start_date: is not the start of its parent, phase 1 (2025-01-01 00:00)" in w
               for w in warnings)


def test_a_parent_scoring_program_becomes_the_phase_aggregation():
    with load_bundle(AUTODL) as loaded:
        spec, warnings = loaded.spec, loaded.warnings
    (phase,) = spec.phases
    assert phase.task_indexes == [0, 1] and phase.aggregation_task == 2
    child_a, child_b, parent = spec.tasks
    assert (child_a.name, child_b.name) == ("Dataset 1", "Dataset 2")
    assert child_a.scoring_program == child_b.scoring_program == DataRef("path", "scoring_child.zip")
    assert (parent.name, parent.scoring_program, parent.reference_data) == (
        "Feedback: parent's scoring", DataRef("path", "scoring_parent.zip"), DataRef("path", "reference_parent.zip"))
    assert (parent.ingestion_program, parent.input_data) == (None, None)
    (text,) = [w for w in warnings if "parallel parent" in w]
    assert ("the parent's own scoring program runs after the children, in the same run (the step 'aggregation' "
            "of task 2), on each child's scoring output (res_2, res_3 in its input folder, with the parent's "
            "reference data in ref): the scores it writes are the submission's and the leaderboard's") in text
    assert "not used" not in text and "union" not in text


def test_a_child_that_takes_code_makes_the_phase_take_code(tmp_path):
    bundle = shutil.copytree(PARALLEL, tmp_path / "bundle")
    shutil.copy(BUNDLE_FIXTURES / "good" / "codalab_code" / "ingestion_program.zip", bundle)
    doc = yaml.safe_load((bundle / "competition.yaml").read_text())
    del doc["phases"][3]["is_scoring_only"]
    doc["phases"][3]["ingestion_program"] = "ingestion_program.zip"
    (bundle / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    with load_bundle(bundle) as loaded:
        assert not loaded.spec.phases[0].results_only
        text = next(w for w in loaded.warnings if "parallel parent" in w)
    assert "is_scoring_only is true on the parent, but phase 3 runs participants' code" in text


# -- export ---------------------------------------------------------------------------

def stored(source: Path, store):
    with load_bundle(source, dataset_exists=store.has_dataset) as loaded:
        return store_bundle_data(loaded, store)


@pytest.mark.parametrize("light", [False, True], ids=["full", "light"])
def test_export_writes_parent_and_children_back_and_reimports_the_same(store, tmp_path, light):
    first = stored(PARALLEL, store)
    out = tmp_path / "export.zip"
    export_bundle(first, store, out, light=light)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
    phases = doc["phases"]
    assert list(phases) == [1, 2, 3, 4]
    assert phases[1]["is_parallel_parent"] is True
    assert "scoring_program" not in phases[1] and "parent_phasenumber" not in phases[1]
    for number, task in ((2, first.tasks[0]), (3, first.tasks[1])):
        child = phases[number]
        assert child["parent_phasenumber"] == 1
        assert child["label"] == task.name
        assert child["start_date"] == phases[1]["start_date"]
        assert child["scoring_program"] != phases[4]["scoring_program"] or number == 2
    assert phases[3]["max_submissions"] == 5 and phases[3]["execution_time_limit"] == 600
    assert stored(out, store) == first


@pytest.mark.parametrize("light", [False, True], ids=["full", "light"])
def test_export_writes_the_parent_scoring_program_back_and_reimports_the_same(store, tmp_path, light):
    first = stored(AUTODL, store)
    aggregation = first.tasks[first.phases[0].aggregation_task]
    out = tmp_path / "export.zip"
    export_bundle(first, store, out, light=light)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
        names = set(zf.namelist())
    parent = doc["phases"][1]
    assert parent["is_parallel_parent"] is True
    if light:  # stored keys instead of files
        assert (parent["scoring_program"], parent["reference_data"]) == (
            aggregation.scoring_program.value, aggregation.reference_data.value)
    else:
        assert {parent["scoring_program"], parent["reference_data"]} <= names
    for number in (2, 3):
        assert doc["phases"][number]["parent_phasenumber"] == 1
        assert doc["phases"][number]["scoring_program"] != parent["scoring_program"]
    again = stored(out, store)
    assert again == first
    assert again.tasks[again.phases[0].aggregation_task].scoring_program == aggregation.scoring_program


class Names:
    def data(self, ref):
        return ref.value

    def page(self, page):
        return page.name

    def terms(self):
        return "terms.html"

    def logo(self):
        return "logo.png"


def test_a_phase_with_several_tasks_is_written_as_a_parallel_parent(store):
    spec = stored(PARALLEL, store)
    del spec.extra["parallel"]
    doc, lost = codalab_document(spec, Names())
    # Phase numbers 1 and 4 are taken: the children get the next free ones.
    assert [(n, e.get("parent_phasenumber")) for n, e in doc["phases"].items()] == [
        (1, None), (5, 1), (6, 1), (4, None)]
    assert doc["phases"][5]["scoring_program"] == spec.tasks[0].scoring_program.value
    assert lost == ["phase 1: its 2 tasks are written as child phases 5, 6 of a parallel parent (CodaLab 1.8)"]



def test_platform_upload_warns_and_export_from_the_database_reimports_the_same(tmp_path):
    from hub_extension.app import Platform

    platform = Platform(home=str(tmp_path / "home"))
    try:
        slug, warnings = platform.create_competition(PARALLEL, LOCAL_ADMIN)
        assert len([w for w in warnings if "phase 2 'Dataset A' became task 0" in w]) == 1
        spec = platform.competition_spec(slug)
        assert [(p.index, p.task_indexes) for p in spec.phases] == [(1, [0, 1]), (4, [2])]
        out = platform.export_competition(slug, tmp_path / "export.zip")
        again, _ = platform.create_competition(out, LOCAL_ADMIN)
        assert platform.competition_spec(again) == spec
    finally:
        platform.close()


def test_platform_keeps_the_aggregation_through_the_database_and_export(tmp_path):
    from hub_extension.app import Platform

    platform = Platform(home=str(tmp_path / "home"))
    try:
        slug, _ = platform.create_competition(AUTODL, LOCAL_ADMIN)
        spec = platform.competition_spec(slug)
        assert [(p.index, p.task_indexes, p.aggregation_task) for p in spec.phases] == [(1, [0, 1], 2)]
        out = platform.export_competition(slug, tmp_path / "export.zip")
        again, _ = platform.create_competition(out, LOCAL_ADMIN)
        assert platform.competition_spec(again) == spec
    finally:
        platform.close()


def test_the_job_carries_the_aggregation_and_each_child_phase_number(tmp_path):
    from hub_extension.app import Platform

    platform = Platform(home=str(tmp_path / "home"))
    try:
        slug, _ = platform.create_competition(AUTODL, LOCAL_ADMIN)
        platform.register(slug, "ann", LOCAL_ADMIN)
        sid = platform.submit(slug, zip_of(SUBMISSION, tmp_path / "sub.zip"), username="ann", phase=1,
                              actor=LOCAL_ADMIN, now=NOW)
        job = platform.runs.job_for(sid)
        spec = platform.competition_spec(slug)
    finally:
        platform.close()
    assert [(t.index, t.name, t.phase_number, t.result_folder) for t in job.tasks] == [
        (0, "Dataset 1", 2, "res_2"), (1, "Dataset 2", 3, "res_3")]
    parent = spec.tasks[2]
    assert (job.aggregation.index, job.aggregation.scoring_program, job.aggregation.reference_data) == (
        2, parent.scoring_program.value, parent.reference_data.value)
    assert {job.aggregation.scoring_program, job.aggregation.reference_data} <= set(job.data_keys())
    # The wire form carries it; a job written before aggregation existed reads as having none.
    assert Job.from_wire(job.to_wire()) == job
    older = {k: v for k, v in job.to_wire().items() if k != "aggregation"}
    older["tasks"] = [{k: v for k, v in t.items() if k != "phase_number"} for t in older["tasks"]]
    assert Job.from_wire(older).aggregation is None and Job.from_wire(older).tasks[0].result_folder == "res_0"


def test_a_result_keeps_each_task_scores_checked():
    raw = {"status": "Finished", "scores": {"set1_score": 0.5},
           "tasks": [{"task_index": 0, "steps": [{"step": "scoring"}], "scores": {"score": 0.5, "bad": "x", "n": True}},
                     {"task_index": 2, "steps": [{"step": "aggregation"}], "scores": "not a mapping"}]}
    result = JobResult.from_untrusted(7, raw)
    assert [(t.task_index, t.scores) for t in result.tasks] == [(0, {"score": 0.5}), (2, {})]

def test_a_worker_that_skips_the_aggregation_fails_the_submission_with_the_reason(platform, tmp_path):
    """A worker older than the platform ignores the job's aggregation: its union of keys is not recorded."""
    slug, _ = platform.create_competition(AUTODL, ORGANIZER)
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, zip_of(SUBMISSION, tmp_path / "sub.zip"), username="ann", phase=1,
                          actor=LOCAL_ADMIN, now=NOW)
    union_only = {"status": "Finished", "scores": {"score": 0.75},
                  "tasks": [{"task_index": 0, "steps": [{"step": "scoring"}], "scores": {"score": 0.5}},
                            {"task_index": 1, "steps": [{"step": "scoring"}], "scores": {"score": 0.75}}]}
    assert platform.runs.record_result(sid, union_only)
    info = platform.submission(sid)
    assert info["status"] == m.FAILED and not info["scores"]
    assert info["error"].startswith("the phase's own scoring program (its aggregation step over the tasks' "
                                    "outputs) did not run: the worker that ran this submission is older")


# -- end to end ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def stack(tmp_path_factory, runtime_image):
    s = Stack(tmp_path_factory.mktemp("parallel-home"))
    yield s
    s.close()


def expected_scores(tmp_path: Path) -> dict[str, float]:
    """What each child's own scoring program computes, run by hand on the submission."""
    scores: dict[str, float] = {}
    for child in ("a", "b"):
        program = unzip(PARALLEL / f"scoring_{child}.zip", tmp_path / f"scoring_{child}")
        reference = unzip(PARALLEL / f"reference_{child}.zip", tmp_path / f"reference_{child}")
        out = run_scoring(program / "score.py", reference, SUBMISSION, tmp_path / f"by-hand-{child}")
        for line in (out / "scores.txt").read_text().splitlines():
            key, _, value = line.partition(":")
            scores[key.strip()] = float(value)
    return scores


def submit_to_parent(stack, bundle: Path, user: str, tmp_path: Path) -> tuple[str, int, dict]:
    slug = stack.competition(bundle)
    stack.platform.register(slug, user, LOCAL_ADMIN)
    sid = stack.platform.submit(slug, zip_of(SUBMISSION, tmp_path / "sub.zip"), username=user, phase=1,
                                actor=LOCAL_ADMIN, now=NOW)
    assert stack.dispatcher.dispatch(sid)
    info = stack.dispatcher.wait(sid, 300)
    assert info["status"] == m.FINISHED, info["error"]
    return slug, sid, info


def test_one_submission_to_the_parent_runs_on_both_children(stack, tmp_path):
    slug, sid, info = submit_to_parent(stack, PARALLEL, "ann", tmp_path)
    platform = stack.platform

    want = expected_scores(tmp_path)
    # Each child's own program on its own data: accuracy on A, recall of label 1 on B (A's program on
    # B's data would give 0.75, B's program on A's data 0.5).
    assert want == pytest.approx({"set1_score": 0.5, "set2_score": 0.6667})
    assert info["scores"] == pytest.approx(want)

    view = platform.submission_view(sid, LOCAL_ADMIN)
    scoring = {r["task"]: r for r in view["runs"] if r["step"] == "scoring"}
    assert sorted(scoring) == [0, 1]
    assert all(r["status"] == m.FINISHED and r["exit_code"] == 0 for r in scoring.values())
    assert not [w for w in view.get("warnings") or [] if "written by tasks" in w]

    board = platform.leaderboard(slug, 1, now=NOW)
    assert [c["key"] for c in board["columns"]] == ["set1_score", "set2_score"]
    (row,) = board["rows"]
    assert row["scores"] == pytest.approx(want)
    # Without a parent scoring program there is no aggregation step; each child's scores are kept per task.
    assert "aggregation" not in {r["step"] for r in view["runs"]}
    assert [(t["task"], t["name"], t["scores"]) for t in view["task_scores"]] == [
        (0, "Dataset A", {"set1_score": pytest.approx(0.5)}), (1, "Dataset B", {"set2_score": pytest.approx(0.6667)})]


def test_children_writing_the_same_key_keep_the_later_task_and_say_so(stack, tmp_path):
    bundle = shutil.copytree(PARALLEL, tmp_path / "same-key")
    program = shutil.copytree(BUNDLE_FIXTURES / "sources" / "parallel_scoring_b", tmp_path / "scoring_b")
    score_py = program / "score.py"
    score_py.write_text(score_py.read_text().replace("set2_score", "set1_score"))
    zip_of(program, bundle / "scoring_b.zip")
    _, sid, info = submit_to_parent(stack, bundle, "bea", tmp_path)
    # Task 1 (dataset B, recall 2/3) overwrote task 0 (dataset A, accuracy 0.5) under the one key.
    assert info["scores"] == pytest.approx({"set1_score": 0.6667})
    view = stack.platform.submission_view(sid, LOCAL_ADMIN)
    assert ("score 'set1_score' written by tasks 0 and 1: the value of task 1 is kept on the leaderboard; "
            "each task's own value is in its scores per task") in view["warnings"]
    # Nothing is lost: each task's own value is kept with it.
    assert view["task_scores"] == [
        {"task": 0, "name": "Dataset A", "scores": {"set1_score": pytest.approx(0.5)}},
        {"task": 1, "name": "Dataset B", "scores": {"set1_score": pytest.approx(0.6667)}},
    ]


def child_outputs(tmp_path: Path) -> dict[str, Path]:
    """Each child's scoring output, its own program run by hand on the submission: res_<phasenumber> -> folder."""
    program = unzip(AUTODL / "scoring_child.zip", tmp_path / "child-program")
    outputs = {}
    for number, reference in ((2, "reference_a.zip"), (3, "reference_b.zip")):
        data = unzip(AUTODL / reference, tmp_path / f"child-ref-{number}")
        outputs[f"res_{number}"] = run_scoring(program / "score.py", data, SUBMISSION, tmp_path / f"child-{number}")
    return outputs


def parent_by_hand(tmp_path: Path, outputs: dict[str, Path]) -> dict[str, float]:
    """The parent's own program run by hand as CodaLab runs it: ref, res_<n>, and input/metadata naming them."""
    program = unzip(AUTODL / "scoring_parent.zip", tmp_path / "parent-program")
    work = tmp_path / "parent" / "in"
    unzip(AUTODL / "reference_parent.zip", work / "ref")
    for name, folder in outputs.items():
        shutil.copytree(folder, work / name)
    (work / "metadata").write_text("".join(f"{name}: {name}\n" for name in outputs) + "ref: ref\n")
    out = tmp_path / "parent" / "out"
    subprocess.run([sys.executable, str(program / "evaluate.py"), str(work), str(out)], check=True, timeout=60)
    return {key.strip(): float(value) for key, _, value in
            (line.partition(":") for line in (out / "scores.txt").read_text().splitlines())}


def test_the_parent_scoring_program_scores_the_submission_from_the_children_outputs(stack, tmp_path):
    slug, warnings = stack.platform.create_competition(AUTODL, ORGANIZER)
    assert len([w for w in warnings if "the step 'aggregation' of task 2" in w]) == 1
    platform = stack.platform
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, zip_of(SUBMISSION, tmp_path / "sub.zip"), username="ann", phase=1,
                          actor=LOCAL_ADMIN, now=NOW)
    assert stack.dispatcher.dispatch(sid)
    info = stack.dispatcher.wait(sid, 300)
    assert info["status"] == m.FINISHED, info["error"]

    outputs = child_outputs(tmp_path)
    child_scores = [float((outputs[name] / "scores.txt").read_text().splitlines()[0].split(":")[1])
                    for name in ("res_2", "res_3")]
    # Accuracy on dataset 1 (2 of 4) and on dataset 2 (3 of 4), both written as `score`.
    assert child_scores == [0.5, 0.75]
    want = parent_by_hand(tmp_path, outputs)
    assert want == pytest.approx({"set1_score": 0.5, "set2_score": 0.75, "ave_score": 0.625})
    # The submission's scores are the parent's, not the children's `score` (nor the last child's).
    assert info["scores"] == pytest.approx(want)

    view = platform.submission_view(sid, ORGANIZER)
    assert [(t["task"], t["name"], t["scores"]) for t in view["task_scores"]] == [
        (0, "Dataset 1", {"score": pytest.approx(0.5), "Duration": 1.5}),
        (1, "Dataset 2", {"score": pytest.approx(0.75), "Duration": 1.5})]
    assert not [w for w in view.get("warnings") or [] if "written by tasks" in w]
    steps = [(r["task"], r["step"], r["status"], r["exit_code"]) for r in view["runs"]]
    assert steps == [(0, "scoring", m.FINISHED, 0), (1, "scoring", m.FINISHED, 0), (2, "aggregation", m.FINISHED, 0)]
    log = platform.submission_log(sid, ORGANIZER, 2, "aggregation", "stdout")
    assert "[platform] the phase's own scoring program runs on the tasks' scoring outputs, in $input/res_2, " \
           "$input/res_3" in log
    # The parent's detailed results (read from the children's whole outputs) are the submission's.
    assert "detailed_results" in view["artifacts"]

    board = platform.leaderboard(slug, 1, now=NOW)
    assert [c["key"] for c in board["columns"]] == ["set1_score", "set2_score", "ave_score"]
    (row,) = board["rows"]
    assert row["scores"] == pytest.approx(want)

    # The pages: the organizer and the participant see each child's own score per task, and the parent's step.
    server = ServiceServer(platform, executor_warning=None).start()
    try:
        for user in ("olga", "ann"):
            page = ok(server.browser(user).get(f"submissions/{sid}")).text
            assert 'id="task-scores"' in page and "Dataset 2" in page
            assert '<span class="num" data-task-score="score">score: 0.75' in page
            assert 'data-log="2/aggregation/stdout"' in page
            detailed = ok(server.browser(user).get(f"submissions/{sid}/files/detailed_results")).text
            assert "res_2: 2 of 4, res_3: 3 of 4" in detailed
        api = ok(server.client("ann").get(f"api/v1/submissions/{sid}")).json()
        assert [t["scores"]["score"] for t in api["task_scores"]] == pytest.approx([0.5, 0.75])
    finally:
        server.stop()


def test_a_failing_parent_scoring_program_fails_the_submission_and_keeps_the_children_scores(stack, tmp_path):
    bundle = shutil.copytree(AUTODL, tmp_path / "failing")
    program = shutil.copytree(BUNDLE_FIXTURES / "sources" / "parallel_autodl_parent", tmp_path / "parent")
    (program / "evaluate.py").write_text("import sys\nsys.exit('no res_4 here')\n")
    zip_of(program, bundle / "scoring_parent.zip")
    slug = stack.competition(bundle)
    stack.platform.register(slug, "dan", LOCAL_ADMIN)
    sid = stack.platform.submit(slug, zip_of(SUBMISSION, tmp_path / "sub.zip"), username="dan", phase=1,
                                actor=LOCAL_ADMIN, now=NOW)
    assert stack.dispatcher.dispatch(sid)
    info = stack.dispatcher.wait(sid, 300)
    assert info["status"] == m.FAILED
    assert info["error"].startswith("the aggregation step (task 2): the phase's own scoring program exited "
                                    "with code 1"), info["error"]
    assert "no res_4 here" in info["error"]
    view = stack.platform.submission_view(sid, LOCAL_ADMIN)
    assert view["scores"] == {}
    assert [t["scores"]["score"] for t in view["task_scores"]] == pytest.approx([0.5, 0.75])
