"""What the Submit box offers for each kind of kit, and its refusal of a choice the phase does not accept.

Against the real REST API (ServiceServer) and real uploads: a results kit
(its notebook writes predictions/), a code kit (a folder with a `metadata`
file) and a notebook-only kit, each in a phase that accepts everything and in
a results-only phase.
"""
from __future__ import annotations

import io
import re
import zipfile
from pathlib import Path

import nbformat
import pytest

from hub_extension import models as m
from hub_extension.widgets import Submit
from hub_extension.widgets.submit import predictions_folder
from tests.support.builders import ANN, ORGANIZER, simple_spec
from tests.support.lab import client_for, wait_for

pytestmark = pytest.mark.usefixtures("widget_comms")


@pytest.fixture(autouse=True)
def quick(monkeypatch):
    monkeypatch.setattr(Submit, "follow_interval", 0.05)


def competition(platform, title: str, **phase) -> str:
    spec = simple_spec(**phase)
    spec.title = title
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    assert platform.register(slug, "ann", ANN, accept_terms=True) == m.APPROVED
    return slug


@pytest.fixture
def phases(platform):
    """(a phase that accepts results, code and notebooks; a results-only phase), as slugs."""
    return competition(platform, "Anything Goes"), competition(platform, "Predictions Only", results_only=True)


def kit_notebook(folder: Path, output_dir: str | None) -> Path:
    """A kit's notebook in `folder`; its parameters cell sets `output_dir` when given. The kernel runs it."""
    nb = nbformat.v4.new_notebook()
    params = 'input_dir = "data"' + (f'\noutput_dir = "{output_dir}"  # where predictions.csv goes'
                                     if output_dir else "")
    cell = nbformat.v4.new_code_cell(params)
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [nbformat.v4.new_markdown_cell("# A kit"), cell, nbformat.v4.new_code_cell("print('model')")]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kit.ipynb"
    nbformat.write(nb, str(path))
    return path


def this_notebook(monkeypatch, path: Path) -> None:
    monkeypatch.setenv("JPY_SESSION_NAME", str(path))


def values(box: Submit) -> list[str]:
    return [v for _, v in box._what.options]


def uploads(box: Submit) -> int:
    return sum(1 for method, path, _ in list(box.client.request_log) if method == "POST" and path.endswith("/submissions"))


def submitted_names(box: Submit) -> list[str]:
    sid = box.state.info["id"]
    content = box.client.session.get(f"{box.client.api_url}submissions/{sid}/file").content
    return zipfile.ZipFile(io.BytesIO(content)).namelist()


def submit_and_wait(box: Submit) -> dict:
    box._button.click()
    wait_for(lambda: box.state.stage in ("Submitted", "error"), 20, "the upload")
    assert box.state.stage == "Submitted", box.state.error
    return box.state.info


# -- a kit that writes predictions ----------------------------------------------------------------------
def test_a_results_kit_offers_the_predictions_it_wrote_and_a_results_phase_refuses_the_notebook(
        server, phases, kit, monkeypatch):
    anything, results_only = phases
    notebook = kit_notebook(kit, "predictions")
    this_notebook(monkeypatch, notebook)
    client = client_for(server, "ann")

    # Before the notebook ran there is nothing to offer, and the refusal says to run it first.
    box = Submit(results_only, client=client)
    assert values(box) == ["notebook", "notebook-disk"]
    box._button.click()
    assert box.state.stage == "error"
    assert box.state.error == (
        "phase 1 (Development) accepts predictions (results) only, not a notebook: run the notebook first: it "
        "writes its predictions to predictions/; then choose \u201cThe predictions this notebook wrote\u201d. "
        "Nothing was submitted.")
    assert box._script.outputs == () and uploads(box) == 0  # not even saved
    box.close()

    (kit / "predictions").mkdir()
    (kit / "predictions" / "predictions.csv").write_text("id,species\n1,setosa\n")
    (kit / "predictions" / ".ipynb_checkpoints").mkdir()
    box = Submit(results_only, client=client)
    assert ("The predictions this notebook wrote (predictions/, zipped)", "predictions:predictions") in \
        box._what.options
    assert "path:predictions" not in values(box)  # offered once, under its name
    # The phase takes predictions only: they are chosen first.
    assert box._what.value == "predictions:predictions"
    box._what.value = "notebook-disk"
    box._button.click()
    assert box.state.stage == "error" and 'class="compete-submit-error"' in box._status.value
    assert box.state.error == (
        "phase 1 (Development) accepts predictions (results) only, not a notebook: choose \u201cThe predictions "
        "this notebook wrote (predictions/)\u201d. Nothing was submitted.")
    assert uploads(box) == 0 and client.submissions(results_only) == []
    # What it says to choose is taken, uploaded and recorded as results.
    box._what.value = "predictions:predictions"
    info = submit_and_wait(box)
    assert info["kind"] == "results" and info["filename"] == "predictions.zip"
    assert submitted_names(box) == ["predictions.csv"]
    assert len(client.submissions(results_only)) == 1
    box.close()

    # A phase that takes notebooks too offers this notebook first, and the predictions beside it.
    box = Submit(anything, client=client)
    assert values(box) == ["notebook", "notebook-disk", "predictions:predictions"]
    assert box._what.value == "notebook"
    box.close()


