"""Similarity signals through the service process as the hub starts it: participants submit near-copies
over the API, the service's sweep pairs them, organizers review them (API and pages), nobody else may."""
from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest
import requests

from hub_extension.app import Actor, Platform
from hub_extension.bundles.model import DataRef
from tests.hub_extension.test_similarity import CELLS, KIT, RENAMED, UNRELATED, notebook, zipped
from tests.support.builders import ORGANIZER, simple_spec
from tests.support.components import terminate, wait_for
from tests.support.hub import free_ports
from tests.support.paths import REPO
from tests.support.queues import stop_default_queue
from tests.support.service_harness import PREFIX, StandInHubAPI, token_for

CONFIG = """c = get_config()  # noqa: F821
c.Compete.executor = "process"
c.Compete.board_reader_processes = 0
c.Compete.default_queue_workers = 1
c.Compete.default_queue_threads = 1
c.Compete.similarity_sweep_seconds = 0.5
"""
# What a hostile participant might put in their code: shown on the pair page as text, never as markup.
SCRIPT = "print('<script>alert(1)</script>')\n"


def code_zip(cells: list[str]) -> bytes:
    """A code submission: the cells as the files of a package, run by a `metadata` command that does nothing."""
    files = {f"solution/part{i}.py": (cell + "\n").encode() for i, cell in enumerate(cells)}
    return zipped({"metadata": b"command: python -c pass\n", **files})


@pytest.fixture
def service(tmp_path):
    """The service process on a platform home with one competition (its kit: KIT) and ann, ben, nora registered."""
    home = tmp_path / "home"
    home.mkdir()
    (home / "compete_config.py").write_text(CONFIG)
    platform = Platform(home=str(home))
    kit = platform.store.put_dataset_bytes(zipped({"starting_kit/kit.ipynb": notebook(KIT)}))
    slug = platform.competitions.insert_competition(
        simple_spec(starting_kit=DataRef("key", kit), start=dt.datetime(2020, 1, 1)), ORGANIZER)
    for name in ("ann", "ben", "nora"):
        platform.register(slug, name, Actor(name), accept_terms=True)
    hub_api = StandInHubAPI()
    port = free_ports(1)[0]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COMPETE_", "JUPYTERHUB_"))}
    env.update({"COMPETE_HOME": str(home), **hub_api.service_environment(port)})
    log_path = tmp_path / "service.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "hub_extension.service"], cwd=REPO, env=env, stdout=log,
                                stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}{PREFIX}"

    def answers() -> bool:
        assert proc.poll() is None, log_path.read_text()
        try:
            return requests.get(f"{base}api/v1/health", timeout=5).status_code == 200
        except requests.RequestException:
            return False

    try:
        wait_for(answers, 120, "the service to answer", lambda: log_path.read_text())
        yield base, slug, platform, log_path
    finally:
        terminate(proc)
        stop_default_queue(platform)
        platform.close()
        hub_api.close()


def as_(name: str) -> requests.Session:
    session = requests.Session()
    session.headers["Authorization"] = f"token {token_for(name)}"
    return session


