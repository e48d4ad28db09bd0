"""A real starting kit, opened in JupyterLab, runs as delivered in the judge's environment, then is submitted.

The kit (`tests/fixtures/bundles/kit_sklearn`) has the shape of a Codabench
starting kit: a notebook that imports scikit-learn, pandas and matplotlib,
a helper module beside it, the public data read from `../input_data`, the
predictions written to `submission/`; its last cell shows the platform's
Submit and Leaderboard widgets.  Headless Chromium, through the real hub:
register, Open in JupyterLab, Run All Cells with no error, submit "the
predictions this notebook wrote" from the widget, the score (what a 1-nearest
neighbour computed here scores against the truth) in the box and the API;
the board follows Codabench's default rule (Add), so the participant puts the
submission on it with the Leaderboard widget's button, and the row shows.

Twice, once per set-up the competition page names:

- `judge_hub`: Docker answers, so the notebook opens in the judge's kernel of
  the phase's image (the image's Python, `/opt/venv/bin/python3`, in a
  container labelled as a judge kernel), and the widgets run there;
- `hub`: the servers may not use Docker (COMPETE_LAB_DOCKER=0), so the
  notebook runs in the servers' own Python, which has the runtime image's
  packages at their versions (the fallback environment); the page says so.
"""
from __future__ import annotations

import io
import json
import re
import sys
import uuid
import zipfile

import pandas as pd
import pytest

from hub_extension.judge_specs import SERVERS_FOLDER, SERVERS_STATE, short_digest
from kernels.build import DEFAULT_IMAGE
from kernels.images import docker_client
from kernels.judge_kernel import LABEL_KERNEL
from tests.support.browser import browser_login, browser_register
from tests.support.components import wait_for
from tests.support.lab import FRONT_END_TIMEOUT_MS, SCORING_TIMEOUT_MS, run_all_cells
from tests.support.paths import REPO

pytestmark = [pytest.mark.slow, pytest.mark.chromium]

LAB = FRONT_END_TIMEOUT_MS

KIT = REPO / "tests" / "fixtures" / "bundles" / "kit_sklearn"
TITLE_LINE = b"title: Seeds with scikit-learn (a Codabench starting kit)"


