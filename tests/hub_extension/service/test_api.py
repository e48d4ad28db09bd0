"""The REST API in-process: JSON errors, auth and XSRF, uploads, pagination, files.

The hub's token check is a stand-in here (tests/support/service_harness.py); the
same API runs behind a real hub in test_api_matrix.py.
"""
from __future__ import annotations

import io
import json
import re
import zipfile
from pathlib import Path

import yaml

from hub_extension import models as m
from hub_extension.demo import DEMO_BUNDLE
from hub_extension.service.api import OPENAPI_FILE, api_routes
from hub_extension.service.run_data import run_data_routes

from tests.support.builders import NORA, ORGANIZER, PREDICTION_LOG_TEXT, zip_bytes
from tests.support.service_harness import PREFIX


def bundle_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


def error_of(resp) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.text
    body = resp.json()
    assert set(body) == {"error"} and {"code", "message"} <= set(body["error"]), body
    return body["error"]


# -- the document and the routes ----------------------------------------------------------------
def _templates(route_regex: str) -> set[str]:
    """The OpenAPI paths a tornado route stands for (alternations expanded)."""
    path = route_regex[len(PREFIX) + len("api/v1"):].replace("\\.", ".")
    results = [path]
    group = re.compile(r"\(\?P<(\w+)>([^()]*)\)")
    while any(group.search(p) for p in results):
        expanded = []
        for p in results:
            found = group.search(p)
            if not found:
                expanded.append(p)
                continue
            name, body = found.groups()
            literal = all(re.fullmatch(r"[a-z_]+", alt) for alt in body.split("|"))
            options = body.split("|") if literal else ["{" + name + "}"]
            expanded += [p[:found.start()] + option + p[found.end():] for option in options]
        results = expanded
    return set(results)


def test_openapi_paths_are_the_routes(server):
    routes = set()
    # The API's routes and the per-run data links of organizer queues' workers.
    described = api_routes(PREFIX) + run_data_routes(PREFIX)
    for pattern, handler in described:
        routes |= _templates(pattern)
    document = yaml.safe_load(OPENAPI_FILE.read_text())
    assert set(document["paths"]) == routes
    # Each documented method is one the handler has.
    handlers = {}
    for pattern, handler in described:
        for path in _templates(pattern):
            handlers[path] = handler
    for path, methods in document["paths"].items():
        for method in set(methods) - {"parameters"}:
            assert method.upper() in handlers[path].SUPPORTED_METHODS and hasattr(handlers[path], method), (path, method)
    served = server.client().get("api/v1/openapi.json")
    assert served.status_code == 200 and served.json()["openapi"] == "3.1.0"
    assert served.json()["servers"] == [{"url": f"{PREFIX}api/v1"}]


def test_health_needs_no_login(server):
    resp = server.client().get("api/v1/health")
    assert resp.status_code == 200 and resp.json()["status"] == "ok" and resp.json()["version"]


def test_errors_are_json(server, world):
    resp = server.client("ann").get("api/v1/competitions/nope")
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    resp = server.client("ann").get("api/v1/no/such/route")
    assert resp.status_code == 404 and error_of(resp)["code"] == "not_found"
    resp = server.client().get(f"api/v1/competitions/{world.slug}/submissions")
    assert resp.status_code == 401 and error_of(resp)["code"] == "login_required"
    assert resp.headers["WWW-Authenticate"].startswith("token")
    resp = server.client("olga").put(f"api/v1/competitions/{world.slug}/phases/1/dates", data="{not json")
    assert resp.status_code == 400 and "not JSON" in error_of(resp)["message"]
    resp = server.client("ann").request("DELETE", f"api/v1/competitions/{world.slug}/leaderboard")
    assert resp.status_code == 405 and error_of(resp)["code"] == "method_not_allowed"


def test_token_without_the_service_scope_is_refused(server, world):
    resp = server.client("ann", narrow=True).get("api/v1/competitions")
    assert resp.status_code == 403 and "access:services" in error_of(resp)["message"]
    assert server.client("ann").get("api/v1/me").json() == {
        "name": "ann", "admin": False, "groups": [], "may_create_competitions": False}
    assert server.client("olga").get("api/v1/me").json()["may_create_competitions"] is True


