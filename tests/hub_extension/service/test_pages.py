"""The public and participant pages: list, competition, registration, submit, submissions, leaderboard.

Every page is fetched over HTTP from the real application (`make_app`) with
strict templates (an undefined name fails the render), as each kind of
visitor.  The secrets of `tests/support/builders.py` (a hidden column, a
hidden board, reference data, scoring logs, blind phases) must never reach a
participant's page.
"""
from __future__ import annotations

import datetime as dt
import io
import re
import zipfile
from email.utils import parsedate_to_datetime

from markupsafe import escape

from hub_extension import models as m
from tests.support import builders
from tests.support.service_harness import (
    EXECUTOR_WARNING,
    PREFIX,
    ok,
    start_server,
    visible_text,
)


def secret_columns(html: str) -> list[str]:
    """Traces of the hidden column `secret` and the hidden board `private` in a page."""
    markers = ('"secret"', ">Secret<", "private_score", "Private score", '"private"', ">Private<")
    return [marker for marker in markers if marker in html]


def rows_of(html: str, table_id: str) -> list[str]:
    found = re.search(rf'<table id="{table_id}".*?</table>', html, re.S)
    assert found, f"no table #{table_id} in the page"
    return re.findall(r"<tr\b[^>]*data-[a-z]+=.*?</tr>", found.group(0), re.S)


# -- the list ------------------------------------------------------------------------------
def test_the_list_shows_every_competition_and_filters_by_words_and_status(world_server):
    server, world = world_server
    page = ok(server.browser().get("")).text
    assert f'data-slug="{world.slug}"' in page and f'data-slug="{world.other_slug}"' in page
    assert "Log in" in page

    found = ok(server.browser("ann").get("?q=secrets")).text
    assert f'data-slug="{world.slug}"' in found and f'data-slug="{world.other_slug}"' not in found
    assert 'value="secrets"' in found  # the search box keeps the words

    running = ok(server.browser("ann").get("?status=running")).text
    assert f'data-slug="{world.slug}"' in running
    finished = ok(server.browser("ann").get("?status=finished")).text
    assert 'id="no-competitions"' in finished and "data-slug=" not in finished

    bad = server.browser("ann").get("?status=later")
    assert bad.status_code == 400 and "unknown status" in bad.text


def test_the_executor_warning_is_shown_to_organizers_and_admins_only(world_server):
    server, _ = world_server
    for user in ("olga", "oscar", "root"):
        page = ok(server.browser(user).get("")).text
        assert 'id="executor-warning"' in page and str(escape(EXECUTOR_WARNING)) in page, user
    for user in (None, "ann", "nora"):
        page = ok(server.browser(user).get("")).text
        assert "executor-warning" not in page and str(escape(EXECUTOR_WARNING)) not in page, user


# -- the competition page --------------------------------------------------------------------
def test_the_competition_page_shows_sanitized_pages_the_timeline_and_terms(world_server):
    server, world = world_server
    page = ok(server.browser("nora").get(f"competitions/{world.slug}")).text
    assert "<b>secrets</b>" in page  # the description keeps its formatting
    assert "<h1>Hello</h1>" in page  # the Markdown page is rendered
    assert "<script" not in page.lower() and "alert(" not in page and "steal()" not in page
    assert "<em>nice</em>" in page  # the terms, sanitized

    timeline = re.search(r'<ol class="timeline">.*?</ol>', page, re.S).group(0)
    first = re.search(r'<li class="current" data-phase="1"[^>]*>.*?</li>', timeline, re.S)
    assert first and "current phase" in first.group(0) and "Development" in first.group(0)
    assert re.search(r'<li class="future" data-phase="2"', timeline)
    assert "5 per day" in visible_text(first.group(0)) and "10 in total" in visible_text(first.group(0))

    # nora is not registered: the form asks her to accept the terms.
    form = re.search(r'<form method="post" action="[^"]+/register" id="register-form">.*?</form>', page, re.S)
    assert form and 'name="accept_terms"' in form.group(0) and 'name="_xsrf"' in form.group(0)
    # Downloads are offered in the timeline; reference data never is.
    assert f"competitions/{world.slug}/phases/1/starting-kit" in page
    assert f"competitions/{world.slug}/phases/1/public-data" in page
    assert builders.REFERENCE_TEXT not in page and "reference" not in page.lower()


