"""The submit widget and its logic, against the real REST API, with no browser.

Statuses are driven two ways: by hand through the Platform (every stage,
deterministically), and by a real dispatcher running real notebooks (the
failing cell and its traceback).  The front end's part of "save first" is
played here by writing the file and answering through the hidden field, as
the script the widget sends would; tests/hub_extension/lab/test_*_browser.py
drive the real front end.
"""
from __future__ import annotations

import io
import json
import re
import time
import zipfile
from pathlib import Path

import nbformat
import pytest

from hub_extension import models as m
from hub_extension.widgets import Leaderboard, Submit
from hub_extension.widgets.submit import BOARD_LATE
from tests.support.builders import finish, results_zip
from tests.support.lab import DEMO_NOTEBOOK, client_for, failing_notebook, wait_for

pytestmark = pytest.mark.usefixtures("widget_comms")


@pytest.fixture(autouse=True)
def cwd(monkeypatch, tmp_path):
    """The folder the kernel runs in (what the box lists), apart from the platform's files."""
    monkeypatch.setattr(Submit, "follow_interval", 0.02)
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    folder = tmp_path / "cwd"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def wait_stage(box: Submit, stage: str, timeout: float = 20.0) -> None:
    wait_for(lambda: box.state.stage == stage, timeout, f"stage {stage} (at {box.state.stage}: {box.state.error})")


def status_of(box: Submit) -> str:
    found = re.search(r'data-status="([^"]+)"', box._status.value)
    return found.group(1) if found else ""


def submission_gets(box: Submit, sid: int) -> int:
    return sum(1 for e in list(box.client.request_log) if e[1] == f"submissions/{sid}")


# -- showing what can be submitted --------------------------------------------------------------------
def test_submit_box_shows_the_competition_what_is_left_and_what_to_send(server, world, cwd):
    results_zip(cwd, "predictions.zip")
    (cwd / "code").mkdir()
    (cwd / "code" / "run.py").write_text("print(1)\n")
    (cwd / "__pycache__").mkdir()
    box = Submit(world.slug, client=client_for(server, "ann"))
    assert "compete-submit" in box._dom_classes
    assert box._title.value == "<b>Submit to Secrets</b> \u2014 phase Development"
    assert box._left.value == "<span>Submissions left: 3 today, 8 in total.</span>"
    assert "compete-submissions-left" in box._left._dom_classes
    assert [v for _, v in box._what.options] == ["path:code", "path:predictions.zip"]
    assert box._button.description == "Submit" and "compete-submit-button" in box._button._dom_classes
    assert "compete-submit-status" in box._status._dom_classes and status_of(box) == "ready"
    bundle = box._repr_mimebundle_()
    assert bundle["text/plain"].splitlines()[:2] == ["Submit to Secrets, phase Development",
                                                     "Submissions left: 3 today, 8 in total."]
    assert "Submissions left" in bundle["text/html"] and "<script" not in bundle["text/html"]
    assert repr(box) == f"<Submit {world.slug}: ready>"
    box.close()


# -- every stage, driven by hand --------------------------------------------------------------------------
def test_progress_goes_through_every_stage_to_the_scores(server, world, platform, cwd):
    results_zip(cwd, "predictions.zip")
    box = Submit(world.slug, client=client_for(server, "ann"), description="first try")
    assert box._what.value == "path:predictions.zip"
    box._button.click()
    wait_stage(box, "Submitted")
    sid = box.state.info["id"]
    assert box._button.disabled
    html = box._status.value
    assert status_of(box) == "Submitted" and "Submitted (#2 in queue)" in html
    assert "Waiting in the queue: position 2" in html
    assert f'href="/services/competitions/submissions/{sid}"' in html
    wait_for(lambda: box._left.value == "<span>Submissions left: 2 today, 7 in total.</span>", what="one fewer left")
    for status in ("Preparing", "Running", "Scoring"):
        platform.runs.set_status(sid, status)
        wait_stage(box, status)
        assert status_of(box) == status
        assert f'data-step="{status}" style="font-weight: bold;">\u25cf {status}' in box._status.value
    assert "Running" in box.state.stages and "Computing the scores." in box._status.value
    finish(platform, sid, {"accuracy": 0.9, "secret": 0.1, "private_score": 0.2})
    wait_stage(box, "Finished")
    assert box.state.stages == ["uploading", "Submitted", "Preparing", "Running", "Scoring", "Finished"]
    box.wait(10)
    html = box._status.value
    assert status_of(box) == "Finished" and 'class="compete-scores"' in html
    assert re.search(r'<tr data-score="accuracy"><td[^>]*>Accuracy</td><td[^>]*><b>0.90</b>', html)
    assert "secret" not in html.lower().replace("secrets", "") and "private" not in html.lower()
    assert box.last_submission["id"] == sid and box.last_submission["scores"] == {"accuracy": 0.9}
    assert box.last_submission["description"] == "first try"
    assert not box._button.disabled
    assert "submission %d: Finished" % sid in box.state.to_text() and "Accuracy: 0.90" in box.state.to_text()
    box.close()


