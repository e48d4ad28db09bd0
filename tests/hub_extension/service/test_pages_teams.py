"""The team pages and API in-process: forming a team by invitation and by link, the team's page to members and to
others, the board's team entry, handing over, leaving and dissolving; refusals come back as notices."""
from __future__ import annotations

import html
import re

from hub_extension.app import LOCAL_ADMIN
from hub_extension.client import CompeteClient
from tests.support.builders import results_zip, simple_spec
from tests.support.service_harness import PREFIX, ok, visible_text


def _competition(platform, allow_teams: bool = True) -> str:
    spec = simple_spec(max_submissions=2, max_submissions_per_day=None)
    spec.allow_teams = allow_teams
    slug = platform.competitions.insert_competition(spec, LOCAL_ADMIN)
    for name in ("ann", "ben", "nora"):
        platform.register(slug, name, LOCAL_ADMIN)
    return slug


def _finish(platform, sid: int, accuracy: float) -> None:
    assert platform.runs.claim(sid, "default", f"k-{sid}")
    assert platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": accuracy}}, key=f"k-{sid}")


def test_two_participants_form_a_team_through_the_pages(platform, server, tmp_path):
    slug = _competition(platform)
    ann, ben, nora = server.browser("ann"), server.browser("ben"), server.browser("nora")
    base = f"competitions/{slug}"
    assert f'href="{PREFIX}{base}/teams"' in ok(ann.get(base)).text
    created = ann.post(f"{base}/teams", {"name": "Owls", "description": "night birds"})
    team = int(created.headers["Location"].rsplit("/", 1)[1])
    page = ok(ann.follow(created)).text
    assert "Your team is created" in page and 'id="invite-form"' in page
    invited = ann.post(f"{base}/teams/{team}/invite", {"usernames": "ben, nobody"})
    notices = visible_text(ok(ann.follow(invited)).text)
    assert "ben is invited" in notices and "nobody is not an approved participant" in notices
    listing = ok(ben.get(f"{base}/teams")).text
    assert 'id="invitation-list"' in listing
    joined = ben.post(f"{base}/teams/{team}/accept")
    assert "You joined the team" in ok(ben.follow(joined)).text
    # ann submits; both see it on the team's page, nora does not get the list.
    sid = platform.submit(slug, results_zip(tmp_path), username="ann")
    _finish(platform, sid, 0.8)
    for who in (ann, ben):
        assert f'data-submission="{sid}"' in ok(who.get(f"{base}/teams/{team}")).text
        ok(who.get(f"submissions/{sid}"))
    mine = ok(ben.get(f"{base}/submissions")).text
    assert f'data-submission="{sid}"' in mine and 'id="team-note"' in mine
    outsider = ok(nora.get(f"{base}/teams/{team}")).text
    assert "team-submissions" not in outsider and "Owls" in outsider
    assert nora.get(f"submissions/{sid}").status_code == 403
    # The board shows the team once, under its name, linked to its page.
    board = ok(ben.get(f"{base}/leaderboard")).text
    assert board.count(f'/teams/{team}"') == 1 and "(your team)" in board
    # The team's limit is shared: ben has one left, then none.
    bob_api = server.client("ben")
    assert bob_api.get(f"api/v1/competitions/{slug}/submissions_left").json()["total"] == 1
    platform.submit(slug, results_zip(tmp_path), username="ben")
    refused = bob_api.post(f"api/v1/competitions/{slug}/submissions",
                           files={"file": ("p.zip", results_zip(tmp_path).read_bytes())})
    assert refused.status_code == 429 and "your team 'Owls' has used all 2" in refused.json()["error"]["message"]


