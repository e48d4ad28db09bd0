"""Every bad fixture bundle reports its expected `file: key: message` lines, never a traceback."""
from __future__ import annotations

import pytest

from hub_extension.bundles import BundleError, load_bundle

from tests.support.bundles import BAD, FIXTURES, stored_files


def expected_lines(name):
    text = (FIXTURES / "bad" / name / "expected.txt").read_text()
    return [line for line in text.splitlines() if line.strip()]


@pytest.mark.parametrize("name", BAD)
def test_bad_fixture_reports_expected_lines(name, as_source, store):
    before = stored_files(store)
    source = as_source(FIXTURES / "bad" / name)
    try:
        with load_bundle(source, dataset_exists=store.has_dataset) as bundle:
            reported = bundle.warnings  # a warning-only fixture still loads
    except BundleError as exc:
        reported = [str(p) for p in exc.problems]
        assert "Traceback" not in str(exc)
        assert str(exc) == "\n".join(reported)
    for line in expected_lines(name):
        assert line in reported
    assert stored_files(store) == before


def test_unknown_keys_fixture_is_a_warning_not_an_error(store):
    with load_bundle(FIXTURES / "bad" / "unknown_keys") as bundle:
        assert bundle.spec.title.startswith("Unknown keys")


def test_all_problems_are_reported_at_once():
    with pytest.raises(BundleError) as info:
        load_bundle(FIXTURES / "bad" / "wrong_type")
    assert len(info.value.problems) >= 4


def test_missing_source_is_a_problem(tmp_path):
    with pytest.raises(BundleError) as info:
        load_bundle(tmp_path / "nope.zip")
    assert str(info.value) == f"{tmp_path / 'nope.zip'}: (bundle): no such file or folder"


def test_not_a_zip_is_a_problem(tmp_path):
    bogus = tmp_path / "bundle.zip"
    bogus.write_text("not a zip")
    with pytest.raises(BundleError) as info:
        load_bundle(bogus)
    assert str(info.value) == "bundle.zip: (bundle): is neither a zip file nor a folder"
