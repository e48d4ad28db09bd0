""""Run as the judge would": the Submit box runs the notebook in a real kernel, with the phase's time limit.

The phase (served by a real ServiceServer) says its time limit and image;
the notebook runs in a real IPython kernel: the judge kernel installed for
that image when there is one (here a kernel spec carrying the judge's marker),
else this Python, which the result says.  Nothing is ever submitted.
"""
from __future__ import annotations

import json
import re
import sys
import time
from pathlib import Path

import nbformat
import pytest

from hub_extension import models as m
from hub_extension.widgets import Submit
from hub_extension.widgets.preflight import choose_kernel
from tests.support.builders import ANN, ORGANIZER, simple_spec
from tests.support.lab import client_for, wait_for

pytestmark = pytest.mark.usefixtures("widget_comms")

NO_KERNEL_IMAGE = "jupyter-compete-test/no-judge-kernel:1"
JUDGE_IMAGE = "jupyter-compete-test/judge:1"


def competition(platform, title: str, image: str, limit: int) -> str:
    spec = simple_spec(execution_time_limit=limit)
    spec.title = title
    spec.docker_image = image
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    assert platform.register(slug, "ann", ANN, accept_terms=True) == m.APPROVED
    return slug


def notebook_of(folder: Path, *sources: str) -> Path:
    """A markdown cell, the parameters cell, then `sources` as code cells (so `sources[0]` is cell 3)."""
    params = nbformat.v4.new_code_cell('input_dir = "data"\noutput_dir = "predictions"')
    params.metadata["tags"] = ["parameters"]
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("# Kit"), params, *(nbformat.v4.new_code_cell(s) for s in sources)]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "kit.ipynb"
    nbformat.write(nb, str(path))
    return path


def open_box(server, slug: str, notebook: Path, monkeypatch) -> Submit:
    monkeypatch.setenv("JPY_SESSION_NAME", str(notebook))
    return Submit(slug, client=client_for(server, "ann"))


def nothing_submitted(box: Submit, slug: str) -> None:
    assert not [e for e in list(box.client.request_log) if e[0] == "POST"]
    assert box.client.submissions(slug) == []
    assert box.client.submissions_left(slug) == {"today": 5, "total": 100}


def test_a_notebook_over_the_time_limit_is_reported_before_any_submission(server, platform, kit, monkeypatch):
    slug = competition(platform, "Quick Ones", NO_KERNEL_IMAGE, limit=3)
    notebook = notebook_of(kit, "x = 1", "import time\ntime.sleep(120)", "print('never')")
    box = open_box(server, slug, notebook, monkeypatch)
    assert box.state.phase_info["execution_time_limit"] == 3 and box.state.phase_info["image"] == NO_KERNEL_IMAGE
    assert "compete-preflight-button" in box._preflight_button._dom_classes
    assert box._preflight_button.description == "Run as the judge would"
    started = time.monotonic()
    box._preflight_button.click()
    wait_for(lambda: box.preflight.state.cell == 4, 60, "cell 4 to run")
    assert box._preflight_button.description == "Stop the run"
    assert re.search(r"Running cell 4 of 5: \d\.\d s of the phase&#x27;s 3 s limit", box._preflight_status.value)
    state = box.preflight.wait(60)
    assert time.monotonic() - started < 40  # stopped at the limit, not after the cell's two minutes
    assert state.stage == "timeout" and state.cell == 4 and state.limit == 3
    assert 3.0 <= state.elapsed < 5.0
    html = box._preflight_status.value
    assert 'data-result="timeout" data-cell="4"' in html
    assert re.search(r"Over the time limit: [34]\.\d s elapsed, the phase allows 3 s; cell 4 was running\. The judge "
                     r"would stop this submission", html)
    # Said on the page: which environment ran it, and why not the judge's.
    assert ("in this kernel&#x27;s environment (Python " in html
            and f"no judge kernel is installed for the phase&#x27;s image {NO_KERNEL_IMAGE}" in html)
    assert "Nothing was submitted." in html and box._preflight_button.description == "Run as the judge would"
    assert box.state.stage == "ready"
    nothing_submitted(box, slug)
    box.close()


