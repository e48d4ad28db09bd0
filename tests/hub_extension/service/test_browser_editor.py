"""Headless Chromium edits a competition through the real hub, and the participant's side shows it.

An organizer edits the overview page in Markdown (watching the live preview,
which is the sanitized page) and a column's precision, in the editor's forms;
a participant, in a browser of their own, reads the new page and sees the
leaderboard at the new precision.  Then the organizer uploads a new scoring
program in the editor and reruns a submission from its page: the rerun is
scored by the new program, and its steps say which version ran.
"""
from __future__ import annotations

import io
import re
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from hub_extension.demo import DEMO_BUNDLE
from tests.support.browser import browser_login
from tests.support.hub import demo_bundle_zip, sample_predictions_zip, wait_finished

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

NEW_SCORE_PY = """\
import json, os, sys
os.makedirs(sys.argv[2], exist_ok=True)
with open(os.path.join(sys.argv[2], "scores.json"), "w") as fh:
    json.dump({"accuracy": 0.25, "f1": 0.5}, fh)
"""


@dataclass
class Scene:
    slug: str
    title: str
    organizer: str
    organizer_password: str
    participant: str
    participant_password: str
    submission: int



@pytest.fixture(scope="module")
def scene(hub, tmp_path_factory) -> Scene:
    tmp = tmp_path_factory.mktemp("editor")
    suffix = uuid.uuid4().hex[:6]
    organizer, participant = f"eorg-{suffix}", f"epart-{suffix}"
    passwords = {name: f"pw-{uuid.uuid4().hex}" for name in (organizer, participant)}
    hub.create_user(organizer, groups=["organizers"], password=passwords[organizer])
    hub.create_user(participant, password=passwords[participant])
    title = f"Editor flowers {suffix}"
    with open(demo_bundle_zip(tmp, title), "rb") as fh:
        resp = hub.user_client(organizer).post("api/v1/competitions", files={"file": ("bundle.zip", fh.read())})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    client = hub.user_client(participant)
    resp = client.post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    with open(sample_predictions_zip(tmp), "rb") as fh:
        resp = client.post(f"api/v1/competitions/{slug}/submissions", files={"file": ("p.zip", fh.read())})
    assert resp.status_code == 201, resp.text
    submission = resp.json()["id"]
    assert wait_finished(client, submission)["status"] == "Finished", hub.log_tail()
    return Scene(slug, title, organizer, passwords[organizer], participant, passwords[participant], submission)


def test_a_page_in_markdown_and_a_columns_precision_reach_the_participants_side(hub, scene, browser_pages):
    from playwright.sync_api import expect

    page = browser_pages()
    browser_login(page, hub, scene.organizer, scene.organizer_password)
    page.click("#competitions-home-link")
    page.click(f"#competition-list a:has-text('{scene.title}')")
    page.click("nav.subnav >> text=Edit")
    expect(page.locator("main > h1")).to_have_text("Pages")
    page.click("#pages tr[data-page=overview] a.page-edit")
    text = "## Edited in the browser\n\nA **bold** claim.<script>document.title = 'owned'</script>"
    page.fill("#page-content", text)
    # The live preview is the service's sanitized rendering, fetched as the text is typed.
    preview = page.locator("#page-preview")
    expect(preview.locator("h2")).to_have_text("Edited in the browser")
    expect(preview.locator("strong")).to_have_text("bold")
    assert preview.locator("script").count() == 0
    page.click("#page-form button[type=submit]")
    expect(page.locator("#edit-saved")).to_be_visible()

    page.click("#editor-nav >> text=Leaderboards")
    page.fill("#board-main input[name='accuracy.precision']", "1")
    page.click("#board-main button[type=submit]")
    expect(page.locator("#edit-saved")).to_be_visible()
    expect(page.locator("#board-main input[name='accuracy.precision']")).to_have_value("1")

    # -- the participant, in a browser of their own -------------------------------------------
    page = browser_pages()
    browser_login(page, hub, scene.participant, scene.participant_password)
    page.click("#competitions-home-link")
    page.click(f"#competition-list a:has-text('{scene.title}')")
    expect(page.locator(".page-content h2", has_text="Edited in the browser")).to_be_visible()
    expect(page.locator(".page-content strong", has_text="bold")).to_be_visible()
    assert page.title() != "owned" and "<script" not in page.locator("#page-1").inner_html()
    page.click("nav.subnav >> text=Leaderboard")
    board = hub.user_client(scene.participant).get(f"api/v1/competitions/{scene.slug}/leaderboard").json()
    accuracy = next(r for r in board["rows"] if r["participant"] == scene.participant)["scores"]["accuracy"]
    cell = page.locator(f"#leaderboard tr[data-participant='{scene.participant}'] td[data-column=accuracy]")
    expect(cell).to_have_text(re.compile(rf"^\s*{re.escape(f'{accuracy:.1f}')}(\s|$)"))