def test_down_scoped_tokens_of_organizers_and_admins_act_as_participants(server, world):
    """Roles come from the token's scopes: the hub's admin flag and groups alone give nothing."""
    olga, root = server.client("olga", scoped=True), server.client("root", scoped=True)
    for client in (olga, root):
        me = client.get("api/v1/me").json()
        assert me["admin"] is False and me["may_create_competitions"] is False and "organizers" not in me["groups"]
        assert client.get(f"api/v1/competitions/{world.slug}/participants").status_code == 403
        assert client.get(f"api/v1/submissions/{world.subs['ben']}").status_code == 403
        assert client.get("api/v1/admin/storage").status_code == 403
        assert client.post("api/v1/queues", json={"name": "scoped-q"}).status_code == 403
    # Olga created `secrets`: with a scoped token she is no organizer of it, and sees only her own submissions.
    assert olga.get(f"api/v1/competitions/{world.slug}").json()["is_organizer"] is False
    assert olga.get(f"api/v1/competitions/{world.slug}/submissions").json()["total"] == 0
    # The same people with their full tokens.
    assert server.client("olga").get(f"api/v1/competitions/{world.slug}/participants").status_code == 200
    assert server.client("root").get("api/v1/admin/storage").status_code == 200
    assert server.client("root").get("api/v1/me").json()["admin"] is True


# -- XSRF ----------------------------------------------------------------------------------------
def test_cookie_requests_need_the_xsrf_token_to_change_anything(server, world):
    olga = server.cookie_client("olga")
    assert olga.get("api/v1/me").json()["name"] == "olga"  # reading needs no token
    url = f"api/v1/submissions/{world.subs['ben']}/hidden"
    resp = olga.put(url, json={"hidden": True}, with_xsrf=False)
    assert resp.status_code == 403 and error_of(resp)["code"] == "xsrf"
    resp = olga.put(url, json={"hidden": True}, headers={"X-XSRFToken": "forged"}, with_xsrf=False)
    assert resp.status_code == 403 and error_of(resp)["code"] == "xsrf"
    assert server.platform.submission_view(world.subs["ben"], ORGANIZER)["hidden"] is False
    resp = olga.put(url, json={"hidden": True})
    assert resp.status_code == 200 and resp.json()["hidden"] is True
    # A token request needs no XSRF token.
    resp = server.client("olga").put(url, json={"hidden": False})
    assert resp.status_code == 200 and resp.json()["hidden"] is False


def test_cookie_uploads_need_the_xsrf_token(server, world):
    ann = server.cookie_client("ann")
    files = {"file": ("predictions.zip", zip_bytes({"predictions.txt": "1\n"}))}
    resp = ann.post(f"api/v1/competitions/{world.slug}/submissions", files=files, with_xsrf=False)
    assert resp.status_code == 403 and error_of(resp)["code"] == "xsrf"
    resp = ann.post(f"api/v1/competitions/{world.slug}/submissions", files=files)
    assert resp.status_code == 201, resp.text


# -- competitions ----------------------------------------------------------------------------------
def test_create_a_competition_from_an_uploaded_bundle(server):
    data = bundle_zip(DEMO_BUNDLE)
    resp = server.client("ann").post("api/v1/competitions", files={"file": ("demo.zip", data)})
    assert resp.status_code == 403 and "organizers" in error_of(resp)["message"]
    resp = server.client().post("api/v1/competitions", files={"file": ("demo.zip", data)})
    assert resp.status_code == 401
    # The custom scope of jupyterhub_config.py counts as membership of the group `organizers`.
    resp = server.client("sam").post("api/v1/competitions", files={"file": ("demo.zip", data)})
    assert resp.status_code == 201, resp.text
    resp = server.client("olga").post("api/v1/competitions", files={"file": ("demo.zip", data)})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    assert resp.headers["Location"] == f"{PREFIX}api/v1/competitions/{slug}"
    detail = server.client("ann").get(f"api/v1/competitions/{slug}").json()
    assert detail["title"] and detail["phases"]
    # Raw bytes with ?filename= work too.
    resp = server.client("olga").post("api/v1/competitions?filename=demo.zip", data=data,
                                      headers={"Content-Type": "application/zip"})
    assert resp.status_code == 201 and resp.json()["slug"] != slug


def test_a_bad_bundle_lists_every_problem_and_creates_nothing(server):
    bad = zip_bytes({"competition.yaml": "version: 2\ntitle: Broken\nphases: 7\n"})
    resp = server.client("olga").post("api/v1/competitions", files={"file": ("bad.zip", bad)})
    assert resp.status_code == 400
    err = error_of(resp)
    assert err["code"] == "bundle_invalid" and err["problems"]
    assert all(re.match(r"^[^:]+: [^:]+: ", p) for p in err["problems"]), err["problems"]
    assert server.client("olga").get("api/v1/competitions").json()["total"] == 0