def test_anonymous_visitors_read_the_page_and_are_asked_to_log_in_to_register(world_server):
    server, world = world_server
    page = ok(server.browser().get(f"competitions/{world.slug}")).text
    assert "Log in to register" in page and 'id="register-form"' not in page
    assert f'href="{PREFIX}login?next=/services/competitions/competitions/{world.slug}"' in page
    login = server.browser().get(f"login?next={PREFIX}competitions/{world.slug}")
    assert login.status_code == 302 and "/hub/api/oauth2/authorize" in login.headers["Location"]
    # A logged-in user passing through `login` lands on the page they came from.
    back = server.browser("ann").get(f"login?next={PREFIX}competitions/{world.slug}")
    assert back.status_code == 302 and back.headers["Location"] == f"{PREFIX}competitions/{world.slug}"
    away = server.browser("ann").get("login?next=//evil.example/")
    assert away.headers["Location"] == PREFIX


def test_registering_through_the_form_and_the_xsrf_token_it_needs(world_server):
    server, world = world_server
    nora = server.browser("nora")
    refused = nora.post(f"competitions/{world.slug}/register", {"accept_terms": "yes"}, xsrf=False)
    assert refused.status_code == 403 and "XSRF" in refused.text
    assert server.platform.competition_detail(world.slug, builders.NORA)["registration"] == "none"

    # Without the box ticked (a form sent by hand; browsers enforce `required`), nothing is recorded.
    unticked = nora.post(f"competitions/{world.slug}/register", {})
    assert unticked.status_code == 400 and "accept the terms" in unticked.text
    assert server.platform.competition_detail(world.slug, builders.NORA)["registration"] == "none"

    done = nora.post(f"competitions/{world.slug}/register", {"accept_terms": "yes"})
    assert done.status_code == 302
    page = ok(nora.follow(done)).text
    assert "You are registered" in page and 'id="registration-status"' in page
    assert server.platform.competition_detail(world.slug, builders.NORA)["registration"] == m.APPROVED
    # The notice is shown once.
    assert "You are registered: you can submit now." not in ok(nora.get(f"competitions/{world.slug}")).text


def test_downloads_are_for_approved_participants_and_organizers(world_server):
    server, world = world_server
    kit = ok(server.browser("ann").get(f"competitions/{world.slug}/phases/1/starting-kit"))
    assert kit.headers["Content-Type"].startswith("application/zip")
    assert "attachment" in kit.headers["Content-Disposition"]
    assert zipfile.ZipFile(io.BytesIO(kit.content)).read("README.md") == b"starting kit"
    data = ok(server.browser("olga").get(f"competitions/{world.slug}/phases/1/public-data"))
    assert zipfile.ZipFile(io.BytesIO(data.content)).namelist() == ["public.csv"]
    assert server.browser("nora").get(f"competitions/{world.slug}/phases/1/starting-kit").status_code == 403
    assert server.browser("oscar").get(f"competitions/{world.slug}/phases/1/public-data").status_code == 403
    assert server.browser("ann").get(f"competitions/{world.slug}/phases/2/starting-kit").status_code == 404


