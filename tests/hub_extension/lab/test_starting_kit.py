"""Open in JupyterLab against the real hub: the service starts a real JupyterLab server and fills it.

An organizer uploads a competition whose starting kit is a notebook and a
helper module (and whose public data is the demo's); a participant registers
and opens it in JupyterLab.  What arrives is read back through the server's
contents API (what JupyterLab shows), never from the disk behind it.  The
organizer then changes the kit by pointing the phase at another stored kit in
competition.yaml, as the edit page does.
"""
from __future__ import annotations

import hashlib
import io
import json
import re
import shutil
import time
import uuid
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

from hub_extension.demo import DEMO_BUNDLE
from tests.support.hub import SERVICE_PREFIX

pytestmark = pytest.mark.slow

KIT_NOTEBOOK = (DEMO_BUNDLE / "starting_kit" / "starting_kit.ipynb").read_bytes()
HELPERS_V1 = b"def baseline():\n    return 'centroids'\n"
HELPERS_V2 = b"def baseline():\n    return 'centroids, better'\n"


def bundle_bytes(tmp: Path, title: str, kit: dict[str, bytes]) -> bytes:
    """The demo bundle under `title`, with `kit` as its starting kit."""
    root = tmp / f"bundle-{uuid.uuid4().hex[:6]}"
    shutil.copytree(DEMO_BUNDLE, root)
    shutil.rmtree(root / "starting_kit")
    for name, data in kit.items():
        (root / "starting_kit" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "starting_kit" / name).write_bytes(data)
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    doc["title"] = title
    (root / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(root.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(root).as_posix())
    return buf.getvalue()


@dataclass
class Scene:
    hub: Any
    tmp: Path
    slug: str
    organizer: str
    participant: str
    clients: dict[str, Any]


@pytest.fixture(scope="module")
def scene(hub, tmp_path_factory) -> Scene:
    tmp = tmp_path_factory.mktemp("kit")
    tag = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"kit-org-{tag}", groups=["organizers"])
    participant = hub.create_user(f"kit-ann-{tag}")
    clients = {name: hub.user_client(name) for name in (organizer, participant)}
    resp = clients[organizer].post("api/v1/competitions", files={"file": ("bundle.zip", bundle_bytes(
        tmp, f"Kit {tag}", {"starting_kit.ipynb": KIT_NOTEBOOK, "helpers.py": HELPERS_V1}))})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    resp = clients[participant].post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201 and resp.json()["status"] == "approved", resp.text
    yield Scene(hub=hub, tmp=tmp, slug=slug, organizer=organizer, participant=participant, clients=clients)
    for name in (organizer, participant):
        hub.stop_server(name)


def open_in_lab(scene: Scene, name: str, phase: int = 1):
    return scene.clients[name].post(f"api/v1/competitions/{scene.slug}/phases/{phase}/open_in_lab", timeout=180)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def change_kit(scene: Scene, kit: dict[str, bytes]) -> None:
    """The organizer points phase 1 at another starting kit (stored by uploading it in a second bundle)."""
    client = scene.clients[scene.organizer]
    resp = client.post("api/v1/competitions", files={"file": ("bundle.zip", bundle_bytes(
        scene.tmp, f"Kit source {uuid.uuid4().hex[:6]}", kit))})
    assert resp.status_code == 201, resp.text
    source = yaml.safe_load(client.get(f"api/v1/competitions/{resp.json()['slug']}/yaml").json()["yaml"])
    doc = yaml.safe_load(client.get(f"api/v1/competitions/{scene.slug}/yaml").json()["yaml"])
    doc["phases"][0]["starting_kit"] = source["phases"][0]["starting_kit"]
    resp = client.put(f"api/v1/competitions/{scene.slug}/yaml", json={"yaml": yaml.safe_dump(doc, sort_keys=False)})
    assert resp.status_code == 200, resp.text


