"""Rerunning a phase, deleting a submission and downloading submissions, through the API and the pages."""
from __future__ import annotations

import hashlib
import io
import json
import os
import re
import zipfile

from hub_extension.app.downloads import Bundle, Entry
from hub_extension.contract import StoreLayout
from hub_extension.service.zip_stream import zip_chunks
from tests.support import builders
from tests.support.service_harness import PREFIX, ok


def _error(resp) -> dict:
    assert resp.headers["Content-Type"].startswith("application/json"), resp.text
    return resp.json()["error"]


def _zip_matches_its_manifest(data: bytes) -> dict:
    """The manifest of a downloaded zip, after checking every entry against the zip's content."""
    archive = zipfile.ZipFile(io.BytesIO(data))
    assert archive.testzip() is None
    manifest = json.loads(archive.read("manifest.json"))
    listed = {e["path"]: e for e in manifest["entries"]}
    assert set(archive.namelist()) == set(listed) | {"manifest.json"}
    for path, entry in listed.items():
        content = archive.read(path)
        assert len(content) == entry["size"] and hashlib.sha256(content).hexdigest() == entry["sha256"], path
    return manifest


# -- rerunning a phase --------------------------------------------------------------------------
def test_rerun_all_through_the_api_needs_the_count(world_server):
    server, world = world_server
    olga = server.client("olga")
    url = f"api/v1/competitions/{world.slug}/phases/1/rerun"
    plan = olga.get(url).json()
    assert plan["count"] == 3 and len(plan["items"]) == 3
    missing = olga.post(url)
    assert missing.status_code == 409 and _error(missing)["code"] == "confirmation_needed"
    assert _error(missing)["count"] == 3
    changed = olga.post(url, json={"confirm": 2})
    assert changed.status_code == 409 and _error(changed) | {"message": ""} == {
        "code": "CountChanged", "count": 3, "message": ""}
    assert server.platform.submissions_view(world.slug, builders.ORGANIZER, phase=1)["total"] == 3
    done = olga.post(url, json={"confirm": 3})
    assert done.status_code == 201
    assert sorted(d["parent"] for d in done.json()["submissions"]) == sorted(
        [world.subs["ann"], world.subs["ben"], world.subs["ann_waiting"]])
    for who in ("ann", "oscar"):
        assert server.client(who).get(url).status_code == 403
        assert server.client(who).post(url, json={"confirm": 3}).status_code == 403


def test_rerun_all_from_the_phases_page(world_server):
    server, world = world_server
    olga = server.browser("olga")
    base = f"competitions/{world.slug}/phases"
    page = ok(olga.get(base)).text
    first = re.search(r'<tr data-phase="1" class="current">.*?</tr>', page, re.S).group(0)
    assert "Rerun all (3)" in first and f"api/v1/competitions/{world.slug}/phases/1/submissions.zip" in first
    asked = ok(olga.get(f"{base}/1/confirm/rerun-all")).text
    assert 'data-count="3"' in asked and f'data-submission="{world.subs["ben"]}"' in asked
    # Another submission arrives meanwhile: the old count is refused and asked again.
    server.platform.rerun(world.subs["ann"], builders.ORGANIZER)
    server.platform.cancel_submission(world.subs["ann_waiting"], builders.ANN)
    stale = olga.post(f"{base}/1/rerun-all", {"confirm": "3"})
    assert stale.status_code == 302 and stale.headers["Location"].endswith(f"{base}/1/confirm/rerun-all")
    again = ok(olga.follow(stale)).text
    assert "there are 2 now" in again and 'data-count="2"' in again
    done = olga.post(f"{base}/1/rerun-all", {"confirm": "2"})
    assert done.status_code == 302
    assert "2 submissions of phase 1 run again" in ok(olga.follow(done)).text
    assert server.browser("ann").get(f"{base}/1/confirm/rerun-all").status_code == 403