# -- submitting -------------------------------------------------------------------------------
def test_the_submit_page_shows_what_is_left_and_takes_an_upload(world_server, tmp_path):
    server, world = world_server
    ann = server.browser("ann")
    page = ok(ann.get(f"competitions/{world.slug}/submit")).text
    left = server.platform.submissions_left(world.slug, "ann", 1)
    assert left == {"today": 3, "total": 8}
    assert re.search(r'id="left-today">3<', page) and re.search(r'id="left-total">8<', page)
    form = re.search(r'<form[^>]*id="submit-form".*?</form>', page, re.S).group(0)
    assert 'enctype="multipart/form-data"' in form and 'name="_xsrf"' in form and 'type="file"' in form

    upload = builders.results_zip(tmp_path, "my predictions.zip")
    with upload.open("rb") as fh:
        done = ann.post(f"competitions/{world.slug}/submit", {"description": "second try", "phase": "1"},
                        files={"file": (upload.name, fh, "application/zip")})
    assert done.status_code == 302, done.text[:1000]
    listing = ok(ann.follow(done)).text
    new_id = max(s["id"] for s in server.platform.submissions_view(world.slug, builders.ANN)["items"])
    assert f"Submission {new_id} received" in listing
    assert f'data-submission="{new_id}"' in listing and "my_predictions.zip" in listing and "second try" in listing
    page = ok(ann.get(f"competitions/{world.slug}/submit")).text
    assert re.search(r'id="left-today">2<', page) and re.search(r'id="left-total">7<', page)


def test_a_refused_submission_shows_the_form_again_with_the_reason(world_server, tmp_path):
    server, world = world_server
    ann = server.browser("ann")
    upload = builders.results_zip(tmp_path)
    for _ in range(3):
        builders_sid = server.platform.submit(world.slug, upload, username="ann", actor=builders.ANN)
        assert builders_sid
    page = ok(ann.get(f"competitions/{world.slug}/submit")).text
    assert 'id="limit-reached"' in page and re.search(r'id="left-today">0<', page)
    with upload.open("rb") as fh:
        refused = ann.post(f"competitions/{world.slug}/submit", {"phase": "1"},
                           files={"file": ("p.zip", fh, "application/zip")})
    assert refused.status_code == 429
    assert "notice error" in refused.text and "submissions of today" in refused.text
    assert 'id="submit-form"' in refused.text

    # A browser sends an empty file part when no file was chosen.
    missing = ann.post(f"competitions/{world.slug}/submit", {"phase": "1"}, files={"file": ("", b"")})
    assert missing.status_code == 400 and "choose a file" in missing.text


def test_the_submit_page_asks_unregistered_users_to_register(world_server, tmp_path):
    server, world = world_server
    page = ok(server.browser("nora").get(f"competitions/{world.slug}/submit")).text
    assert 'id="not-registered"' in page and 'id="submit-form"' not in page
    upload = builders.results_zip(tmp_path)
    with upload.open("rb") as fh:
        refused = server.browser("nora").post(f"competitions/{world.slug}/submit", {"phase": "1"},
                                              files={"file": ("p.zip", fh, "application/zip")})
    assert refused.status_code == 403


# -- my submissions -----------------------------------------------------------------------------
def test_my_submissions_show_only_mine_without_hidden_columns_and_with_live_status(world_server):
    server, world = world_server
    page = ok(server.browser("ann").get(f"competitions/{world.slug}/submissions")).text
    rows = rows_of(page, "submissions")
    ids = {int(re.search(r'data-submission="(\d+)"', r).group(1)) for r in rows}
    assert ids == {world.subs["ann"], world.subs["ann_waiting"]}
    assert str(world.subs["ben"]) not in re.findall(r"submissions/(\d+)", page)
    assert ">ben<" not in page
    # Scores: accuracy shown, the hidden column and the hidden board's column never.
    assert '<th class="num">Accuracy</th>' in page and 'data-score="accuracy">0.70<' in page  # its precision: 2
    assert not secret_columns(page) and "0.30" not in visible_text(page)
    # The waiting submission is polled by the script; the finished one is not.
    waiting = next(r for r in rows if f'data-submission="{world.subs["ann_waiting"]}"' in r)
    assert 'data-terminal="no"' in waiting and "Submitted" in waiting
    assert f'data-poll-url="{PREFIX}api/v1/submissions/"' in page
    assert re.search(r'<script src="[^"]*live_status\.js[^"]*" defer>', page)
    script = ok(server.browser().get("static/live_status.js")).text
    assert "data-poll-url" in script and "running_time" in script