def new_scoring_program(tmp_path: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.write(DEMO_BUNDLE / "scoring_program" / "metadata", "metadata")
        zf.writestr("score.py", NEW_SCORE_PY)
    path = tmp_path / "score_v2.zip"
    path.write_bytes(buf.getvalue())
    return path


def test_a_new_scoring_program_scores_the_rerun_of_its_phase_and_the_steps_say_which_version(hub, scene, browser_pages, tmp_path):
    from playwright.sync_api import expect

    organizer = hub.user_client(scene.organizer)
    old_key = organizer.get(f"api/v1/competitions/{scene.slug}/spec").json()["spec"]["tasks"][0][
        "scoring_program"]["value"]
    page = browser_pages()
    browser_login(page, hub, scene.organizer, scene.organizer_password)
    page.click("#competitions-home-link")
    page.click(f"#competition-list a:has-text('{scene.title}')")
    page.click("nav.subnav >> text=Edit")
    page.click("#editor-nav >> text=Programs and data")
    page.set_input_files("#upload-task-0-scoring_program input[type=file]", str(new_scoring_program(tmp_path)))
    page.click("#upload-task-0-scoring_program button[type=submit]")
    expect(page.locator("#edit-saved")).to_be_visible()
    row = page.locator("#task-0-data tr[data-kind=scoring_program] td[data-current]")
    expect(row).to_contain_text("score_v2.zip")
    new_key = organizer.get(f"api/v1/competitions/{scene.slug}/spec").json()["spec"]["tasks"][0][
        "scoring_program"]["value"]
    assert new_key != old_key and new_key[:12] in row.inner_text()

    # The submission scored by the old program: rerun it from its page.
    page.click("nav.subnav >> text=All submissions")
    page.click(f"#submissions tr[data-submission='{scene.submission}'] a[href$='/submissions/{scene.submission}']")
    program = page.locator("#runs td[data-program]").last
    expect(program).to_have_attribute("data-program", old_key)
    expect(program.locator("[data-program-replaced]")).to_be_visible()
    phase = organizer.get(f"api/v1/submissions/{scene.submission}").json()["phase"]

    # Rerun all of its phase with the new program: the count is shown and confirmed first.
    page.click("nav.subnav >> text=Phases")
    page.click(f"[data-rerun-all='{phase}']")
    expect(page.locator("#confirm-count")).to_have_attribute("data-count", "1")
    expect(page.locator("#confirm-items")).to_contain_text(str(scene.submission))
    page.click("#confirm-form button[type=submit]")
    expect(page.locator(".notice").first).to_be_visible()

    listing = organizer.get(f"api/v1/competitions/{scene.slug}/submissions").json()["items"]
    reruns = [item["id"] for item in listing if item.get("parent") == scene.submission]
    assert len(reruns) == 1, listing
    rerun = reruns[0]
    state = wait_finished(organizer, rerun)
    assert state["status"] == "Finished", state
    assert state["scores"]["accuracy"] == pytest.approx(0.25)  # the new program's score
    page.click("nav.subnav >> text=All submissions")
    page.click(f"#submissions tr[data-submission='{rerun}'] a[href$='/submissions/{rerun}']")
    program = page.locator("#runs td[data-program]").last
    expect(program).to_have_attribute("data-program", new_key)
    expect(program).to_contain_text("score_v2.zip")
    assert program.locator("[data-program-replaced]").count() == 0
