"""Where Open in JupyterLab puts a kit and its public data, so that a real kit runs as it is.

Real starting kits read their data with paths relative to the kit, as the two
archives sit once unzipped side by side (`../input_data`), or from a folder
inside the kit (`public_data`), and import helpers shipped beside the
notebook.  The decisions (`plan_layout`, `lay_out`, `front_file`, what moved
for a participant who had the first layout) are tested here from names and
bytes alone; `deliver` runs on the in-memory server of
test_starting_kit_plan.py.  The last test opens the Codabench-shaped fixture
kit_codabench through the real hub and runs the delivered notebook, in the
participant's folder, with the Python of the servers' kernels.
"""
from __future__ import annotations

import io
import json
import re
import uuid
import zipfile
from pathlib import Path

import nbformat
import pytest

from hub_extension import starting_kit as sk
from tests.hub_extension.lab.test_starting_kit_plan import FolderServer
from tests.support.paths import REPO

KIT_BUNDLE = REPO / "tests" / "fixtures" / "bundles" / "kit_codabench"
FOLDER = "competitions/seeds"


def files(source: str, members: dict[str, str]) -> list[sk.KitFile]:
    return [sk.KitFile.from_bytes(name, text.encode(), source) for name, text in members.items()]


def notebook(*cells: str) -> str:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell("Reads `../not_this` in prose only.")]
    nb.cells += [nbformat.v4.new_code_cell(c) for c in cells]
    return nbformat.writes(nb)


def fixture_kit() -> tuple[list[sk.KitFile], list[sk.KitFile]]:
    """The fixture bundle's starting kit and public data, as the archives' members."""
    def read(folder: str, source: str) -> list[sk.KitFile]:
        root = KIT_BUNDLE / folder
        return [sk.KitFile.from_bytes(p.relative_to(root).as_posix(), p.read_bytes(), source)
                for p in sorted(root.rglob("*")) if p.is_file()]
    return read("starting_kit", "starting_kit"), read("input_data", "public_data")


def layout_of(kit: dict[str, str], data: dict[str, str]) -> sk.Layout:
    return sk.lay_out(files("starting_kit", kit), files("public_data", data))[0]


# -- the decisions -------------------------------------------------------------------------------
def test_a_kit_that_reads_beside_itself_goes_to_starting_kit_with_the_data_beside_it():
    kit, data = fixture_kit()
    layout, placed = sk.lay_out(kit, data)
    assert layout == sk.Layout(kit="starting_kit", data="input_data", reads="../input_data")
    assert [f.path for f in placed] == ["starting_kit/README.ipynb", "starting_kit/helpers.py",
                                        "starting_kit/sample_data/few.csv", "input_data/test.csv",
                                        "input_data/train.csv"]
    # Each file keeps its name in its archive and its bytes.
    assert {f.path: f.name for f in placed}["input_data/train.csv"] == "train.csv"
    assert placed[-1].read() == (KIT_BUNDLE / "input_data" / "train.csv").read_bytes()
    # ./sample_data is the kit's own folder: it is not where the public data goes.
    assert sk.kit_reads({"README.ipynb": sk._code_of("README.ipynb", kit[0].read())}) == {
        "../input_data": 1, "sample_data": 1}


@pytest.mark.parametrize("code, expected", [
    ("DATA = os.path.join('..', 'public_data')", sk.Layout("starting_kit", "public_data", "", "../public_data")),
    ("DATA = Path('..') / 'input_data'", sk.Layout("starting_kit", "input_data", "", "../input_data")),
    ("data_dir = 'public_data'  # unzip the public data inside the kit", sk.Layout("", "public_data", "", "public_data")),
    ("D = DataManager('credit', './input_data/')", sk.Layout("", "input_data", "", "input_data")),
    ("input_dir = 'data'", sk.Layout("", "data", "", "data")),
    # Programs and outputs beside the kit are not data; paths further up are not the kit's.
    ("sys.path.append('../ingestion_program'); out = '../output'", sk.FIRST_LAYOUT),
    ("d = '../../input_data'", sk.FIRST_LAYOUT),
])
def test_the_data_goes_where_the_kits_code_reads_it(code, expected):
    assert layout_of({"README.ipynb": notebook("import os", code)}, {"train.csv": "x\n"}) == expected


