"""The editor's pages and API routes in-process: forms with the XSRF token, JSON answers, who may use them.

Every form and route is checked in the platform afterwards; the participants
and the organizer of another competition are refused each one.
"""
from __future__ import annotations

import html
import re

from tests.support import builders
from tests.support.builders import ORGANIZER, zip_bytes
from tests.support.service_harness import ok, visible_text

PROGRAM = zip_bytes({"metadata": "command: python score.py\n", "score.py": "print('v2')\n"})


def test_the_editor_pages_are_for_the_competitions_organizers(world_server):
    server, world = world_server
    sections = ["overview", "pages", "pages?page=overview", "pages?page=", "phases", "leaderboards", "tasks"]
    olga = server.browser("olga")
    for section in sections:
        page = ok(olga.get(f"competitions/{world.slug}/edit/{section}")).text
        assert 'id="editor-nav"' in page, section
    for user in ("ann", "oscar"):
        for section in sections:
            assert server.browser(user).get(f"competitions/{world.slug}/edit/{section}").status_code == 403
        refused = server.browser(user).post(f"competitions/{world.slug}/edit/pages",
                                            {"title": "Overview", "name": "overview", "content": "x"})
        assert refused.status_code == 403
    assert server.browser().get(f"competitions/{world.slug}/edit/pages").status_code in (302, 403)
    assert olga.get(f"competitions/{world.slug}/edit/pages?page=nope").status_code == 404


def test_a_page_is_edited_in_markdown_with_its_preview_and_shown_to_participants(world_server):
    server, world = world_server
    olga = server.browser("olga")
    form = ok(olga.get(f"competitions/{world.slug}/edit/pages?page=overview")).text
    assert 'id="page-content"' in form and "page_preview.js" in form
    # The preview shown before any script runs is the sanitized page.
    preview = re.search(r'<div class="page-content" id="page-preview">(.*?)</div>', form, re.S).group(1)
    assert "<h1>Hello</h1>" in preview and "<script" not in preview

    text = "## Rules\n\nBe **kind**.\n\n<script>alert(1)</script>"
    saved = olga.post(f"competitions/{world.slug}/edit/pages",
                      {"name": "overview", "title": "Rules and overview", "format": "markdown", "content": text})
    assert saved.status_code == 200 and 'id="edit-saved"' in saved.text, saved.text[:3000]
    shown = ok(server.browser("ann").get(f"competitions/{world.slug}")).text
    assert "<h2>Rules</h2>" in shown and "<strong>kind</strong>" in shown and "alert(1)" not in shown
    assert "Rules and overview" in visible_text(shown)

    refused = olga.post(f"competitions/{world.slug}/edit/pages",
                        {"name": "", "title": "Rules and overview", "format": "pdf", "content": "again"})
    assert refused.status_code == 400
    problems = re.findall(r"<li>(page: [^<]+)</li>", refused.text)
    assert len(problems) == 1 and "format" in problems[0]
    assert "again" in html.unescape(refused.text)  # the text typed is kept for fixing


def test_pages_are_moved_and_deleted_from_the_list(world_server):
    server, world = world_server
    olga = server.browser("olga")
    for title in ("Data", "Evaluation"):
        ok(olga.post(f"competitions/{world.slug}/edit/pages", {"title": title, "content": title, "format": "markdown"}))
    ok(olga.post(f"competitions/{world.slug}/edit/pages/evaluation/up"))
    assert [p.name for p in server.platform.editable_spec(world.slug, ORGANIZER).pages] == [
        "overview", "evaluation", "data"]
    ok(olga.post(f"competitions/{world.slug}/edit/pages/data/delete"))
    assert [p.name for p in server.platform.editable_spec(world.slug, ORGANIZER).pages] == ["overview", "evaluation"]


def test_columns_and_phases_forms_save_and_show_every_problem(world_server):
    server, world = world_server
    olga = server.browser("olga")
    base = f"competitions/{world.slug}/edit"
    page = ok(olga.get(f"{base}/leaderboards")).text
    assert 'name="accuracy.precision"' in page
    saved = olga.post(f"{base}/leaderboards/main", {
        "key": ["accuracy", "secret"], "accuracy.title": "Accuracy", "accuracy.sorting": "desc",
        "accuracy.precision": "3", "secret.title": "Secret", "secret.sorting": "asc", "secret.precision": "1",
        "secret.hidden": "on"})
    assert saved.status_code == 200 and 'id="edit-saved"' in saved.text, saved.text[:3000]
    columns = server.platform.editable_spec(world.slug, ORGANIZER).leaderboards[0].columns
    assert [(c.precision, c.sorting, c.hidden) for c in columns] == [(3, "desc", False), (1, "asc", True)]

    refused = olga.post(f"{base}/leaderboards/main", {
        "key": ["accuracy"], "accuracy.title": "", "accuracy.sorting": "sideways", "accuracy.precision": "x"})
    assert refused.status_code == 400
    problems = re.findall(r"<li>([^<]+)</li>", refused.text.split('id="edit-problems"')[1].split("</ul>")[0])
    assert len(problems) == 3, problems
    assert 'class="small field-problem"' in refused.text  # beside the column too
    assert 'value="x"' in refused.text  # as typed

    saved = olga.post(f"{base}/phases/1", {"name": "Development", "max_submissions": "20",
                                            "max_submissions_per_day": "4", "execution_time_limit": "300",
                                            "start": "2020-01-01 00:00", "end": "2099-12-31 00:00",
                                            "hide_output": "on"})
    assert saved.status_code == 200, saved.text[:3000]
    phase = server.platform.editable_spec(world.slug, ORGANIZER).phases[0]
    assert (phase.max_submissions, phase.max_submissions_per_day, phase.hide_output) == (20, 4, True)
    refused = olga.post(f"{base}/phases/1", {"start": "whenever", "execution_time_limit": "long"})
    assert refused.status_code == 400 and len(re.findall(r"<li>phase 1|<li>competition\.yaml", refused.text)) == 2


