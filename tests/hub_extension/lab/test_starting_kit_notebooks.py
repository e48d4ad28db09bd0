"""The starting-kit notebooks: the demo's, `compete init --template notebook`'s and the template in notebooks/.

Each is run twice, as it is used: in a folder laid out as "Open in JupyterLab"
delivers it (the defaults of its `parameters` cell must find the data), and
as a submission scored by the platform (papermill sets `input_dir` and
`output_dir`; the cells that submit and show the leaderboard must then do
nothing).  The browser test (test_lab_browser.py) runs the demo's in a real
JupyterLab and submits it with its widget.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import nbformat
import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.demo import DEMO_BUNDLE
from tests.support.paths import REPO

NOTEBOOK_BUNDLE = REPO / "templates" / "bundles" / "notebook"
# notebook -> the bundle whose data it reads
KITS = {
    "demo": (DEMO_BUNDLE / "starting_kit" / "starting_kit.ipynb", DEMO_BUNDLE),
    "notebook-template-bundle": (NOTEBOOK_BUNDLE / "starting_kit" / "starting_kit.ipynb", NOTEBOOK_BUNDLE),
    "notebooks-template": (REPO / "notebooks" / "starting_kit_template.ipynb", DEMO_BUNDLE),
}
PLATFORM_CELLS = 4  # the last cells: submit (text, code), leaderboard (text, code)


def read(path: Path):
    return nbformat.read(str(path), as_version=4)


@pytest.mark.parametrize("name", KITS)
def test_each_kit_has_one_parameters_cell_and_the_same_platform_cells(name):
    nb = read(KITS[name][0])
    nbformat.validate(nb)
    tagged = [c for c in nb.cells if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1
    assert 'input_dir = "data"' in tagged[0].source and "output_dir = " in tagged[0].source
    reference = read(KITS["demo"][0]).cells[-PLATFORM_CELLS:]
    assert [c.source for c in nb.cells[-PLATFORM_CELLS:]] == [c.source for c in reference]
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    assert "Submit(about[\"competition\"])" in code and "Leaderboard(about[\"competition\"]" in code
    # No outputs are shipped: the participant sees their own run.
    assert all(not c.get("outputs") for c in nb.cells if c.cell_type == "code")


@pytest.mark.parametrize("name", KITS)
def test_each_kit_runs_in_the_folder_open_in_jupyterlab_makes(name, tmp_path, monkeypatch):
    import papermill

    notebook, bundle = KITS[name]
    folder = tmp_path / "competitions" / "kit"
    shutil.copytree(bundle / "input_data", folder / "data")
    shutil.copy(notebook, folder / "starting_kit.ipynb")
    (folder / "competition.json").write_text(json.dumps({"competition": "kit", "phase": 1}))
    # Not on the platform (no hub token): the submit cells say so instead of failing.
    monkeypatch.delenv("JUPYTERHUB_API_TOKEN", raising=False)
    out = papermill.execute_notebook(str(folder / "starting_kit.ipynb"), str(tmp_path / "out.ipynb"),
                                     cwd=str(folder), progress_bar=False, kernel_name="python3")
    printed = "".join(o.get("text", "") for c in out.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "No competition to submit to from here" in printed
    predictions = next(folder.glob("*/predictions.csv"))
    test_rows = (folder / "data" / "test.csv").read_text().strip().splitlines()
    assert len(predictions.read_text().strip().splitlines()) == len(test_rows)


@pytest.fixture(scope="module")
def scorer(tmp_path_factory):
    """A platform with the process executor and the local Dask queue, scoring what it is given."""
    from hub_extension.dispatch import Dispatcher

    platform = Platform(home=str(tmp_path_factory.mktemp("kits-home")))
    platform.config.executor = "process"
    dispatcher = Dispatcher(platform)
    slugs: dict[Path, str] = {}

    def score(notebook: Path, bundle: Path) -> dict:
        if bundle not in slugs:
            slugs[bundle], _ = platform.create_competition(bundle, LOCAL_ADMIN)
        slug = slugs[bundle]
        user = f"user{len(platform.participants(slug, LOCAL_ADMIN)) + 1}"
        platform.register(slug, user, LOCAL_ADMIN)
        sid = platform.submit(slug, notebook, username=user, actor=LOCAL_ADMIN)
        assert dispatcher.dispatch(sid)
        return dispatcher.wait(sid, 300)

    yield score
    dispatcher.close()
    platform.close()


@pytest.mark.parametrize("name", KITS)
def test_each_kit_is_scored_when_submitted_as_it_is(name, scorer):
    notebook, bundle = KITS[name]
    info = scorer(notebook, bundle)
    assert info["status"] == m.FINISHED, info["error"]
    if name == "demo":
        assert info["scores"]["accuracy"] > 0.8
    elif name == "notebook-template-bundle":
        assert info["scores"] == {"accuracy": 1.0}
    else:
        assert 0 < info["scores"]["accuracy"] < 1
