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


def test_the_cli_sets_and_clears_a_boards_probing_resistance(capsys, tmp_path):
    home = tmp_path / "home"
    slug = run(capsys, "--home", home, "competition", "create", DEMO).strip().splitlines()[-1]
    out = run(capsys, "--home", home, "competition", "probing", slug, "--board", "main", "--precision", "2",
              "--ladder", "fixed", "--step", "0.05")
    assert "display precision 2, ladder fixed (step 0.05)" in out
    platform = Platform(home=str(home))
    board = next(b for b in platform.editable_spec(slug, LOCAL_ADMIN).leaderboards if b.key == "main")
    assert (board.display_precision, board.ladder, board.ladder_step) == (2, "fixed", 0.05)
    platform.close()

    # A fixed Ladder without its step is refused, and nothing changes.
    assert main(["--home", str(home), "competition", "probing", slug, "--board", "main", "--ladder", "fixed",
                 "--step", "none"]) == 1
    assert "ladder_step" in capsys.readouterr().err
    assert main(["--home", str(home), "competition", "probing", slug, "--board", "main", "--precision",
                 "two"]) == 2
    capsys.readouterr()
    platform = Platform(home=str(home))
    board = next(b for b in platform.editable_spec(slug, LOCAL_ADMIN).leaderboards if b.key == "main")
    assert board.ladder == "fixed"
    platform.close()

    out = run(capsys, "--home", home, "competition", "probing", slug, "--board", "main")
    assert "shows participants the stored scores" in out
    platform = Platform(home=str(home))
    board = next(b for b in platform.editable_spec(slug, LOCAL_ADMIN).leaderboards if b.key == "main")
    assert (board.display_precision, board.ladder, board.ladder_step) == (None, None, None)
    platform.close()