def test_columns_and_phases_are_added_and_removed_from_their_forms(world_server):
    server, world = world_server
    olga = server.browser("olga")
    base = f"competitions/{world.slug}/edit"
    page = ok(olga.get(f"{base}/leaderboards")).text
    assert 'id="add-column-main"' in page and 'data-remove-column="accuracy"' in page
    added = olga.post(f"{base}/leaderboards/main/columns", {"key": "recall", "title": "Recall", "sorting": "asc",
                                                            "precision": "3"})
    assert added.status_code == 200 and 'data-remove-column="recall"' in added.text, added.text[:3000]
    assert server.platform.editable_spec(world.slug, ORGANIZER).leaderboards[0].columns[-1].key == "recall"
    refused = olga.post(f"{base}/leaderboards/main/columns", {"key": "has space", "title": "X"})
    assert refused.status_code == 400 and "must be letters, digits" in html.unescape(refused.text)
    assert 'value="has space"' in refused.text  # as typed
    ok(olga.post(f"{base}/leaderboards/main/columns/recall/delete"))
    assert "recall" not in [c.key for c in server.platform.editable_spec(world.slug, ORGANIZER).leaderboards[0].columns]

    phases = len(server.platform.editable_spec(world.slug, ORGANIZER).phases)
    assert 'id="add-phase"' in ok(olga.get(f"{base}/phases")).text
    added = olga.post(f"{base}/phases/new", {"name": "Late", "start": "2101-01-01 00:00"})
    assert added.status_code == 200 and "Phase 3: Late" in added.text, added.text[:3000]
    ok(olga.post(f"{base}/phases/{phases + 1}/delete"))
    assert len(server.platform.editable_spec(world.slug, ORGANIZER).phases) == phases
    # The phase the submissions were made in stays, and the page says why.
    refused = olga.post(f"{base}/phases/1/delete")
    assert refused.status_code == 400 and "submission" in visible_text(refused.text).split("Phase 1")[0]


def test_the_terms_are_edited_with_their_preview_in_the_overview_form(world_server):
    server, world = world_server
    olga = server.browser("olga")
    base = f"competitions/{world.slug}/edit"
    page = ok(olga.get(f"{base}/overview")).text
    assert 'name="terms"' in page and 'id="page-preview"' in page and "page_preview.js" in page
    saved = olga.post(f"{base}/overview", {"title": "Secrets", "terms": "<p>No sharing.</p><script>x()</script>"})
    assert saved.status_code == 200 and 'id="edit-saved"' in saved.text, saved.text[:3000]
    preview = saved.text.split('id="page-preview">')[1].split("</div>")[0]
    assert "No sharing." in preview and "<script" not in preview
    assert server.platform.editable_spec(world.slug, ORGANIZER).terms == "<p>No sharing.</p><script>x()</script>"


def test_a_new_scoring_program_is_uploaded_from_the_tasks_page(world_server):
    server, world = world_server
    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/edit/tasks")).text
    old = server.platform.editable_spec(world.slug, ORGANIZER).tasks[0].scoring_program.value
    assert old[:12] in page and 'enctype="multipart/form-data"' in page
    sent = olga.post(f"competitions/{world.slug}/edit/tasks/0/scoring_program",
                     files={"file": ("score_v2.zip", PROGRAM, "application/zip")})
    assert sent.status_code == 200 and 'id="edit-saved"' in sent.text, sent.text[:3000]
    new = server.platform.editable_spec(world.slug, ORGANIZER).tasks[0].scoring_program.value
    assert new != old and new[:12] in sent.text and "score_v2.zip" in sent.text
    refused = server.browser("ann").post(f"competitions/{world.slug}/edit/tasks/0/scoring_program",
                                         files={"file": ("x.zip", PROGRAM, "application/zip")})
    assert refused.status_code == 403


