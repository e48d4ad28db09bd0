"""Fact sheets over HTTP: the API and the client, the Submit page, the submission page, the board, the editor, the CSV."""
from __future__ import annotations

import csv
import io
import json
import re

import pytest

from hub_extension.client import CompeteClient, CompeteError
from tests.support import builders
from tests.support.service_harness import ok, token_for, visible_text

QUESTIONS = [
    {"key": "method", "type": "text", "title": "Method name", "is_required": True, "is_on_leaderboard": True},
    {"key": "extra_data", "type": "checkbox", "title": "Extra data?"},
    {"key": "family", "type": "select", "title": "Model family", "selection": ["tree", "net"]},
]


@pytest.fixture
def asked(world_server):
    server, world = world_server
    resp = server.client("olga").put(f"api/v1/competitions/{world.slug}/fact_sheet", json={"questions": QUESTIONS})
    assert resp.status_code == 200 and resp.json()["saved"], resp.text
    assert server.client("ann").put(f"api/v1/competitions/{world.slug}/fact_sheet",
                                    json={"questions": []}).status_code == 403
    return server, world


def test_the_client_sends_answers_and_a_missing_required_one_is_named(asked, tmp_path):
    server, world = asked
    questions = server.client("ben").get(f"api/v1/competitions/{world.slug}/fact_sheet").json()["questions"]
    assert [q["key"] for q in questions] == ["method", "extra_data", "family"]
    client = CompeteClient(server.base, token_for("ben"))
    assert [q["key"] for q in client.competition(world.slug)["fact_sheet"]] == ["method", "extra_data", "family"]
    upload = builders.results_zip(tmp_path)
    with pytest.raises(CompeteError) as info:
        client.submit(world.slug, upload, fact_sheet={"extra_data": True})
    assert "fact sheet: 'Method name' (method) is required: answer it to submit" in str(info.value)
    with pytest.raises(CompeteError) as info:
        client.submit(world.slug, upload, fact_sheet={"method": "m", "family": "svm"})
    assert "'svm' is not one of its choices: tree, net" in str(info.value)
    sub = client.submit(world.slug, upload, fact_sheet={"method": "CNN", "family": "net"})
    assert {q["key"]: q["answer"] for q in sub["fact_sheet"]} == {"method": "CNN", "extra_data": False,
                                                                  "family": "net"}
    # A multipart field works as the query parameter does.
    resp = server.client("ben").post(f"api/v1/competitions/{world.slug}/submissions",
                                     data={"fact_sheet": json.dumps({"method": "GBM"})},
                                     files={"file": ("p.zip", upload.read_bytes())})
    assert resp.status_code == 201, resp.text
    resp = server.client("ben").post(f"api/v1/competitions/{world.slug}/submissions?fact_sheet=not-json",
                                     files={"file": ("p.zip", upload.read_bytes())})
    assert resp.status_code == 400 and "fact_sheet: must be a JSON object" in resp.json()["error"]["message"]

    resp = server.client("olga").get(f"api/v1/competitions/{world.slug}/phases/1/fact_sheets.csv")
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/csv")
    assert f'filename="{world.slug}-phase1-fact-sheets.csv"' in resp.headers["Content-Disposition"]
    rows = {r["submission"]: r for r in csv.DictReader(io.StringIO(resp.text))}
    assert rows[str(sub["id"])]["method"] == "CNN" and rows[str(sub["id"])]["family"] == "net"
    assert server.client("ben").get(f"api/v1/competitions/{world.slug}/phases/1/fact_sheets.csv").status_code == 403