def test_without_an_output_dir_the_usual_folders_are_the_predictions(tmp_path):
    folder = tmp_path / "kit"
    (folder / "res").mkdir(parents=True)
    assert predictions_folder(None, folder) == (None, None)  # an empty folder is no predictions
    (folder / "res" / "answer.txt").write_text("42\n")
    (folder / "output").mkdir()
    (folder / "output" / "other.txt").write_text("1\n")
    assert predictions_folder(None, folder) == (folder / "res", folder / "res")  # in PREDICTION_FOLDERS order
    notebook = kit_notebook(folder, "elsewhere/preds")
    assert predictions_folder(notebook, folder) == (folder / "elsewhere" / "preds", None)  # the notebook's word wins


# -- a code kit ---------------------------------------------------------------------------------------
def test_a_code_kit_offers_its_code_folder_which_a_results_phase_refuses(server, phases, kit, monkeypatch):
    anything, results_only = phases
    notebook = kit_notebook(kit, None)
    this_notebook(monkeypatch, notebook)
    code = kit / "my_code"
    code.mkdir()
    (code / "metadata").write_text("command: python model.py\n")
    (code / "model.py").write_text("print('predicting')\n")
    (kit / "data").mkdir()
    (kit / "data" / "train.csv").write_text("x\n1\n")  # a folder of the kit that is no code
    client = client_for(server, "ann")

    box = Submit(anything, client=client)
    assert values(box) == ["notebook", "notebook-disk", "code:my_code", "path:data"]
    assert box._what.options[2][0] == "The code folder (my_code/, zipped)"
    box._what.value = "code:my_code"
    info = submit_and_wait(box)
    assert info["kind"] == "code" and info["filename"] == "my_code.zip"
    assert sorted(submitted_names(box)) == ["metadata", "model.py"]
    box.close()

    box = Submit(results_only, client=client_for(server, "ann"))
    assert box._what.value == "path:data"  # the only choice that is predictions
    box._what.value = "code:my_code"
    box._button.click()
    assert box.state.error == (
        "phase 1 (Development) accepts predictions (results) only, not code (a zip or folder with a metadata file): "
        "run your code yourself, then submit the files it predicts: zip them (or put them in a folder next to this "
        "notebook) and choose or type that path. Nothing was submitted.")
    # A typed path is checked the same way, before anything is sent.
    box._path.value = "my_code"
    box._button.click()
    assert "not code (a zip or folder with a metadata file)" in box.state.error
    assert uploads(box) == 0 and client.submissions(results_only) == []
    box.close()


# -- a notebook-only kit ------------------------------------------------------------------------------------
def test_a_notebook_only_kit_offers_the_notebook_alone(server, phases, kit, monkeypatch):
    anything, results_only = phases
    notebook = kit_notebook(kit, None)
    this_notebook(monkeypatch, notebook)
    client = client_for(server, "ann")

    box = Submit(anything, client=client)
    assert box._what.options == (("This notebook (kit.ipynb), saved first", "notebook"),
                                 ("This notebook (kit.ipynb), as last saved", "notebook-disk"))
    box._what.value = "notebook-disk"
    info = submit_and_wait(box)
    assert info["kind"] == "notebook" and info["filename"] == "kit.ipynb"
    box.close()

    box = Submit(results_only, client=client_for(server, "ann"))
    box._button.click()  # "saved first": refused before the front end is asked to save
    assert box._script.outputs == ()
    assert re.fullmatch(r"phase 1 \(Development\) accepts predictions \(results\) only, not a notebook: run your "
                        r"code yourself, .* Nothing was submitted\.", box.state.error)
    assert uploads(box) == 0 and client.submissions(results_only) == []
    box.close()