def test_a_finished_submission_refreshes_open_leaderboards_once_they_include_it(server, world, platform, cwd):
    results_zip(cwd, "predictions.zip")
    client = client_for(server, "ann")
    board = Leaderboard(world.slug, client=client, refresh=0)
    order = lambda: re.findall(r'data-participant="(\w+)"', board._table.value)  # noqa: E731
    assert order() == ["ben", "ann"]
    box = Submit(world.slug, client=client)
    box._button.click()
    wait_stage(box, "Submitted")
    sid = box.state.info["id"]
    platform.runs.after_finish = lambda phase_id, s: None  # ranked later, as the service's refresher does
    try:
        finish(platform, sid, {"accuracy": 0.99, "secret": 0, "private_score": 0})
    finally:
        platform.runs.after_finish = None
    # Finished, its scores shown, and said to be on its way to the board, which is not read yet.
    wait_for(lambda: (box.state.info or {}).get("on_leaderboard") is False, what="Finished, not yet ranked")
    assert status_of(box) == "Finished" and BOARD_LATE in box._status.value
    assert box._worker.is_alive() and order() == ["ben", "ann"]
    with platform.db.session() as s:
        phase_id = s.get(m.Submission, sid).phase_id
    platform.runs.refresh_boards(phase_id, (sid,))
    box.wait(10)
    # The box read the board once the board included the submission: no second look needed.
    assert box.state.info["on_leaderboard"] is True and BOARD_LATE not in box._status.value
    assert order() == ["ann", "ben"]
    board.close()
    box.close()


def test_closing_stops_following(server, world, cwd):
    results_zip(cwd, "predictions.zip")
    box = Submit(world.slug, client=client_for(server, "ann"))
    box._button.click()
    wait_stage(box, "Submitted")
    sid = box.state.info["id"]
    wait_for(lambda: submission_gets(box, sid) >= 3, what="polling")
    box.close()
    count = submission_gets(box, sid)
    time.sleep(0.3)
    assert submission_gets(box, sid) == count
    box._on_click()  # a closed box does nothing
    assert submission_gets(box, sid) == count


def test_an_organizer_is_told_their_first_submission_enters_them(server, world, cwd):
    results_zip(cwd, "predictions.zip")
    olga = Submit(world.slug, client=client_for(server, "olga"))
    assert olga._left.value == "<span>You organize Secrets: your first submission enters you.</span>"
    olga._button.click()
    wait_stage(olga, "Submitted")
    assert olga.state.info["participant"] == "olga"
    olga.close()


# -- errors are shown, never raised -------------------------------------------------------------------------
def test_errors_from_the_service_are_shown(server, world, platform, cwd):
    results_zip(cwd, "predictions.zip")
    nora = Submit(world.slug, client=client_for(server, "nora"))
    assert "You are not registered to Secrets yet" in nora._left.value
    assert 'href="/services/competitions/competitions/secrets"' in nora._left.value
    nora._button.click()
    wait_stage(nora, "error")
    assert "&#x27;nora&#x27; is not registered in &#x27;secrets&#x27;; register first" in nora._status.value
    assert 'class="compete-submit-error"' in nora._status.value and not nora._button.disabled
    nora.close()

    final = Submit(world.slug, phase=2, client=client_for(server, "ann"))
    assert final._left.value == "<span>Phase 2 (Final) opens 2100-01-01 00:00 UTC.</span>"
    final._button.click()
    wait_stage(final, "error")
    assert "opens at 2100-01-01 00:00 UTC" in final.state.error
    final.close()

    box = Submit(world.slug, client=client_for(server, "ann"))
    for _ in range(3):
        platform.submit(world.slug, cwd / "predictions.zip", username="ann")
    box._button.click()
    wait_stage(box, "error")
    assert "you have used all 5 submissions of today (UTC)" in box.state.error
    box._path.value = "nothing-here.zip"
    box._button.click()
    wait_stage(box, "error")
    assert "nothing-here.zip: no such file or folder" in box.state.error
    assert box.state.to_text().splitlines()[-1].startswith("error: ")
    box.close()