def test_the_most_read_folder_wins_and_prose_does_not_count():
    code = "a = '../public_data/x.csv'\nb = '../input_data/y.csv'\nc = '../input_data/z.csv'"
    assert layout_of({"kit.py": code}, {"x.csv": ""}).data == "input_data"
    assert layout_of({"README.ipynb": notebook("print(1)")}, {"x.csv": ""}) == sk.FIRST_LAYOUT


def test_a_kit_archive_that_holds_its_folder_is_unzipped_as_it_is():
    layout, placed = sk.lay_out(
        files("starting_kit", {"starting_kit/README.ipynb": notebook("d = '../input_data'"),
                               "starting_kit/helpers.py": "x = 1"}),
        files("public_data", {"train.csv": "x\n"}))
    assert layout == sk.Layout(kit="", data="input_data", reads="input_data")
    assert [f.path for f in placed] == ["starting_kit/README.ipynb", "starting_kit/helpers.py", "input_data/train.csv"]


def test_a_data_archive_that_holds_the_folder_the_kit_reads_is_not_nested_in_it_again():
    layout, placed = sk.lay_out(files("starting_kit", {"README.ipynb": notebook("d = '../input_data'")}),
                                files("public_data", {"input_data/train.csv": "x\n", "input_data/test.csv": "y\n"}))
    assert layout.data == "input_data" and layout.data_strip == "input_data"
    assert [f.path for f in placed if f.source == "public_data"] == ["input_data/test.csv", "input_data/train.csv"]
    # ... and a kit that reads the data archive's own folder name finds it there.
    layout = layout_of({"run.py": "open('../seeds_public/train.csv')"}, {"seeds_public/train.csv": "x\n"})
    assert (layout.kit, layout.data, layout.data_strip) == ("starting_kit", "seeds_public", "seeds_public")


def test_kits_of_the_first_layout_keep_it():
    # The platform's own notebooks read `data` next to them; kits without code keep the kit at the top.
    from hub_extension.demo import DEMO_BUNDLE

    demo = DEMO_BUNDLE / "starting_kit" / "starting_kit.ipynb"
    kit = [sk.KitFile.from_bytes("starting_kit.ipynb", demo.read_bytes(), "starting_kit")]
    layout, placed = sk.lay_out(kit, files("public_data", {"train.csv": "x"}))
    assert [f.path for f in placed] == ["starting_kit.ipynb", "data/train.csv"]
    assert layout_of({"README.md": "Read ../input_data"}, {"train.csv": "x"}) == sk.FIRST_LAYOUT
    assert layout_of({"README.ipynb": notebook("d = '../input_data'")}, {}) == sk.FIRST_LAYOUT  # no data


def test_what_opens_in_front():
    kit, data = fixture_kit()
    assert sk.front_file(sk.lay_out(kit, data)[1]) == "starting_kit/README.ipynb"
    only_docs = files("starting_kit", {"docs/README.md": "", "README.txt": "", "README.md": "", "model.py": ""})
    assert sk.front_file(only_docs) == "README.md"
    assert sk.front_file(files("starting_kit", {"model.py": ""}) + files("public_data", {"README.md": ""})) is None


# -- a participant who had the first layout ---------------------------------------------------------------
def deliver(server: FolderServer, kit: dict[str, str], data: dict[str, str]) -> dict:
    layout, placed = sk.lay_out(files("starting_kit", kit), files("public_data", data))
    return sk.deliver(server, FOLDER, placed, slug="seeds", title="Seeds", phase=1, layout=layout)


