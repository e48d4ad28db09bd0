"""The `compete` CLI contract: commands, exit codes and output shapes."""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.cli import main

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def home(tmp_path) -> Path:
    return tmp_path / "home"


def test_validate_good_bundle_prints_summary(capsys, home):
    code, out, _ = run(capsys, "--home", home, "bundle", "validate", DEMO)
    assert code == 0
    assert "Demo: flower species" in out
    assert "codabench" in out.lower()
    assert "accuracy" in out


def test_validate_bad_bundle_lists_problems_without_traceback(capsys, home, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "competition.yaml").write_text("version: 2\ntitle: [unclosed\n")
    code, out, err = run(capsys, "--home", home, "bundle", "validate", bad)
    assert code == 1
    assert "Traceback" not in out + err
    lines = [line for line in out.splitlines() if line.strip()]
    assert lines and all(line.count(": ") >= 2 for line in lines), lines
    assert lines[0].startswith("competition.yaml: ")


def test_create_list_leaderboard_export(capsys, home, tmp_path):
    code, out, _ = run(capsys, "--home", home, "competition", "create", DEMO)
    assert code == 0
    slug = out.strip().splitlines()[-1]
    assert slug == "demo-flower-species"

    code, out, _ = run(capsys, "--home", home, "competition", "list", "--json")
    listed = json.loads(out)
    assert [c["slug"] for c in listed] == [slug]
    assert listed[0]["status"] == "running"

    # Two participants with recorded scores: the board ranks them by accuracy.
    platform = Platform(home=str(home))
    preds = DEMO / "sample_submissions" / "constant"
    ids = {}
    for user, acc in (("ann", 0.5), ("ben", 0.9)):
        platform.register(slug, user, LOCAL_ADMIN)
        ids[user] = platform.submit(slug, preds, username=user)
        platform.runs.record_scores(ids[user], {"accuracy": acc, "f1": acc / 2, "unknown_key": 3.0})
    platform.close()

    code, out, _ = run(capsys, "--home", home, "leaderboard", slug, "--json")
    assert code == 0
    board = json.loads(out)
    assert set(board) == {"competition", "phase", "columns", "rows"}
    assert board["competition"] == slug and board["phase"] == 1
    assert board["columns"][0] == {"key": "accuracy", "title": "Accuracy", "sorting": "desc"}
    assert [r["participant"] for r in board["rows"]] == ["ben", "ann"]
    assert board["rows"][0] == {"rank": 1, "participant": "ben", "submission": ids["ben"],
                                "scores": {"accuracy": 0.9, "f1": 0.45}, "baseline": False}

    code, out, _ = run(capsys, "--home", home, "leaderboard", slug)
    assert code == 0 and "ben" in out

    out_zip = tmp_path / "export.zip"
    code, _, _ = run(capsys, "--home", home, "bundle", "export", slug, "-o", out_zip)
    assert code == 0 and out_zip.is_file()
    code, out, _ = run(capsys, "--home", home, "competition", "create", out_zip)
    assert code == 0 and out.strip().splitlines()[-1] == f"{slug}-2"

    light = tmp_path / "light.zip"
    code, _, _ = run(capsys, "--home", home, "bundle", "export", slug, "-o", light, "--light")
    assert code == 0 and light.stat().st_size < out_zip.stat().st_size


def test_create_says_the_state_and_how_to_publish_a_draft(capsys, home, tmp_path):
    code, out, err = run(capsys, "--home", home, "competition", "create", DEMO)
    assert code == 0 and "It is published: listed and open to everyone, as its bundle's `published: true` asks." in err

    folder = tmp_path / "draft"
    shutil.copytree(DEMO, folder)
    yaml_file = folder / "competition.yaml"
    yaml_file.write_text(yaml_file.read_text().replace("published: true\n", "").replace(
        'title: "Demo: flower species"', 'title: "Drafted flowers"'))
    code, out, err = run(capsys, "--home", home, "competition", "create", folder)
    slug = out.strip().splitlines()[-1]
    assert code == 0 and slug == "drafted-flowers"
    assert "It is a draft: only its organizers see it" in err
    assert f"`compete competition publish {slug}` opens it to everyone" in err
    code, out, _ = run(capsys, "--home", home, "competition", "list")
    assert "Drafted flowers (draft)" in out
    code, out, _ = run(capsys, "--home", home, "competition", "publish", slug)
    assert code == 0 and out.strip() == f"{slug}: published"


def test_round_trip_through_the_database(home, tmp_path):
    platform = Platform(home=str(home))
    try:
        slug, _ = platform.create_competition(DEMO)
        first = platform.competition_spec(slug)
        platform.export_competition(slug, tmp_path / "x.zip")
        slug2, _ = platform.create_competition(tmp_path / "x.zip")
        assert platform.competition_spec(slug2) == first
    finally:
        platform.close()


@pytest.mark.parametrize("template", ["results", "code", "notebook"])
def test_init_writes_a_valid_bundle(capsys, home, tmp_path, template):
    target = tmp_path / template
    code, _, _ = run(capsys, "--home", home, "init", target, "--template", template)
    assert code == 0
    code, out, _ = run(capsys, "--home", home, "bundle", "validate", target)
    assert code == 0, out


def test_unknown_competition_is_a_clear_error(capsys, home):
    code, out, err = run(capsys, "--home", home, "leaderboard", "nope")
    assert code == 1
    assert "no competition 'nope'" in err and "Traceback" not in err


def test_console_script_is_installed(home):
    proc = subprocess.run([sys.executable, "-m", "hub_extension.cli", "--home", str(home), "competition", "list"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0
    assert "no competitions yet" in proc.stdout
