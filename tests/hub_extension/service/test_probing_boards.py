"""Probing-resistant boards through the service: stored full-precision scores reach organizers only.

A Ladder board (step 0.05) of a competition where ann and ben submit several
times.  Participants and visitors read the shown values in their order (API,
CSV, page, history) and a participant's own submission withholds its exact
board scores and its scoring outputs; organizers read the stored values with
the shown ones beside them.  The exact scores are written with four decimals
no shown value has, so that finding them anywhere is a leak.
"""
from __future__ import annotations

import pytest

from hub_extension import models as m
from tests.support.builders import ANN, BEN, ORGANIZER, SECRET_LOG_TEXT, finish, results_zip, secrets_spec
from tests.support.service_harness import ok, start_server

# ann: 0.7 shown; 0.7321 does not beat it by more than 0.05; 0.7789 does and is shown as 0.8 (the grid).
# ben: 0.8 shown; his latest, 0.8234 (the one Force_Last ranks), does not move it.
ANN_SCORES = [0.7, 0.7321, 0.7789]
BEN_SCORES = [0.8, 0.8234]
EXACT = ["0.7321", "0.7789", "0.8234"]


@pytest.fixture
def ladder(platform, tmp_path):
    spec = secrets_spec(platform.store)
    main = spec.leaderboards[0]
    main.ladder, main.ladder_step = "fixed", 0.05
    main.columns[0].precision = 4  # pages would show every digit of a stored value
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    upload = results_zip(tmp_path)
    subs: dict[str, list[int]] = {"ann": [], "ben": []}
    for actor in (ANN, BEN):
        assert platform.register(slug, actor.username, actor, accept_terms=True) == m.APPROVED
    for actor, scores in ((BEN, BEN_SCORES[:1]), (ANN, ANN_SCORES), (BEN, BEN_SCORES[1:])):
        for value in scores:
            sid = platform.submit(slug, upload, username=actor.username, actor=actor)
            finish(platform, sid, {"accuracy": value, "secret": 0.5, "private_score": value})
            subs[actor.username].append(sid)
    server = start_server(platform)
    yield server, slug, subs
    server.stop()


def leaks(text: str) -> list[str]:
    return [value for value in EXACT if value in text]


def test_participants_and_visitors_read_the_shown_values_in_their_order(ladder):
    server, slug, subs = ladder
    for client in (server.client("ann"), server.client("ben"), server.client()):
        board = ok(client.get(f"api/v1/competitions/{slug}/leaderboard")).json()
        assert board["probing"] == {"display_precision": None, "ladder": "fixed", "ladder_step": 0.05,
                                    "shown_values": True, "note": (
                                        "Scores on this board are shown by the Ladder: an entry's shown score "
                                        "changes only when a new submission beats it by more than 0.05; the "
                                        "final ranking uses the exact scores.")}
        rows = [(r["rank"], r["submission"], r["scores"]["accuracy"], r["ranks"]["accuracy"]) for r in board["rows"]]
        # Equal shown values share rank 1; the earlier submission (ann's 0.7789) comes first.
        assert rows == [(1, subs["ann"][2], 0.8, 1), (2, subs["ben"][1], 0.8, 1)]
        assert "shown" not in board["rows"][0]
        assert not leaks(ok(client.get(f"api/v1/competitions/{slug}/leaderboard")).text)
        csv_text = ok(client.get(f"api/v1/competitions/{slug}/leaderboard.csv")).text
        assert not leaks(csv_text) and csv_text.splitlines()[1].startswith(f"1,ann,{subs['ann'][2]},")
        assert ok(client.get(f"api/v1/competitions/{slug}/leaderboard/history")).json() == {"items": []}
    for browser in (server.browser("ann"), server.browser()):
        page = ok(browser.get(f"competitions/{slug}/leaderboard")).text
        assert "0.8000" in page and not leaks(page)


def test_a_participants_own_exact_scores_and_scoring_outputs_are_withheld(ladder):
    server, slug, subs = ladder
    client = server.client("ann")
    for sid in subs["ann"]:
        detail = ok(client.get(f"api/v1/submissions/{sid}")).json()
        assert detail["scores_withheld"] is True and "accuracy" not in detail["scores"]
        assert detail["outputs_hidden"] and "detailed_results" not in detail["artifacts"]
        assert all(not run["logs"] for run in detail["runs"] if run["step"] == "scoring")
        assert not leaks(ok(client.get(f"api/v1/submissions/{sid}")).text)
        assert client.get(f"api/v1/submissions/{sid}/logs/0/scoring/stdout").status_code == 403
        assert client.get(f"api/v1/submissions/{sid}/artifacts/detailed_results").status_code == 403
        page = ok(server.browser("ann").get(f"submissions/{sid}")).text
        assert not leaks(page) and SECRET_LOG_TEXT not in page
    listing = ok(client.get(f"api/v1/competitions/{slug}/submissions")).json()
    assert all(item["scores_withheld"] and "accuracy" not in item["scores"] for item in listing["items"])
    assert not leaks(ok(server.browser("ann").get(f"competitions/{slug}/submissions")).text)