def test_moving_to_the_side_by_side_layout_loses_nothing_and_says_what_moved():
    server = FolderServer()
    first = {"README.ipynb": notebook("input_dir = 'data'"), "helpers.py": "h1"}
    deliver(server, first, {"train.csv": "t1"})
    assert sorted(server.files) == [f"{FOLDER}/{p}" for p in ("README.ipynb", "competition.json", "data/train.csv",
                                                              "helpers.py")]
    server.files[f"{FOLDER}/helpers.py"] = b"my own helpers"
    before = dict(server.files)

    # The organizer's new kit reads ../input_data.
    kit = {"README.ipynb": notebook("data_dir = '../input_data'"), "helpers.py": "h1"}
    result = deliver(server, kit, {"train.csv": "t1"})
    assert result["moved"] == {"input_data/train.csv": "data/train.csv",
                               "starting_kit/README.ipynb": "README.ipynb",
                               "starting_kit/helpers.py": "helpers.py"}
    assert result["layout"] == {"starting_kit": f"{FOLDER}/starting_kit", "public_data": f"{FOLDER}/input_data",
                                "reads": "../input_data"}
    assert sorted(result["written"]) == ["input_data/train.csv", "starting_kit/README.ipynb", "starting_kit/helpers.py"]
    # Nothing at the old places changed; the participant's own helpers are still theirs.
    assert {p: server.files[p] for p in before if not p.endswith(("competition.json", "UPDATES.md"))} == {
        p: v for p, v in before.items() if not p.endswith("competition.json")}
    assert server.text(f"{FOLDER}/helpers.py") == "my own helpers"
    assert server.text(f"{FOLDER}/starting_kit/helpers.py") == "h1"
    note = server.text(f"{FOLDER}/UPDATES.md")
    assert "side by side" in note and "the kit reads `../input_data`" in note
    assert "- `helpers.py` is now `starting_kit/helpers.py` (you changed your copy there" in note
    assert "- `data/train.csv` is now `input_data/train.csv`\n" in note
    manifest = json.loads(server.text(f"{FOLDER}/competition.json"))
    assert manifest["layout"]["starting_kit"] == "starting_kit" and manifest["layout"]["public_data"] == "input_data"
    assert manifest["files"]["helpers.py"]["sha256"] == sk.KitFile.from_bytes("x", b"h1").sha256  # as delivered

    # Opening again: nothing moves any more, nothing is written.
    again = deliver(server, kit, {"train.csv": "t1"})
    assert again["moved"] == {} and again["written"] == [] and again["note"] is None


