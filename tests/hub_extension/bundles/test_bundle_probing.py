"""`display_precision`, `ladder` and `ladder_step` on a leaderboard: read in both dialects, checked, exported back."""
from __future__ import annotations

import shutil
import zipfile

import pytest
import yaml

from hub_extension import convert
from hub_extension.bundles import BundleError, export_bundle, load_bundle, store_bundle_data

from tests.support.bundles import FIXTURES

DIALECTS = {"codabench": "codabench_results", "codalab": "codalab_results"}


def with_board_keys(tmp_path, dialect, keys):
    """The dialect's fixture with `keys` added to its first leaderboard's entry."""
    folder = tmp_path / dialect
    shutil.copytree(FIXTURES / "good" / DIALECTS[dialect], folder)
    path = folder / "competition.yaml"
    doc = yaml.safe_load(path.read_text())
    if dialect == "codabench":
        doc["leaderboards"][0].update(keys)
    else:
        first = next(iter(doc["leaderboard"]["leaderboards"].values()))
        first.update(keys)
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return folder


def stored_spec(source, store):
    with load_bundle(source, dataset_exists=store.has_dataset) as bundle:
        assert not any("ladder" in w or "display_precision" in w for w in bundle.warnings), bundle.warnings
        return store_bundle_data(bundle, store)


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("keys", [
    {"display_precision": 2},
    {"ladder": "fixed", "ladder_step": 0.01},
    {"ladder": "parameter_free", "display_precision": 3},
    {"ladder": "Fixed", "ladder_step": "0.5", "display_precision": 0},
])
def test_read_carried_into_the_rows_and_exported_back(dialect, keys, store, tmp_path):
    spec = stored_spec(with_board_keys(tmp_path, dialect, keys), store)
    board = min(spec.leaderboards, key=lambda b: b.index) if dialect == "codabench" else next(
        b for b in spec.leaderboards if b.display_precision is not None or b.ladder is not None)
    assert board.display_precision == keys.get("display_precision")
    assert board.ladder == (keys["ladder"].lower() if "ladder" in keys else None)
    assert board.ladder_step == (float(keys["ladder_step"]) if "ladder_step" in keys else None)
    # Into the tables and back.
    comp = convert.competition_from_spec(spec, "probing", "org")
    row = next(b for b in comp.leaderboards if b.key == board.key)
    assert (row.display_precision, row.ladder, row.ladder_step) == (board.display_precision, board.ladder,
                                                                     board.ladder_step)
    assert convert.spec_from_competition(comp).leaderboards == spec.leaderboards
    # Out as a bundle and in again.
    out = tmp_path / "export.zip"
    export_bundle(spec, store, out)
    with zipfile.ZipFile(out) as zf:
        doc = yaml.safe_load(zf.read("competition.yaml"))
    entries = doc["leaderboards"] if dialect == "codabench" else list(doc["leaderboard"]["leaderboards"].values())
    assert any(e.get("ladder") == board.ladder and e.get("display_precision") == board.display_precision
               for e in entries)
    assert stored_spec(out, store) == spec


@pytest.mark.parametrize("dialect", DIALECTS)
@pytest.mark.parametrize("keys, message", [
    ({"display_precision": 11}, "display_precision: must be at most 10 decimals, got 11"),
    ({"display_precision": -1}, "display_precision: must be at least 0, got -1"),
    ({"display_precision": "two"}, "display_precision: must be a whole number, got"),
    ({"ladder": "steps"}, "ladder: must be one of fixed, parameter_free, got"),
    ({"ladder": "fixed"}, "ladder: fixed needs ladder_step"),
    ({"ladder": "fixed", "ladder_step": 0}, "ladder_step: must be a number greater than 0"),
    ({"ladder": "fixed", "ladder_step": "much"}, "ladder_step: must be a number greater than 0"),
    ({"ladder": "parameter_free", "ladder_step": 0.1}, "ladder_step: goes with `ladder: fixed` only"),
    ({"ladder_step": 0.1}, "ladder_step: goes with `ladder: fixed` only"),
])
def test_problems_name_the_board_and_the_key(dialect, keys, message, store, tmp_path):
    folder = with_board_keys(tmp_path, dialect, keys)
    with pytest.raises(BundleError) as info:
        with load_bundle(folder, dataset_exists=store.has_dataset):
            pass
    reported = [str(p) for p in info.value.problems]
    board_path = "leaderboards[0]." if dialect == "codabench" else "leaderboard.leaderboards."
    assert any(line.startswith("competition.yaml: ") and board_path in line and message in line
               for line in reported), reported