def test_the_submission_page_shows_scores_logs_and_the_notebook(world_server):
    server, world = world_server
    ann = server.browser("ann")
    sid = world.subs["ann"]
    page = ok(ann.get(f"submissions/{sid}")).text
    assert re.search(r'<th class="num" title="accuracy">Accuracy</th>', page)
    assert re.search(r'data-score="accuracy">0\.70<', page)
    assert not secret_columns(page)
    assert builders.PREDICTION_LOG_TEXT in page and builders.SECRET_LOG_TEXT in page
    assert f'src="{PREFIX}submissions/{sid}/files/executed_notebook_html"' in page and "sandbox" in page
    assert f"{PREFIX}submissions/{sid}/files/detailed_results" in page
    assert 'id="history"' in page and "test-worker" not in page  # notes of the history are the organizers'

    notebook = ok(ann.get(f"submissions/{sid}/files/executed_notebook_html"))
    assert notebook.text == "<p>notebook</p>"
    assert notebook.headers["Content-Type"].startswith("text/html")
    assert "sandbox" in notebook.headers["Content-Security-Policy"]
    raw = ok(ann.get(f"submissions/{sid}/logs/0/prediction/stdout"))
    assert raw.headers["Content-Type"].startswith("text/plain") and builders.PREDICTION_LOG_TEXT in raw.text

    # Another participant's submission, its files and logs are not ann's to see.
    ben_sid = world.subs["ben"]
    for path in (f"submissions/{ben_sid}", f"submissions/{ben_sid}/files/detailed_results",
                 f"submissions/{ben_sid}/logs/0/scoring/stdout"):
        assert ann.get(path).status_code == 403, path


def test_scores_are_headed_by_column_titles_at_their_precision(world_server):
    server, world = world_server
    with server.platform.db.session() as s:
        s.query(m.Column).filter_by(key="secret").one().precision = 3
    olga = server.browser("olga")
    listing = ok(olga.get(f"competitions/{world.slug}/submissions")).text
    heads = re.findall(r'<th class="num">([^<]+)</th>', listing)
    assert heads[-3:] == ["Accuracy", "Secret", "Private score"]  # the boards' order, titles, never keys
    ben = next(r for r in rows_of(listing, "submissions") if f'data-submission="{world.subs["ben"]}"' in r)
    assert 'data-score="accuracy">0.80<' in ben and 'data-score="secret">0.200<' in ben
    assert 'data-score="private_score">0.40<' in ben

    page = ok(olga.get(f"submissions/{world.subs['ben']}")).text
    assert re.findall(r'<th class="num" title="(\w+)">([^<]+)</th>', page) == [
        ("accuracy", "Accuracy"), ("secret", "Secret"), ("private_score", "Private score")]
    assert 'data-score="secret">0.200<' in page and ">secret<" not in page
    api = server.client("olga").get(f"api/v1/submissions/{world.subs['ben']}").json()
    assert {c["key"]: (c["title"], c["precision"]) for c in api["score_columns"]} == {
        "accuracy": ("Accuracy", 2), "secret": ("Secret", 3), "private_score": ("Private score", 2)}


def test_a_browser_with_a_hub_session_goes_through_the_oauth_login_once(world_server):
    server, world = world_server
    browser = server.browser()
    # The cookie the hub sets at login, on its base URL: the service's pages receive it too.
    browser.cookies.set("jupyterhub-session-id", "a-hub-session", path="/")
    first = browser.get(f"competitions/{world.slug}")
    assert first.status_code == 302 and "oauth2/authorize" in first.headers["Location"]
    assert "state=" in first.headers["Location"]
    # Back without a login (the OAuth login failed): the page as anyone sees it, no second round.
    again = browser.get(f"competitions/{world.slug}")
    assert again.status_code == 200 and "Log in" in again.text
    # The API answers scripts, never with a redirect; a browser without a hub session is not sent anywhere.
    assert server.browser().get("").status_code == 200
    api = server.browser()
    api.cookies.set("jupyterhub-session-id", "a-hub-session", path="/")
    assert api.get("api/v1/competitions").status_code == 200
    # Once logged in, the marker goes, so that a later expired login is followed again.
    ann = server.browser("ann")
    ann.cookies.set("compete-hub-login-tried", "1", path=PREFIX)
    ann.cookies.set("jupyterhub-session-id", "a-hub-session", path="/")
    page = ok(ann.get(""))
    assert "ann" in visible_text(page.text) and page.url.endswith(PREFIX)
    cleared = re.search(r'compete-hub-login-tried=""; expires=([^;]+);', page.headers.get("Set-Cookie", ""))
    assert cleared and parsedate_to_datetime(cleared.group(1)) < dt.datetime.now(dt.timezone.utc)


