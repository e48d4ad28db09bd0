"""Open in JupyterLab without a hub: which files, the decisions per file, the manifest, the note.

`deliver` runs here on `FolderServer`, a stand-in for a user's server that
keeps files in a dict and hashes them as the contents API does (sha256 of the
bytes); tests/hub_extension/lab/test_starting_kit.py does the same against the real
hub and a real JupyterLab server.  The page and API routes run in-process
with the service's own handlers (permission checks before any hub call).
"""
from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path
from typing import Optional

import pytest

from hub_extension import starting_kit as sk
from hub_extension.app import Forbidden, NotFound
from tests.support import builders
from tests.support.service_harness import ServiceServer, start_server


def kit(path: str, text: str, source: str = "starting_kit") -> sk.KitFile:
    return sk.KitFile.from_bytes(path, text.encode(), source)


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class FolderServer:
    """A user's server as `deliver` sees it: files by path, hashed like the contents API."""

    def __init__(self, files: Optional[dict[str, bytes]] = None):
        self.files = dict(files or {})
        self.folders: set[str] = set()
        self.writes: list[str] = []

    def file_hash(self, path: str) -> Optional[str]:
        data = self.files.get(path)
        return None if data is None else hashlib.sha256(data).hexdigest()

    def read(self, path: str) -> Optional[bytes]:
        return self.files.get(path)

    def make_folder(self, path: str) -> None:
        self.folders.add(path)

    def write(self, path: str, data: bytes) -> None:
        self.writes.append(path)
        self.files[path] = data

    def text(self, path: str) -> str:
        return self.files[path].decode()


FOLDER = "competitions/demo"


def deliver(server: FolderServer, files: list[sk.KitFile]) -> dict:
    return sk.deliver(server, FOLDER, files, slug="demo", title="Demo", phase=1, page="/services/competitions/x")


# -- the decisions -------------------------------------------------------------------------------------
def test_a_first_delivery_writes_every_file_and_records_it():
    files = [kit("nb.ipynb", "v1"), kit("data/train.csv", "a,b", "public_data")]
    plan = sk.plan_delivery(files, sk.Manifest(), {"nb.ipynb": None, "data/train.csv": None})
    assert plan.write == ["nb.ipynb", "data/train.csv"] and plan.keep == [] and plan.offer == {}
    assert plan.manifest.delivered == {"nb.ipynb": sha("v1"), "data/train.csv": sha("a,b")}


def test_a_file_the_participant_changed_is_kept_and_never_offered_an_unchanged_kit():
    manifest = sk.Manifest(delivered={"nb.ipynb": sha("v1")})
    plan = sk.plan_delivery([kit("nb.ipynb", "v1")], manifest, {"nb.ipynb": sha("mine")})
    assert plan.write == [] and plan.keep == ["nb.ipynb"] and plan.offer == {}
    assert plan.manifest.delivered == {"nb.ipynb": sha("v1")}


def test_an_untouched_file_follows_the_organizers_new_version():
    manifest = sk.Manifest(delivered={"nb.ipynb": sha("v1")})
    plan = sk.plan_delivery([kit("nb.ipynb", "v2")], manifest, {"nb.ipynb": sha("v1")})
    assert plan.write == ["nb.ipynb"] and plan.offer == {}
    assert plan.manifest.delivered["nb.ipynb"] == sha("v2")


def test_a_changed_file_gets_the_new_version_next_to_it_once():
    manifest = sk.Manifest(delivered={"nb.ipynb": sha("v1")})
    plan = sk.plan_delivery([kit("nb.ipynb", "v2")], manifest, {"nb.ipynb": sha("mine")})
    copy = f"nb.update-{sha('v2')[:8]}.ipynb"
    assert plan.write == [] and plan.keep == ["nb.ipynb"] and plan.offer == {"nb.ipynb": copy}
    # Recorded as offered; the file stays known as delivered in v1.
    assert plan.manifest.offered == {"nb.ipynb": sha("v2")} and plan.manifest.delivered["nb.ipynb"] == sha("v1")
    again = sk.plan_delivery([kit("nb.ipynb", "v2")], plan.manifest, {"nb.ipynb": sha("mine")})
    assert again.offer == {} and again.keep == ["nb.ipynb"]
    # A third version is offered in its turn.
    third = sk.plan_delivery([kit("nb.ipynb", "v3")], plan.manifest, {"nb.ipynb": sha("mine")})
    assert third.offer == {"nb.ipynb": f"nb.update-{sha('v3')[:8]}.ipynb"}


