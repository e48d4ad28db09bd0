"""Teams: forming one, invitations and the link, one team per user, shared limits, one board entry, who sees what."""
from __future__ import annotations

import datetime as dt
import threading

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor, Forbidden, LimitReached, NotFound, Platform, PlatformError
from hub_extension.errors import Conflict

from tests.support.builders import results_zip, simple_spec

ANN, BOB, CY = Actor("ann"), Actor("bob"), Actor("cy")


def _setup(platform: Platform, *, allow_teams: bool = True, **phase) -> str:
    spec = simple_spec(**phase)
    spec.allow_teams = allow_teams
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    for name in ("ann", "bob", "cy"):
        platform.register(slug, name, LOCAL_ADMIN)
    return slug


def _team_of_two(platform: Platform, slug: str) -> int:
    team = platform.create_team(slug, "Owls", ANN)
    assert platform.invite_to_team(slug, team, ["bob"], ANN) == [{"username": "bob", "invited": True}]
    assert platform.answer_invitation(slug, team, True, BOB) == m.MEMBER
    return team


def _finish(platform: Platform, sid: int, accuracy: float) -> None:
    key = f"submission-{sid}"
    assert platform.runs.claim(sid, "default", key)
    assert platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": accuracy}}, key=key)


def test_forming_a_team_and_its_page(platform):
    slug = _setup(platform)
    team = _team_of_two(platform, slug)
    view = platform.team(slug, team, BOB)
    assert view["name"] == "Owls" and view["owner"] == "ann" and view["is_member"] and not view["is_owner"]
    assert [x["username"] for x in view["members"]] == ["ann", "bob"]
    listed = platform.team_list(slug, CY)
    assert [t["name"] for t in listed["teams"]] == ["Owls"] and listed["my_team"] is None
    # An outsider sees the members, not the invitations nor the link.
    platform.invite_to_team(slug, team, ["cy"], ANN)
    assert platform.team(slug, team, Actor("dee"))["invited"] == []
    assert platform.team(slug, team, BOB)["invited"][0]["username"] == "cy"
    assert platform.team_list(slug, CY)["invitations"][0]["id"] == team
    assert platform.answer_invitation(slug, team, False, CY) == m.DECLINED


def test_refusals_say_what_to_do(platform):
    slug = _setup(platform)
    closed = _setup(platform, allow_teams=False)
    with pytest.raises(Conflict, match="does not allow teams"):
        platform.create_team(closed, "X", ANN)
    with pytest.raises(Forbidden, match="register"):
        platform.create_team(slug, "X", Actor("stranger"))
    with pytest.raises(PlatformError, match="needs a name"):
        platform.create_team(slug, "   ", ANN)
    team = platform.create_team(slug, "Owls", ANN)
    with pytest.raises(Conflict, match="exists"):
        platform.create_team(slug, "owls", BOB)
    with pytest.raises(Conflict, match="one team per competition"):
        platform.create_team(slug, "Larks", ANN)
    results = platform.invite_to_team(slug, team, ["stranger", "ann"], ANN)
    assert "register first" in results[0]["error"] and "already" in results[1]["error"]
    with pytest.raises(Forbidden, match="only the owner"):
        platform.invite_to_team(slug, team, ["cy"], BOB)
    with pytest.raises(NotFound, match="no invitation"):
        platform.answer_invitation(slug, team, True, BOB)
    # One team per user: a member of another team cannot accept.
    larks = platform.create_team(slug, "Larks", BOB)
    assert "leave it" in platform.invite_to_team(slug, team, ["bob"], ANN)[0]["error"]
    platform.invite_to_team(slug, larks, ["cy"], BOB)
    platform.invite_to_team(slug, team, ["cy"], ANN)
    platform.answer_invitation(slug, larks, True, CY)
    with pytest.raises(Conflict, match="one team per competition"):
        platform.answer_invitation(slug, team, True, CY)


