"""The competitions service inside a real JupyterHub (`jupyterhub -f jupyterhub_config.py`).

One hub per test session (the `hub` fixture); every request goes through the
proxy, as a browser's or a script's would.
"""
from __future__ import annotations

import os
import re
import stat
import subprocess
import sys
import uuid

import psutil

import pytest
import requests

from tests.support.hub import SERVICE, SERVICE_PREFIX

pytestmark = pytest.mark.slow


def test_hub_runs_the_service_behind_the_proxy(hub):
    resp = hub.client().get("api/v1/health")
    assert resp.status_code == 200, resp.text
    assert resp.json()["status"] == "ok"
    services = hub.api("GET", "services").json()
    assert SERVICE in services, services
    service = services[SERVICE]
    assert service["command"] == [sys.executable, "-m", "hub_extension.service"]
    assert service["prefix"] == SERVICE_PREFIX
    assert service["display"] is True
    # The hub started it with the platform's home and settings file.
    env = psutil.Process(service["pid"]).environ()
    assert env["COMPETE_HOME"] == str(hub.home)
    assert env["COMPETE_CONFIG"] == str(hub.home / "compete_config.py")
    assert env["JUPYTERHUB_SERVICE_PREFIX"] == SERVICE_PREFIX


def test_a_users_token_reaches_the_api_and_a_token_without_the_scope_gets_403(hub):
    name = hub.create_user()
    allowed = hub.user_client(name)
    resp = allowed.get("api/v1/competitions")
    assert resp.status_code == 200, resp.text

    # A token limited to identifying its owner may not use the service.
    narrow = hub.user_client(name, scopes=["read:users:name!user"])
    resp = narrow.get("api/v1/competitions")
    assert resp.status_code == 403, resp.text
    assert resp.json()["error"]["code"] == "forbidden"


def test_the_service_sees_hub_groups_and_admins(hub):
    """Organizers are the hub group `organizers`, admins the hub's admins: the service reads both."""
    people = {
        "participant": hub.create_user(),
        "organizer": hub.create_user(groups=["organizers"]),
        "admin": hub.create_user(admin=True),
    }
    seen = {role: hub.user_client(name).get("api/v1/me").json() for role, name in people.items()}
    assert {role: me["name"] for role, me in seen.items()} == people
    assert [seen[r]["may_create_competitions"] for r in ("participant", "organizer", "admin")] == [False, True, True]
    assert [seen[r]["admin"] for r in ("participant", "organizer", "admin")] == [False, False, True]
    assert "organizers" in seen["organizer"]["groups"]


def test_every_user_holds_the_service_scope_and_organizers_the_create_scope(hub):
    participant = hub.create_user()
    organizer = hub.create_user(groups=["organizers"])
    scopes = {
        name: set(hub.api("GET", "user", token=hub.token_for(name)).json()["scopes"])
        for name in (participant, organizer)
    }
    assert f"access:services!service={SERVICE}" in scopes[participant]
    assert "custom:competitions:create" not in scopes[participant]
    assert "custom:competitions:create" in scopes[organizer]


def test_a_single_user_servers_token_reaches_the_service(hub):
    """The token the hub gives a user's server (JupyterLab widgets, scripts) may call the service."""
    participant = hub.create_user()
    organizer = hub.create_user(groups=["organizers"])
    try:
        for name in (participant, organizer):
            hub.start_server(name)
        for name in (participant, organizer):
            token = hub.server_environment(name)["JUPYTERHUB_API_TOKEN"]
            resp = hub.client(token).get("api/v1/me")
            assert resp.status_code == 200, resp.text
            assert resp.json()["name"] == name
            scopes = set(hub.api("GET", "user", token=token).json()["scopes"])
            assert f"access:services!service={SERVICE}" in scopes
            # Code in a server holds no organizer power, even an organizer's: participant only.
            assert not [s for s in scopes if s.startswith("custom:competitions:")], scopes
            me = hub.client(token).get("api/v1/me").json()
            assert me["may_create_competitions"] is False and me["admin"] is False, me
            assert "organizers" not in me["groups"]
            resp = hub.client(token).post("api/v1/queues", json={"name": f"srv-{name[-8:]}"})
            assert resp.status_code == 403, resp.text
    finally:
        for name in (participant, organizer):
            hub.stop_server(name)