def _set_run_warnings(platform, sid: int, warnings: list[str]) -> None:
    from hub_extension import models as m

    with platform.db.session() as s:
        s.get(m.Submission, sid).warnings = warnings


def test_the_submission_page_says_what_the_run_did_not_keep(world_server, blind_server):
    """Dropped outputs and removed links are said to the organizers, and to the participant
    when the phase shows them both sides of the run."""
    note = "the executed notebook (70.2 MB) was not kept: a run on an organizer queue carries back at most 64 MB"
    for (server, world), participant_sees in ((world_server, True), (blind_server, False)):
        sid = world.subs["ann"]
        _set_run_warnings(server.platform, sid, [note])
        try:
            mine = ok(server.browser("ann").get(f"submissions/{sid}")).text
            assert ('id="submission-warnings"' in mine and note in mine) is participant_sees
            theirs = ok(server.browser("olga").get(f"submissions/{sid}")).text
            assert 'id="submission-warnings"' in theirs and note in theirs
        finally:
            _set_run_warnings(server.platform, sid, [])


def test_blind_phase_pages_show_no_scores_logs_or_board_to_participants(blind_server):
    server, world = blind_server
    ann = server.browser("ann")
    listing = ok(ann.get(f"competitions/{world.slug}/submissions")).text
    assert not any(score in visible_text(listing) for score in ("0.70", "0.80", "0.30"))
    detail = ok(ann.get(f"submissions/{world.subs['ann']}")).text
    assert 'id="scores-hidden"' in detail and "0.7" not in visible_text(detail)
    assert builders.SECRET_LOG_TEXT not in detail
    assert ann.get(f"submissions/{world.subs['ann']}/logs/0/scoring/stdout").status_code == 403
    assert ann.get(f"submissions/{world.subs['ann']}/files/detailed_results").status_code == 403

    board = ok(ann.get(f"competitions/{world.slug}/leaderboard")).text
    assert 'id="leaderboard"' not in board and 'id="board-note"' in board
    assert "0.7" not in visible_text(board) and "0.8" not in visible_text(board)
    assert 'id="no-chart"' in board and "<svg" not in board
    csv_text = ok(ann.get(f"competitions/{world.slug}/leaderboard.csv")).text
    assert csv_text.strip().count("\n") == 0  # the header only

    # The organizers see it all, with a note that participants do not.
    olga = ok(server.browser("olga").get(f"competitions/{world.slug}/leaderboard")).text
    assert 'id="leaderboard"' in olga and "0.80" in olga and "<svg" in olga