def test_without_a_service_the_box_says_so(world, monkeypatch):
    for name in ("COMPETE_SERVICE_URL", "JUPYTERHUB_PUBLIC_HUB_URL", "JUPYTERHUB_API_URL"):
        monkeypatch.delenv(name, raising=False)
    box = Submit(world.slug)
    assert box.client is None and status_of(box) == "error" and "COMPETE_SERVICE_URL" in box._status.value
    box._button.click()
    assert box.state.stage == "error"
    box.close()


# -- "this notebook, saved first" ------------------------------------------------------------------------------
@pytest.fixture
def notebook(cwd, monkeypatch):
    path = cwd / "work" / "analysis.ipynb"
    path.parent.mkdir()
    path.write_bytes(DEMO_NOTEBOOK.read_bytes())
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))
    return path


def save_request(box: Submit) -> tuple[str, str]:
    """(token, script) of the save request the box sent to the front end."""
    outputs = box._script.outputs
    assert len(outputs) == 1 and outputs[0]["output_type"] == "display_data"
    script = outputs[0]["data"]["application/javascript"]
    return re.search(r'var token = "([0-9a-f]+)"', script).group(1), script


def answer(box: Submit, token: str, status: str, detail: str = "") -> None:
    """What the script does in the browser: write the answer into the hidden field."""
    box._reply.value = json.dumps({"token": token, "status": status, "detail": detail})


def submitted_notebook(box: Submit, sid: int) -> dict:
    resp = box.client.session.get(f"{box.client.api_url}submissions/{sid}/file")
    assert resp.status_code == 200
    return json.loads(resp.content)


def test_this_notebook_is_saved_by_the_front_end_first(server, world, notebook):
    box = Submit(world.slug, client=client_for(server, "ann"))
    assert [v for _, v in box._what.options][:2] == ["notebook", "notebook-disk"]
    assert box._what.options[0][0] == "This notebook (analysis.ipynb), saved first"
    box._button.click()
    assert box.state.stage == "saving" and "Saving the notebook" in box._status.value
    token, script = save_request(box)
    assert "compete-save-reply" in box._reply._dom_classes and box._reply.layout.display == "none"
    assert "window.jupyterapp" in script and "context.save()" in script and "'keydown'" in script
    answer(box, "not-the-token", "requested")  # not an answer to this request: ignored
    box._reply.value = "{not json"
    assert box.state.stage == "saving"
    answer(box, token, "bogus")  # an answer, but not a save
    assert box.state.stage == "error" and "could not be saved (no reason given)" in box.state.error
    # The save by shortcut reaches the disk a moment after the answer.
    box._button.click()
    token, _ = save_request(box)
    answer(box, token, "requested")
    assert box.state.stage == "saving"
    nb = nbformat.read(str(notebook), as_version=4)
    nb.cells.append(nbformat.v4.new_code_cell("# UNSAVED-EDIT"))
    time.sleep(0.05)
    nbformat.write(nb, str(notebook))
    wait_stage(box, "Submitted")
    assert box._script.outputs == ()  # the request is gone once answered
    sent = submitted_notebook(box, box.state.info["id"])
    assert "# UNSAVED-EDIT" in json.dumps(sent) and box.state.info["kind"] == "notebook"
    assert box.state.info["filename"] == "analysis.ipynb"
    box.close()


def test_a_front_end_with_the_app_saves_and_answers_saved(server, world, notebook):
    box = Submit(world.slug, client=client_for(server, "ann"))
    box._button.click()
    token, _ = save_request(box)
    answer(box, token, "saved", "work/analysis.ipynb")
    wait_stage(box, "Submitted")
    box.close()


def test_nothing_unsaved_is_submitted(server, world, notebook, monkeypatch):
    monkeypatch.setattr(Submit, "save_timeout", 0.2)
    monkeypatch.setattr(Submit, "save_settle", 0.2)
    client = client_for(server, "ann")
    before = len(client.submissions(world.slug))
    box = Submit(world.slug, client=client)
    # A front end that runs no script never answers.
    box._button.click()
    wait_stage(box, "error")
    assert "this front end did not run the save request" in box.state.error
    assert "Ctrl+S" in box.state.error and "as last saved" in box.state.error
    assert box._script.outputs == ()
    # The shortcut was sent, but the file did not change.
    box._button.click()
    token, _ = save_request(box)
    answer(box, token, "requested")
    wait_stage(box, "error")
    assert "its file did not change" in box.state.error
    # The script failed in the browser.
    box._button.click()
    token, _ = save_request(box)
    answer(box, token, "failed", "Cannot read properties of null")
    assert box.state.stage == "error" and "Cannot read properties of null" in box.state.error
    assert len(client.submissions(world.slug)) == before
    # "As last saved" sends the file as it is on disk, without asking the front end.
    box._what.value = "notebook-disk"
    box._button.click()
    wait_stage(box, "Submitted")
    assert "saving" not in box.state.stages[-2:]
    assert len(client.submissions(world.slug)) == before + 1
    box.close()