# -- deleting -----------------------------------------------------------------------------------
def test_delete_through_the_api(world_server):
    server, world = world_server
    url = f"api/v1/submissions/{world.subs['ann']}"
    assert server.client("ben").request("DELETE", url).status_code == 403
    assert server.client().request("DELETE", url).status_code == 401
    waiting = server.client("ann").request("DELETE", f"api/v1/submissions/{world.subs['ann_waiting']}")
    assert waiting.status_code == 400 and "cancel it first" in _error(waiting)["message"]
    done = server.client("ann").request("DELETE", url)
    assert done.status_code == 200 and done.json()["was_on_leaderboard"] is True
    assert server.client("ann").get(url).status_code == 404
    board = server.client().get(f"api/v1/competitions/{world.slug}/leaderboard").json()
    assert [r["participant"] for r in board["rows"]] == ["ben"]


def test_delete_from_the_submission_page_asks_first(world_server):
    server, world = world_server
    ann = server.browser("ann")
    sid = world.subs["ann"]
    page = ok(ann.get(f"submissions/{sid}")).text
    assert f'href="{PREFIX}submissions/{sid}/delete"' in page
    waiting = ok(ann.get(f"submissions/{world.subs['ann_waiting']}")).text
    assert "/delete" not in waiting  # not while it runs
    asked = ok(ann.get(f"submissions/{sid}/delete")).text
    assert f"Delete submission {sid}" in asked and 'id="confirm-form"' in asked
    assert server.browser("ben").post(f"submissions/{sid}/delete").status_code == 403
    done = ann.post(f"submissions/{sid}/delete")
    assert done.status_code == 302 and done.headers["Location"] == f"{PREFIX}competitions/{world.slug}/submissions"
    assert f"Submission {sid} is deleted." in ok(ann.follow(done)).text
    assert ann.get(f"submissions/{sid}").status_code == 404


# -- downloads ----------------------------------------------------------------------------------
def test_the_phase_zip_streams_every_file_with_its_manifest(world_server):
    server, world = world_server
    sid = world.subs["ann"]
    attempt = f"submissions/{sid}/attempt-1"
    server.platform.store.put_file_bytes(f"{StoreLayout.step_output(attempt, 0, 'scoring')}/scores.json",
                                         b'{"accuracy": 0.7}')
    resp = server.client("olga").get(f"api/v1/competitions/{world.slug}/phases/1/submissions.zip")
    assert resp.status_code == 200 and resp.headers["Content-Type"] == "application/zip"
    assert f'filename="{world.slug}-phase1-submissions.zip"' in resp.headers["Content-Disposition"]
    manifest = _zip_matches_its_manifest(resp.content)
    assert {s["participant"] for s in manifest["submissions"]} == {"ann", "ben"}
    scores = next(e for e in manifest["entries"] if e["path"].endswith("scoring_output/task-0/scores.json"))
    assert scores["submission"] == sid and scores["participant"] == "ann" and scores["status"] == "Finished"
    assert scores["scores"]["accuracy"] == 0.7

    one = server.client("olga").get(f"api/v1/submissions/{world.subs['ben']}/bundle.zip")
    assert one.status_code == 200
    assert [s["id"] for s in _zip_matches_its_manifest(one.content)["submissions"]] == [world.subs["ben"]]
    for who in ("ann", "oscar"):
        assert server.client(who).get(f"api/v1/competitions/{world.slug}/phases/1/submissions.zip").status_code == 403
        assert server.client(who).get(f"api/v1/submissions/{sid}/bundle.zip").status_code == 403


def test_the_zip_is_written_in_bounded_chunks_and_says_what_it_left_out(tmp_path):
    big = tmp_path / "big.bin"
    big.write_bytes(os.urandom(10 << 20))  # 10 MB that does not compress

    def missing():
        raise FileNotFoundError(2, "No such file or directory")

    entries = [Entry("a/big.bin", lambda: big.open("rb"), {"submission": 1}),
               Entry("a/gone.txt", missing, {"submission": 1}),
               Entry("a/big.bin", lambda: io.BytesIO(b"same name"), {"submission": 2})]
    chunks = list(zip_chunks(Bundle("t.zip", iter(entries), {"competition": "c"}), chunk=1 << 18))
    assert len(chunks) > 10 and max(len(c) for c in chunks) < 3 * (1 << 18)
    manifest = _zip_matches_its_manifest(b"".join(chunks))
    assert [e["path"] for e in manifest["entries"]] == ["a/big.bin", "a/big.bin~2"]
    assert manifest["left_out"] == [{"path": "a/gone.txt", "reason": "it could not be read: No such file or directory"}]
    assert manifest["competition"] == "c"