def test_files_arrive_in_the_participants_jupyterlab_and_the_server_is_started_for_them(scene):
    hub, name = scene.hub, scene.participant
    assert not hub.api("GET", f"users/{name}").json()["servers"], "the participant's server should not run yet"
    started = time.monotonic()
    resp = open_in_lab(scene, name)
    assert resp.status_code == 200, (resp.text, hub.log_tail())
    result = resp.json()
    folder = f"competitions/{scene.slug}"
    assert result["url"] == f"/user/{name}/lab/tree/{folder}/starting_kit.ipynb"
    assert result["folder"] == folder and result["notebook"] == "starting_kit.ipynb"
    assert result["written"] == ["helpers.py", "starting_kit.ipynb", "data/test.csv", "data/train.csv"]
    assert result["kept"] == [] and result["updated"] == []
    print(f"first open in JupyterLab, server start included: {time.monotonic() - started:.1f} s")

    server = hub.api("GET", f"users/{name}").json()["servers"][""]
    assert server["ready"], server
    # The real JupyterLab of the embedded default, told where the service is (for the client and widgets).
    env = hub.server_environment(name)
    assert env["COMPETE_SERVICE_URL"] == hub.service_url
    assert env["JUPYTERHUB_SERVER_NAME"] == "" and "/lab" in env.get("JUPYTERHUB_DEFAULT_URL", "")
    contents = hub.server_contents(name)
    assert contents.listing(folder) == ["competition.json", "data", "helpers.py", "starting_kit.ipynb"]
    assert contents.read_bytes(f"{folder}/starting_kit.ipynb") == KIT_NOTEBOOK
    assert contents.read_bytes(f"{folder}/helpers.py") == HELPERS_V1
    for name_ in ("train.csv", "test.csv"):
        assert contents.read_bytes(f"{folder}/data/{name_}") == (DEMO_BUNDLE / "input_data" / name_).read_bytes()
    manifest = json.loads(contents.read_text(f"{folder}/competition.json"))
    assert manifest["competition"] == scene.slug and manifest["phase"] == 1
    assert manifest["page"] == f"{SERVICE_PREFIX}competitions/{scene.slug}"
    assert manifest["files"]["starting_kit.ipynb"]["sha256"] == sha(KIT_NOTEBOOK)

    # The URL opens JupyterLab for the participant, through the proxy.
    token = hub.token_for(name)
    lab = hub.client(token).session.get(hub.url.rstrip("/") + result["url"], timeout=60,
                                        headers={"Authorization": f"token {token}"})
    assert lab.status_code == 200 and "JupyterLab" in lab.text, (lab.status_code, lab.text[:300])


def test_a_participants_edit_is_never_overwritten_and_a_deleted_file_comes_back(scene):
    hub, name = scene.hub, scene.participant
    folder = f"competitions/{scene.slug}"
    assert open_in_lab(scene, name).status_code == 200
    contents = hub.server_contents(name)
    nb = json.loads(contents.read_text(f"{folder}/starting_kit.ipynb"))
    nb["cells"].append({"cell_type": "markdown", "metadata": {}, "source": "My own idea."})
    mine = json.dumps(nb, indent=1).encode()
    contents.write_bytes(f"{folder}/starting_kit.ipynb", mine)
    contents.delete(f"{folder}/data/test.csv")

    resp = open_in_lab(scene, name)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    assert result["written"] == ["data/test.csv"]
    assert set(result["kept"]) == {"helpers.py", "starting_kit.ipynb", "data/train.csv"}
    assert result["updated"] == [], "the organizer changed nothing: nothing to offer"
    assert contents.read_bytes(f"{folder}/starting_kit.ipynb") == mine
    assert contents.read_bytes(f"{folder}/data/test.csv") == (DEMO_BUNDLE / "input_data" / "test.csv").read_bytes()
    assert "UPDATES.md" not in contents.listing(folder)