def test_the_submit_page_asks_the_questions_and_keeps_the_answers_of_a_refused_form(asked, tmp_path):
    server, world = asked
    ann = server.browser("ann")
    page = ok(ann.get(f"competitions/{world.slug}/submit")).text
    sheet = re.search(r'<fieldset[^>]*id="fact-sheet".*?</fieldset>', page, re.S).group(0)
    assert 'name="fact_sheet.method"' in sheet and "required" in sheet
    assert 'type="checkbox" name="fact_sheet.extra_data"' in sheet
    assert '<option value="net"' in sheet

    upload = builders.results_zip(tmp_path)
    with upload.open("rb") as fh:
        refused = ann.post(f"competitions/{world.slug}/submit", {"phase": "1", "fact_sheet.family": "tree",
                                                                 "fact_sheet.extra_data": "on"},
                           files={"file": ("p.zip", fh, "application/zip")})
    assert refused.status_code == 400
    assert "fact sheet: &#39;Method name&#39; (method) is required" in refused.text
    assert '<option value="tree" selected' in refused.text
    assert re.search(r'name="fact_sheet.extra_data"[^>]*checked', refused.text)

    with upload.open("rb") as fh:
        done = ann.post(f"competitions/{world.slug}/submit", {"phase": "1", "fact_sheet.method": "Forest",
                                                              "fact_sheet.family": "tree"},
                        files={"file": ("p.zip", fh, "application/zip")})
    assert done.status_code == 302, done.text[:1000]
    sid = max(s["id"] for s in server.platform.submissions_view(world.slug, builders.ANN)["items"])
    builders.finish(server.platform, sid, {"accuracy": 0.99, "secret": 0.01, "private_score": 0.5})
    answers = re.search(r'<table id="fact-sheet-answers".*?</table>', ok(ann.get(f"submissions/{sid}")).text,
                        re.S).group(0)
    assert "Forest" in answers and re.search(r"Extra data\?</th><td>no<", answers)
    assert server.browser("ben").get(f"submissions/{sid}").status_code == 403

    # The board shows the question marked for it, to whoever sees the board.
    board = ok(server.browser("nora").get(f"competitions/{world.slug}/leaderboard")).text
    assert '<th scope="col" data-fact-sheet="method">Method name</th>' in board
    assert re.search(rf'data-submission="{sid}".*?<td data-fact-sheet="method">Forest</td>', board, re.S)


def test_the_organizer_edits_the_questions_and_a_boards_columns_in_the_editor(asked):
    server, world = asked
    olga = server.browser("olga")
    page = ok(olga.get(f"competitions/{world.slug}/edit/overview")).text
    assert 'id="fact-sheet-form"' in page and 'value="method"' in page
    form = {"rows": "4", "q0.key": "method", "q0.title": "Method name", "q0.type": "text", "q0.is_required": "on",
            "q1.key": "", "q2.key": "family", "q2.title": "Family", "q2.type": "select", "q2.selection": "tree\r\nnet",
            "q2.is_on_leaderboard": "on", "q3.key": "paper", "q3.title": "Paper URL", "q3.type": "text"}
    saved = olga.post(f"competitions/{world.slug}/edit/fact_sheet", form)
    assert saved.status_code == 200, visible_text(saved.text)[:2000]
    questions = server.platform.fact_sheet(world.slug, builders.ANN)
    assert [(q["key"], q["title"], q["is_on_leaderboard"]) for q in questions] == [
        ("method", "Method name", False), ("family", "Family", True), ("paper", "Paper URL", False)]
    refused = olga.post(f"competitions/{world.slug}/edit/fact_sheet", {"rows": "1", "q0.key": "bad key!",
                                                                       "q0.title": "T", "q0.type": "text"})
    assert refused.status_code == 400 and "fact_sheet" in refused.text
    assert len(server.platform.fact_sheet(world.slug, builders.ANN)) == 3

    boards = ok(olga.get(f"competitions/{world.slug}/edit/leaderboards")).text
    assert 'id="fact-sheet-columns-main"' in boards
    saved = olga.post(f"competitions/{world.slug}/edit/leaderboards/main/fact_sheet",
                      {"fact_sheet_column": ["paper", "method"]})
    assert saved.status_code == 200
    board = server.client("nora").get(f"api/v1/competitions/{world.slug}/leaderboard").json()
    assert [c["key"] for c in board["fact_sheet_columns"]] == ["paper", "method"]
    assert server.browser("ann").post(f"competitions/{world.slug}/edit/fact_sheet", form).status_code == 403

    listing = ok(olga.get(f"competitions/{world.slug}/submissions")).text
    link = re.search(r'href="([^"]+/phases/1/fact_sheets\.csv)"', listing).group(1)
    resp = olga.get(link)
    assert resp.status_code == 200 and resp.text.splitlines()[0] == \
        "submission,participant,submitted_at,status,method,family,paper"
    assert server.browser("ann").get(f"competitions/{world.slug}/phases/1/fact_sheets.csv").status_code == 403
