"""The organizer pages: create from a bundle, competition.yaml, phases, participants, submissions, export.

Each action goes through its form (with the XSRF token) and is checked in the
platform afterwards; an organizer of another competition and the participants
are refused every one of them.
"""
from __future__ import annotations

import html
import io
import re
import shutil
import zipfile
from pathlib import Path


from hub_extension import models as m
from hub_extension.demo import DEMO_BUNDLE
from tests.support import builders
from tests.support.service_harness import PREFIX, ok, start_server, visible_text


def folder_zip(folder: Path) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return buf.getvalue()


BAD_YAML = """\
version: 2
title: Bad
phases:
  - index: 0
    name: P
    start: tomorrow
    tasks: [5]
leaderboards:
  - title: R
    key: r
    columns:
      - title: A
        key: a
        index: 0
        sorting: sideways
"""


# -- create ---------------------------------------------------------------------------------
def test_an_organizer_creates_the_demo_competition_from_an_uploaded_bundle(world_server):
    server, _ = world_server
    olga = server.browser("olga")
    form = ok(olga.get("new")).text
    assert 'enctype="multipart/form-data"' in form and 'name="_xsrf"' in form and 'name="bundle"' in form
    created = olga.post("new", files={"bundle": ("demo.zip", folder_zip(DEMO_BUNDLE), "application/zip")})
    assert created.status_code == 302, created.text[:2000]
    assert created.headers["Location"] == f"{PREFIX}competitions/demo-flower-species"
    page = ok(olga.follow(created)).text
    assert "Competition &#39;demo-flower-species&#39; created." in page
    assert "Demo: flower species" in page and 'id="organizer-note"' in page
    assert server.platform.competition_detail("demo-flower-species", builders.ORGANIZER)["is_organizer"]
    # The demo's bundle says `published: true`: it is published at once, and the organizer is told why.
    assert "It is published: listed and open to everyone, as its bundle&#39;s `published: true` asks." in page
    assert server.platform.lifecycle("demo-flower-species", builders.ORGANIZER)["status"] == m.PUBLISHED


def test_a_bundle_without_published_uploads_a_draft_and_says_how_to_publish_it(world_server, tmp_path):
    server, _ = world_server
    root = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, root)
    text = (root / "competition.yaml").read_text()
    (root / "competition.yaml").write_text(text.replace("published: true\n", "").replace(
        'title: "Demo: flower species"', 'title: "Unpublished flowers"'))
    olga = server.browser("olga")
    created = olga.post("new", files={"bundle": ("b.zip", folder_zip(root), "application/zip")})
    assert created.status_code == 302, created.text[:2000]
    page = ok(olga.follow(created)).text
    assert "It is a draft: only its organizers see it" in page, visible_text(page)[:2000]
    assert "the Publish button of its Lifecycle page opens it to everyone" in page
    slug = created.headers["Location"].rsplit("/", 1)[1]
    assert server.platform.lifecycle(slug, builders.ORGANIZER)["status"] == m.DRAFT
    assert server.browser("ann").get(f"competitions/{slug}").status_code == 404


def test_a_bad_bundle_lists_every_problem_inline_and_creates_nothing(world_server):
    server, _ = world_server
    olga = server.browser("olga")
    before = server.platform.list_competitions()
    bundle = builders.zip_bytes({"competition.yaml": BAD_YAML})
    refused = olga.post("new", files={"bundle": ("bad bundle.zip", bundle, "application/zip")})
    assert refused.status_code == 400
    problems = re.findall(r"<li>(competition\.yaml: [^<]+)</li>", refused.text)
    assert len(problems) == 4, problems
    assert any("phases[0].start: must be a date" in p for p in problems)
    assert any("sorting: must be one of asc, desc" in p for p in problems)
    assert "bad_bundle.zip" in refused.text and 'id="create-form"' in refused.text
    assert server.platform.list_competitions() == before

    not_a_zip = olga.post("new", files={"bundle": ("notes.txt", b"hello", "text/plain")})
    assert not_a_zip.status_code == 400 and 'id="create-form"' in not_a_zip.text
    nothing = olga.post("new", files={"bundle": ("", b"")})
    assert nothing.status_code == 400 and "choose a file" in nothing.text
    assert server.platform.list_competitions() == before


