"""The starting kit opens in the judge's environment: the judge's kernel, in users' servers, for real.

A hub of the embedded default started where Docker answers (`judge_hub`,
nothing set: judge kernels are the default) installs a judge kernel per runtime image on the machine; a participant's
server offers it, "Open in JupyterLab" delivers the kit's notebook with its
kernelspec, and a cell run in that kernel through the server's own kernel API
runs in the image (its numpy, its Python).  A participant's edit is never
overwritten.  The session's hub (`hub`) is started with COMPETE_LAB_DOCKER=0,
the setting that says users' servers have no Docker engine: that is what is
simulated there, and its competition page says the notebooks run in this
environment's Python instead, and why.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
import uuid
from urllib.parse import urljoin

import pytest
import requests

from hub_extension.judge_specs import SERVERS_FOLDER, SERVERS_STATE, short_digest
from hub_extension.demo import DEMO_BUNDLE
from hub_extension.starting_kit import KitFile, Manifest, plan_delivery, with_kernelspec
from kernels.build import DEFAULT_IMAGE
from kernels.images import docker_client
from tests.support.hub import demo_bundle_zip

pytestmark = pytest.mark.slow

KIT_NOTEBOOK = (DEMO_BUNDLE / "starting_kit" / "starting_kit.ipynb").read_bytes()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def competition_with_participant(hub, tmp_path) -> tuple[str, str]:
    """The demo competition uploaded by a new organizer; (its slug, a registered participant)."""
    tag = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"jk-org-{tag}", groups=["organizers"])
    participant = hub.create_user(f"jk-ann-{tag}")
    resp = hub.user_client(organizer).post("api/v1/competitions", files={
        "file": ("bundle.zip", demo_bundle_zip(tmp_path, f"Judge kernel {tag}").read_bytes())})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    resp = hub.user_client(participant).post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    return slug, participant


def image_facts(image: str) -> tuple[str, str]:
    """(the image's id, its numpy version), asked of Docker directly."""
    client = docker_client()
    try:
        found = client.images.get(image)
        out = client.containers.run(image, ["python", "-c", "import numpy; print(numpy.__version__)"],
                                    entrypoint=[], remove=True, network_mode="none")
        return found.id, out.decode().strip().splitlines()[-1]
    finally:
        client.close()


async def run_cell(base: str, token: str, kernel_id: str, code: str, timeout: float = 120) -> str:
    """Execute `code` on a running kernel of a server through its websocket; its stdout."""
    # tornado is JupyterHub's own web framework: its websocket client is at hand.
    from tornado.httpclient import HTTPRequest
    from tornado.websocket import websocket_connect

    url = urljoin(base.replace("http", "ws", 1), f"api/kernels/{kernel_id}/channels")
    conn = await websocket_connect(HTTPRequest(url, headers={"Authorization": f"token {token}"}))
    msg_id, session = uuid.uuid4().hex, uuid.uuid4().hex
    conn.write_message(json.dumps({
        "header": {"msg_id": msg_id, "msg_type": "execute_request", "username": "test", "session": session,
                   "version": "5.3", "date": ""},
        "parent_header": {}, "metadata": {}, "channel": "shell", "buffers": [],
        "content": {"code": code, "silent": False, "store_history": False, "user_expressions": {},
                    "allow_stdin": False},
    }))
    out, errors = [], []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    try:
        while True:
            raw = await asyncio.wait_for(conn.read_message(), max(1.0, deadline - loop.time()))
            assert raw is not None, "the kernel's websocket closed"
            msg = json.loads(raw)
            if msg.get("parent_header", {}).get("msg_id") != msg_id:
                continue
            kind = msg["msg_type"]
            if kind == "stream":
                out.append(msg["content"]["text"])
            elif kind == "error":
                errors.append(f"{msg['content']['ename']}: {msg['content']['evalue']}")
            elif kind == "status" and msg["content"]["execution_state"] == "idle":
                break
    finally:
        conn.close()
    assert not errors, errors
    return "".join(out)


# -- with Docker: the judge's kernel --------------------------------------------------------------
def test_the_hub_installs_the_judge_kernel_for_its_servers_at_start(judge_hub, runtime_image):
    state = json.loads((judge_hub.home / SERVERS_FOLDER / SERVERS_STATE).read_text())
    image_id, _numpy = image_facts(DEFAULT_IMAGE)
    entry = state["kernels"][DEFAULT_IMAGE]
    assert state["docker"] is True and entry["digest"] == image_id, state
    # The name and the display name say which image and which digest.
    assert entry["display_name"] == f"Judge: {DEFAULT_IMAGE} ({short_digest(image_id)})"
    assert entry["name"] == f"judge-jupyter-compete-runtime-py3-{image_id.split(':')[1][:8]}"
    assert (judge_hub.home / SERVERS_FOLDER / "kernels" / entry["name"] / "kernel.json").is_file()


def test_open_in_lab_delivers_the_kit_in_the_judges_kernel_and_a_cell_runs_in_the_image(judge_hub, tmp_path):
    slug, participant = competition_with_participant(judge_hub, tmp_path)
    entry = json.loads((judge_hub.home / SERVERS_FOLDER / SERVERS_STATE).read_text())["kernels"][DEFAULT_IMAGE]
    try:
        resp = judge_hub.user_client(participant).post(f"api/v1/competitions/{slug}/phases/1/open_in_lab",
                                                       timeout=180)
        assert resp.status_code == 200, resp.text
        result = resp.json()
        environment = result["environment"]
        assert environment["kind"] == "judge" and environment["image"] == DEFAULT_IMAGE, environment
        assert short_digest(entry["digest"]) in environment["text"]

        # The server offers the kernel (its JUPYTER_PATH holds the hub's judge kernels).
        server = urljoin(judge_hub.url, f"user/{participant}/")
        listed = requests.get(urljoin(server, "api/kernelspecs"), timeout=30,
                              headers={"Authorization": f"token {judge_hub.admin_token}"}).json()
        assert listed["kernelspecs"][entry["name"]]["spec"]["display_name"] == entry["display_name"]

        # The delivered notebook names it, and the manifest's hash is the delivered file's.
        contents = judge_hub.server_contents(participant)
        folder = result["folder"]
        delivered = contents.read_bytes(f"{folder}/starting_kit.ipynb")
        notebook = json.loads(delivered)
        assert notebook["metadata"]["kernelspec"] == {"name": entry["name"], "display_name": entry["display_name"],
                                                      "language": "python"}
        original = json.loads(KIT_NOTEBOOK)
        assert [c["source"] for c in notebook["cells"]] == [c["source"] for c in original["cells"]]
        manifest = json.loads(contents.read_text(f"{folder}/competition.json"))
        assert manifest["files"]["starting_kit.ipynb"]["sha256"] == sha(delivered) != sha(KIT_NOTEBOOK)

        # A cell run in that kernel, through the server's kernel API, runs in the image.
        kernel = requests.post(urljoin(server, "api/kernels"), json={"name": entry["name"]}, timeout=60,
                               headers={"Authorization": f"token {judge_hub.admin_token}"})
        assert kernel.status_code == 201, kernel.text
        _image_id, numpy_version = image_facts(DEFAULT_IMAGE)
        out = asyncio.run(run_cell(server, judge_hub.admin_token, kernel.json()["id"],
                                   "import os, sys, sklearn, numpy, ipywidgets, matplotlib\n"
                                   "import hub_extension.widgets as w\n"
                                   "print(numpy.__version__, sys.executable, os.environ.get('JUPYTER_COMPETE_JUDGE_KERNEL'),"
                                   " w.__file__, matplotlib.get_backend())"))
        # The kits' widgets import there: the image has ipywidgets, the platform's client is mounted read-only;
        # figures show in the notebook (the image's own backend, Agg, draws only to files).
        assert out.split() == [numpy_version, "/opt/venv/bin/python3", DEFAULT_IMAGE,
                               "/run/jupyter-compete/client/hub_extension/widgets/__init__.py",
                               "module://matplotlib_inline.backend_inline"], out

        # The participant edits the notebook: opening the kit again keeps their version.
        notebook["cells"][0]["source"] = "input_dir = 'data'  # mine\n"
        mine = json.dumps(notebook, indent=1).encode()
        contents.write_bytes(f"{folder}/starting_kit.ipynb", mine)
        again = judge_hub.user_client(participant).post(f"api/v1/competitions/{slug}/phases/1/open_in_lab",
                                                        timeout=180).json()
        assert "starting_kit.ipynb" in again["kept"] and again["updated"] == [], again
        assert contents.read_bytes(f"{folder}/starting_kit.ipynb") == mine
    finally:
        judge_hub.stop_server(participant)


def test_the_competition_page_says_the_judges_kernel_and_its_image(judge_hub, tmp_path):
    slug, participant = competition_with_participant(judge_hub, tmp_path)
    entry = json.loads((judge_hub.home / SERVERS_FOLDER / SERVERS_STATE).read_text())["kernels"][DEFAULT_IMAGE]
    page = judge_hub.user_client(participant).get(f"competitions/{slug}")
    assert page.status_code == 200
    assert 'id="lab-environment" data-kind="judge"' in page.text
    assert f"{DEFAULT_IMAGE}@{short_digest(entry['digest'])}" in page.text
    assert entry["display_name"] in page.text


def test_run_as_the_judge_would_from_a_judge_kernel_reports_a_timeout_in_the_image(judge_hub, tmp_path):
    """The Submit box's preflight, run by a cell of the judge's kernel: a fresh kernel of the same container
    runs the notebook with the phase's limit, and the timeout is reported before anything is submitted."""
    slug, participant = competition_with_participant(judge_hub, tmp_path)
    entry = json.loads((judge_hub.home / SERVERS_FOLDER / SERVERS_STATE).read_text())["kernels"][DEFAULT_IMAGE]
    try:
        contents = judge_hub.server_contents(participant)
        folder = judge_hub.user_client(participant).post(f"api/v1/competitions/{slug}/phases/1/open_in_lab",
                                                         timeout=180).json()["folder"]
        slow = {"cells": [{"cell_type": "code", "id": f"c{i}", "metadata": {}, "outputs": [], "execution_count": None,
                           "source": source} for i, source in enumerate(
                          ("import sys\nprint(sys.executable)", "import time\ntime.sleep(30)", "print('never')"))],
                "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
        contents.write_bytes(f"{folder}/slow.ipynb", json.dumps(slow).encode())
        server = urljoin(judge_hub.url, f"user/{participant}/")
        kernel = requests.post(urljoin(server, "api/kernels"), json={"name": entry["name"], "path": folder},
                               timeout=60, headers={"Authorization": f"token {judge_hub.admin_token}"})
        assert kernel.status_code == 201, kernel.text
        out = asyncio.run(run_cell(server, judge_hub.admin_token, kernel.json()["id"], (
            "from hub_extension.widgets.preflight import Preflight\n"
            "run = Preflight()\n"
            f"run.start('slow.ipynb', limit=4, image={DEFAULT_IMAGE!r})\n"
            "state = run.wait(150)\n"
            "print('|', state.stage, state.cell, state.kernel.judge)\n"
            "print('|', state.kernel.note)\n"
            "print('|', state.summary())\n"), timeout=200))
        first, note, summary = [line[2:] for line in out.splitlines() if line.startswith("| ")]
        assert first == "timeout 2 True", out
        assert f"this judge kernel's container (image {DEFAULT_IMAGE}" in note, out
        assert summary.startswith("Over the time limit") and "cell 2 was running" in summary, out
        # (The contents API does not serve hidden folders: read the server's files directly.)
        executed = json.loads((judge_hub.home / "users" / participant / folder / ".preflight" / "executed.ipynb")
                              .read_text())
        first_cell = next(c for c in executed["cells"] if c.get("id") == "c0")
        printed = "".join("".join(o.get("text", "")) for o in first_cell["outputs"])  # text: a str or lines
        assert printed.strip() == "/opt/venv/bin/python3", first_cell
        # Nothing was submitted.
        assert judge_hub.user_client(participant).get(f"api/v1/competitions/{slug}/submissions").json()["items"] == []
    finally:
        judge_hub.stop_server(participant)


# -- without Docker for the servers (simulated: the session hub runs with COMPETE_LAB_DOCKER=0) --------
def test_without_docker_for_the_servers_the_page_says_the_notebooks_run_in_this_python(hub, tmp_path):
    state = json.loads((hub.home / SERVERS_FOLDER / SERVERS_STATE).read_text())
    assert state["docker"] is False and state["kernels"] == {} and "COMPETE_LAB_DOCKER=0" in state["reason"]
    assert not list((hub.home / SERVERS_FOLDER / "kernels").glob("judge-*"))
    slug, participant = competition_with_participant(hub, tmp_path)
    page = hub.user_client(participant).get(f"competitions/{slug}")
    assert page.status_code == 200
    assert 'id="lab-environment" data-kind="server" data-packages="same"' in page.text
    assert ("run in this server&#39;s Python, with the packages of the judge&#39;s image "
            f"{DEFAULT_IMAGE} at the same versions but not its limits") in page.text
    assert "COMPETE_LAB_DOCKER=0" in page.text


# -- the rules of delivery, with the kernelspec --------------------------------------------------------
def test_a_notebook_is_rewritten_with_the_kernelspec_only_where_the_rules_allow():
    spec = {"name": "judge-x-12345678", "display_name": "Judge: x (sha256:12345678)", "language": "python"}
    raw = KitFile.from_bytes("kit.ipynb", KIT_NOTEBOOK)
    data = KitFile.from_bytes("data/notes.ipynb", KIT_NOTEBOOK, source="public_data")
    retargeted, untouched_data = with_kernelspec([raw, data], spec)
    assert json.loads(retargeted.read())["metadata"]["kernelspec"] == spec
    assert retargeted.sha256 == sha(retargeted.read()) and untouched_data is data
    assert with_kernelspec([retargeted], spec)[0] is retargeted  # already named: as it is
    # Delivered before without it: untouched since, it is brought to the kernelspec...
    before = Manifest(delivered={"kit.ipynb": raw.sha256})
    assert plan_delivery([retargeted], before, {"kit.ipynb": raw.sha256}).write == ["kit.ipynb"]
    # ...edited by the participant, it stays theirs, the new version offered next to it.
    plan = plan_delivery([retargeted], before, {"kit.ipynb": sha(b"mine")})
    assert plan.write == [] and plan.keep == ["kit.ipynb"] and list(plan.offer) == ["kit.ipynb"]