def test_the_sweep_pairs_near_copies_and_only_organizers_review_them(service):
    base, slug, platform, log_path = service
    api = f"{base}api/v1/competitions/{slug}"
    ids = {}
    for who, cells in (("ann", KIT + CELLS + [SCRIPT]), ("ben", RENAMED + [SCRIPT]), ("nora", KIT + UNRELATED)):
        resp = as_(who).post(f"{api}/submissions", files={"file": (f"{who}.zip", code_zip(cells))}, timeout=60)
        assert resp.status_code == 201, resp.text
        assert resp.json()["kind"] == "code"
        ids[who] = resp.json()["id"]

    olga = as_("olga")

    def paired() -> list:
        resp = olga.get(f"{api}/similarity", timeout=30)
        assert resp.status_code == 200, resp.text
        listing = resp.json()
        return listing["pairs"] if listing["signed"] == 3 else []

    wait_for(paired, 60, "the service's sweep to sign the submissions and pair them", lambda: log_path.read_text())
    listing = olga.get(f"{api}/similarity", timeout=30).json()
    assert listing["pending"] == 0 and listing["errors"] == [] and listing["threshold"] == 0.8
    [pair] = listing["pairs"]
    assert (pair["first"]["username"], pair["second"]["username"]) == ("ann", "ben")
    assert (pair["first"]["submission_id"], pair["second"]["submission_id"]) == (ids["ann"], ids["ben"])
    assert pair["similarity"] >= 0.8 and pair["verdict"] is None
    assert olga.get(f"{api}/similarity?min=1.0", timeout=30).json()["pairs"] in ([], [pair])
    assert olga.get(f"{api}/similarity?min=2", timeout=30).status_code == 400

    detail = olga.get(f"{api}/similarity/{pair['id']}", timeout=30).json()
    assert "RandomForestClassifier" in detail["first"]["source"] and "clf.fit(A, b)" in detail["second"]["source"]
    assert "ID . ID ( ID , ID )" in detail["second"]["normalized"]
    assert olga.get(f"{api}/similarity/999999", timeout=30).status_code == 404

    # The pages: the list, and the pair side by side with the participant's markup as text.
    page = olga.get(f"{base}competitions/{slug}/similarity", timeout=30)
    assert page.status_code == 200 and f'href="{PREFIX}competitions/{slug}/similarity/{pair["id"]}"' in page.text
    page = olga.get(f"{base}competitions/{slug}/similarity/{pair['id']}", timeout=30)
    assert page.status_code == 200 and 'id="similarity-diff"' in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page.text and "<script>alert(1)" not in page.text
    normalized = olga.get(f"{base}competitions/{slug}/similarity/{pair['id']}?view=normalized", timeout=30)
    assert normalized.status_code == 200 and "ID . ID ( ID , ID )" in normalized.text
    # Linked from the organizers' pages of the competition, not from participants'.
    assert 'id="similarity-tab"' in olga.get(f"{base}competitions/{slug}/participants", timeout=30).text
    assert 'id="similarity-tab"' not in as_("ann").get(f"{base}competitions/{slug}", timeout=30).text

    reviewed = olga.patch(f"{api}/similarity/{pair['id']}", json={"verdict": "copy"}, timeout=30)
    assert reviewed.status_code == 200 and reviewed.json()["verdict"] == "copy"
    assert reviewed.json()["reviewed_by"] == "olga"
    assert olga.patch(f"{api}/similarity/{pair['id']}", json={"verdict": "maybe"}, timeout=30).status_code == 400

    # Participants, an unregistered person and another competition's organizer: refused everywhere.
    for who in ("ann", "ben", "nora", "oscar"):
        session = as_(who)
        for method, url, kwargs in (
            ("GET", f"{api}/similarity", {}),
            ("GET", f"{api}/similarity/{pair['id']}", {}),
            ("PATCH", f"{api}/similarity/{pair['id']}", {"json": {"verdict": "independent"}}),
            ("GET", f"{base}competitions/{slug}/similarity", {}),
            ("GET", f"{base}competitions/{slug}/similarity/{pair['id']}", {}),
        ):
            resp = session.request(method, url, timeout=30, allow_redirects=False, **kwargs)
            assert resp.status_code in (403, 404), (who, method, url, resp.status_code, resp.text[:300])
            assert "RandomForestClassifier" not in resp.text
    assert olga.get(f"{api}/similarity/{pair['id']}", timeout=30).json()["verdict"] == "copy"
    text = Path(log_path).read_text()
    assert "Traceback" not in text, text[-3000:]


def test_the_pages_sign_on_demand_and_record_a_verdict(platform, tmp_path):
    """The pages' forms, with strict templates (an undefined name fails a render): scan, list, compare, verdict."""
    from tests.support.service_harness import start_server

    kit = platform.store.put_dataset_bytes(zipped({"kit.ipynb": notebook(KIT)}))
    slug = platform.competitions.insert_competition(
        simple_spec(starting_kit=DataRef("key", kit), start=dt.datetime(2020, 1, 1)), ORGANIZER)
    for who, cells in (("ann", CELLS + [SCRIPT]), ("ben", RENAMED + [SCRIPT])):
        platform.register(slug, who, Actor(who), accept_terms=True)
        path = tmp_path / f"{who}.zip"
        path.write_bytes(code_zip(cells))
        platform.submit(slug, path, username=who, actor=Actor(who))
    server = start_server(platform)
    try:
        olga = server.browser("olga")
        page = olga.get(f"competitions/{slug}/similarity")
        assert page.status_code == 200 and 'data-measure="pending">2<' in page.text and "similarity-none" in page.text
        done = olga.follow(olga.post(f"competitions/{slug}/similarity"))
        assert "2 submission(s) signed (0 with an error), 1 pair(s) found." in done.text
        [pair] = platform.similarity_pairs(slug, ORGANIZER)["pairs"]
        assert f'data-pair="{pair["id"]}"' in done.text
        shown = olga.follow(olga.post(f"competitions/{slug}/similarity/{pair['id']}", {"verdict": "unsure"}))
        assert "Verdict on pair" in shown.text and 'id="reviewed-by">unsure, by olga<' in shown.text
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in shown.text and "<script>alert(1)" not in shown.text
        cleared = olga.follow(olga.post(f"competitions/{slug}/similarity/{pair['id']}", {"verdict": ""}))
        assert 'id="reviewed-by"' not in cleared.text
        assert platform.similarity_pair(slug, pair["id"], ORGANIZER)["verdict"] is None
        ann = server.browser("ann")
        assert ann.post(f"competitions/{slug}/similarity/{pair['id']}", {"verdict": "independent"}).status_code == 403
        assert ann.post(f"competitions/{slug}/similarity").status_code == 403
    finally:
        server.stop()