def test_link_leave_hand_over_and_dissolve(platform, tmp_path):
    slug = _setup(platform)
    team = platform.create_team(slug, "Owls", ANN)
    with pytest.raises(Forbidden):
        platform.invitation_link(slug, team, BOB)
    token = platform.invitation_link(slug, team, ANN)
    with pytest.raises(NotFound, match="not valid"):
        platform.join_by_link(slug, "wrong", BOB)
    assert platform.join_by_link(slug, token, BOB) == team
    with pytest.raises(Conflict, match="hand it over"):
        platform.leave_team(slug, team, ANN)
    with pytest.raises(PlatformError, match="not another member"):
        platform.hand_over_team(slug, team, "cy", ANN)
    platform.hand_over_team(slug, team, "bob", ANN)
    assert platform.team(slug, team, ANN)["owner"] == "bob"
    platform.leave_team(slug, team, ANN)
    assert [x["username"] for x in platform.team(slug, team, BOB)["members"]] == ["bob"]
    # A new link ends the old one.
    assert platform.invitation_link(slug, team, BOB, new=True) != token
    with pytest.raises(NotFound):
        platform.join_by_link(slug, token, CY)
    sid = platform.submit(slug, results_zip(tmp_path), username="bob")
    with pytest.raises(Forbidden, match="only the owner"):
        platform.dissolve_team(slug, team, CY)
    done = platform.dissolve_team(slug, team, BOB)
    assert done["submissions_returned"] == 1
    assert platform.submission(sid)["participant"] == "bob"
    with pytest.raises(NotFound):
        platform.team(slug, team, BOB)


def test_members_submit_for_the_team_and_see_its_submissions(platform, tmp_path):
    slug = _setup(platform, max_submissions=3, max_submissions_per_day=None)
    team = _team_of_two(platform, slug)
    sid = platform.submit(slug, results_zip(tmp_path), username="ann")
    # Both members see it, and its logs; another participant does not.
    assert platform.submission_view(sid, BOB)["team"] == team
    assert [i["id"] for i in platform.submissions_view(slug, BOB)["items"]] == [sid]
    assert platform.submission_file(sid, BOB)[1] == "predictions.zip"
    with pytest.raises(NotFound, match="no stdout"):  # not run yet: no log, but not refused
        platform.submission_log(sid, BOB, 0, "scoring", "stdout")
    for read in (lambda: platform.submission_view(sid, CY), lambda: platform.submission_file(sid, CY),
                 lambda: platform.submission_log(sid, CY, 0, "scoring", "stdout")):
        with pytest.raises(Forbidden):
            read()
    assert platform.submissions_view(slug, CY)["items"] == []
    # Only its submitter (or an organizer) deletes it.
    with pytest.raises(Forbidden, match="only they"):
        platform.delete_submission(sid, BOB)
    # The limit is the team's: ann's one and bob's two use it up.
    platform.submit(slug, results_zip(tmp_path), username="bob")
    assert platform.submissions_left(slug, "ann") == {"total": 1, "today": None}
    platform.submit(slug, results_zip(tmp_path), username="bob")
    with pytest.raises(LimitReached, match="your team 'Owls' has used all 3"):
        platform.submit(slug, results_zip(tmp_path), username="ann")


def test_joining_over_a_limit_is_refused_with_the_numbers(platform, tmp_path):
    slug = _setup(platform, max_submissions=3, max_submissions_per_day=2)
    team = platform.create_team(slug, "Owls", ANN)
    now = dt.datetime(2026, 3, 1, 10, 0)
    platform.submit(slug, results_zip(tmp_path), username="ann", now=now)
    platform.submit(slug, results_zip(tmp_path), username="bob", now=now)
    platform.invite_to_team(slug, team, ["bob"], ANN)
    platform.answer_invitation(slug, team, True, BOB, now=now)  # 1 + 1 = 2 a day: allowed
    platform.submit(slug, results_zip(tmp_path), username="cy", now=now)
    platform.submit(slug, results_zip(tmp_path), username="cy", now=now + dt.timedelta(days=1))
    platform.invite_to_team(slug, team, ["cy"], ANN)
    with pytest.raises(Conflict, match=r"limit of 3 submissions .* the team has used 2 and you 2, 4 together"):
        platform.answer_invitation(slug, team, True, CY, now=now + dt.timedelta(days=1))
    assert platform.team(slug, team, ANN)["invited"][0]["username"] == "cy"