def test_a_failing_third_cell_is_named_with_its_error(server, platform, kit, monkeypatch):
    slug = competition(platform, "Failing Kit", NO_KERNEL_IMAGE, limit=60)
    notebook = notebook_of(kit, 'columns = {"sepal_width": 1}\ncolumns["petal_width"]', "print('after')")
    box = open_box(server, slug, notebook, monkeypatch)
    box._preflight_button.click()
    state = box.preflight.wait(60)
    assert state.stage == "failed" and state.cell == 3 and state.ename == "KeyError"
    assert state.summary().startswith("Cell 3 raised KeyError: 'petal_width' (after 0.")
    html = box._preflight_status.value
    assert 'data-result="failed" data-cell="3"' in html
    assert "Cell 3 raised KeyError: &#x27;petal_width&#x27;" in html
    traceback = re.search(r'<pre class="compete-preflight-traceback"[^>]*>(.*?)</pre>', html, re.S).group(1)
    assert 'columns[&quot;petal_width&quot;]' in traceback and "\x1b[" not in traceback
    executed = nbformat.read(str(kit / ".preflight" / "executed.ipynb"), as_version=4)
    assert len(executed.cells) == 4 and executed.cells[2].outputs[0]["ename"] == "KeyError"
    assert executed.cells[3].get("outputs") == []  # the judge stops at the failing cell too
    nothing_submitted(box, slug)
    box.close()


@pytest.fixture
def judge_kernel(tmp_path, monkeypatch):
    """A kernel spec marked as the judge kernel of JUDGE_IMAGE (an IPython kernel of this Python, marked by its env)."""
    spec_dir = tmp_path / "jupyter" / "kernels" / "judge-test"
    spec_dir.mkdir(parents=True)
    (spec_dir / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": f"Judge environment ({JUDGE_IMAGE})",
        "language": "python",
        "env": {"PREFLIGHT_KERNEL": "judge-test"},
        "metadata": {"jupyter_compete": {"kind": "judge", "image": JUDGE_IMAGE}},
    }))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path / "jupyter"))
    return "judge-test"


def test_the_judge_kernel_of_the_phase_image_runs_it_on_the_public_data(server, platform, kit, monkeypatch,
                                                                          judge_kernel):
    assert choose_kernel(JUDGE_IMAGE).name == judge_kernel
    assert choose_kernel("some/other:2").name is None
    slug = competition(platform, "Judged", JUDGE_IMAGE, limit=60)
    (kit / "data").mkdir()
    (kit / "data" / "test.csv").write_text("id\n1\n")
    monkeypatch.setenv("JUPYTERHUB_API_TOKEN", "a-token-the-judge-never-has")
    notebook = notebook_of(kit, "import os\n"
                                "seen = [os.environ.get('PREFLIGHT_KERNEL', ''), str('JUPYTERHUB_API_TOKEN' in os.environ),"
                                " os.path.abspath(input_dir), str(len(open(os.path.join(input_dir, 'test.csv')).read()))]\n"
                                "os.makedirs(output_dir, exist_ok=True)\n"
                                "open(os.path.join(output_dir, 'seen.txt'), 'w').write('|'.join(seen))")
    box = open_box(server, slug, notebook, monkeypatch)
    box._preflight_button.click()
    state = box.preflight.wait(60)
    assert state.stage == "passed", state.to_text()
    html = box._preflight_status.value
    assert f"in the judge kernel \u201cJudge environment ({JUDGE_IMAGE})\u201d (image {JUDGE_IMAGE})" in html
    assert re.search(r"Every cell ran: \d+\.\d s of the phase&#x27;s 60 s limit", html)
    assert "It wrote seen.txt to output_dir." in html and state.written == ["seen.txt"]
    seen = (kit / ".preflight" / "output" / "seen.txt").read_text().split("|")
    assert seen == ["judge-test", "False", str(kit / "data"), "5"]
    assert not (kit / "predictions").exists()  # the participant's own predictions are left alone
    nothing_submitted(box, slug)
    box.close()