def test_only_organizers_may_create(world_server):
    server, _ = world_server
    before = server.platform.list_competitions()
    for user in ("ann", "nora"):
        browser = server.browser(user)
        assert browser.get("new").status_code == 403, user
        refused = browser.post("new", files={"bundle": ("demo.zip", folder_zip(DEMO_BUNDLE), "application/zip")})
        assert refused.status_code == 403, user
    page = ok(server.browser("ann").get("")).text
    assert f'href="{PREFIX}new"' not in page
    assert server.platform.list_competitions() == before


# -- competition.yaml -----------------------------------------------------------------------------
def test_editing_competition_yaml_is_checked_before_it_is_saved(world_server):
    server, world = world_server
    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/edit")).text
    text = re.search(r'<textarea class="code" id="yaml-text" name="yaml"[^>]*>(.*?)</textarea>', page, re.S).group(1)
    text = html.unescape(text)
    assert "title: Secrets" in text

    broken = text.replace("sorting: desc", "sorting: sideways", 1)
    refused = olga.post(f"competitions/{world.slug}/edit", {"yaml": broken})
    assert refused.status_code == 400
    assert re.search(r"<li>competition\.yaml: [^<]*sorting: must be one of asc, desc", refused.text)
    assert "sorting: sideways" in refused.text  # the text is kept for fixing
    assert server.platform.competition_detail(world.slug, builders.ORGANIZER)["title"] == "Secrets"

    saved = olga.post(f"competitions/{world.slug}/edit", {"yaml": text.replace("title: Secrets", "title: Secrets\ntitel: typo", 1).replace("title: Secrets", "title: Secrets, renamed", 1)})
    assert saved.status_code == 200, saved.text[:2000]
    assert "competition.yaml saved." in saved.text
    # The upload's warning about the typo'd key is shown with the save, and the text no longer has it.
    assert re.search(r'id="edit-warnings".*titel: unknown key, ignored', saved.text, re.S)
    assert "titel: typo" not in saved.text
    assert server.platform.competition_detail(world.slug, builders.ORGANIZER)["title"] == "Secrets, renamed"


# -- phases ------------------------------------------------------------------------------------------
def test_phases_close_open_dates_and_migrate_from_the_page(world_server):
    server, world = world_server
    olga = server.browser("olga")
    base = f"competitions/{world.slug}/phases"
    page = ok(olga.get(base)).text
    first = re.search(r'<tr data-phase="1" class="current">.*?</tr>', page, re.S).group(0)
    assert f"{base}/1/close" in first and f"{base}/1/confirm/migrate" in first and "Migrate to phase 2" in first
    second = re.search(r'<tr data-phase="2" class="future">.*?</tr>', page, re.S).group(0)
    assert f"{base}/2/open" in second and "/migrate" not in second  # the last phase has no next one

    # Migrating shows the count first, and needs it back.
    asked = ok(olga.get(f"{base}/1/confirm/migrate")).text
    assert 'data-count="2"' in asked and 'name="confirm" value="2"' in asked
    unconfirmed = olga.post(f"{base}/1/migrate")
    assert unconfirmed.status_code == 302 and unconfirmed.headers["Location"].endswith(f"{base}/1/confirm/migrate")
    assert server.platform.submissions_view(world.slug, builders.ORGANIZER, phase=2)["total"] == 0
    migrated = olga.post(f"{base}/1/migrate", {"confirm": "2"})
    assert migrated.status_code == 302
    assert "2 submissions of phase 1 re-run in phase 2." in ok(olga.follow(migrated)).text
    in_two = server.platform.submissions_view(world.slug, builders.ORGANIZER, phase=2)["items"]
    assert sorted(s["participant"] for s in in_two) == ["ann", "ben"]

    dates = olga.post(f"{base}/2/dates", {"start": "2030-01-01T00:00", "end": "2030-02-01T12:30"})
    assert dates.status_code == 302
    phase2 = server.platform.competition_detail(world.slug, builders.ORGANIZER)["phases"][1]
    assert phase2["start"].startswith("2030-01-01T00:00") and phase2["end"].startswith("2030-02-01T12:30")
    backwards = olga.post(f"{base}/2/dates", {"start": "2030-02-01T00:00", "end": "2030-01-01T00:00"})
    assert backwards.status_code == 400 and "must be after the start" in backwards.text
    assert 'id="phases"' in backwards.text  # the phases again, with the reason
    garbage = olga.post(f"{base}/2/dates", {"start": "soon", "end": ""})
    assert garbage.status_code == 400 and "not a date and time" in garbage.text

    closed = olga.post(f"{base}/1/close")
    assert closed.status_code == 302
    assert server.platform.competition_detail(world.slug, builders.ORGANIZER)["phases"][0]["state"] == "past"
    opened = olga.post(f"{base}/2/open")
    assert opened.status_code == 302
    phases = server.platform.competition_detail(world.slug, builders.ORGANIZER)["phases"]
    assert [p["state"] for p in phases] == ["past", "current"]
    # The competition page marks the new current phase.
    page = ok(server.browser("ann").get(f"competitions/{world.slug}")).text
    assert re.search(r'<li class="current" data-phase="2"', page)