def kit_bundle(title: str) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(KIT.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts and ".ipynb_checkpoints" not in path.parts:
                data = path.read_bytes()
                if path.name == "competition.yaml":
                    data = data.replace(TITLE_LINE, f"title: {title}".encode())
                zf.writestr(path.relative_to(KIT).as_posix(), data)
    return buf.getvalue()


def expected_accuracy() -> float:
    """What the kit's model (1-nearest neighbour on area and length) scores against the truth, computed here."""
    from sklearn.neighbors import KNeighborsClassifier

    train = pd.read_csv(KIT / "input_data" / "train.csv")
    test = pd.read_csv(KIT / "input_data" / "test.csv")
    truth = pd.read_csv(KIT / "reference_data" / "truth.csv")
    model = KNeighborsClassifier(n_neighbors=1).fit(train[["area", "length"]], train["variety"])
    predicted = dict(zip(test["id"], model.predict(test[["area", "length"]])))
    return sum(predicted[i] == v for i, v in zip(truth["id"], truth["variety"])) / len(truth)


def judge_kernel_containers() -> int:
    client = docker_client()
    try:
        return len(client.containers.list(filters={"label": LABEL_KERNEL}))
    finally:
        client.close()


def take_part_with_the_kit(hub, browser_pages, tmp_path, *, kind: str) -> dict:
    """Register, open the kit in JupyterLab, Run All, submit its predictions from the widget; what was seen."""
    from playwright.sync_api import expect

    tag = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"sk-org-{tag}", groups=["organizers"])
    participant, password = f"sk-ann-{tag}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(participant, password=password)
    title = f"Seeds sklearn {tag}"
    resp = hub.user_client(organizer).post("api/v1/competitions",
                                           files={"file": ("bundle.zip", kit_bundle(title))})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    state = json.loads((hub.home / SERVERS_FOLDER / SERVERS_STATE).read_text())
    seen: dict = {"slug": slug}
    page = browser_pages()
    page.set_default_timeout(FRONT_END_TIMEOUT_MS)
    try:
        # -- the competition page says which environment the notebooks get ---------------------------
        browser_login(page, hub, participant, password)
        browser_register(page, title)
        environment = page.locator("#lab-environment")
        expect(environment).to_have_attribute("data-kind", kind, timeout=LAB)
        seen["environment"] = environment.inner_text()
        if kind == "judge":
            entry = state["kernels"][DEFAULT_IMAGE]
            expect(environment).to_contain_text(f"{DEFAULT_IMAGE}@{short_digest(entry['digest'])}", timeout=LAB)
            kernel_label = entry["display_name"]
        else:
            expect(environment).to_have_attribute("data-packages", "same", timeout=LAB)
            kernel_label = "Python 3"

        # -- JupyterLab: the kit's notebook, in that kernel ------------------------------------------------
        page.click("#open-in-lab button[type=submit]")
        page.wait_for_url(f"**/user/{participant}/lab/tree/competitions/{slug}/starting_kit/README.ipynb")
        notebook = page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")
        expect(notebook.locator(".jp-Cell").first).to_be_visible(timeout=LAB)
        expect(page.locator(".jp-StatusBar-Widget", has_text=re.compile(re.escape(kernel_label) + r".*\|\s*Idle"))
               .first).to_be_visible(timeout=LAB)
        if kind == "judge":
            seen["containers"] = judge_kernel_containers()

        # -- Run All Cells: every cell runs as delivered ----------------------------------------------------
        run_all_cells(page, notebook, until="wrote 3 predictions to submission/predictions.csv")
        python = notebook.locator(".jp-OutputArea-output", has_text="python /")
        expect(python).to_have_count(1, timeout=LAB)
        seen["python"] = python.inner_text().split()[-1]
        trained = notebook.locator(".jp-OutputArea-output", has_text="training accuracy: 1.0")
        expect(trained).to_have_count(1, timeout=LAB)
        expect(notebook.locator(".jp-RenderedImage img")).to_have_count(1, timeout=LAB)  # the matplotlib figure, inline
        submit_box = notebook.locator(".compete-submit")
        expect(submit_box.locator(".compete-submit-button")).to_be_enabled(timeout=LAB)
        for marker in ("Traceback", "Error", "No competition to submit to"):
            assert notebook.locator(".jp-OutputArea-output", has_text=marker).count() == 0, marker

        # -- submit the predictions the notebook wrote, from the widget ------------------------------------
        choice = submit_box.locator("select option", has_text="The predictions this notebook wrote")
        expect(choice).to_have_count(1, timeout=LAB)
        submit_box.locator("select").first.select_option(label=choice.inner_text())
        submit_box.locator(".compete-submit-button").click()
        status = submit_box.locator(".compete-submit-status")
        finished, failed = status.locator("[data-status='Finished']"), status.locator("[data-status='Failed']")
        expect(finished.or_(failed)).to_be_visible(timeout=SCORING_TIMEOUT_MS)
        assert not failed.count(), f"the submission failed: {status.inner_text()}"
        mine = hub.user_client(participant).get(f"api/v1/competitions/{slug}/submissions").json()["items"]
        assert len(mine) == 1 and mine[0]["status"] == "Finished", mine
        assert mine[0]["filename"].endswith(".zip"), mine[0]
        seen["accuracy"] = mine[0]["scores"]["accuracy"]
        expect(status.locator(".compete-scores")).to_contain_text(f"{seen['accuracy']:.2f}", timeout=LAB)

        # -- and on the board: the kit's board has Codabench's default rule, Add, so the participant puts
        # the submission there from the Leaderboard widget --------------------------------------------------
        def board_rows() -> list:
            board = hub.user_client(participant).get(f"api/v1/competitions/{slug}/leaderboard").json()
            return [(r["participant"], r["scores"]["accuracy"]) for r in board["rows"]]

        assert board_rows() == []
        choose = notebook.locator(".compete-leaderboard-widget .compete-leaderboard-choose-button")
        expect(choose).to_have_count(1, timeout=60_000)
        choose.click()
        wait_for(lambda: board_rows() == [(participant, seen["accuracy"])], timeout=30, what="the row on the board")
        row = notebook.locator(f".compete-leaderboard-widget tr.compete-own-row[data-participant='{participant}']")
        expect(row).to_contain_text(f"{seen['accuracy']:.2f}", timeout=60_000)
        page.screenshot(path=str(tmp_path / f"kit-{kind}.png"))
        return seen
    finally:
        hub.stop_server(participant)


def test_a_real_kit_runs_in_the_judges_kernel_and_its_predictions_are_submitted_from_the_widget(
        judge_hub, browser_pages, tmp_path):
    seen = take_part_with_the_kit(judge_hub, browser_pages, tmp_path, kind="judge")
    assert "run in the judge's environment" in seen["environment"]
    assert seen["python"] == "/opt/venv/bin/python3"  # the image's Python, not this one
    assert seen["containers"] >= 1  # the kernel ran in a container of the image
    assert seen["accuracy"] == pytest.approx(expected_accuracy())


def test_without_docker_the_kit_runs_in_the_servers_python_with_the_runtimes_packages(hub, browser_pages, tmp_path):
    seen = take_part_with_the_kit(hub, browser_pages, tmp_path, kind="server")
    assert "with the packages of the judge's image" in seen["environment"]
    assert "COMPETE_LAB_DOCKER=0" in seen["environment"]
    assert seen["python"] == sys.executable  # the servers run from this environment
    assert seen["accuracy"] == pytest.approx(expected_accuracy())
