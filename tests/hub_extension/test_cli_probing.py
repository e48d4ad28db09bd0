"""`compete leaderboard` on a Ladder board: a participant (`--as`) gets the shown values, the local
administrator (an organizer) the stored ones."""
from __future__ import annotations

import json

from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.cli import main
from tests.hub_extension.test_cli import DEMO


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, _ = capsys.readouterr()
    assert code == 0
    return out


def test_the_cli_shows_participants_the_shown_values(capsys, tmp_path):
    home = tmp_path / "home"
    slug = run(capsys, "--home", home, "competition", "create", DEMO).strip().splitlines()[-1]
    platform = Platform(home=str(home))
    edit = platform.set_probing(slug, "main", LOCAL_ADMIN, ladder="fixed", ladder_step=0.1)
    assert edit.saved, edit.problems
    preds = DEMO / "sample_submissions" / "constant"
    for user, values in (("ann", [0.5, 0.5731]), ("ben", [0.9123])):
        platform.register(slug, user, LOCAL_ADMIN)
        for value in values:
            sid = platform.submit(slug, preds, username=user)
            platform.runs.record_scores(sid, {"accuracy": value, "f1": value / 2})
    platform.close()

    shown = json.loads(run(capsys, "--home", home, "leaderboard", slug, "--json", "--as", "ann"))
    assert [(r["participant"], r["scores"]["accuracy"]) for r in shown["rows"]] == [("ben", 0.9), ("ann", 0.5)]
    assert shown["probing"]["ladder"] == "fixed" and shown["probing"]["shown_values"] is True
    text = run(capsys, "--home", home, "leaderboard", slug, "--as", "ann")
    assert "by more than 0.1" in text and "0.5731" not in text and "0.9123" not in text
    stored = json.loads(run(capsys, "--home", home, "leaderboard", slug, "--json"))
    assert [(r["participant"], r["scores"]["accuracy"]) for r in stored["rows"]] == [("ben", 0.9123),
                                                                                      ("ann", 0.5731)]