def test_phase_actions_are_for_the_competitions_organizers(world_server):
    server, world = world_server
    base = f"competitions/{world.slug}/phases"
    for user in ("ann", "oscar"):
        browser = server.browser(user)
        assert browser.get(base).status_code == 403, user
        for action in ("close", "migrate"):
            assert browser.post(f"{base}/1/{action}").status_code == 403, (user, action)
    assert server.platform.competition_detail(world.slug, builders.ORGANIZER)["phases"][0]["state"] == "current"
    # Without the XSRF token, the organizer's own request is refused too.
    refused = server.browser("olga").post(f"{base}/1/close", xsrf=False)
    assert refused.status_code == 403
    assert server.platform.competition_detail(world.slug, builders.ORGANIZER)["phases"][0]["state"] == "current"


# -- participants ----------------------------------------------------------------------------------
def test_participants_are_approved_denied_and_removed_from_the_page(world_server):
    server, world = world_server
    with server.platform.db.session() as s:
        comp = s.query(m.Competition).filter_by(slug=world.slug).one()
        comp.registration_auto_approve = False
    nora = server.browser("nora")
    assert nora.post(f"competitions/{world.slug}/register", {"accept_terms": "yes"}).status_code == 302
    assert "waits for the organizers" in ok(nora.get(f"competitions/{world.slug}")).text

    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/participants")).text
    rows = dict(re.findall(r'<tr data-username="(\w+)">(.*?)</tr>', page, re.S))
    assert set(rows) == {"ann", "ben", "nora"}
    assert "pending" in rows["nora"] and ">Approve<" in rows["nora"] and ">Deny<" in rows["nora"]
    assert ">Remove<" in rows["ann"] and ">Approve<" not in rows["ann"]
    assert re.search(r">2</a>", rows["ann"])  # ann's two submissions, linked

    denied = olga.post(f"competitions/{world.slug}/participants", {"username": "nora", "status": "denied"})
    assert denied.status_code == 302
    assert "Your registration was denied" in ok(nora.get(f"competitions/{world.slug}")).text
    assert olga.post(f"competitions/{world.slug}/participants", {"username": "ben", "status": "removed"}).status_code == 302
    assert 'id="not-registered"' in ok(server.browser("ben").get(f"competitions/{world.slug}/submit")).text
    assert olga.post(f"competitions/{world.slug}/participants", {"username": "nora", "status": "approved"}).status_code == 302
    statuses = {p["username"]: p["status"] for p in server.platform.participants(world.slug, builders.ORGANIZER)}
    assert statuses == {"ann": "approved", "ben": "removed", "nora": "approved"}

    unknown = olga.post(f"competitions/{world.slug}/participants", {"username": "nobody", "status": "approved"})
    assert unknown.status_code == 404
    for user in ("ann", "oscar"):
        assert server.browser(user).get(f"competitions/{world.slug}/participants").status_code == 403
        refused = server.browser(user).post(f"competitions/{world.slug}/participants",
                                            {"username": "ben", "status": "approved"})
        assert refused.status_code == 403
    assert {p["username"]: p["status"] for p in server.platform.participants(world.slug, builders.ORGANIZER)}["ben"] == "removed"


