"""The participant client against the real REST API, in-process over real HTTP.

`ServiceServer` (tests/support/service_harness.py) runs the service's application
with a real Platform; only the hub's token lookup is a stand-in (`token-<name>`).
Runs that must really execute go through a real Dispatcher on a local Dask
cluster with the `process` executor, ticked in the background as the service does.
"""
from __future__ import annotations

import http.server
import io
import json
import os
import socket
import subprocess
import sys
import threading
import time
import zipfile
from pathlib import Path

import nbformat
import pandas as pd
import pytest
import requests

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from hub_extension.client import (
    CompeteClient,
    CompeteError,
    CompeteTimeout,
    current_notebook_path,
    service_url_from_env,
)
from tests.support.builders import PREDICTION_LOG_TEXT, build_world, finish, results_zip
from tests.support.lab import DEMO_NOTEBOOK, client_for, failing_notebook
from tests.support.paths import REPO
from tests.support.service_harness import ServiceServer


def zip_names(content: bytes) -> list[str]:
    with zipfile.ZipFile(io.BytesIO(content)) as zf:
        return sorted(zf.namelist())


# -- where the service is ---------------------------------------------------------------------------
def test_service_url_comes_from_the_environment():
    assert service_url_from_env({"COMPETE_SERVICE_URL": "http://h:8000/services/competitions"}) == \
        "http://h:8000/services/competitions/"
    assert service_url_from_env({"JUPYTERHUB_PUBLIC_HUB_URL": "https://c.example.org/jh/hub/",
                                 "JUPYTERHUB_API_URL": "http://127.0.0.1:8081/jh/hub/api"}) == \
        "https://c.example.org/jh/services/competitions/"
    assert service_url_from_env({"JUPYTERHUB_API_URL": "http://127.0.0.1:8081/hub/api"}) == \
        "http://127.0.0.1:8081/services/competitions/"
    assert service_url_from_env({"JUPYTERHUB_PUBLIC_HUB_URL": "", "JUPYTERHUB_API_URL": ""}) is None
    assert service_url_from_env({}) is None


def test_client_without_a_service_says_what_to_set(monkeypatch):
    for name in ("COMPETE_SERVICE_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(CompeteError) as err:
        CompeteClient()
    assert err.value.code == "no_service" and "COMPETE_SERVICE_URL" in err.value.message


def test_client_takes_url_and_token_from_the_environment(server, world, monkeypatch):
    monkeypatch.setenv("COMPETE_SERVICE_URL", server.base)
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "token-ann")
    client = CompeteClient()
    assert client.url == server.base and client.prefix == "/services/competitions/"
    assert client.me()["name"] == "ann" and client.username == "ann"


# -- reading and registering ----------------------------------------------------------------------
def test_lists_competitions_phases_and_registers(server, world):
    nora = client_for(server, "nora")
    slugs = {c["slug"] for c in nora.competitions()}
    assert {world.slug, world.other_slug} <= slugs
    assert [c["slug"] for c in nora.competitions(search="secrets")] == [world.slug]
    detail = nora.competition(world.slug)
    assert detail["title"] == "Secrets" and detail["registration"] == "none"
    assert [b["key"] for b in detail["leaderboards"]] == ["main"]
    phases = nora.phases(world.slug)
    assert [(p["number"], p["name"], p["state"]) for p in phases] == [(1, "Development", "current"),
                                                                      (2, "Final", "future")]
    assert nora.register(world.slug, accept_terms=True) == {"competition": world.slug, "username": "nora", "status": "approved"}
    assert nora.competition(world.slug)["registration"] == "approved"
    assert nora.submissions_left(world.slug) == {"today": 5, "total": 10}