def test_uploads_are_capped(server, world):
    import http.client

    server.platform.config.max_upload_bytes = 10_000
    big = b"x" * 50_000
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions",
                                     files={"file": ("big.zip", big)})
    assert resp.status_code == 413 and error_of(resp)["code"] == "too_large"
    # Without a Content-Length (chunked), the cap holds as the bytes arrive.
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions?filename=big.zip",
                                     data=iter([b"y" * 8192] * 5))
    assert resp.status_code == 413
    # A client that announces a large body is answered before sending it.
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    conn.putrequest("POST", f"{PREFIX}api/v1/competitions?filename=big.zip")
    conn.putheader("Authorization", "token token-olga")
    conn.putheader("Content-Length", str(10**9))
    conn.putheader("Expect", "100-continue")
    conn.endheaders()
    answer = conn.getresponse()
    assert answer.status == 413 and json.loads(answer.read())["error"]["code"] == "too_large"
    conn.close()
    assert server.platform.submissions_view(world.slug, ORGANIZER)["total"] == 3
    assert server.client("olga").get("api/v1/competitions").json()["total"] == 2


def test_list_pages(server, world):
    first = server.client().get("api/v1/competitions?limit=1").json()
    assert first["total"] == 2 and len(first["items"]) == 1 and first["limit"] == 1
    second = server.client().get("api/v1/competitions?limit=1&offset=1").json()
    assert second["items"][0]["slug"] != first["items"][0]["slug"]
    assert server.client().get("api/v1/competitions?limit=5000").json()["limit"] == 200
    for bad in ("limit=0", "offset=-1", "limit=ten"):
        resp = server.client().get(f"api/v1/competitions?{bad}")
        assert resp.status_code == 400, bad
    found = server.client().get("api/v1/competitions?search=secrets&status=running").json()
    assert [c["slug"] for c in found["items"]] == [world.slug]


def test_yaml_edit_over_the_api(server, world):
    olga = server.client("olga")
    text = olga.get(f"api/v1/competitions/{world.slug}/yaml").json()["yaml"]
    doc = yaml.safe_load(text)
    doc["title"] = "Renamed"
    resp = olga.put(f"api/v1/competitions/{world.slug}/yaml", json={"yaml": yaml.safe_dump(doc)})
    assert resp.status_code == 200 and resp.json()["competition"]["title"] == "Renamed"
    resp = olga.put(f"api/v1/competitions/{world.slug}/yaml", json={"yaml": "title: [\n"})
    assert resp.status_code == 400 and error_of(resp)["problems"][0].startswith("competition.yaml:")
    assert server.client("ann").get(f"api/v1/competitions/{world.slug}/yaml").status_code == 403


def test_export_download(server, world):
    resp = server.client("olga").get(f"api/v1/competitions/{world.slug}/export?light=1")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/zip"
    assert 'filename="secrets-light.zip"' in resp.headers["Content-Disposition"]
    with zipfile.ZipFile(io.BytesIO(resp.content)) as zf:
        assert "competition.yaml" in zf.namelist()
    assert server.client("ann").get(f"api/v1/competitions/{world.slug}/export").status_code == 403