def test_an_anonymous_visitor_is_sent_to_the_hub_login(hub):
    resp = hub.client().get("login", allow_redirects=True)
    assert resp.status_code == 200, resp.text
    assert resp.url.startswith(hub.url + "hub/login"), resp.url
    # An API client gets a JSON 401 instead of a redirect.
    resp = hub.client().get("api/v1/competitions/demo-flower-species/submissions")
    assert resp.status_code == 401, resp.text
    assert resp.json()["error"]["code"] == "login_required"


def test_a_hub_login_is_recognized_on_a_service_page_opened_directly(hub):
    account = hub.demo_accounts("participant")[0]
    session = hub.hub_login(account.username, account.password)
    # The hub's session cookie is on its base URL: the browser sends it to the service's pages.
    assert any(c.name == "jupyterhub-session-id" and c.path == "/" for c in session.cookies)
    page = session.get(hub.service_url, timeout=60)
    assert page.status_code == 200 and page.url == hub.service_url, page.url
    assert account.username in page.text and ">Log in<" not in page.text
    # A visitor without a hub session sees the public list at once, with no redirect.
    anonymous = requests.get(hub.service_url, allow_redirects=False, timeout=30)
    assert anonymous.status_code == 200 and ">Log in<" in anonymous.text
    # A hub session the hub no longer knows (logged out elsewhere): one round through the hub,
    # then the public page, never a loop.
    stale = requests.Session()
    stale.cookies.set("jupyterhub-session-id", uuid.uuid4().hex, path="/")
    first = stale.get(hub.service_url, allow_redirects=False, timeout=30)
    assert first.status_code == 302 and "oauth2/authorize" in first.headers["Location"]
    stale.get(hub.service_url, timeout=30)  # ends on the hub's login page
    back = stale.get(hub.service_url, allow_redirects=False, timeout=30)
    assert back.status_code == 200 and ">Log in<" in back.text


def test_the_hub_nav_bar_and_home_page_link_to_the_service(hub):
    account = hub.demo_accounts("participant")[0]
    session = hub.hub_login(account.username, account.password)
    home = session.get(hub.url + "hub/home", timeout=30)
    assert home.status_code == 200
    assert f'id="competitions-nav-link" href="{SERVICE_PREFIX}login"' in home.text
    assert f'href="{SERVICE_PREFIX}login">Open the competitions' in home.text
    token_page = session.get(hub.url + "hub/token", timeout=30)
    assert f'id="competitions-nav-link" href="{SERVICE_PREFIX}login"' in token_page.text
    # The Services menu lists it too.
    assert f'class="dropdown-item" href="{SERVICE_PREFIX}">{SERVICE}</a>' in home.text
    # Following the link signs the hub user in to the service, with no page to confirm.
    landing = session.get(hub.url + f"{SERVICE_PREFIX.lstrip('/')}login", timeout=60)
    assert landing.status_code == 200
    assert landing.url == hub.service_url
    assert account.username in landing.text


def test_the_demo_accounts_log_in_and_the_organizer_owns_the_demo_competition(hub):
    accounts = hub.demo_accounts()
    assert sorted(a.role for a in accounts) == ["admin", "organizer", "participant", "participant"]
    path = hub.home / "demo-accounts.txt"
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    for account in accounts:
        assert account.password in path.read_text()
    organizer = next(a for a in accounts if a.role == "organizer")
    model = hub.api("GET", f"users/{organizer.username}").json()
    assert "organizers" in model["groups"]
    admin = next(a for a in accounts if a.role == "admin")
    assert hub.api("GET", f"users/{admin.username}").json()["admin"] is True

    client = hub.login(organizer.username, organizer.password)
    comps = client.get("api/v1/competitions").json()
    demo = [c for c in comps["items"] if c["title"] == "Demo: flower species"]
    assert len(demo) == 1, comps
    detail = client.get(f"api/v1/competitions/{demo[0]['slug']}").json()
    assert detail["is_organizer"] is True


def test_a_wrong_password_does_not_log_in(hub):
    account = hub.demo_accounts("participant")[0]
    session = requests.Session()
    page = session.get(hub.url + "hub/login", timeout=30)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    resp = session.post(hub.url + "hub/login", data={"username": account.username, "password": "not-it-at-all",
                                                      "_xsrf": xsrf}, allow_redirects=False, timeout=30)
    assert resp.status_code == 403
    assert "Invalid username or password" in resp.text


