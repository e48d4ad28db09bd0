"""Dialect details that the fixtures do not pin down on their own."""
from __future__ import annotations

import textwrap
from datetime import datetime
from pathlib import Path

import pytest

from hub_extension.bundles import BundleError, load_bundle
from hub_extension.bundles.fields import parse_date

CODALAB_PHASE = """
phases:
    1:
        phasenumber: 1
        label: Only
        start_date: 2024-01-01
        scoring_program: scoring_program
"""


def write_bundle(tmp_path: Path, yaml_text: str) -> Path:
    (tmp_path / "scoring_program").mkdir(exist_ok=True)
    (tmp_path / "scoring_program" / "metadata").write_text("command: python3 $program/score.py\n")
    (tmp_path / "competition.yaml").write_text(textwrap.dedent(yaml_text).lstrip())
    return tmp_path


def test_codalab_boards_with_equal_content_are_told_apart_by_anchor(tmp_path):
    source = write_bundle(tmp_path, "title: Twins\n" + CODALAB_PHASE + """
leaderboard:
    leaderboards:
        A: &A
            label: Results
            rank: 1
        B: &B
            label: Results
            rank: 1
    columns:
        x:
            leaderboard: *A
        y:
            leaderboard: *B
""")
    with load_bundle(source) as bundle:
        boards = {b.key: [c.key for c in b.columns] for b in bundle.spec.leaderboards}
    assert boards == {"A": ["x"], "B": ["y"]}


def test_codalab_inline_board_copy_matches_by_label_and_rank(tmp_path):
    source = write_bundle(tmp_path, "title: Copy\n" + CODALAB_PHASE + """
leaderboard:
    leaderboards:
        A: {label: Results, rank: 1}
        B: {label: Other, rank: 2}
    columns:
        x:
            leaderboard: {label: Other, rank: 2}
""")
    with load_bundle(source) as bundle:
        assert [c.key for c in bundle.spec.leaderboards[1].columns] == ["x"]


def test_codalab_weighted_and_mrr_columns(tmp_path):
    source = write_bundle(tmp_path, "title: Computed\n" + CODALAB_PHASE + """
leaderboard:
    leaderboards:
        R: &R {label: Results, rank: 1}
    columns:
        a: {leaderboard: *R, rank: 1}
        b: {leaderboard: *R, rank: 2}
        w: {leaderboard: *R, rank: 3, computed: {operation: Avg, fields: "a, b", weights: "1, 2.5"}}
        m: {leaderboard: *R, rank: 4, computed: {operation: MRR, fields: a}}
""")
    with load_bundle(source) as bundle:
        columns = {c.key: c for c in bundle.spec.leaderboards[0].columns}
    assert (columns["w"].computation, columns["w"].weights) == ("rank_weighted", [1.0, 2.5])
    assert (columns["m"].computation, columns["m"].source_keys) == ("mrr", ["a"])


def test_codalab_weights_must_match_fields(tmp_path):
    source = write_bundle(tmp_path, "title: Computed\n" + CODALAB_PHASE + """
leaderboard:
    leaderboards:
        R: &R {label: Results, rank: 1}
    columns:
        a: {leaderboard: *R}
        w: {leaderboard: *R, computed: {operation: Avg, fields: "a", weights: "1, 2"}}
""")
    with pytest.raises(BundleError) as info:
        load_bundle(source)
    assert "competition.yaml: leaderboard.columns.w.computed.weights: has 2 values for 1 fields" in str(info.value)


def test_codalab_identical_phases_share_one_task(tmp_path):
    source = write_bundle(tmp_path, """
title: Shared
phases:
    1: {phasenumber: 1, label: A, start_date: 2024-01-01, scoring_program: scoring_program}
    2: {phasenumber: 2, label: B, start_date: 2024-02-01, scoring_program: scoring_program}
""")
    with load_bundle(source) as bundle:
        spec = bundle.spec
    assert len(spec.tasks) == 1 and [p.task_indexes for p in spec.phases] == [[0], [0]]
    assert spec.phases[1].end is None  # no end_date: the last phase is open-ended
    assert bundle.warnings == ["competition.yaml: leaderboard: missing: the competition has no leaderboard"]