def test_many_pages_are_fetched_whole(server, world, platform, tmp_path):
    upload = results_zip(tmp_path)
    for _ in range(3):
        platform.submit(world.slug, upload, username="ben", actor=LOCAL_ADMIN)
    ben = client_for(server, "ben")
    # The API pages at most 200 items; the client follows `total` and offsets.
    import hub_extension.client as client_module

    original = client_module.PAGE_LIMIT
    client_module.PAGE_LIMIT = 2
    try:
        mine = ben.submissions(world.slug)
    finally:
        client_module.PAGE_LIMIT = original
    assert len(mine) == 4 and all(s["participant"] == "ben" for s in mine)
    assert [s["id"] for s in mine] == sorted((s["id"] for s in mine), reverse=True)
    assert any(("GET", f"competitions/{world.slug}/submissions", 200) == entry for entry in ben.request_log)


# -- errors carry the server's message ------------------------------------------------------------
def test_errors_carry_the_servers_code_and_message(server, world, platform, tmp_path):
    upload = results_zip(tmp_path)
    nora = client_for(server, "nora")
    with pytest.raises(CompeteError) as err:
        nora.submit(world.slug, upload)
    assert (err.value.code, err.value.status) == ("forbidden", 403)
    assert err.value.message == "'nora' is not registered in 'secrets'; register first"

    ann = client_for(server, "ann")
    with pytest.raises(CompeteError) as err:
        ann.submit(world.slug, upload, phase=2)
    assert err.value.status == 400 and "phase 'Final' opens at 2100-01-01 00:00 UTC" in str(err.value)

    left = ann.submissions_left(world.slug)["today"]
    for _ in range(left):
        ann.submit(world.slug, upload)
    with pytest.raises(CompeteError) as err:
        ann.submit(world.slug, upload)
    assert (err.value.code, err.value.status) == ("submission_limit", 429)
    assert "you have used all 5 submissions of today (UTC)" in err.value.message

    with pytest.raises(CompeteError) as err:
        ann.competition("no-such-thing")
    assert (err.value.code, err.value.status) == ("not_found", 404) and "no-such-thing" in err.value.message

    narrow = CompeteClient(server.base, "narrow-ann")
    with pytest.raises(CompeteError) as err:
        narrow.me()
    assert err.value.status == 403 and "access:services!service=competitions" in err.value.message

    anonymous = CompeteClient(server.base, token="")
    with pytest.raises(CompeteError) as err:
        anonymous.submissions(world.slug)
    assert err.value.code == "login_required" and err.value.status == 401


def test_a_server_that_is_not_the_service_or_is_down(tmp_path):
    class NotTheService(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(404)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(b"<html><body>404: Not Found</body></html>")

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), NotTheService)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        client = CompeteClient(f"http://127.0.0.1:{httpd.server_port}/services/competitions/", "token-ann")
        with pytest.raises(CompeteError) as err:
            client.competitions()
        assert err.value.status == 404 and "no competition service answers" in err.value.message
        assert "COMPETE_SERVICE_URL" in err.value.message
    finally:
        httpd.shutdown()
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(CompeteError) as err:
        CompeteClient(f"http://127.0.0.1:{port}/services/competitions/", "t").competitions()
    assert err.value.code == "unreachable" and err.value.status is None
    assert f"cannot reach the competition service at http://127.0.0.1:{port}/" in err.value.message


def test_uploads_are_never_sent_chunked(tmp_path):
    """The embedded default's Python proxy cannot pass chunked bodies on (README, "Uploads"):
    the client sends every file, and every folder it zips, with its length."""
    seen: list[dict] = []

    class Recorder(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length)
            seen.append({"headers": dict(self.headers), "bytes": len(body)})
            self.send_response(201)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(b'{"id": 1, "status": "Submitted"}')

        def log_message(self, *args):
            pass

    httpd = http.server.HTTPServer(("127.0.0.1", 0), Recorder)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    folder = tmp_path / "code"
    folder.mkdir()
    (folder / "model.py").write_text("x = 1\n" * 50000)
    notebook = tmp_path / "solution.ipynb"
    nbformat.write(nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("print(1)")]), str(notebook))
    try:
        client = CompeteClient(f"http://127.0.0.1:{httpd.server_port}/services/competitions/", "token-ann")
        for path in (notebook, folder):
            assert client.submit("demo", path)["id"] == 1
    finally:
        httpd.shutdown()
    assert len(seen) == 2
    for request in seen:
        headers = {k.lower(): v for k, v in request["headers"].items()}
        assert "transfer-encoding" not in headers
        assert int(headers["content-length"]) == request["bytes"] > 0