def test_the_link_handing_over_leaving_and_dissolving(platform, server):
    slug = _competition(platform)
    ann, ben, nora = server.browser("ann"), server.browser("ben"), server.browser("nora")
    base = f"competitions/{slug}"
    team = int(ann.post(f"{base}/teams", {"name": "Owls"}).headers["Location"].rsplit("/", 1)[1])
    page = ok(ann.follow(ann.post(f"{base}/teams/{team}/link"))).text
    link = html.unescape(re.search(r'id="invite-link" value="([^"]+)"', page).group(1))
    token = link.rsplit("/", 1)[1]
    assert "Join Owls" in ok(ben.get(f"{base}/teams/join/{token}")).text
    assert "You joined" in ok(ben.follow(ben.post(f"{base}/teams/join/{token}"))).text
    # nora is in no team but a wrong link says so.
    assert nora.get(f"{base}/teams/join/wrong-token").status_code == 404
    # The owner cannot leave; hands over; then leaves.
    refused = visible_text(ok(ann.follow(ann.post(f"{base}/teams/{team}/leave"))).text)
    assert "hand it over to another member, or dissolve it" in refused
    ok(ann.follow(ann.post(f"{base}/teams/{team}/owner", {"username": "ben"})))
    assert platform.team(slug, team, LOCAL_ADMIN)["owner"] == "ben"
    left = ann.post(f"{base}/teams/{team}/leave")
    assert left.headers["Location"].endswith(f"{base}/teams")
    # Only the owner (or an organizer) dissolves.
    assert nora.post(f"{base}/teams/{team}/dissolve").status_code == 403
    gone = ben.post(f"{base}/teams/{team}/dissolve")
    assert "dissolved" in ok(ben.follow(gone)).text
    assert ok(ben.get(f"{base}/teams")).text.count('data-team="') == 0


def test_the_api_and_a_competition_without_teams(platform, server):
    slug = _competition(platform)
    closed = _competition(platform, allow_teams=False)
    ann, ben = server.client("ann"), server.client("ben")
    resp = ann.post(f"api/v1/competitions/{slug}/teams", json={"name": "Owls"})
    assert resp.status_code == 201, resp.text
    team = resp.json()["id"]
    assert resp.headers["Location"].endswith(f"/teams/{team}")
    results = ann.post(f"api/v1/competitions/{slug}/teams/{team}/invitations", json={"usernames": ["ben"]}).json()
    assert results["results"] == [{"username": "ben", "invited": True}]
    assert ben.post(f"api/v1/competitions/{slug}/teams/{team}/accept").json()["status"] == "member"
    listed = server.client().get(f"api/v1/competitions/{slug}/teams").json()
    assert [[x["username"] for x in t["members"]] for t in listed["teams"]] == [["ann", "ben"]]
    link = ann.post(f"api/v1/competitions/{slug}/teams/{team}/link", json={}).json()
    assert link["url"].endswith(link["token"])
    assert ben.post(f"api/v1/competitions/{slug}/teams/join", json={"token": "nope"}).status_code == 404
    assert ann.put(f"api/v1/competitions/{slug}/teams/{team}/owner", json={"username": "ben"}).json()["owner"] == "ben"
    assert ann.post(f"api/v1/competitions/{slug}/teams/{team}/leave").json()["status"] == "left"
    assert ben.request("DELETE", f"api/v1/competitions/{slug}/teams/{team}").json()["name"] == "Owls"
    resp = ann.post(f"api/v1/competitions/{closed}/teams", json={"name": "Owls"})
    assert resp.status_code == 409 and "does not allow teams" in resp.json()["error"]["message"]
    page = server.browser("ann").get(f"competitions/{closed}/teams")
    assert 'id="teams-off"' in ok(page).text
    assert f"/competitions/{closed}/teams" not in ok(server.browser("ann").get(f"competitions/{closed}")).text


def test_the_client_forms_a_team(platform, server):
    slug = _competition(platform)
    ann = CompeteClient(url=server.base, token="token-ann")
    ben = CompeteClient(url=server.base, token="token-ben")
    team = ann.create_team(slug, "Owls", invite=["ben", "nobody"])
    assert [r["invited"] for r in team["invitations"]] == [True, False]
    assert ben.teams(slug)["invitations"][0]["id"] == team["id"]
    assert ben.join_team(slug, team["id"]) == {"team": team["id"], "status": "member"}
    assert ben.teams(slug)["my_team"] == team["id"]