# -- through the real hub ------------------------------------------------------------------------------
def bundle_zip(title: str, kit: dict[str, str] | None = None) -> bytes:
    """The fixture bundle under `title`; `kit` (name -> text) replaces its starting kit."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for path in sorted(KIT_BUNDLE.rglob("*")):
            name = path.relative_to(KIT_BUNDLE).as_posix()
            if not path.is_file() or "__pycache__" in path.parts or ".ipynb_checkpoints" in path.parts:
                continue
            if kit is not None and name.startswith("starting_kit/"):
                continue
            data = path.read_bytes()
            if path.name == "competition.yaml":
                data = data.replace(b"title: Seeds (a Codabench starting kit)", f"title: {title}".encode())
            zf.writestr(name, data)
        for name, text in (kit or {}).items():
            zf.writestr(f"starting_kit/{name}", text)
    return buf.getvalue()


def upload(hub, organizer: str, title: str, kit: dict[str, str] | None = None) -> str:
    resp = hub.user_client(organizer).post("api/v1/competitions", files={"file": ("bundle.zip", bundle_zip(title, kit))})
    assert resp.status_code == 201, resp.text
    return resp.json()["slug"]


@pytest.mark.slow
def test_a_real_codabench_kit_opened_in_jupyterlab_runs_as_it_is(hub):
    from nbclient import NotebookClient

    tag = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"seed-org-{tag}", groups=["organizers"])
    participant = hub.create_user(f"seed-ann-{tag}")
    clients = {name: hub.user_client(name) for name in (organizer, participant)}
    resp = clients[organizer].post("api/v1/competitions",
                                   files={"file": ("bundle.zip", bundle_zip(f"Seeds {tag}"))})
    assert resp.status_code == 201, resp.text
    slug = resp.json()["slug"]
    resp = clients[participant].post(f"api/v1/competitions/{slug}/registration", json={"accept_terms": True})
    assert resp.status_code == 201, resp.text
    try:
        resp = clients[participant].post(f"api/v1/competitions/{slug}/phases/1/open_in_lab", timeout=180)
        assert resp.status_code == 200, (resp.text, hub.log_tail())
        result = resp.json()
        folder = f"competitions/{slug}"
        assert result["url"] == f"/user/{participant}/lab/tree/{folder}/starting_kit/README.ipynb"
        assert result["layout"] == {"starting_kit": f"{folder}/starting_kit", "public_data": f"{folder}/input_data",
                                    "reads": "../input_data"}
        contents = hub.server_contents(participant)
        assert contents.listing(folder) == ["competition.json", "input_data", "starting_kit"]
        assert contents.listing(f"{folder}/starting_kit") == ["README.ipynb", "helpers.py", "sample_data"]
        assert contents.read_bytes(f"{folder}/input_data/train.csv") == (KIT_BUNDLE / "input_data" / "train.csv"
                                                                         ).read_bytes()

        # The delivered notebook runs as it is, in its folder, with the servers' Python kernel.
        kit_dir = Path(hub.home) / "users" / participant / folder / "starting_kit"
        nb = nbformat.read(str(kit_dir / "README.ipynb"), as_version=4)
        NotebookClient(nb, timeout=120, kernel_name="python3", resources={"metadata": {"path": str(kit_dir)}}).execute()
        assert "training accuracy: 1.0" in "".join(o.get("text", "") for c in nb.cells for o in c.get("outputs", []))
        predictions = (kit_dir / "predictions.csv").read_text().splitlines()
        assert predictions == (KIT_BUNDLE / "reference_data" / "truth.csv").read_text().splitlines()
    finally:
        hub.stop_server(participant)


@pytest.mark.slow
@pytest.mark.chromium
def test_a_kit_without_a_notebook_opens_its_readme_in_front_of_the_previous_competitions_notebook(
        hub, browser_pages):
    from playwright.sync_api import expect

    from tests.support.browser import browser_login, browser_register
    from tests.support.lab import FRONT_END_TIMEOUT_MS

    tag = uuid.uuid4().hex[:6]
    organizer = hub.create_user(f"front-org-{tag}", groups=["organizers"])
    participant, password = f"front-ann-{tag}", f"pw-{uuid.uuid4().hex}"
    hub.create_user(participant, password=password)
    seeds = upload(hub, organizer, f"Seeds {tag}")
    code_kit = upload(hub, organizer, f"Code kit {tag}", {
        "README.md": "# Code kit\n\nEdit `model.py`, zip it with `metadata`, submit.\n",
        "model.py": "class Model:\n    pass\n"})
    page = browser_pages()
    page.set_default_timeout(FRONT_END_TIMEOUT_MS)
    try:
        browser_login(page, hub, participant, password)
        browser_register(page, f"Seeds {tag}")
        page.click("#open-in-lab button[type=submit]")
        page.wait_for_url(f"**/user/{participant}/lab/tree/competitions/{seeds}/starting_kit/README.ipynb")
        expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden) .jp-Cell").first).to_be_visible()

        page.goto(hub.url + "hub/home")
        browser_register(page, f"Code kit {tag}")
        page.click("#open-in-lab button[type=submit]")
        page.wait_for_url(f"**/user/{participant}/lab/tree/competitions/{code_kit}/README.md")
        current = page.locator("#jp-main-dock-panel .lm-TabBar-tab.lm-mod-current")
        expect(current).to_have_count(1)
        expect(current).to_contain_text("README.md")
        expect(page.locator(".jp-NotebookPanel:not(.lm-mod-hidden)")).to_have_count(0)
        expect(page.get_by_role("listitem", name=re.compile(r"^Name: model\.py "))).to_be_visible()
    finally:
        hub.stop_server(participant)