# -- the leaderboard --------------------------------------------------------------------------------
def test_the_leaderboard_ranks_highlights_my_row_sorts_and_charts(world_server):
    server, world = world_server
    ann = server.browser("ann")
    page = ok(ann.get(f"competitions/{world.slug}/leaderboard")).text
    rows = rows_of(page, "leaderboard")
    assert [re.search(r'data-participant="(\w+)"', r).group(1) for r in rows] == ["ben", "ann"]
    mine = [r for r in rows if 'class="mine"' in r]
    assert len(mine) == 1 and 'data-participant="ann"' in mine[0] and "(you)" in mine[0]
    # One column shown: no average rank (it would repeat the rank).
    assert 'data-column="average_rank"' not in rows[0] and "Avg. rank" not in page and 'id="rank-note"' not in page
    assert not secret_columns(page)

    # Sorting by a column's header link, and back.
    link = re.search(r'<a class="sort[^"]*" href="([^"]+)" title="sort by Accuracy"', page).group(1)
    assert "sort=accuracy" in link and "order=desc" in link  # best first, as the column sorts
    ascending = ok(ann.get(f"competitions/{world.slug}/leaderboard?phase=1&sort=accuracy&order=asc")).text
    order = [re.search(r'data-participant="(\w+)"', r).group(1) for r in rows_of(ascending, "leaderboard")]
    assert order == ["ann", "ben"]
    assert 'aria-sort="ascending"' in ascending
    by_name = ok(ann.get(f"competitions/{world.slug}/leaderboard?sort=participant&order=desc")).text
    assert [re.search(r'data-participant="(\w+)"', r).group(1) for r in rows_of(by_name, "leaderboard")] == ["ben", "ann"]

    # CSV link and file.
    csv_url = re.search(r'id="csv-link" href="([^"]+)"', page).group(1).replace("&amp;", "&")
    csv_text = ok(ann.get(csv_url)).text
    header, *lines = csv_text.strip().splitlines()
    assert header.startswith("rank,participant") and "Accuracy" in header and "Secret" not in header
    assert [line.split(",")[1] for line in lines] == ["ben", "ann"]

    # The chart: ann's 0.7 first, then ben's 0.8.
    svg = re.search(r"<svg.*?</svg>", page, re.S).group(0)
    assert re.findall(r'data-value="([0-9.]+)"', svg) == ["0.7", "0.8"]
    assert "by ann" in svg and "by ben" in svg and "<script" not in svg


def test_the_organizers_leaderboard_has_hidden_columns_and_boards(world_server):
    server, world = world_server
    page = ok(server.browser("olga").get(f"competitions/{world.slug}/leaderboard")).text
    assert "Secret" in page and 'data-column="secret"' in page
    # Two columns: each row's average rank, under its heading.
    assert 'data-column="average_rank"' in rows_of(page, "leaderboard")[0] and "Avg. rank" in page
    assert '<option value="private"' in page
    private = ok(server.browser("olga").get(f"competitions/{world.slug}/leaderboard?board=private")).text
    assert "Private score" in private
    # A participant asking for the hidden board gets it empty, with the note.
    theirs = ok(server.browser("ann").get(f"competitions/{world.slug}/leaderboard?board=private")).text
    assert "Private score" not in theirs and 'id="leaderboard"' not in theirs
    assert 'id="board-note"' in theirs


def test_show_on_leaderboard_where_the_rule_lets_participants_choose(world_server, tmp_path):
    server, world = world_server
    with server.platform.db.session() as s:
        for board in s.query(m.Leaderboard).all():
            board.submission_rule = "Add_And_Delete"
    ann = server.browser("ann")
    sid = world.subs["ann"]
    page = ok(ann.get(f"competitions/{world.slug}/submissions")).text
    row = next(r for r in rows_of(page, "submissions") if f'data-submission="{sid}"' in r)
    assert f'action="{PREFIX}submissions/{sid}/select"' in row
    waiting = next(r for r in rows_of(page, "submissions") if f'data-submission="{world.subs["ann_waiting"]}"' in r)
    assert "/select" not in waiting  # only a finished submission can be shown
    before = ok(ann.get(f"competitions/{world.slug}/leaderboard")).text
    assert 'data-participant="ann"' not in before

    chosen = ann.post(f"submissions/{sid}/select", {"next": f"{PREFIX}competitions/{world.slug}/submissions"})
    assert chosen.status_code == 302 and chosen.headers["Location"].endswith("/submissions")
    page = ok(ann.follow(chosen)).text
    assert f"Submission {sid} is shown on the leaderboard" in page
    assert "data-selected" in page and f"submissions/{sid}/unselect" in page
    after = ok(ann.get(f"competitions/{world.slug}/leaderboard")).text
    assert 'data-participant="ann"' in after
    # ben may not choose ann's submission.
    assert server.browser("ben").post(f"submissions/{sid}/unselect").status_code == 403