def test_an_upload_over_the_cap_gets_the_servers_answer(server, world, platform, tmp_path):
    platform.config.max_upload_bytes = 2 * 1024 * 1024
    big = tmp_path / "big.zip"
    with open(big, "wb") as fh:
        fh.write(os.urandom(3 * 1024 * 1024))
    with pytest.raises(CompeteError) as err:
        client_for(server, "ann").submit(world.slug, big)
    assert (err.value.code, err.value.status) == ("too_large", 413)
    assert "the largest accepted is 2097152" in err.value.message


# -- submitting ------------------------------------------------------------------------------------
def test_a_folder_is_zipped_without_checkpoints_caches_and_git(server, world, tmp_path):
    folder = tmp_path / "my_predictions"
    (folder / "sub").mkdir(parents=True)
    (folder / "predictions.txt").write_text("1\n0\n1\n")
    (folder / "sub" / "notes.txt").write_text("kept")
    for junk in (".ipynb_checkpoints", "__pycache__", ".git", "sub/__pycache__"):
        (folder / junk).mkdir(parents=True, exist_ok=True)
        (folder / junk / "junk").write_text("never sent")
    ann = client_for(server, "ann")
    sub = ann.submit(world.slug, folder, description="a folder")
    assert sub["filename"] == "my_predictions.zip" and sub["kind"] == "results"
    assert sub["description"] == "a folder" and sub["status"] == "Submitted"
    sent = ann.session.get(f"{ann.api_url}submissions/{sub['id']}/file")
    assert zip_names(sent.content) == ["predictions.txt", "sub/notes.txt"]


def test_a_folder_with_a_link_or_nothing_in_it_is_refused(server, world, tmp_path):
    ann = client_for(server, "ann")
    empty = tmp_path / "empty"
    (empty / ".ipynb_checkpoints").mkdir(parents=True)
    (empty / ".ipynb_checkpoints" / "x-checkpoint.ipynb").write_text("{}")
    with pytest.raises(CompeteError, match="has no files to submit"):
        ann.submit(world.slug, empty)
    linked = tmp_path / "linked"
    linked.mkdir()
    (linked / "data.csv").symlink_to(tmp_path / "elsewhere.csv")
    with pytest.raises(CompeteError, match="is a symbolic link"):
        ann.submit(world.slug, linked)
    with pytest.raises(CompeteError, match="no such file or folder"):
        ann.submit(world.slug, tmp_path / "missing.zip")


def test_a_file_is_sent_as_it_is(server, world, tmp_path):
    upload = results_zip(tmp_path, "mine.zip")
    ann = client_for(server, "ann")
    bodies = []
    original = ann.session.request

    def recording(method, url, **kwargs):
        bodies.append(kwargs.get("data"))
        return original(method, url, **kwargs)

    ann.session.request = recording
    sub = ann.submit(world.slug, upload)
    # The body is the open file, read as it is sent, never the bytes in memory.
    assert isinstance(bodies[0], io.BufferedReader) and bodies[0].name == str(upload) and bodies[0].closed
    assert sub["filename"] == "mine.zip" and sub["participant"] == "ann"
    sent = ann.session.get(f"{ann.api_url}submissions/{sub['id']}/file")
    assert sent.content == upload.read_bytes()
    notebook = tmp_path / "analysis.ipynb"
    notebook.write_bytes(DEMO_NOTEBOOK.read_bytes())
    assert ann.submit(world.slug, notebook)["kind"] == "notebook"