def test_participants_are_banned_reinstated_and_changed_in_bulk_from_the_page(world_server):
    server, world = world_server
    olga, base = server.browser("olga"), f"competitions/{world.slug}"
    page = ok(olga.get(f"{base}/participants")).text
    assert re.search(r'<form id="bulk-form" method="post" action="[^"]*/participants/bulk">', page)
    assert page.count('form="bulk-form"') == 2  # one checkbox per participant
    assert olga.post(f"{base}/participants/bulk", {"usernames": ["ann", "ben"], "status": "banned"}).status_code == 302
    page = ok(olga.get(f"{base}/participants")).text
    assert "ann, ben: banned (off every leaderboard; may not register again)." in page
    rows = dict(re.findall(r'<tr data-username="(\w+)">(.*?)</tr>', page, re.S))
    assert all(">Reinstate<" in rows[u] and ">Ban<" not in rows[u] for u in ("ann", "ben"))
    assert ok(server.browser("ann").get(f"{base}/leaderboard")).text.count(" data-participant=") == 0
    assert "banned from this competition" in ok(server.browser("ann").get(base)).text
    # Nothing checked: said, nothing changed.
    assert olga.post(f"{base}/participants/bulk", {"status": "approved"}).status_code == 302
    assert "choose at least one participant" in ok(olga.get(f"{base}/participants")).text
    assert olga.post(f"{base}/participants", {"username": "ben", "status": "approved"}).status_code == 302
    assert re.findall(r' data-participant="([^"]*)"', ok(olga.get(f"{base}/leaderboard")).text) == ["ben"]
    # Reinstate in bulk: the banned one comes back; the approved one is said to be left as they are.
    page = ok(olga.get(f"{base}/participants")).text
    assert '<button type="submit" name="status" value="reinstate">Reinstate</button>' in page
    assert olga.post(f"{base}/participants/bulk", {"usernames": ["ann", "ben"], "status": "reinstate"}
                     ).status_code == 302
    page = ok(olga.get(f"{base}/participants")).text
    assert "ann: reinstated, approved and back on the leaderboards." in page
    assert "&#39;ben&#39; is approved, neither removed nor banned: left as they are" in page
    assert re.findall(r' data-participant="([^"]*)"', ok(olga.get(f"{base}/leaderboard")).text) == ["ben", "ann"]


def test_organizers_name_co_organizers_and_are_never_offered_to_register(world_server):
    server, world = world_server
    olga, base = server.browser("olga"), f"competitions/{world.slug}"
    page = ok(olga.get(base)).text
    assert 'id="register-form"' not in page and "You organize this competition: you do not register." in page
    assert 'id="organizers-form"' in ok(olga.get(f"{base}/participants")).text
    assert olga.post(f"{base}/organizers", {"usernames": "nora, olga  carol"}).status_code == 302
    page = ok(olga.get(f"{base}/participants")).text
    assert "Co-organizers: nora, carol." in page and "olga created &#39;secrets&#39; and organizes it already" in page
    assert re.findall(r'<span class="co-organizer">([^<]*)</span>', page) == ["nora", "carol"]
    nora = server.browser("nora")
    assert 'id="register-form"' not in ok(nora.get(base)).text
    page = ok(nora.get(f"{base}/participants")).text
    assert 'id="organizers-form"' not in page and "The creator and the platform admins choose" in page
    assert nora.post(f"{base}/organizers", {"usernames": "nora"}).status_code == 403
    assert "You organize this competition" not in ok(server.browser("ben").get(base)).text
    assert 'id="register-form"' in ok(server.browser("oscar").get(base)).text  # organizes another one only


# -- all submissions ----------------------------------------------------------------------------------
def test_organizers_see_every_submission_and_rerun_cancel_and_hide(world_server):
    server, world = world_server
    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/submissions")).text
    assert "All submissions" in page
    ids = [int(i) for i in re.findall(r'<tr data-submission="(\d+)"', page)]
    assert sorted(ids) == sorted(world.subs.values())
    assert 'data-score="secret"' in page and 'data-score="private_score"' in page  # organizers see all
    only_ben = ok(olga.get(f"competitions/{world.slug}/submissions?username=ben")).text
    assert re.findall(r'<tr data-submission="(\d+)"', only_ben) == [str(world.subs["ben"])]
    waiting = ok(olga.get(f"competitions/{world.slug}/submissions?status=Submitted")).text
    assert re.findall(r'<tr data-submission="(\d+)"', waiting) == [str(world.subs["ann_waiting"])]

    listing = f"{PREFIX}competitions/{world.slug}/submissions"
    hidden = olga.post(f"submissions/{world.subs['ben']}/hide", {"next": listing})
    assert hidden.status_code == 302 and hidden.headers["Location"] == listing
    assert "is hidden from the leaderboard" in ok(olga.follow(hidden)).text
    board = ok(server.browser("ann").get(f"competitions/{world.slug}/leaderboard")).text
    assert 'data-participant="ben"' not in board
    assert ok(olga.post(f"submissions/{world.subs['ben']}/unhide", {"next": listing}), 302)
    assert 'data-participant="ben"' in ok(server.browser("ann").get(f"competitions/{world.slug}/leaderboard")).text

    rerun = olga.post(f"submissions/{world.subs['ann']}/rerun")
    assert rerun.status_code == 302 and rerun.headers["Location"] == f"{PREFIX}submissions/{world.subs['ann']}"
    notice = ok(olga.follow(rerun)).text
    new_id = int(re.search(r"runs again as submission (\d+)", notice).group(1))
    assert server.platform.submission_view(new_id, builders.ORGANIZER)["status"] == m.SUBMITTED

    cancelled = olga.post(f"submissions/{world.subs['ann_waiting']}/cancel")
    assert cancelled.status_code == 302
    assert server.platform.submission_view(world.subs["ann_waiting"], builders.ORGANIZER)["status"] == m.CANCELLED
    again = olga.post(f"submissions/{world.subs['ann_waiting']}/cancel")
    assert again.status_code == 400 and "already Cancelled" in again.text

    # The organizer's view of one submission: worker, queue and the history's notes.
    detail = ok(olga.get(f"submissions/{world.subs['ann']}")).text
    assert "test-worker" in detail and 'data-score="secret"' in detail