def test_the_yaml_page_keeps_warnings_in_view(world_server):
    server, world = world_server
    page = ok(server.browser("olga").get(f"competitions/{world.slug}/edit")).text
    assert 'id="editor-nav"' in page and 'id="yaml-text"' in page


# -- the API ------------------------------------------------------------------------------------------
def test_the_editor_api_saves_through_the_bundle_reader(world_server):
    server, world = world_server
    olga, ann = server.client("olga"), server.client("ann")
    base = f"api/v1/competitions/{world.slug}"

    resp = olga.post(f"{base}/preview", json={"text": "*hi*<script>x()</script>", "format": "markdown"})
    assert resp.status_code == 200 and resp.json()["html"] == "<p><em>hi</em></p>\n"
    assert ann.post(f"{base}/preview", json={"text": "x"}).status_code == 403

    resp = olga.put(f"{base}/pages/overview", json={"title": "Overview", "content": "# New", "format": "markdown"})
    assert resp.status_code == 200 and resp.json()["saved"] is True, resp.text
    assert isinstance(resp.json()["warnings"], list)
    resp = olga.put(f"{base}/leaderboards/main/columns",
                    json={"columns": [{"key": "accuracy", "precision": "x", "sorting": "up"}]})
    assert resp.status_code == 400
    error = resp.json()["error"]
    assert error["code"] == "bundle_invalid" and len(error["problems"]) == 2 and "warnings" in error
    resp = olga.put(f"{base}/phases/1/settings", json={"max_submissions_per_day": 7})
    assert resp.status_code == 200, resp.text
    resp = olga.put(f"{base}/overview", json={"title": "Secrets, edited"})
    assert resp.status_code == 200 and server.platform.competition_detail(
        world.slug, builders.ANN)["title"] == "Secrets, edited"
    resp = olga.put(f"{base}/tasks/0", json={"name": "the task"})
    assert resp.status_code == 200, resp.text
    # What the bundle's dialect cannot hold is refused, not dropped: Codabench has no image per task.
    resp = olga.put(f"{base}/tasks/0", json={"scoring_docker_image": "python:3.11-slim"})
    assert resp.status_code == 400 and "has no way to say 'python:3.11-slim'" in resp.json()["error"]["problems"][0]

    resp = olga.post(f"{base}/tasks/0/scoring_program", files={"file": ("score_v2.zip", PROGRAM)})
    assert resp.status_code == 200 and resp.json()["saved"], resp.text
    spec = olga.get(f"{base}/spec").json()
    key = spec["spec"]["tasks"][0]["scoring_program"]["value"]
    assert spec["datasets"][key]["name"] == "score_v2.zip"
    assert spec["spec"]["tasks"][0]["name"] == "the task"
    assert spec["spec"]["phases"][0]["max_submissions_per_day"] == 7
    resp = olga.post(f"{base}/phases/1/uploads/public_data", files={"file": ("data.zip", zip_bytes({"a.csv": "1"}))})
    assert resp.status_code == 200, resp.text

    resp = olga.put(f"{base}/pages/extra", json={"title": "Extra", "content": "x"})
    assert resp.status_code == 200
    assert olga.post(f"{base}/pages/extra/up").status_code == 200
    assert olga.request("DELETE", f"{base}/pages/extra").status_code == 200
    assert olga.request("DELETE", f"{base}/pages/extra").status_code == 400

    resp = olga.post(f"{base}/leaderboards/main/columns", json={"key": "recall", "title": "Recall"})
    assert resp.status_code == 200 and resp.json()["saved"], resp.text
    assert olga.request("DELETE", f"{base}/leaderboards/main/columns/recall").status_code == 200
    resp = olga.request("DELETE", f"{base}/leaderboards/main/columns/recall")
    assert resp.status_code == 404, resp.text
    resp = olga.post(f"{base}/phases", json={"name": "Late", "start": "2101-01-01 00:00"})
    assert resp.status_code == 200, resp.text
    phases = olga.get(f"{base}/phases").json()["items"]
    assert phases[-1]["name"] == "Late"
    assert olga.request("DELETE", f"{base}/phases/{len(phases)}").status_code == 200
    resp = olga.request("DELETE", f"{base}/phases/1")
    assert resp.status_code == 400 and "submission" in " ".join(resp.json()["error"]["problems"])

    yaml_put = olga.put(f"{base}/yaml", json={"yaml": olga.get(f"{base}/yaml").json()["yaml"] + "colour: blue\n"})
    assert yaml_put.status_code == 200 and any("colour" in w for w in yaml_put.json()["warnings"])

    for who in ("ann", "oscar"):
        client = server.client(who)
        assert client.get(f"{base}/spec").status_code == 403
        assert client.put(f"{base}/pages/overview", json={"content": "x"}).status_code == 403
        assert client.put(f"{base}/leaderboards/main/columns", json={"columns": []}).status_code == 403
        assert client.post(f"{base}/tasks/0/scoring_program", files={"file": ("s.zip", PROGRAM)}).status_code == 403