def test_submit_without_a_path_sends_the_current_notebook(server, world, tmp_path, monkeypatch):
    notebook = tmp_path / "work" / "my analysis.ipynb"
    notebook.parent.mkdir()
    notebook.write_bytes(DEMO_NOTEBOOK.read_bytes())
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    assert current_notebook_path() == notebook.resolve()
    sub = client_for(server, "ann").submit(world.slug)
    assert sub["kind"] == "notebook" and sub["filename"] == "my_analysis.ipynb"
    monkeypatch.setenv("JPY_SESSION_NAME", str(tmp_path / "gone.ipynb"))
    with pytest.raises(CompeteError) as err:
        client_for(server, "ann").submit(world.slug)
    assert err.value.code == "notebook_unknown" and "pass the notebook's path" in err.value.message


def test_cancel_and_submissions(server, world):
    ann = client_for(server, "ann")
    waiting = world.subs["ann_waiting"]
    assert ann.cancel(waiting)["status"] == "Cancelled"
    mine = ann.submissions(world.slug)
    assert {s["id"] for s in mine} == {world.subs["ann"], waiting}
    assert ann.submissions(world.slug, status="Finished")[0]["scores"] == {"accuracy": 0.7}


def test_follow_reports_each_change_and_times_out(server, world, platform, tmp_path):
    ann = client_for(server, "ann")
    sid = ann.submit(world.slug, results_zip(tmp_path))["id"]
    seen = []
    with pytest.raises(CompeteTimeout) as err:
        ann.follow(sid, timeout=0.3, interval=0.05, on_change=lambda info: seen.append(info["status"]))
    assert err.value.info["status"] == "Submitted" and seen == ["Submitted"]

    def drive():
        for status in ("Preparing", "Running", "Scoring"):
            time.sleep(0.3)
            platform.runs.set_status(sid, status)
        time.sleep(0.3)
        finish(platform, sid, {"accuracy": 0.9, "secret": 0.1, "private_score": 0.2})

    driver = threading.Thread(target=drive)
    driver.start()
    final = ann.follow(sid, timeout=30, interval=0.05, on_change=lambda info: seen.append(info["status"]))
    driver.join()
    # Each status once at least (a move in the queue is a change too, so Submitted may repeat).
    statuses = [s for i, s in enumerate(seen) if i == 0 or seen[i - 1] != s]
    assert statuses == ["Submitted", "Preparing", "Running", "Scoring", "Finished"], seen
    assert final["status"] == "Finished" and final["scores"] == {"accuracy": 0.9}
    logs = ann.logs(sid)
    assert [(e["step"], e["stream"]) for e in logs] == [("prediction", "stdout"), ("prediction", "stderr"),
                                                        ("scoring", "stdout"), ("scoring", "stderr")]
    assert PREDICTION_LOG_TEXT in str(logs) and "--- task 0 prediction stdout ---" in str(logs)


def test_follow_returns_a_finished_submission_once_the_leaderboard_includes_it(server, world, platform, tmp_path):
    ann = client_for(server, "ann")
    sid = ann.submit(world.slug, results_zip(tmp_path))["id"]
    platform.runs.after_finish = lambda phase_id, s: None  # ranked later, as the service's refresher does
    try:
        finish(platform, sid, {"accuracy": 0.99, "secret": 0.1, "private_score": 0.2})
        late = ann.submit(world.slug, results_zip(tmp_path, "late.zip"))["id"]
        finish(platform, late, {"accuracy": 0.98, "secret": 0.1, "private_score": 0.2})
    finally:
        platform.runs.after_finish = None
    assert ann.submission(sid)["on_leaderboard"] is False
    with platform.db.session() as s:
        phase_id = s.get(m.Submission, sid).phase_id
    # Never ranked: `follow` gives up waiting for the board after `board_timeout`, and says so.
    started = time.monotonic()
    final = ann.follow(late, timeout=30, interval=0.05, board_timeout=0.5)
    assert final["status"] == "Finished" and final["on_leaderboard"] is False
    assert 0.5 <= time.monotonic() - started < 10
    # Ranked half a second later: `follow` returns then, and the leaderboard read next shows it.
    seen = []
    timer = threading.Timer(0.5, platform.runs.refresh_boards, (phase_id, (sid, late)))
    timer.start()
    final = ann.follow(sid, timeout=30, interval=0.05, on_change=lambda info: seen.append(info["on_leaderboard"]))
    timer.join()
    assert seen == [False, True] and final["on_leaderboard"] is True
    rows = ann.leaderboard_json(world.slug)["rows"]
    assert (rows[0]["participant"], rows[0]["submission"]) == ("ann", late)  # the board keeps the last


