"""Provenance, manifests and reproductions over HTTP: who gets what, the canonical manifest, the submission page."""
from __future__ import annotations

import json

from hub_extension import manifest as signing
from tests.hub_extension.app.test_reproductions import allow_reproduce, record
from tests.support.builders import ANN, ORGANIZER
from tests.support.service_harness import PREFIX, ok, visible_text


def recorded_submission(server, world, tmp_path) -> int:
    platform = server.platform
    sid = platform.submit(world.slug, tmp_path / "predictions.zip", username="ann", actor=ANN)
    record(platform, sid, {"accuracy": 0.75, "secret": 0.25, "private_score": 0.1})
    return sid


def test_participants_get_403_on_provenance_manifest_and_reproduce(world_server, tmp_path):
    server, world = world_server
    sid = recorded_submission(server, world, tmp_path)
    ann, ben, olga = server.client("ann"), server.client("ben"), server.client("olga")
    for path in (f"api/v1/submissions/{sid}/provenance", f"api/v1/submissions/{sid}/manifest",
                 f"api/v1/submissions/{sid}/comparison"):
        assert ann.get(path).status_code == 403, path
        assert ben.get(path).status_code == 403, path
    assert ann.post(f"api/v1/submissions/{sid}/reproduce", json={}).status_code == 403
    assert ann.post(f"api/v1/competitions/{world.slug}/phases/1/reproduce-top", json={"top": 1}).status_code == 403
    assert server.client().get(f"api/v1/submissions/{sid}/manifest").status_code == 401

    # The participant's submission view has no provenance; the organizer's has it per run.
    assert all("provenance" not in run for run in ok(ann.get(f"api/v1/submissions/{sid}")).json()["runs"])
    assert ok(olga.get(f"api/v1/submissions/{sid}")).json()["runs"][0]["provenance"]["image"]["digest"]

    # Allowed in the phase: the owner reproduces their own, not another's.
    allow_reproduce(server.platform, world.slug)
    made = ann.post(f"api/v1/submissions/{sid}/reproduce", json={})
    assert made.status_code == 201, made.text
    assert ben.post(f"api/v1/submissions/{sid}/reproduce", json={}).status_code == 403
    assert ann.get(f"api/v1/submissions/{sid}/manifest").status_code == 403
    assert made.json()["id"] not in [i["id"] for i in ok(ann.get(f"api/v1/competitions/{world.slug}/submissions")).json()["items"]]


def test_the_manifest_is_canonical_and_verifies(world_server, tmp_path):
    server, world = world_server
    sid = recorded_submission(server, world, tmp_path)
    answer = ok(server.client("olga").get(f"api/v1/submissions/{sid}/manifest"))
    assert answer.headers["Content-Type"].startswith("application/json")
    document = json.loads(answer.content)
    assert answer.content == signing.document_bytes(document)
    assert signing.verify_bytes(answer.content, signing.load_key(server.platform.config.home)).valid
    assert document["manifest"]["submission"]["id"] == sid


def test_reproduce_and_reproduce_top_over_the_api(world_server, tmp_path):
    server, world = world_server
    sid = recorded_submission(server, world, tmp_path)
    olga = server.client("olga")
    made = olga.post(f"api/v1/submissions/{sid}/reproduce", json={"queue": "default"})
    assert made.status_code == 201 and made.json()["pinned"]["queue"] == "default"
    assert olga.post(f"api/v1/submissions/{sid}/reproduce", json={"queue": 3}).status_code == 400
    top = olga.post(f"api/v1/competitions/{world.slug}/phases/1/reproduce-top", json={"top": 1})
    assert top.status_code == 201 and [r["reproduces"] for r in top.json()["reproductions"]] == [world.subs["ben"]]
    assert olga.post(f"api/v1/competitions/{world.slug}/phases/1/reproduce-top",
                     json={"top": 101}).status_code == 400
    pending = ok(olga.get(f"api/v1/submissions/{made.json()['id']}/comparison")).json()
    assert pending["original"]["id"] == sid and pending["scores"] == []


def test_the_submission_page_shows_provenance_and_the_reproduction_to_organizers(world_server, tmp_path):
    server, world = world_server
    sid = recorded_submission(server, world, tmp_path)
    olga, ann = server.browser("olga"), server.browser("ann")
    page = ok(olga.get(f"submissions/{sid}")).text
    assert 'id="provenance"' in page and "Test CPU 3000" in page and 'id="reproduce-form"' in page
    assert f"{PREFIX}api/v1/submissions/{sid}/manifest" in page
    mine = ok(ann.get(f"submissions/{sid}")).text
    assert 'id="provenance"' not in mine and "Test CPU 3000" not in mine and 'id="reproduce-form"' not in mine

    done = olga.post(f"submissions/{sid}/reproduce", {"next": f"{PREFIX}submissions/{sid}"})
    assert done.status_code == 302, done.text[:500]
    rid = server.platform.reproduction_comparison(sid, ORGANIZER)["reproduction"]["id"]
    record(server.platform, rid, {"accuracy": 0.5, "secret": 0.25, "private_score": 0.1})
    page = ok(olga.get(f"submissions/{sid}")).text
    text = visible_text(page)
    assert 'id="comparison"' in page and 'data-equal="no"' in page
    assert "-0.25" in text
    assert f"A reproduction of submission {sid}" in visible_text(ok(olga.get(f"submissions/{rid}")).text)
    # A participant never opens the organizers' reproduction of their submission.
    assert ann.get(f"submissions/{rid}").status_code in (403, 404)
