"""The one-screen summary of `compete bundle validate`."""
from __future__ import annotations

from hub_extension.bundles import load_bundle, summarize

from tests.support.bundles import FIXTURES


def test_summary_of_a_codalab_bundle():
    with load_bundle(FIXTURES / "good" / "codalab_results") as bundle:
        text = summarize(bundle.spec)
    lines = text.splitlines()
    assert lines[0] == "Hello World (CodaLab results)  (CodaLab v1.5 bundle)"
    assert "pages: Overview, Evaluation, Data, Terms" in lines
    assert ("  [2] Final: 2024-06-01 12:00 -> 2030-01-01 00:00; max 3 submissions, 0 (closed)/day, 300s per step; "
            "tasks 1 (results only, blind, auto-migrate, Force_Best)") in lines
    assert "  [0] Development: scoring scoring_program.zip, ingestion -, reference reference_dev.zip, input -" in lines
    assert "  Results [RESULTS]: Force_Last, ordered by avg_rank" in lines
    assert '    0. avg_rank "Average rank": asc, rank_avg(correct, accuracy)' in lines
    assert '    0. accuracy_detail "Accuracy (details)": desc, hidden' in lines
    assert len(lines) < 40


def test_summary_of_a_codabench_bundle():
    with load_bundle(FIXTURES / "good" / "codabench_boards") as bundle:
        text = summarize(bundle.spec)
    assert "(Codabench v2 bundle)" in text.splitlines()[0]
    assert "  [0] Only phase: 2024-01-01 00:00 -> open; max 100 submissions, 5/day, 600s per step; tasks 0" in text
    assert "  Organizers [private]: Add_And_Delete_Multiple, hidden, ordered by errors" in text
    assert '    2. mean "Mean": desc, avg(accuracy, errors)' in text


def test_summary_lists_the_solutions_run_as_baselines():
    with load_bundle(FIXTURES / "solutions_codabench") as bundle:
        lines = summarize(bundle.spec).splitlines()
    assert "solutions (2, run as baselines by `compete baseline run`):" in lines
    assert "  [0] Careful: solution; tasks 0" in lines and "  [1] Always circle: baselines/constant; tasks 0" in lines