# -- the leaderboard -------------------------------------------------------------------------------
def test_leaderboard_dataframe_has_only_what_the_participant_may_see(server, world):
    ann = client_for(server, "ann")
    frame = ann.leaderboard(world.slug)
    assert isinstance(frame, pd.DataFrame)
    assert list(frame.columns) == ["rank", "participant", "Accuracy", "submission", "submitted_at"]
    assert frame[["rank", "participant", "Accuracy"]].values.tolist() == [[1, "ben", 0.8], [2, "ann", 0.7]]
    assert frame.attrs["competition"] == world.slug and frame.attrs["phase"] == 1 and frame.attrs["board"] == "main"
    assert frame.attrs["columns"] == [{"key": "accuracy", "title": "Accuracy", "sorting": "desc"}]
    data = ann.leaderboard_json(world.slug)
    assert [c["key"] for c in data["columns"]] == ["accuracy"]
    assert all(set(row["scores"]) == {"accuracy"} for row in data["rows"])
    assert "Secret" not in json.dumps(data) and "private_score" not in json.dumps(data)
    hidden = ann.leaderboard(world.slug, board="private")
    assert hidden.empty and list(hidden.columns) == ["rank", "participant", "submission", "submitted_at"]
    assert hidden.attrs["note"]
    # The organizer sees the hidden column and may ask for the hidden board.
    olga = client_for(server, "olga")
    assert "Secret" in olga.leaderboard(world.slug).columns
    assert list(olga.leaderboard(world.slug, board="private").columns)[2] == "Private score"


def test_leaderboard_is_asked_with_its_etag(server, world, platform):
    ann = client_for(server, "ann")
    first = ann.leaderboard_json(world.slug)
    again = ann.leaderboard_json(world.slug)
    assert again is first
    path = f"competitions/{world.slug}/leaderboard"
    assert [e for e in ann.request_log if e[1] == path] == [("GET", path, 200), ("GET", path, 304)]
    finish(platform, world.subs["ann_waiting"], {"accuracy": 0.95, "secret": 0.0, "private_score": 0.1})
    changed = ann.leaderboard_json(world.slug)
    assert changed is not first and changed["rows"][0]["participant"] == "ann"
    assert ann.request_log[-1] == ("GET", path, 200)


def test_blind_phase_leaderboard_has_no_scores(platform, tmp_path):
    world = build_world(platform, tmp_path, blind=True)
    srv = ServiceServer(platform).start()
    try:
        frame = client_for(srv, "ann").leaderboard(world.slug)
        assert frame.empty and list(frame.columns[:2]) == ["rank", "participant"]
        assert frame.attrs["note"]
        sub = client_for(srv, "ann").submission(world.subs["ann"])
        assert sub["scores"] == {} and sub["results_hidden"] is True
    finally:
        srv.stop()


