"""What a warm kernel imports ahead: the fixed modules and those learned from the previous notebook."""
from __future__ import annotations

import os
import threading
import time

import nbformat

from dask_workers.executors.warm import Warm, WarmPool
from dask_workers.preload import Preloads, allowed, imported_modules, notebook_imports

from .conftest import write_notebook


def test_imports_of_a_notebook_in_order_without_magics_or_relative_imports(tmp_path):
    nb = write_notebook(
        tmp_path / "nb.ipynb",
        "%matplotlib inline\nimport numpy as np, pandas\nfrom sklearn.linear_model import LogisticRegression",
        "!pip install nothing\nfrom . import local\nimport numpy\n\ndef f():\n    import scipy.stats\n    return 1",
        "this is not python (",
        "from sklearn.pipeline import make_pipeline")
    assert notebook_imports(nb) == ["numpy", "pandas", "sklearn.linear_model", "scipy.stats", "sklearn.pipeline"]


def test_markdown_and_unreadable_notebooks_teach_nothing(tmp_path):
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("import sklearn")])
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    assert notebook_imports(path) == []
    (tmp_path / "broken.ipynb").write_text("{not json")
    assert notebook_imports(tmp_path / "broken.ipynb") == []
    assert notebook_imports(tmp_path / "missing.ipynb") == []
    # A link is never followed: the participant's folder could point anywhere on the worker.
    os.symlink(path, tmp_path / "link.ipynb")
    write_notebook(tmp_path / "real.ipynb", "import sklearn")
    os.unlink(tmp_path / "link.ipynb")
    os.symlink(tmp_path / "real.ipynb", tmp_path / "link.ipynb")
    assert notebook_imports(tmp_path / "link.ipynb") == []
    assert notebook_imports(tmp_path / "real.ipynb", max_bytes=10) == []


def test_only_modules_of_allowed_packages_are_kept():
    names = ["sklearn.linear_model", "os", "antigravity", "numpy", "sklearnx", "sklearn..x", "pandas.io"]
    assert allowed(names, ("numpy", "pandas", "sklearn")) == ["sklearn.linear_model", "numpy", "pandas.io"]
    assert allowed([f"numpy.m{i}" for i in range(100)], ("numpy",), limit=5) == [f"numpy.m{i}" for i in range(5)]
    assert imported_modules("import a.b\nfrom c import d") == ["a.b", "c"]


def test_learned_modules_follow_the_last_notebook_of_each_kind(tmp_path):
    preloads = Preloads(["numpy", "pandas"], ("numpy", "pandas", "sklearn"))
    first = write_notebook(tmp_path / "a.ipynb", "import pandas\nfrom sklearn.svm import SVC\nimport requests")
    second = write_notebook(tmp_path / "b.ipynb", "import numpy")
    assert preloads.modules("phase1") == ["numpy", "pandas"]
    assert preloads.learn(first, "phase1") == ["pandas", "sklearn.svm"]
    assert preloads.modules("phase1") == ["numpy", "pandas", "sklearn.svm"]
    assert preloads.modules("phase2") == ["numpy", "pandas"]  # another kind of step learns on its own
    preloads.learn(second, "phase1")
    assert preloads.modules("phase1") == ["numpy", "pandas"]  # the last notebook only
    assert Preloads(["numpy"], ()).learn(first) is None  # learning turned off


class _FakeContainer:
    short_id = "fake"

    def remove(self, force: bool = False) -> None:
        pass


def test_a_step_waits_for_the_warm_container_being_made_rather_than_start_cold(tmp_path):
    pool = WarmPool(size=1)
    started = threading.Event()

    def make() -> Warm:
        started.set()
        time.sleep(0.5)
        slot = tmp_path / "slot"
        slot.mkdir(exist_ok=True)
        return Warm(key="k", container=_FakeContainer(), slot=slot, folders={})

    try:
        pool.fill("k", make)
        assert started.wait(5)
        assert pool.take("k", lambda warm: True) is None  # not waiting: none yet
        pool.fill("k", make)
        t0 = time.monotonic()
        warm = pool.take("k", lambda warm: True, wait=10)
        assert warm is not None and time.monotonic() - t0 < 5
        assert pool.take("k", lambda warm: True, wait=10) is None  # nothing being made: no wait
    finally:
        pool.close()


def test_waiting_for_a_container_ends_when_its_making_fails(tmp_path):
    pool = WarmPool(size=1)

    def make() -> Warm:
        time.sleep(0.2)
        raise RuntimeError("no engine")

    try:
        pool.fill("k", make)
        t0 = time.monotonic()
        assert pool.take("k", lambda warm: True, wait=30) is None
        assert time.monotonic() - t0 < 5
    finally:
        pool.close()