def test_a_file_of_the_participant_where_nothing_was_delivered_is_theirs():
    plan = sk.plan_delivery([kit("model.py", "kit")], sk.Manifest(), {"model.py": sha("theirs")})
    assert plan.write == [] and plan.keep == ["model.py"] and list(plan.offer) == ["model.py"]


def test_a_deleted_file_comes_back_and_taking_the_update_by_hand_settles_it():
    manifest = sk.Manifest(delivered={"nb.ipynb": sha("v1")}, offered={"nb.ipynb": sha("v2")})
    assert sk.plan_delivery([kit("nb.ipynb", "v2")], manifest, {"nb.ipynb": None}).write == ["nb.ipynb"]
    settled = sk.plan_delivery([kit("nb.ipynb", "v2")], manifest, {"nb.ipynb": sha("v2")})
    assert settled.keep == ["nb.ipynb"] and settled.manifest.delivered["nb.ipynb"] == sha("v2")
    assert settled.manifest.offered == {}


def test_an_unreadable_manifest_assumes_nothing():
    for text in (None, "", "not json", "[]", '{"files": {"a": 3}}', '{"files": [], "offered": 7}'):
        manifest = sk.Manifest.from_json(text)
        assert manifest.delivered == {} and manifest.offered == {}
    # So a file that differs is the participant's, not replaced.
    plan = sk.plan_delivery([kit("nb.ipynb", "v2")], sk.Manifest.from_json("{broken"), {"nb.ipynb": sha("v1")})
    assert plan.write == [] and "nb.ipynb" in plan.offer


def test_update_copy_names_keep_the_folder_and_the_suffix():
    digest = sha("x")
    assert sk.update_copy_name("nb.ipynb", digest) == f"nb.update-{digest[:8]}.ipynb"
    assert sk.update_copy_name("src/model.py", digest) == f"src/model.update-{digest[:8]}.py"
    assert sk.update_copy_name("data/README", digest) == f"data/README.update-{digest[:8]}"


# -- delivering into a folder --------------------------------------------------------------------------
def test_deliver_writes_the_files_and_a_manifest_that_names_the_competition():
    server = FolderServer()
    result = deliver(server, [kit("nb.ipynb", "v1"), kit("data/test.csv", "id\n1\n", "public_data")])
    assert result["written"] == ["nb.ipynb", "data/test.csv"] and result["updated"] == [] and result["note"] is None
    assert server.text(f"{FOLDER}/nb.ipynb") == "v1" and server.text(f"{FOLDER}/data/test.csv") == "id\n1\n"
    manifest = json.loads(server.text(f"{FOLDER}/competition.json"))
    assert manifest["competition"] == "demo" and manifest["phase"] == 1 and manifest["title"] == "Demo"
    assert manifest["files"]["data/test.csv"] == {"sha256": sha("id\n1\n"), "source": "public_data"}
    assert {FOLDER, f"{FOLDER}/data"} <= server.folders
    # The manifest is written last: a delivery cut short claims nothing it did not write.
    assert server.writes[-1] == f"{FOLDER}/competition.json"


def test_deliver_twice_changes_nothing_the_second_time():
    server = FolderServer()
    files = [kit("nb.ipynb", "v1")]
    deliver(server, files)
    server.writes.clear()
    result = deliver(server, files)
    assert result["written"] == [] and result["kept"] == ["nb.ipynb"]
    assert server.writes == [f"{FOLDER}/competition.json"]


def test_deliver_keeps_the_participants_edit_and_offers_the_update_with_a_note():
    server = FolderServer()
    deliver(server, [kit("nb.ipynb", "v1"), kit("helpers.py", "h1")])
    server.files[f"{FOLDER}/nb.ipynb"] = b"my work"
    result = deliver(server, [kit("nb.ipynb", "v2"), kit("helpers.py", "h2")])
    copy = f"nb.update-{sha('v2')[:8]}.ipynb"
    assert result["updated"] == ["nb.ipynb"] and result["update_copies"] == {"nb.ipynb": copy}
    assert result["written"] == ["helpers.py"]  # untouched: follows the organizer
    assert server.text(f"{FOLDER}/nb.ipynb") == "my work"
    assert server.text(f"{FOLDER}/{copy}") == "v2" and server.text(f"{FOLDER}/helpers.py") == "h2"
    note = server.text(f"{FOLDER}/UPDATES.md")
    assert result["note"] == f"{FOLDER}/UPDATES.md" and f"`nb.ipynb`: the new version is `{copy}`" in note
    # Once offered, not again; a later version adds to the note above the earlier entry.
    assert deliver(server, [kit("nb.ipynb", "v2"), kit("helpers.py", "h2")])["updated"] == []
    deliver(server, [kit("nb.ipynb", "v3"), kit("helpers.py", "h2")])
    note = server.text(f"{FOLDER}/UPDATES.md")
    assert note.count("# Updates of the starting kit") == 1
    assert note.index(f"nb.update-{sha('v3')[:8]}") < note.index(copy)
    assert server.text(f"{FOLDER}/nb.ipynb") == "my work"