def test_concurrent_submissions_of_two_members_share_the_limit(platform, tmp_path):
    slug = _setup(platform, max_submissions=1, max_submissions_per_day=None)
    _team_of_two(platform, slug)
    archive = results_zip(tmp_path)
    outcomes: list[str] = []

    def submit(name: str) -> None:
        try:
            platform.submit(slug, archive, username=name)
            outcomes.append("ok")
        except LimitReached:
            outcomes.append("refused")

    threads = [threading.Thread(target=submit, args=(name,)) for name in ("ann", "bob", "ann", "bob")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["ok", "refused", "refused", "refused"]


def test_the_board_shows_one_entry_per_team(platform, tmp_path):
    slug = _setup(platform)
    team = _team_of_two(platform, slug)
    _finish(platform, platform.submit(slug, results_zip(tmp_path), username="ann"), 0.5)
    latest = platform.submit(slug, results_zip(tmp_path), username="bob")
    _finish(platform, latest, 0.7)
    _finish(platform, platform.submit(slug, results_zip(tmp_path), username="cy"), 0.9)
    board = platform.leaderboard_view(slug, actor=ANN)
    assert [(r["participant"], r["team"]) for r in board["rows"]] == [("cy", None), ("Owls", team)]
    owls = board["rows"][1]
    assert owls["submission"] == latest and owls["submitted_by"] == "bob" and owls["own"]
    assert not board["rows"][0]["own"]
    assert "Owls" in platform.leaderboard_csv(slug, actor=CY)
    # Dissolved, the team's submissions stand for their submitters again.
    platform.dissolve_team(slug, team, ANN)
    rows = platform.leaderboard_view(slug, actor=ANN)["rows"]
    assert sorted(r["participant"] for r in rows) == ["ann", "bob", "cy"]


def test_a_rerun_of_a_team_submission_is_the_teams(platform, tmp_path):
    slug = _setup(platform)
    team = _team_of_two(platform, slug)
    sid = platform.submit(slug, results_zip(tmp_path), username="ann")
    again = platform.rerun(sid)
    assert platform.submission_view(again, BOB)["team"] == team


def test_the_editor_turns_teams_on_and_off(platform):
    slug = _setup(platform, allow_teams=False)
    edit = platform.save_overview(slug, {"allow_teams": True}, LOCAL_ADMIN)
    assert not edit.problems, edit.problems
    assert platform.competition_detail(slug, ANN)["allow_teams"] is True
    platform.create_team(slug, "Owls", ANN)
    platform.save_overview(slug, {"allow_teams": False}, LOCAL_ADMIN)
    with pytest.raises(Conflict, match="does not allow teams"):
        platform.create_team(slug, "Larks", BOB)


def test_the_team_page_names_members_by_their_display_names(platform):
    slug = _setup(platform)
    team = _team_of_two(platform, slug)
    platform.save_profile(BOB, {"display_name": "Bob the Builder"})
    platform.invite_to_team(slug, team, ["cy"], ANN)
    platform.save_profile(CY, {"display_name": "Cy"})
    view = platform.team(slug, team, ANN)
    assert [(x["username"], x["shown"]) for x in view["members"]] == [("ann", "ann"), ("bob", "Bob the Builder")]
    assert [(x["username"], x["shown"]) for x in view["invited"]] == [("cy", "Cy")]