def test_force_last_offers_no_choice(world_server):
    server, world = world_server
    page = ok(server.browser("ann").get(f"submissions/{world.subs['ann']}")).text
    assert "/select" not in page and "/unselect" not in page


def test_participants_get_no_organizer_actions(world_server):
    server, world = world_server
    ann = server.browser("ann")
    page = ok(ann.get(f"competitions/{world.slug}/submissions")).text
    assert "/rerun" not in page and "/hide" not in page
    assert f"competitions/{world.slug}/participants" not in page and f"competitions/{world.slug}/edit" not in page
    for action in ("rerun", "hide"):
        assert ann.post(f"submissions/{world.subs['ann']}/{action}").status_code == 403, action
    # A participant may cancel their own waiting submission.
    sid = world.subs["ann_waiting"]
    assert f"submissions/{sid}/cancel" in page
    done = ann.post(f"submissions/{sid}/cancel")
    assert done.status_code == 302
    assert server.platform.submission_view(sid, builders.ANN)["status"] == m.CANCELLED
    assert server.browser("ben").post(f"submissions/{world.subs['ann']}/cancel").status_code == 403


def test_the_logo_of_a_bundle_is_shown_on_the_list_and_the_page(platform, tmp_path):
    import shutil

    from hub_extension.demo import DEMO_BUNDLE

    bundle = tmp_path / "bundle"
    shutil.copytree(DEMO_BUNDLE, bundle)
    png = bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005000201a5f2a0a50000000049454e44ae426082"
    )
    (bundle / "logo.png").write_bytes(png)
    yaml_path = bundle / "competition.yaml"
    yaml_path.write_text(yaml_path.read_text().replace("registration_auto_approve: true",
                                                       "registration_auto_approve: true\nimage: logo.png"))
    slug, _ = platform.create_competition(bundle, builders.ORGANIZER)
    server = start_server(platform)
    try:
        anonymous = server.browser()
        page = ok(anonymous.get(f"competitions/{slug}")).text
        assert f'<img class="logo" src="{PREFIX}competitions/{slug}/logo"' in page
        assert f'<img class="card-logo" src="{PREFIX}competitions/{slug}/logo"' in ok(anonymous.get("")).text
        logo = ok(anonymous.get(f"competitions/{slug}/logo"))
        assert logo.headers["Content-Type"] == "image/png" and logo.content == png
        assert "inline" in logo.headers["Content-Disposition"]
        assert anonymous.get(f"competitions/{slug}-none/logo").status_code == 404
    finally:
        server.stop()


def test_the_submitted_file_goes_back_to_its_owner_and_the_organizers_only(world_server):
    server, world = world_server
    sid = world.subs["ann"]
    page = ok(server.browser("ann").get(f"submissions/{sid}")).text
    assert f'href="{PREFIX}submissions/{sid}/download"' in page
    for user in ("ann", "olga"):
        file = ok(server.browser(user).get(f"submissions/{sid}/download"))
        assert 'attachment; filename="predictions.zip"' == file.headers["Content-Disposition"]
        assert zipfile.ZipFile(io.BytesIO(file.content)).read("predictions.txt") == b"1\n0\n1\n"
    for user in ("ben", "oscar"):
        assert server.browser(user).get(f"submissions/{sid}/download").status_code == 403, user


def test_an_upload_over_the_cap_is_refused_and_nothing_is_submitted(world_server, tmp_path):
    server, world = world_server
    server.platform.config.max_upload_bytes = 2000
    ann = server.browser("ann")
    before = server.platform.submissions_view(world.slug, builders.ANN)["total"]
    big = builders.zip_bytes({"predictions.txt": "".join(f"{i}\n" for i in range(4000))})
    assert len(big) > 2000
    refused = ann.post(f"competitions/{world.slug}/submit", {"phase": "1"},
                       files={"file": ("big.zip", big, "application/zip")})
    assert refused.status_code == 413 and "the largest accepted is 2000" in refused.text
    assert server.platform.submissions_view(world.slug, builders.ANN)["total"] == before