def test_another_competitions_organizer_cannot_touch_these_submissions(world_server):
    server, world = world_server
    oscar = server.browser("oscar")
    page = ok(oscar.get(f"competitions/{world.slug}/submissions")).text
    assert "My submissions" in page and 'id="no-submissions"' in page
    for action in ("rerun", "hide", "cancel"):
        assert oscar.post(f"submissions/{world.subs['ben']}/{action}").status_code == 403, action
    assert ok(oscar.get(f"competitions/{world.other_slug}/submissions")).text.count("All submissions") >= 1


# -- export ---------------------------------------------------------------------------------------
def test_export_downloads_a_bundle_that_imports_again(world_server, tmp_path):
    server, world = world_server
    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/export")).text
    assert 'id="export-full"' in page and 'id="export-light"' in page
    full = ok(olga.get(f"competitions/{world.slug}/export.zip"))
    assert full.headers["Content-Type"] == "application/zip"
    assert f'filename="{world.slug}.zip"' in full.headers["Content-Disposition"]
    archive = tmp_path / "export.zip"
    archive.write_bytes(full.content)
    assert "competition.yaml" in zipfile.ZipFile(archive).namelist()
    spec, _ = server.platform.validate_bundle(archive)
    assert spec.title == "Secrets" and len(spec.phases) == 2

    light = ok(olga.get(f"competitions/{world.slug}/export.zip?light=1"))
    assert len(light.content) < len(full.content)
    for user in ("ann", "oscar"):
        assert server.browser(user).get(f"competitions/{world.slug}/export").status_code == 403
        assert server.browser(user).get(f"competitions/{world.slug}/export.zip").status_code == 403


# -- every form carries the XSRF token ----------------------------------------------------------------
def test_every_form_of_every_page_carries_the_xsrf_token(world_server):
    server, world = world_server
    pages = {
        "nora": [f"competitions/{world.slug}"],
        "ann": [f"competitions/{world.slug}/submit", f"competitions/{world.slug}/submissions",
                f"submissions/{world.subs['ann_waiting']}"],
        "olga": ["new", "queues", f"competitions/{world.slug}/edit", f"competitions/{world.slug}/phases",
                 f"competitions/{world.slug}/participants", f"competitions/{world.slug}/submissions",
                 f"submissions/{world.subs['ann']}", f"submissions/{world.subs['ann_waiting']}"],
    }
    seen = 0
    for user, paths in pages.items():
        for path in paths:
            page = ok(server.browser(user).get(path)).text
            forms = re.findall(r"<form\b[^>]*>.*?</form>", page, re.S)
            posts = [f for f in forms if 'method="post"' in f]
            assert posts, (user, path)
            for form in posts:
                assert re.search(r'<input type="hidden" name="_xsrf" value="[^"]+"', form), (user, path, form[:300])
                seen += 1
    assert seen >= 20