# -- really run: follow, logs, the executed notebook ------------------------------------------------
def test_notebook_submission_runs_and_its_outputs_come_back(running, tmp_path):
    ann = client_for(running.server, "ann")
    assert ann.register(running.slug, accept_terms=True)["status"] == "approved"
    sub = ann.submit(running.slug, DEMO_NOTEBOOK, description="baseline")
    seen = []
    final = ann.follow(sub["id"], timeout=240, interval=0.2, on_change=lambda info: seen.append(info["status"]))
    assert final["status"] == "Finished", final["error"]
    assert seen[0] == "Submitted" and seen[-1] == "Finished"
    assert seen == sorted(seen, key=["Submitted", "Preparing", "Running", "Scoring", "Finished"].index)
    assert 0.5 < final["scores"]["accuracy"] <= 1.0
    assert "wrote 45 predictions" in str(ann.logs(sub["id"]))
    target = ann.executed_notebook(sub["id"], tmp_path / "out" / "executed.ipynb")
    executed = nbformat.read(str(target), as_version=4)
    texts = [o.get("text", "") for c in executed.cells if c.cell_type == "code" for o in c.get("outputs", [])]
    assert any("wrote 45 predictions" in t for t in texts)
    assert not list((tmp_path / "out").glob("*.part"))
    frame = ann.leaderboard(running.slug)
    assert frame.loc[frame.participant == "ann", "Accuracy"].iloc[0] == pytest.approx(final["scores"]["accuracy"])
    assert list(frame.columns) == ["rank", "participant", "Accuracy", "Macro F1", "submission", "submitted_at"]


def test_failing_notebook_reports_the_cell_and_traceback(running, tmp_path, monkeypatch):
    ben = client_for(running.server, "ben")
    ben.register(running.slug, accept_terms=True)
    sub = ben.submit(running.slug, failing_notebook(tmp_path))
    final = ben.follow(sub["id"], timeout=240, interval=0.2)
    assert final["status"] == "Failed"
    head, _, traceback = final["error"].partition("\n")
    assert head.endswith("cell 4 raised ZeroDivisionError: division by zero")
    assert "ZeroDivisionError" in traceback and final["scores"] == {}
    monkeypatch.chdir(tmp_path)
    saved = ben.executed_notebook(sub["id"])
    assert saved == Path(f"submission-{sub['id']}-executed.ipynb") and saved.is_file()


# -- which notebook a kernel runs, with a real Jupyter server ------------------------------------------
def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_current_notebook_path_in_a_real_kernel_also_after_a_rename(tmp_path):
    from jupyter_client import BlockingKernelClient

    root = tmp_path / "root"
    (root / "work").mkdir(parents=True)
    nbformat.write(nbformat.v4.new_notebook(), str(root / "work" / "a.ipynb"))
    runtime = tmp_path / "runtime"
    port = _free_port()
    env = {**os.environ, "JUPYTER_RUNTIME_DIR": str(runtime), "PYTHONPATH": str(REPO)}
    for name in ("JPY_SESSION_NAME", "JUPYTERHUB_SERVICE_URL", "JUPYTERHUB_API_TOKEN"):
        env.pop(name, None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "jupyter_server", "--no-browser", f"--port={port}", "--ServerApp.port_retries=0",
         "--IdentityProvider.token=secret-token", f"--ServerApp.root_dir={root}", "--allow-root"],
        env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    api = f"http://127.0.0.1:{port}/api/"
    headers = {"Authorization": "token secret-token"}
    kc = None
    try:
        for _ in range(120):
            try:
                if requests.get(api + "status", headers=headers, timeout=1).ok:
                    break
            except requests.RequestException:
                time.sleep(0.25)
        else:
            pytest.fail(f"the Jupyter server did not start: {proc.stderr.read() if proc.poll() is not None else ''}")
        session = requests.post(api + "sessions", headers=headers, timeout=60, json={
            "path": "work/a.ipynb", "name": "a.ipynb", "type": "notebook", "kernel": {"name": "python3"}}).json()
        kc = BlockingKernelClient(connection_file=str(runtime / f"kernel-{session['kernel']['id']}.json"))
        kc.load_connection_file()
        kc.start_channels()
        kc.wait_for_ready(timeout=60)

        def ask() -> str:
            out = []
            reply = kc.execute_interactive(
                "from hub_extension.client import current_notebook_path; print(current_notebook_path())",
                timeout=60, output_hook=lambda msg: out.append(msg["content"].get("text", "")))
            assert reply["content"]["status"] == "ok", reply["content"]
            return "".join(out).strip()

        assert ask() == str((root / "work" / "a.ipynb").resolve())
        # Renamed in the front end: the file moves and the session follows; JPY_SESSION_NAME does not.
        requests.patch(api + "contents/work/a.ipynb", headers=headers, json={"path": "work/b.ipynb"}, timeout=10)
        requests.patch(api + f"sessions/{session['id']}", headers=headers, json={"path": "work/b.ipynb"}, timeout=10)
        assert ask() == str((root / "work" / "b.ipynb").resolve())
    finally:
        if kc is not None:
            kc.stop_channels()
        proc.terminate()
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()


