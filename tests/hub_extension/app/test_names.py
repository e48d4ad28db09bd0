"""Profiles, display names and the pseudonyms of anonymous leaderboards, in the application layer."""
from __future__ import annotations

import os
import stat

import pytest
from sqlalchemy import event

from hub_extension.app import Actor, PlatformError
from hub_extension.app.names import (
    PSEUDONYM_PREFIX,
    SECRET_FILE,
    entrant,
    is_anonymous,
    platform_secret,
    pseudonym,
    shown_names,
)

from tests.support.builders import ANN, ANONYMOUS, BEN, NORA, ORGANIZER, finish, results_zip


def anonymous_board(platform, world, anonymous=True) -> None:
    edit = platform.save_board_anonymity(world.slug, "main", anonymous, ORGANIZER)
    assert edit.saved, edit.problems


def names_of(view) -> list[str]:
    return [r["participant"] for r in view["rows"]]


# -- profiles -----------------------------------------------------------------------------------
def test_a_profile_is_set_cleared_and_shown(platform):
    assert platform.profile(ANN) == {"username": "ann", "display_name": None, "affiliation": None,
                                     "shown_as": "ann", "updated_at": None}
    saved = platform.save_profile(ANN, {"display_name": "  Ann   Lee ", "affiliation": "Univ. of Tests"})
    assert (saved["display_name"], saved["affiliation"], saved["shown_as"]) == ("Ann Lee", "Univ. of Tests", "Ann Lee")
    # A field left out stays; "" clears.
    saved = platform.save_profile(ANN, {"affiliation": ""})
    assert (saved["display_name"], saved["affiliation"]) == ("Ann Lee", None)
    assert platform.profile(ANN)["shown_as"] == "Ann Lee"
    with platform.db.session() as s:
        assert shown_names(s, ["ann", "ben"]) == {"ann": "Ann Lee", "ben": "ben"}


@pytest.mark.parametrize("changes, message", [
    ({"display_name": "x" * 61}, "display name: at most 60 characters, got 61; shorten it"),
    ({"affiliation": "y" * 201}, "affiliation: at most 200 characters, got 201; shorten it"),
    ({"display_name": "Ann\x07"}, "display name: contains a control or invisible character (U+0007)"),
    ({"display_name": "nn\u202eA"}, "display name: contains a control or invisible character (U+202E)"),
    ({"display_name": "Anonymous-ABCDEFGH"}, "display name: may not start with 'Anonymous-'"),
    ({"display_name": 7}, "display name: must be text, got int"),
    ({"nickname": "A"}, "unknown profile field(s) nickname; a profile has display_name, affiliation"),
])
def test_a_refused_profile_says_what_to_fix_and_saves_nothing(platform, changes, message):
    with pytest.raises(PlatformError) as refused:
        platform.save_profile(BEN, {"affiliation": "Kept out", **changes})
    assert message in str(refused.value)
    assert platform.profile(BEN)["affiliation"] is None


def test_profiles_need_a_login(platform):
    for call in (lambda: platform.profile(ANONYMOUS), lambda: platform.save_profile(ANONYMOUS, {})):
        with pytest.raises(PlatformError, match="log in"):
            call()


# -- pseudonyms ----------------------------------------------------------------------------------
def test_pseudonyms_are_stable_keyed_and_per_competition(tmp_path):
    home = str(tmp_path / "home")
    key = platform_secret(home)
    assert platform_secret(home) is key and len(key) == 32
    path = tmp_path / "home" / SECRET_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    name = pseudonym(key, 1, entrant("ann"))
    assert name.startswith(PSEUDONYM_PREFIX) and "ann" not in name.lower()
    assert pseudonym(key, 1, entrant("ann")) == name
    assert pseudonym(key, 2, entrant("ann")) != name  # not linkable across competitions
    assert pseudonym(b"another key" * 3, 1, entrant("ann")) != name  # not computable without the key
    assert pseudonym(key, 1, entrant("ann", 5)) == pseudonym(key, 1, entrant("ben", 5))  # a team is one entrant
    assert (is_anonymous(True, None), is_anonymous(False, None), is_anonymous(True, False), is_anonymous(False, True)
            ) == (True, False, False, True)