def test_scopes_of_the_token_decide_the_role_not_who_owns_it(hub):
    """A hub admin's or an organizer's token down-scoped to calling the service is a participant's."""
    organizer = hub.create_user(groups=["organizers"])
    admin = hub.demo_accounts("admin")[0].username
    access_only = [f"access:services!service={SERVICE}"]
    for name, role in ((organizer, "organizer"), (admin, "admin")):
        full = hub.user_client(name)
        scoped = hub.user_client(name, scopes=access_only)
        assert full.get("api/v1/me").json()["may_create_competitions"] is True
        me = scoped.get("api/v1/me").json()
        assert me["name"] == name and me["admin"] is False and me["may_create_competitions"] is False, me
        resp = scoped.post("api/v1/queues", json={"name": f"scoped-{uuid.uuid4().hex[:6]}"})
        assert resp.status_code == 403, resp.text
        resp = scoped.get("api/v1/admin/storage")
        assert resp.status_code == 403, resp.text
        assert full.get("api/v1/admin/storage").status_code == (200 if role == "admin" else 403)
    # The demo organizer runs the demo competition with a full token, but not with a scoped one.
    demo_organizer = hub.demo_accounts("organizer")[0].username
    slug = next(c["slug"] for c in hub.client().get("api/v1/competitions").json()["items"]
                if c["title"] == "Demo: flower species")
    assert hub.user_client(demo_organizer).get(f"api/v1/competitions/{slug}/yaml").status_code == 200
    resp = hub.user_client(demo_organizer, scopes=access_only).get(f"api/v1/competitions/{slug}/yaml")
    assert resp.status_code == 403, resp.text
    assert hub.user_client(demo_organizer, scopes=access_only).get(
        f"api/v1/competitions/{slug}").json()["is_organizer"] is False


def test_browser_logins_of_organizers_and_admins_keep_their_powers(hub):
    """The service's OAuth token carries the role scopes its user holds (oauth_client_allowed_scopes)."""
    seen = {}
    for role in ("admin", "organizer", "participant"):
        account = hub.demo_accounts(role)[0]
        seen[role] = hub.login(account.username, account.password).get("api/v1/me").json()
    assert [seen[r]["admin"] for r in ("admin", "organizer", "participant")] == [True, False, False], seen
    assert [seen[r]["may_create_competitions"] for r in ("admin", "organizer", "participant")] == [True, True, False]


def test_a_terminal_submit_wait_is_run_by_the_hubs_service(hub, tmp_path):
    """`compete submit --wait` next to a running hub: the service dispatches it, the command waits on the database."""
    from sqlalchemy import func, select

    from hub_extension import models as m
    from hub_extension.app import Platform
    from hub_extension.demo import DEMO_SLUG_TITLE
    from tests.support.hub import sample_predictions_zip

    platform = Platform(home=str(hub.home))
    try:
        slug = next(c["slug"] for c in platform.list_competitions() if c["title"] == DEMO_SLUG_TITLE)
        service_pid = hub.api("GET", "services").json()[SERVICE]["pid"]
        holder = platform.lease.live()
        assert holder is not None and holder.pid == service_pid, holder
        env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPETE_", "JUPYTERHUB_"))}
        user = f"term-{uuid.uuid4().hex[:6]}"
        proc = subprocess.run(
            [sys.executable, "-m", "hub_extension.cli", "--home", str(hub.home), "submit", slug,
             str(sample_predictions_zip(tmp_path)), "--user", user, "--wait"],
            capture_output=True, text=True, timeout=300, env=env,
        )
        assert proc.returncode == 0, proc.stderr
        lines = proc.stdout.strip().splitlines()
        sid = int(lines[0].split()[1].rstrip(":"))
        assert lines[:2] == [f"submission {sid}: running", f"submission {sid}: Finished"], proc.stdout
        assert f"dispatching is done by pid {service_pid} on " in proc.stderr, proc.stderr
        assert "waiting on the database" in proc.stderr
        with platform.db.session() as s:
            sent = s.scalar(select(m.Submission.dispatch_count).where(m.Submission.id == sid))
            ends = s.scalar(select(func.count()).select_from(m.StatusChange).where(
                m.StatusChange.submission_id == sid, m.StatusChange.status.in_(m.TERMINAL_STATUSES)))
        assert (sent, ends) == (1, 1)
        # The service holds the lease still, and no other dispatcher was started.
        assert platform.lease.live().pid == service_pid
    finally:
        platform.close()