def test_a_participants_own_note_text_is_kept_in_the_note():
    server = FolderServer({f"{FOLDER}/UPDATES.md": b"my own remarks\n"})
    deliver(server, [kit("nb.ipynb", "v1")])
    server.files[f"{FOLDER}/nb.ipynb"] = b"mine"
    deliver(server, [kit("nb.ipynb", "v2")])
    assert "my own remarks" in server.text(f"{FOLDER}/UPDATES.md")


# -- the files of a phase ----------------------------------------------------------------------------
def zip_of(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, data in files.items():
            zf.writestr(name, data)
    return buf.getvalue()


def test_zip_members_that_are_unsafe_hidden_or_leftovers_are_not_delivered(tmp_path):
    archive = tmp_path / "kit.zip"
    archive.write_bytes(zip_of({
        "nb.ipynb": b"{}", "src/": b"", "src/model.py": b"x", "../escape.py": b"x", "/abs.py": b"x",
        ".hidden": b"x", "src/.cache/x": b"x", "__MACOSX/._nb.ipynb": b"x", "src/.DS_Store": b"x",
        "competition.json": b"{}", "./dot/ok.txt": b"ok",
    }))
    files = sk.files_of_zip(archive, source="starting_kit")
    assert [f.path for f in files] == ["dot/ok.txt", "nb.ipynb", "src/model.py"]
    assert files[0].read() == b"ok" and files[0].sha256 == hashlib.sha256(b"ok").hexdigest()
    data = sk.files_of_zip(archive, prefix="data", source="public_data")
    assert "data/competition.json" in [f.path for f in data]  # only the folder's own manifest name is reserved


def test_the_notebook_to_open_is_the_kits_top_level_starting_notebook():
    files = [kit("a.ipynb", ""), kit("starting_kit.ipynb", ""), kit("deep/starting.ipynb", ""),
             kit("data/x.ipynb", "", "public_data")]
    assert sk.main_notebook(files) == "starting_kit.ipynb"
    assert sk.main_notebook([kit("z.ipynb", ""), kit("b.ipynb", "")]) == "b.ipynb"
    assert sk.main_notebook([kit("README.md", ""), kit("data/x.ipynb", "", "public_data")]) is None


@pytest.fixture
def world(tmp_path):
    from hub_extension.app import Platform

    platform = Platform(home=str(tmp_path / "home"))
    yield platform, builders.build_world(platform, tmp_path)
    platform.close()


def test_phase_files_are_the_kit_and_the_data_for_those_who_may_download_them(world):
    platform, w = world
    for actor in (builders.ANN, builders.ORGANIZER, builders.ADMIN):
        detail, files = platform.phase_files(w.slug, 1, actor)
        assert [(f.path, f.source) for f in files] == [("README.md", "starting_kit"),
                                                       ("data/public.csv", "public_data")]
        assert detail["slug"] == w.slug
    for actor in (builders.NORA, builders.OTHER_ORGANIZER, builders.ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.phase_files(w.slug, 1, actor)
    with pytest.raises(NotFound, match="no starting kit and no public data"):
        platform.phase_files(w.slug, 2, builders.ORGANIZER)
    with pytest.raises(Forbidden):  # phase 2 has nothing, but a stranger is not told more than "no"
        platform.phase_files(w.slug, 2, builders.NORA)
    with pytest.raises(NotFound, match="phases 1 to 2"):
        platform.phase_files(w.slug, 3, builders.ORGANIZER)


def test_open_in_lab_checks_who_asks_before_it_reaches_for_the_hub(world):
    platform, w = world
    with pytest.raises(Forbidden):
        platform.open_in_lab(w.slug, 1, builders.ANONYMOUS)
    with pytest.raises(Forbidden):
        platform.open_in_lab(w.slug, 1, builders.NORA)
    # Allowed, but this process has no hub to reach: a clear 502.
    with pytest.raises(sk.LabUnavailable, match="JUPYTERHUB_API_URL") as caught:
        platform.open_in_lab(w.slug, 1, builders.ANN, sk.LabAccess.from_environment({}))
    assert caught.value.status == 502


def test_lab_access_comes_from_the_hubs_environment():
    env = {"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api", "JUPYTERHUB_API_TOKEN": "t",
           "COMPETE_PUBLIC_URL": "http://127.0.0.1:8000"}
    access = sk.LabAccess.from_environment(env)
    assert access == sk.LabAccess(hub_api_url="http://127.0.0.1:8081/hub/api/", token="t",
                                  public_url="http://127.0.0.1:8000/")
    del env["COMPETE_PUBLIC_URL"]
    with pytest.raises(sk.LabUnavailable, match="COMPETE_PUBLIC_URL"):
        sk.LabAccess.from_environment(env)
    # The hub's own public URL, when it has one, serves instead.
    env["JUPYTERHUB_PUBLIC_HUB_URL"] = "https://compete.example.org/jh/hub/"
    assert sk.LabAccess.from_environment(env).public_url == "https://compete.example.org/jh/"


# -- the routes, in-process ---------------------------------------------------------------------------
def test_the_api_route_answers_who_may_not_before_it_needs_a_hub(world, monkeypatch):
    for name in ("JUPYTERHUB_API_URL", "JUPYTERHUB_API_TOKEN", "COMPETE_PUBLIC_URL", "JUPYTERHUB_PUBLIC_HUB_URL"):
        monkeypatch.delenv(name, raising=False)
    platform, w = world
    server = ServiceServer(platform).start()
    try:
        path = f"api/v1/competitions/{w.slug}/phases/1/open_in_lab"
        expected = {None: 401, "nora": 403, "oscar": 403, "ann": 502, "olga": 502}
        for name, status in expected.items():
            resp = server.client(name).post(path)
            assert resp.status_code == status, (name, resp.text)
            assert set(resp.json()["error"]) >= {"code", "message"}
        assert server.client("ann").post(path).json()["error"]["code"] == "lab_unavailable"
        assert server.client("ann").post(f"api/v1/competitions/{w.slug}/phases/9/open_in_lab").status_code == 404
    finally:
        server.stop()


def test_the_competition_page_offers_the_button_to_those_who_may_use_it(world):
    platform, w = world
    server = start_server(platform)
    try:
        for name, shown in (("ann", True), ("olga", True), ("root", True), ("nora", False), ("oscar", False),
                            (None, False)):
            page = server.browser(name).get(f"competitions/{w.slug}")
            assert page.status_code == 200, page.text[:300]
            assert ('id="open-in-lab"' in page.text) is shown, name
            if shown:
                assert f'action="/services/competitions/competitions/{w.slug}/phases/1/open-in-lab"' in page.text
                assert 'name="_xsrf"' in page.text.split('id="open-in-lab"', 1)[1][:600]
        # Without a hub behind it, the form comes back to the page with the reason.
        browser = server.browser("ann")
        resp = browser.post(f"competitions/{w.slug}/phases/1/open-in-lab")
        assert resp.status_code == 302 and resp.headers["Location"].endswith(f"/competitions/{w.slug}")
        page = browser.follow(resp)
        assert "Could not open the starting kit in JupyterLab" in page.text
        # And it needs the XSRF token, like every form.
        assert server.browser("ann").post(f"competitions/{w.slug}/phases/1/open-in-lab", xsrf=False).status_code == 403
        assert server.browser("nora").post(f"competitions/{w.slug}/phases/1/open-in-lab").status_code == 403
    finally:
        server.stop()


def test_the_demo_kit_is_a_notebook_and_its_data_goes_to_data(tmp_path):
    from hub_extension.app import LOCAL_ADMIN, Platform
    from hub_extension.demo import DEMO_BUNDLE

    platform = Platform(home=str(tmp_path / "home"))
    try:
        slug, _ = platform.create_competition(DEMO_BUNDLE, LOCAL_ADMIN)
        _, files = platform.phase_files(slug, 1, LOCAL_ADMIN)
    finally:
        platform.close()
    assert [f.path for f in files] == ["starting_kit.ipynb", "data/test.csv", "data/train.csv"]
    assert sk.main_notebook(files) == "starting_kit.ipynb"
    kit_bytes = (Path(DEMO_BUNDLE) / "starting_kit" / "starting_kit.ipynb").read_bytes()
    assert files[0].read() == kit_bytes and files[0].sha256 == hashlib.sha256(kit_bytes).hexdigest()