def test_codalab_phases_out_of_order_and_end_before_start(tmp_path):
    source = write_bundle(tmp_path, """
title: Order
end_date: 2023-01-01
phases:
    1: {phasenumber: 1, label: A, start_date: 2024-03-01, scoring_program: scoring_program}
    2: {phasenumber: 2, label: B, start_date: 2024-02-01, scoring_program: scoring_program}
""")
    with pytest.raises(BundleError) as info:
        load_bundle(source)
    lines = [str(p) for p in info.value.problems]
    assert "competition.yaml: phases[2].start_date: must be after the start of phase 1 (2024-03-01 00:00)" in lines
    assert "competition.yaml: end_date: must be after the start of the last phase (2024-02-01 00:00)" in lines


def test_codabench_task_key_of_another_server_is_refused(tmp_path):
    source = write_bundle(tmp_path, """
version: 2
title: Key
tasks:
  - {index: 0, key: 6f4c0f3a-1111-2222-3333-444455556666}
phases:
  - {index: 0, name: A, start: 1-1-2024, tasks: [0]}
""")
    with pytest.raises(BundleError) as info:
        load_bundle(source)
    assert "competition.yaml: tasks[0].key: refers to a task stored on another server" in str(info.value)


def test_program_without_metadata_is_a_warning(tmp_path):
    source = write_bundle(tmp_path, """
version: 2
title: No metadata
tasks:
  - {index: 0, scoring_program: scoring_program, reference_data: reference}
phases:
  - {index: 0, name: A, start: 1-1-2024, tasks: [0]}
leaderboards:
  - {key: main, columns: [{key: a, index: 0}]}
""")
    (tmp_path / "scoring_program" / "metadata").unlink()
    (tmp_path / "reference").mkdir()
    with load_bundle(source) as bundle:
        assert bundle.warnings == ["competition.yaml: tasks[0].scoring_program: 'scoring_program' has no 'metadata' "
                                   "file with a command at its top, so it cannot be run"]


def test_paths_must_stay_inside_the_bundle(tmp_path):
    source = write_bundle(tmp_path, """
version: 2
title: Escape
tasks:
  - {index: 0, scoring_program: ../../etc, reference_data: /etc}
phases:
  - {index: 0, name: A, start: 1-1-2024, tasks: [0]}
""")
    with pytest.raises(BundleError) as info:
        load_bundle(source)
    lines = [str(p) for p in info.value.problems]
    assert "competition.yaml: tasks[0].scoring_program: '../../etc' must be a path inside the bundle" in lines
    assert "competition.yaml: tasks[0].reference_data: '/etc' must be a path inside the bundle" in lines


def test_competition_yml_and_first_yaml_are_found(tmp_path):
    one, two = tmp_path / "one", tmp_path / "two"
    for folder, name in ((one, "competition.yml"), (two, "my_challenge.yaml")):
        folder.mkdir()
        write_bundle(folder, "title: X\n" + CODALAB_PHASE)
        (folder / "competition.yaml").rename(folder / name)
        with load_bundle(folder) as bundle:
            assert bundle.spec.title == "X"


def test_yaml_that_is_not_a_mapping(tmp_path):
    (tmp_path / "competition.yaml").write_text("- just\n- a list\n")
    with pytest.raises(BundleError) as info:
        load_bundle(tmp_path)
    assert str(info.value) == "competition.yaml: (top): must be a mapping of keys to values (title:, phases:, ...)"


@pytest.mark.parametrize("text, expected", [
    ("1-31-2026", datetime(2026, 1, 31)),
    ("12-1-2026 13:45", datetime(2026, 12, 1, 13, 45)),
    ("2026-01-31", datetime(2026, 1, 31)),
    ("2026-01-31T10:00:00+02:00", datetime(2026, 1, 31, 8)),
    ("2026-01-31 10:00:00Z", datetime(2026, 1, 31, 10)),
    ("tomorrow", None),
    (5, None),
])
def test_parse_date(text, expected):
    assert parse_date(text) == expected