# -- forum ------------------------------------------------------------------------------------------
def test_asks_and_replies_in_the_forum(server, world, platform):
    from tests.support.builders import ORGANIZER

    assert platform.save_overview(world.slug, {"enable_forum": True}, ORGANIZER).saved
    ann, ben, nora = client_for(server, "ann"), client_for(server, "ben"), client_for(server, "nora")
    thread = ann.ask(world.slug, "Where is the data?", "I looked in `input/`.", submission_id=world.subs["ann"])
    assert thread["submission_id"] == world.subs["ann"] and "<code>input/</code>" in thread["items"][0]["html"]
    for i in range(3):
        ben.reply(world.slug, thread["id"], f"reply {i}")
    assert [t["title"] for t in nora.forum_threads(world.slug, search="data")] == ["Where is the data?"]
    assert [p["author"] for p in nora.forum_thread(world.slug, thread["id"])["items"]] == ["ann", "ben", "ben", "ben"]
    with pytest.raises(CompeteError) as err:
        nora.reply(world.slug, thread["id"], "me too")
    assert err.value.status == 403 and "register for the competition" in err.value.message


# -- announcements, messages, profile ---------------------------------------------------------------
def test_announcements_messages_and_profile_through_the_client(server, world):
    olga, ann = client_for(server, "olga"), client_for(server, "ann")
    sent = olga.announce(world.slug, "Data fixed", "The labels of `test/` were **wrong**.")
    assert sent["subject"] == "Data fixed"
    with pytest.raises(CompeteError) as err:
        ann.announce(world.slug, "Me too", "not an organizer")
    assert err.value.status == 403
    assert [a["subject"] for a in ann.announcements(world.slug)] == ["Data fixed"]
    inbox = ann.messages()
    assert [m["subject"] for m in inbox] == ["Data fixed"]
    assert "<strong>wrong</strong>" in ann.message(inbox[0]["id"])["html"]
    assert ann.mail_settings(mail={"submission_finished": True})["mail"]["submission_finished"] is True
    assert ann.profile(display_name="Ann Lovelace", affiliation="Analytical Engines")["display_name"] == "Ann Lovelace"
    assert ann.profile()["affiliation"] == "Analytical Engines"
    with pytest.raises(CompeteError) as err:
        ann.profile(display_name="x" * 1000)
    assert err.value.status == 400 and ann.profile()["display_name"] == "Ann Lovelace"


def test_reproduces_and_reads_provenance_through_the_client(server, world):
    olga, ann = client_for(server, "olga"), client_for(server, "ann")
    sid = world.subs["ann"]
    made = olga.reproduce(sid)
    assert made["reproduces"] == sid and made["status"] == "Submitted"
    assert olga.comparison(sid)["reproduction"]["id"] == made["id"]
    signed = olga.manifest(sid)
    assert signed["manifest"]["submission"]["id"] == sid and signed["signature"]["algorithm"] == "HMAC-SHA256"
    assert [r["status"] for r in olga.provenance(sid)["runs"]]
    for call in (lambda: ann.reproduce(sid), lambda: ann.manifest(sid), lambda: ann.provenance(sid)):
        with pytest.raises(CompeteError) as err:
            call()
        assert err.value.status == 403
    # The reproduction is no one's submission to list.
    assert made["id"] not in {s["id"] for s in ann.submissions(world.slug)}