def test_a_late_answer_after_close_does_nothing(server, world, notebook):
    client = client_for(server, "ann")
    before = len(client.submissions(world.slug))
    box = Submit(world.slug, client=client)
    box._button.click()
    token, _ = save_request(box)
    box.close()
    answer(box, token, "saved")
    time.sleep(0.2)
    assert len(client.submissions(world.slug)) == before


# -- real runs: a failing cell, a finished notebook ------------------------------------------------------------
def test_a_failing_notebook_shows_the_cell_and_the_traceback(running, cwd):
    client = client_for(running.server, "ben")
    client.register(running.slug, accept_terms=True)
    failing_notebook(cwd)
    box = Submit(running.slug, client=client, path="failing.ipynb")
    assert box._what.value == "path:failing.ipynb"
    box._button.click()
    box.wait(240)
    assert box.state.stage == "Failed", box.state.error
    html = box._status.value
    assert status_of(box) == "Failed"
    error = re.search(r'<p class="compete-submit-error"[^>]*><b>Failed</b>: ([^<]*)</p>', html).group(1)
    assert error.endswith("cell 4 raised ZeroDivisionError: division by zero")
    traceback = re.search(r'<pre class="compete-traceback"[^>]*>(.*?)</pre>', html, re.S).group(1)
    assert "ZeroDivisionError" in traceback and "1 / 0" in traceback
    assert "\u2717 Running" in html or "\u2717 Preparing" in html
    assert box.last_submission["status"] == "Failed" and "cell 4 raised" in box.state.to_text()
    box.close()


def test_a_notebook_runs_to_finished_with_its_scores(running, cwd):
    client = client_for(running.server, "nora")
    client.register(running.slug, accept_terms=True)
    (cwd / "kit.ipynb").write_bytes(DEMO_NOTEBOOK.read_bytes())
    box = Submit(running.slug, client=client, path="kit.ipynb")
    box._button.click()
    box.wait(240)
    assert box.state.stage == "Finished", box.state.info
    order = ["uploading", "Submitted", "Preparing", "Running", "Scoring", "Finished"]
    assert box.state.stages == sorted(box.state.stages, key=order.index)
    assert box.state.stages[0] == "uploading" and box.state.stages[-1] == "Finished"
    html = box._status.value
    assert "<td style=\"padding: 2px 8px;\">Accuracy</td>" in html and "Macro F1" in html
    accuracy = box.last_submission["scores"]["accuracy"]
    assert f"<b>{accuracy:.3f}</b>" in html
    box.close()


def test_a_folder_can_be_chosen_and_is_zipped(server, world, cwd):
    folder = cwd / "preds"
    (folder / ".ipynb_checkpoints").mkdir(parents=True)
    (folder / "predictions.txt").write_text("1\n")
    (folder / ".ipynb_checkpoints" / "x").write_text("junk")
    box = Submit(world.slug, client=client_for(server, "ann"))
    assert ("preds/ (folder, zipped)", "path:preds") in box._what.options
    box._what.value = "path:preds"
    box._button.click()
    wait_stage(box, "Submitted")
    sid = box.state.info["id"]
    content = box.client.session.get(f"{box.client.api_url}submissions/{sid}/file").content
    assert zipfile.ZipFile(io.BytesIO(content)).namelist() == ["predictions.txt"]
    assert box.state.info["filename"] == "preds.zip"
    box.close()


def test_typed_path_wins_over_the_choice(server, world, cwd):
    other = cwd / "elsewhere"
    other.mkdir()
    results_zip(other, "typed.zip")
    results_zip(cwd, "listed.zip")
    box = Submit(world.slug, client=client_for(server, "ann"), path=Path("elsewhere") / "typed.zip")
    assert box._path.value == str(Path("elsewhere") / "typed.zip")
    box._button.click()
    wait_stage(box, "Submitted")
    assert box.state.info["filename"] == "typed.zip"
    box.close()