def test_an_organizers_change_is_offered_next_to_the_participants_version(scene):
    hub, name = scene.hub, scene.participant
    folder = f"competitions/{scene.slug}"
    contents = hub.server_contents(name)
    assert open_in_lab(scene, name).status_code == 200
    mine = contents.read_bytes(f"{folder}/starting_kit.ipynb")
    if sha(mine) == sha(KIT_NOTEBOOK):  # on its own, this test makes the participant's edit itself
        mine = mine.replace(b'"cells": [', b'"cells": [{"cell_type": "markdown", "metadata": {}, "source": "x"},', 1)
        contents.write_bytes(f"{folder}/starting_kit.ipynb", mine)

    # The organizer's second version of the notebook: a cell more.
    revised = json.loads(KIT_NOTEBOOK)
    revised["cells"].insert(1, {"cell_type": "markdown", "id": "news", "metadata": {}, "source": ["Version 2."]})
    new_notebook = json.dumps(revised, indent=1).encode()
    change_kit(scene, {"starting_kit.ipynb": new_notebook, "helpers.py": HELPERS_V2, "extra/notes.md": b"# Notes\n"})

    resp = open_in_lab(scene, name)
    assert resp.status_code == 200, resp.text
    result = resp.json()
    copy = f"starting_kit.update-{sha(new_notebook)[:8]}.ipynb"
    assert result["updated"] == ["starting_kit.ipynb"] and result["update_copies"] == {"starting_kit.ipynb": copy}
    # helpers.py was never touched by the participant: it follows the organizer; notes.md is new.
    assert sorted(result["written"]) == ["extra/notes.md", "helpers.py"]
    assert result["note"] == f"{folder}/UPDATES.md"
    assert contents.read_bytes(f"{folder}/starting_kit.ipynb") == mine
    assert contents.read_bytes(f"{folder}/{copy}") == new_notebook
    assert contents.read_bytes(f"{folder}/helpers.py") == HELPERS_V2
    assert contents.read_bytes(f"{folder}/extra/notes.md") == b"# Notes\n"
    note = contents.read_text(f"{folder}/UPDATES.md")
    assert f"`starting_kit.ipynb`: the new version is `{copy}`" in note

    # The update is offered once: opening again writes nothing new.
    again = open_in_lab(scene, name).json()
    assert again["updated"] == [] and again["written"] == []
    assert contents.read_bytes(f"{folder}/starting_kit.ipynb") == mine


def test_who_may_open_a_kit_in_jupyterlab(scene):
    hub = scene.hub
    tag = uuid.uuid4().hex[:6]
    stranger = hub.create_user(f"kit-nora-{tag}")
    other_organizer = hub.create_user(f"kit-oscar-{tag}", groups=["organizers"])
    path = f"api/v1/competitions/{scene.slug}/phases/1/open_in_lab"
    assert hub.client().post(path).status_code == 401
    for name in (stranger, other_organizer):
        resp = hub.user_client(name).post(path)
        assert resp.status_code == 403 and resp.json()["error"]["code"] == "forbidden", resp.text
        assert not hub.api("GET", f"users/{name}").json()["servers"], "no server is started for a refusal"
    assert hub.user_client(scene.participant).post(
        f"api/v1/competitions/{scene.slug}/phases/7/open_in_lab").status_code == 404
    # The organizer may, into their own server.
    resp = open_in_lab(scene, scene.organizer)
    assert resp.status_code == 200, resp.text
    assert resp.json()["url"].startswith(f"/user/{scene.organizer}/lab/tree/competitions/{scene.slug}/")


def test_the_competition_pages_button_sends_the_browser_to_its_jupyterlab(scene):
    hub, name = scene.hub, scene.participant
    password = uuid.uuid4().hex
    hub.set_password(name, password)
    session = hub.login(name, password)
    page = session.get(f"competitions/{scene.slug}")
    assert page.status_code == 200 and 'id="open-in-lab"' in page.text
    action = re.search(r'<form method="post" action="([^"]+)"[^>]*id="open-in-lab"', page.text).group(1)
    xsrf = re.search(r'name="_xsrf" value="([^"]+)"', page.text).group(1)
    hub.stop_server(name)  # the button starts it again
    resp = session.session.post(hub.url.rstrip("/") + action, data={"_xsrf": xsrf}, allow_redirects=False,
                                timeout=180)
    assert resp.status_code == 302, (resp.status_code, resp.text[:500])
    assert resp.headers["Location"] == f"/user/{name}/lab/tree/competitions/{scene.slug}/starting_kit.ipynb"
    lab = session.session.get(hub.url.rstrip("/") + resp.headers["Location"], timeout=60)
    assert lab.status_code == 200 and "JupyterLab" in lab.text, (lab.url, lab.text[:300])