# -- registration and submissions --------------------------------------------------------------------
def test_register_submit_and_follow(server, world):
    nora = server.client("nora")
    files = {"file": ("predictions.zip", zip_bytes({"predictions.txt": "1\n"}))}
    resp = nora.post(f"api/v1/competitions/{world.slug}/submissions", files=files)
    assert resp.status_code == 403 and "register" in error_of(resp)["message"]
    # The competition has terms: registering without accepting them is refused, and records nothing.
    resp = nora.post(f"api/v1/competitions/{world.slug}/registration")
    assert resp.status_code == 400 and "accept the terms" in error_of(resp)["message"]
    assert server.platform.competition_detail(world.slug, NORA)["registration"] == "none"
    resp = nora.post(f"api/v1/competitions/{world.slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201 and resp.json()["status"] == "approved"
    assert nora.get(f"api/v1/competitions/{world.slug}/submissions_left").json() == {"total": 10, "today": 5}
    resp = nora.post(f"api/v1/competitions/{world.slug}/submissions?description=first", files=files)
    assert resp.status_code == 201, resp.text
    sub = resp.json()
    assert sub["participant"] == "nora" and sub["status"] == m.SUBMITTED and sub["description"] == "first"
    assert sub["waiting"]["position"] >= 1
    assert nora.get(f"api/v1/submissions/{sub['id']}").json()["id"] == sub["id"]
    assert server.client("ann").get(f"api/v1/submissions/{sub['id']}").status_code == 403
    listed = nora.get(f"api/v1/competitions/{world.slug}/submissions?username=ann").json()
    assert [s["participant"] for s in listed["items"]] == ["nora"]
    resp = nora.post(f"api/v1/submissions/{sub['id']}/cancel")
    assert resp.status_code == 200 and resp.json()["status"] == m.CANCELLED


def test_participants_removed_banned_and_changed_in_bulk(server, world):
    olga, base = server.client("olga"), f"api/v1/competitions/{world.slug}"
    resp = olga.post(f"{base}/registration", json={"accept_terms": True})
    assert resp.status_code == 400 and "organizers do not register" in error_of(resp)["message"]
    resp = olga.post(f"{base}/participants/bulk", json={"usernames": ["ben", "zed"], "status": "removed"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"] == [{"username": "ben", "status": "removed", "previous": "approved"},
                                      {"username": "zed", "error": f"'zed' is not registered in {world.slug!r}"}]
    board = server.client("ann").get(f"{base}/leaderboard").json()
    assert [r["participant"] for r in board["rows"]] == ["ann"]
    assert olga.put(f"{base}/participants/ben", json={"status": "banned"}).status_code == 200
    resp = server.client("ben").post(f"{base}/registration", json={"accept_terms": True})
    assert resp.status_code == 403 and "banned" in error_of(resp)["message"]
    resp = olga.post(f"{base}/participants/bulk", json={"usernames": "ben", "status": "approved"})
    assert resp.status_code == 400 and "list of user names" in error_of(resp)["message"]
    resp = olga.post(f"{base}/participants/bulk", json={"usernames": ["ben", "ann"], "status": "reinstate"})
    assert resp.status_code == 200, resp.text
    assert resp.json()["results"] == [
        {"username": "ben", "status": "approved", "previous": "banned"},
        {"username": "ann", "error": "'ann' is approved, neither removed nor banned: left as they are"}]
    board = server.client("ann").get(f"{base}/leaderboard").json()
    assert [r["participant"] for r in board["rows"]] == ["ben", "ann"]


def test_co_organizers_by_name(server, world):
    olga, base = server.client("olga"), f"api/v1/competitions/{world.slug}"
    resp = olga.put(f"{base}/organizers", json={"usernames": ["nora"]})
    assert resp.status_code == 200, resp.text
    assert resp.json() == {"competition": world.slug, "creator": "olga", "co_organizers": ["nora"],
                           "may_change": True, "notes": []}
    nora = server.client("nora")
    assert nora.get(f"{base}/organizers").json()["may_change"] is False
    assert nora.get(f"{base}/participants").status_code == 200
    resp = nora.put(f"{base}/organizers", json={"usernames": ["nora", "ann"]})
    assert resp.status_code == 403 and "only the creator" in error_of(resp)["message"]
    assert olga.put(f"{base}/organizers", json={"usernames": "nora"}).status_code == 400


def test_the_daily_limit_answers_429(server, world):
    ben = server.client("ben")
    files = {"file": ("p.zip", zip_bytes({"predictions.txt": "1\n"}))}
    codes = [ben.post(f"api/v1/competitions/{world.slug}/submissions", files=files).status_code for _ in range(5)]
    assert codes == [201, 201, 201, 201, 429]
    assert error_of(ben.post(f"api/v1/competitions/{world.slug}/submissions", files=files))["code"] == \
        "submission_limit"


def test_notebook_uploads_keep_their_kind(server, world):
    notebook = json.dumps({"cells": [], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions?filename=../../my%20nb.ipynb",
                                     data=notebook)
    assert resp.status_code == 201, resp.text
    assert resp.json()["kind"] == "notebook" and resp.json()["filename"] == "my_nb.ipynb"


def test_logs_files_and_downloads(server, world):
    ann = server.client("ann")
    sid = world.subs["ann"]
    resp = ann.get(f"api/v1/submissions/{sid}/logs/0/prediction/stdout")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain")
    assert PREDICTION_LOG_TEXT in resp.text
    resp = ann.get(f"api/v1/submissions/{sid}/artifacts/detailed_results")
    assert resp.status_code == 200 and resp.text.startswith("<p>detailed")
    assert resp.headers["Content-Security-Policy"].startswith("sandbox")
    resp = ann.get(f"api/v1/submissions/{sid}/file")
    assert resp.status_code == 200 and 'filename="predictions.zip"' in resp.headers["Content-Disposition"]
    resp = ann.get(f"api/v1/competitions/{world.slug}/phases/1/starting_kit")
    assert resp.status_code == 200 and zipfile.ZipFile(io.BytesIO(resp.content)).namelist() == ["README.md"]
    assert server.client("nora").get(f"api/v1/competitions/{world.slug}/phases/1/starting_kit").status_code == 403
    assert server.client().get(f"api/v1/competitions/{world.slug}/phases/1/public_data").status_code == 401
    assert ann.get(f"api/v1/competitions/{world.slug}/phases/1/reference_data").status_code == 404


def test_leaderboard_json_csv_and_history(server, world):
    anyone = server.client()
    board = anyone.get(f"api/v1/competitions/{world.slug}/leaderboard").json()
    assert [c["key"] for c in board["columns"]] == ["accuracy"]
    assert [r["participant"] for r in board["rows"]] == ["ben", "ann"]
    resp = anyone.get(f"api/v1/competitions/{world.slug}/leaderboard.csv?phase=1")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert resp.text.splitlines()[0] == "rank,participant,submission,submitted_at,Accuracy"
    history = anyone.get(f"api/v1/competitions/{world.slug}/leaderboard/history?board=main").json()["items"]
    assert [p["participant"] for p in history] == ["ann", "ben"]
    hidden = anyone.get(f"api/v1/competitions/{world.slug}/leaderboard?board=private").json()
    assert hidden["rows"] == [] and hidden["columns"] == [] and hidden["hidden_for_viewer"] is True
    organizer = server.client("olga").get(f"api/v1/competitions/{world.slug}/leaderboard?board=private").json()
    assert len(organizer["rows"]) == 2


def test_phase_actions(server, world):
    olga = server.client("olga")
    resp = olga.post(f"api/v1/competitions/{world.slug}/phases/2/open")
    assert resp.status_code == 200 and resp.json()["state"] == "current"
    migrated = olga.get(f"api/v1/competitions/{world.slug}/submissions?phase=2").json()
    assert migrated["total"] == 2
    unconfirmed = olga.post(f"api/v1/competitions/{world.slug}/phases/1/migrate")
    assert unconfirmed.status_code == 409 and error_of(unconfirmed)["count"] == 0
    assert olga.get(f"api/v1/competitions/{world.slug}/phases/1/migrate").json()["count"] == 0
    assert olga.post(f"api/v1/competitions/{world.slug}/phases/1/migrate",
                     json={"confirm": 0}).json() == {"submissions": []}
    resp = olga.put(f"api/v1/competitions/{world.slug}/phases/2/dates", json={"start": "2020-01-01", "end": "bad"})
    assert resp.status_code == 400 and "end" in error_of(resp)["message"]
    resp = olga.post(f"api/v1/competitions/{world.slug}/phases/2/close")
    assert resp.status_code == 200 and resp.json()["open"] is False
    assert server.client("ann").post(f"api/v1/competitions/{world.slug}/phases/2/open").status_code == 403


def test_participants_over_the_api(server, world):
    olga = server.client("olga")
    listed = olga.get(f"api/v1/competitions/{world.slug}/participants").json()
    assert listed["total"] == 2
    resp = olga.put(f"api/v1/competitions/{world.slug}/participants/ann", json={"status": "denied"})
    assert resp.status_code == 200
    files = {"file": ("p.zip", zip_bytes({"predictions.txt": "1\n"}))}
    resp = server.client("ann").post(f"api/v1/competitions/{world.slug}/submissions", files=files)
    assert resp.status_code == 403 and "denied" in error_of(resp)["message"]
    resp = olga.put(f"api/v1/competitions/{world.slug}/participants/ann", json={"status": "royal"})
    assert resp.status_code == 400
    resp = olga.put(f"api/v1/competitions/{world.slug}/participants/zed", json={"status": "approved"})
    assert resp.status_code == 404


def test_storage_is_for_admins(server, world):
    assert server.client("root").get("api/v1/admin/storage").json()["datasets"]["bytes"] > 0
    assert server.client("olga").get("api/v1/admin/storage").status_code == 403
    assert server.client().get("api/v1/admin/storage").status_code == 401