def test_every_page_answers_each_kind_of_visitor(platform, tmp_path):
    """The demo competition, every page, as each visitor: the status of the platform's rules."""
    slug, _ = platform.create_competition(DEMO_BUNDLE, builders.ORGANIZER)
    platform.competitions.insert_competition(builders.secrets_spec(platform.store), builders.OTHER_ORGANIZER)
    for actor in (builders.ANN, builders.BEN):
        platform.register(slug, actor.username, actor, accept_terms=True)
    sid = platform.submit(slug, builders.results_zip(tmp_path), username="ann", actor=builders.ANN)
    builders.finish(platform, sid, {"accuracy": 0.9, "f1": 0.8})
    server = start_server(platform)
    try:
        everyone = {"anonymous": 200, "nora": 200, "ann": 200, "ben": 200, "oscar": 200, "olga": 200, "root": 200}
        logged_in = {**everyone, "anonymous": 302}
        own = {**logged_in, "nora": 403, "ben": 403, "oscar": 403}
        registered = {**logged_in, "nora": 403, "oscar": 403}
        organizers = {**logged_in, "nora": 403, "ann": 403, "ben": 403, "oscar": 403}
        creators = {**organizers, "oscar": 200}
        admins = {**organizers, "olga": 403}
        comp = f"competitions/{slug}"
        matrix = {
            "": everyone,
            comp: everyone,
            f"{comp}/leaderboard": everyone,
            f"{comp}/leaderboard.csv": everyone,
            f"{comp}/submit": logged_in,
            f"{comp}/submissions": logged_in,
            f"submissions/{sid}": own,
            f"submissions/{sid}/files/detailed_results": own,
            f"submissions/{sid}/logs/0/prediction/stdout": own,
            f"{comp}/phases/1/starting-kit": registered,
            f"{comp}/phases/1/public-data": registered,
            f"{comp}/phases": organizers,
            f"{comp}/participants": organizers,
            f"{comp}/edit": organizers,
            f"{comp}/export": organizers,
            f"{comp}/export.zip": organizers,
            f"{comp}/statistics": organizers,
            f"{comp}/statistics.csv?table=per_day": organizers,
            f"{comp}/lifecycle": organizers,
            f"{comp}/similarity": organizers,
            **{f"{comp}/edit/{form}": organizers for form in ("overview", "pages", "phases", "leaderboards", "tasks")},
            f"{comp}/phases/1/confirm/rerun-all": organizers,
            f"submissions/{sid}/delete": own,
            "new": creators,
            "queues": logged_in,
            "admin": admins,
            "admin/statistics": admins,
            "admin/statistics.csv?table=competitions": admins,
        }
        users = {name: server.browser(None if name == "anonymous" else name) for name in everyone}
        wrong = []
        for path, expected in matrix.items():
            for name, status in expected.items():
                response = users[name].get(path)
                if response.status_code != status:
                    wrong.append(f"{name} GET {path}: {response.status_code}, expected {status}")
                elif status == 302:
                    assert "/hub/api/oauth2/authorize" in response.headers["Location"]
                elif status == 200 and response.headers["Content-Type"].startswith("text/html") and "/files/" not in path:
                    assert response.text.rstrip().endswith("</html>"), (name, path)
                    assert "Traceback" not in response.text
        # A draft: every page of it answers as a competition that does not exist, but to its organizers.
        spec = builders.secrets_spec(platform.store)
        spec.published = False
        draft = platform.competitions.insert_competition(spec, builders.OTHER_ORGANIZER)
        hidden = {**{name: 404 for name in everyone}, "oscar": 200, "root": 200}
        for path in ("", "/leaderboard", "/leaderboard.csv", "/phases/1/starting-kit", "/submit",
                     "/submissions", "/phases", "/participants", "/edit", "/edit/overview", "/lifecycle",
                     "/statistics", "/export", "/phases/1/confirm/rerun-all", "/similarity"):
            for name, status in hidden.items():
                # Anonymous visitors of a page that needs a login are sent to log in first: nothing leaks.
                allowed = {302, 404} if name == "anonymous" else {status}
                response = users[name].get(f"competitions/{draft}{path}")
                if response.status_code not in allowed:
                    wrong.append(f"{name} GET draft {path}: {response.status_code}, expected {status}")
        assert not wrong, "\n".join(wrong)
        # The demo's pages as a participant sees them.
        page = ok(users["ann"].get(comp)).text
        assert "Demo: flower species" in page and "Overview" in page and "Evaluation" in page
        board = ok(users["ann"].get(f"{comp}/leaderboard")).text
        assert "Accuracy" in board and "Macro F1" in board and "0.900" in visible_text(board)
    finally:
        server.stop()