def test_organizers_read_the_stored_scores_with_the_shown_ones_beside_them(ladder):
    server, slug, subs = ladder
    client = server.client("olga")
    board = ok(client.get(f"api/v1/competitions/{slug}/leaderboard")).json()
    assert board["probing"]["shown_values"] is False
    rows = [(r["rank"], r["submission"], r["scores"]["accuracy"], r["shown"]) for r in board["rows"]]
    assert rows == [(1, subs["ben"][1], 0.8234, {"rank": 2, "scores": {"accuracy": 0.8, "secret": 0.5}}),
                    (2, subs["ann"][2], 0.7789, {"rank": 1, "scores": {"accuracy": 0.8, "secret": 0.5}})]
    csv_text = ok(client.get(f"api/v1/competitions/{slug}/leaderboard.csv")).text
    assert "0.8234" in csv_text and "Accuracy (shown)" in csv_text.splitlines()[0]
    assert "0.8234" in ok(server.browser("olga").get(f"competitions/{slug}/leaderboard")).text
    detail = ok(client.get(f"api/v1/submissions/{subs['ben'][1]}")).json()
    assert detail["scores"]["accuracy"] == 0.8234 and detail["scores_withheld"] is False
    assert ok(client.get(f"api/v1/submissions/{subs['ben'][1]}/logs/0/scoring/stdout")).text.startswith(
        SECRET_LOG_TEXT)
    assert ok(client.get(f"api/v1/competitions/{slug}/leaderboard/history")).json()["items"]  # the exact bests


def test_the_organizers_set_and_lift_the_rule(ladder):
    server, slug, subs = ladder
    url = f"api/v1/competitions/{slug}/leaderboards/main/probing"
    refused = server.client("ann").put(url, json={"display_precision": 1})
    assert refused.status_code == 403
    bad = server.client("olga").put(url, json={"ladder": "fixed"})
    assert bad.status_code == 400 and "ladder 'fixed' needs ladder_step" in bad.text
    assert server.client("olga").put(url, json={"precision": 1}).status_code == 400
    # Precision only: every row by its own score, rounded (a tie: the earlier first); own scores rounded
    # too, outputs shown again.
    ok(server.client("olga").put(url, json={"display_precision": 1}))
    board = ok(server.client("ann").get(f"api/v1/competitions/{slug}/leaderboard")).json()
    assert [(r["submission"], r["scores"]["accuracy"]) for r in board["rows"]] == [
        (subs["ann"][2], 0.8), (subs["ben"][1], 0.8)]
    detail = ok(server.client("ann").get(f"api/v1/submissions/{subs['ann'][1]}")).json()
    assert detail["scores"]["accuracy"] == 0.7 and detail["scores_withheld"] is False
    assert ok(server.client("ann").get(f"api/v1/submissions/{subs['ann'][1]}/logs/0/scoring/stdout"))
    assert "display_precision: 1" in ok(server.client("olga").get(f"api/v1/competitions/{slug}/yaml")).json()["yaml"]
    # Off: the stored scores for everyone.
    ok(server.client("olga").put(url, json={}))
    board = ok(server.client("ann").get(f"api/v1/competitions/{slug}/leaderboard")).json()
    assert board["probing"] is None and board["rows"][0]["scores"]["accuracy"] == 0.8234


def test_the_pages_say_so_and_the_editor_sets_the_rule(ladder):
    server, slug, subs = ladder
    page = ok(server.browser("ann").get(f"competitions/{slug}/leaderboard")).text
    assert 'id="probing-note"' in page and "by more than 0.05" in page
    own = ok(server.browser("ann").get(f"submissions/{subs['ann'][0]}")).text
    assert 'id="scores-withheld"' in own
    browser = server.browser("olga")
    form = ok(browser.get(f"competitions/{slug}/edit/leaderboards")).text
    assert 'id="probing-main"' in form and 'value="0.05"' in form
    refused = browser.post(f"competitions/{slug}/edit/leaderboards/main/probing",
                           {"display_precision": "two", "ladder": "fixed", "ladder_step": "0.05"})
    assert refused.status_code == 400 and "display_precision must be a number, got &#39;two&#39;" in refused.text
    refused = browser.post(f"competitions/{slug}/edit/leaderboards/main/probing",
                           {"display_precision": "", "ladder": "fixed", "ladder_step": ""})
    assert refused.status_code == 400 and "ladder &#39;fixed&#39; needs ladder_step" in refused.text
    saved = browser.post(f"competitions/{slug}/edit/leaderboards/main/probing",
                         {"display_precision": "3", "ladder": "parameter_free", "ladder_step": "0.05"})
    assert saved.status_code in (200, 302), saved.text[:500]
    board = ok(server.client("ann").get(f"api/v1/competitions/{slug}/leaderboard")).json()
    assert {k: v for k, v in board["probing"].items() if k != "note"} == {
        "display_precision": 3, "ladder": "parameter_free", "ladder_step": None, "shown_values": True}
    assert board["probing"]["note"].startswith("Scores on this board are shown to 3 decimal(s), by the Ladder")
    assert not leaks(ok(server.client("ann").get(f"api/v1/competitions/{slug}/leaderboard")).text)
    assert server.browser("ann").post(f"competitions/{slug}/edit/leaderboards/main/probing",
                                      {"display_precision": ""}).status_code in (403, 404)


def test_a_failed_scoring_steps_stderr_is_not_quoted_to_participants(ladder, platform, tmp_path):
    server, slug, subs = ladder
    sid = platform.submit(slug, results_zip(tmp_path, "again.zip"), username="ann", actor=ANN)
    error = "the scoring program exited with code 1\n--- last lines of stderr ---\naccuracy so far 0.7321"
    assert platform.runs.record_result(sid, {"status": "Failed", "error": error, "scores": {}, "tasks": [],
                                             "artifacts": {}, "worker": "test-worker"})
    detail = ok(server.client("ann").get(f"api/v1/submissions/{sid}")).json()
    assert detail["error"] == ("the scoring program exited with code 1 (the scoring program's output is not "
                               "shown in this competition)")
    assert ok(server.client("olga").get(f"api/v1/submissions/{sid}")).json()["error"] == error