# -- anonymous boards ---------------------------------------------------------------------------------
def test_an_anonymous_board_shows_pseudonyms_but_the_viewers_own_name(platform, world):
    platform.save_profile(BEN, {"display_name": "Benedict Zebra"})
    shown = platform.leaderboard_view(world.slug, actor=NORA)
    assert names_of(shown) == ["Benedict Zebra", "ann"] and "anonymous" in shown and not shown["anonymous"]

    anonymous_board(platform, world)
    for viewer in (NORA, ANONYMOUS):
        view = platform.leaderboard_view(world.slug, actor=viewer)
        assert view["anonymous"] is True
        assert all(n.startswith(PSEUDONYM_PREFIX) for n in names_of(view))
        assert not any("username" in r or "team_id" in r for r in view["rows"])
    stable = names_of(platform.leaderboard_view(world.slug, actor=NORA))
    assert names_of(platform.leaderboard_view(world.slug, actor=ANONYMOUS)) == stable
    platform.rebuild_boards(world.slug)
    assert names_of(platform.leaderboard_view(world.slug, actor=NORA)) == stable

    as_ann = platform.leaderboard_view(world.slug, actor=ANN)
    assert names_of(as_ann) == [stable[0], "ann"] and as_ann["rows"][1]["own"]
    as_ben = platform.leaderboard_view(world.slug, actor=BEN)
    assert names_of(as_ben) == ["Benedict Zebra", stable[1]]

    as_olga = platform.leaderboard_view(world.slug, actor=ORGANIZER)
    assert [(r["participant"], r["username"]) for r in as_olga["rows"]] == [("Benedict Zebra", "ben"), ("ann", "ann")]

    csv_text = platform.leaderboard_csv(world.slug, actor=NORA)
    assert "ben" not in csv_text.lower() and "Zebra" not in csv_text and stable[0] in csv_text
    assert "Benedict Zebra" in platform.leaderboard_csv(world.slug, actor=ORGANIZER)
    assert [r["participant"] for r in platform.leaderboard(world.slug, actor=ANONYMOUS)["rows"]] == stable

    # A board may say otherwise than its competition.
    anonymous_board(platform, world, "default")
    assert names_of(platform.leaderboard_view(world.slug, actor=NORA)) == ["Benedict Zebra", "ann"]


def test_the_history_of_an_anonymous_board_names_no_one(platform, world, tmp_path):
    better = platform.submit(world.slug, results_zip(tmp_path, "c.zip"), username="ann", actor=ANN)
    finish(platform, better, {"accuracy": 0.95})
    anonymous_board(platform, world)
    for viewer in (NORA, ANONYMOUS):
        history = platform.best_score_history(world.slug, 1, "main", viewer)
        assert len(history) == 3 and not any("username" in p for p in history)
        assert all(p["participant"].startswith(PSEUDONYM_PREFIX) for p in history)
    ann_pseudonym, ben_pseudonym = [p["participant"] for p in history][:2]
    # A participant sees their own name, and the others' pseudonyms.
    assert [p["participant"] for p in platform.best_score_history(world.slug, 1, "main", ANN)] == [
        "ann", ben_pseudonym, "ann"]
    assert [p["participant"] for p in platform.best_score_history(world.slug, 1, "main", BEN)] == [
        ann_pseudonym, "ben", ann_pseudonym]
    organizer = platform.best_score_history(world.slug, 1, "main", ORGANIZER)
    assert [p["username"] for p in organizer] == ["ann", "ben", "ann"]


def test_the_etag_follows_anonymity_and_names_but_not_whose_names(platform, world):
    before = platform.leaderboard_etag(world.slug, actor=ANONYMOUS)
    anonymous_board(platform, world)
    hidden = platform.leaderboard_etag(world.slug, actor=ANONYMOUS)
    assert hidden != before
    # Every visitor gets one ETag: it says nothing of who is on the board.
    assert platform.leaderboard_etag(world.slug, actor=ANONYMOUS) == hidden
    platform.save_profile(BEN, {"display_name": "Benedict"})
    assert platform.leaderboard_etag(world.slug, actor=ANONYMOUS) != hidden  # names shown may have changed


def test_names_cost_a_bounded_number_of_statements(platform, world, tmp_path):
    def statements(fn) -> int:
        seen = []
        listen = lambda *args: seen.append(args[2])  # noqa: E731 - the statement of each execution
        event.listen(platform.db.engine, "before_cursor_execute", listen)
        try:
            fn()
        finally:
            event.remove(platform.db.engine, "before_cursor_execute", listen)
        return len(seen)

    counts = []
    for n in range(2):
        viewer = Actor(f"extra{n}")
        platform.register(world.slug, viewer.username, viewer, accept_terms=True)
        sid = platform.submit(world.slug, results_zip(tmp_path, f"e{n}.zip"), username=viewer.username, actor=viewer)
        finish(platform, sid, {"accuracy": 0.1 + n / 10})
        platform.save_profile(viewer, {"display_name": f"Extra {n}"})
        counts.append(statements(lambda: platform.leaderboard_view(world.slug, actor=ORGANIZER)))
    assert counts[0] == counts[1], counts
