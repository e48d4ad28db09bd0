"""A CodaLab v1.5 bundle naming `codalab/codalab-legacy:py37`, end to end on the docker executor.

Its scoring program uses `np.float` (gone since numpy 1.24) and, like many of
its time, catches its own error and writes -1.  On the legacy runtime it gets
the score it computes by hand (with np.float restored); on the default
runtime, -1.  The organizer is told at upload which image runs instead of the
one named, and sees on the submission's page the image each step ran on (name
and digest).  A Python 2 scoring program is reported at upload, file and line.
"""
from __future__ import annotations

import math
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from hub_extension.bundles.images import python2_line, removed_numpy_use
from kernels.build import DEFAULT_IMAGE, LEGACY_IMAGE
from tests.support.builders import ORGANIZER
from tests.support.bundles import zip_folder
from tests.support.paths import BUNDLE_FIXTURES
from tests.support.service_harness import ServiceServer, ok

from .test_bundles_end_to_end import NOW, Stack, unzip, zip_of

BUNDLE = BUNDLE_FIXTURES / "legacy_codalab_np_float"
SOURCES = BUNDLE_FIXTURES / "legacy_sources"
SAMPLE = SOURCES / "sample_submission"
REQUESTED = "codalab/codalab-legacy:py37"

# Runs a scoring program by hand with this Python, whose numpy has no np.float:
# the alias is put back first, as numpy < 1.24 had it.
WITH_NP_FLOAT = "import numpy, runpy, sys; numpy.float = float; sys.argv = sys.argv[1:]; " \
                "runpy.run_path(sys.argv[0], run_name='__main__')"


def expected_scores(work: Path) -> dict[str, float]:
    scoring = unzip(BUNDLE / "scoring_program.zip", work / "scoring")
    reference = unzip(BUNDLE / "reference_data.zip", work / "reference")
    (work / "in" / "ref").parent.mkdir(parents=True)
    shutil.copytree(reference, work / "in" / "ref")
    shutil.copytree(SAMPLE, work / "in" / "res")
    subprocess.run([sys.executable, "-c", WITH_NP_FLOAT, str(scoring / "score.py"), str(work / "in"),
                    str(work / "out")], check=True, timeout=60)
    scores = {}
    for line in (work / "out" / "scores.txt").read_text().splitlines():
        key, _, value = line.partition(":")
        scores[key.strip()] = float(value)
    return scores


@pytest.fixture(scope="module")
def stack(tmp_path_factory, runtime_image, legacy_image):
    s = Stack(tmp_path_factory.mktemp("legacy-home"))
    yield s
    s.close()


def submit(stack: Stack, slug: str, tmp_path: Path, user: str) -> tuple[int, dict]:
    stack.platform.register(slug, user, LOCAL_ADMIN)
    sid = stack.platform.submit(slug, zip_of(SAMPLE, tmp_path / f"{user}.zip"), username=user, phase=1,
                                actor=LOCAL_ADMIN, now=NOW)
    assert stack.dispatcher.dispatch(sid)
    return sid, stack.dispatcher.wait(sid, 300)


def runs_of(stack: Stack, sid: int) -> list[m.Run]:
    with stack.platform.db.session() as s:
        return list(s.query(m.Run).filter(m.Run.submission_id == sid).all())


def test_the_fixture_zips_are_their_sources():
    for archive, folder in (("scoring_program.zip", "scoring_program"), ("reference_data.zip", "reference_data")):
        with zipfile.ZipFile(BUNDLE / archive) as zf:
            inside = {name: zf.read(name) for name in zf.namelist() if not name.endswith("/")}
        assert inside == {p.name: p.read_bytes() for p in (SOURCES / folder).iterdir()}, archive


def test_legacy_bundle_scores_as_its_own_program_computes_on_the_legacy_image(stack, tmp_path, docker_engine):
    slug, warnings = stack.platform.create_competition(BUNDLE, ORGANIZER)
    # At upload: the image named, the image used, where.
    image_lines = [w for w in warnings if REQUESTED in w]
    assert len(image_lines) == 1, warnings
    assert "phase 1 (Development)" in image_lines[0] and f"runs on {LEGACY_IMAGE}" in image_lines[0]
    assert "numpy 1.23.5" in image_lines[0] and "c.Compete.image_aliases" in image_lines[0]
    assert not [w for w in warnings if "Python 2" in w]
    # Its np.float is no trouble on the legacy runtime: nothing said about it.
    assert not [w for w in warnings if "numpy removed in 1.24" in w], warnings

    sid, info = submit(stack, slug, tmp_path, "ann")
    assert info["status"] == m.FINISHED, info["error"]
    want = expected_scores(tmp_path / "by-hand")
    assert want == pytest.approx({"rmse": math.sqrt(0.125), "close": 0.5}, abs=1e-6)  # written to 6 decimals
    assert info["scores"] == pytest.approx(want)

    # The run records the image it ran on, by name and by the digest of what the engine ran.
    (scoring,) = [r for r in runs_of(stack, sid) if r.step == "scoring"]
    legacy_id = docker_engine.images.get(LEGACY_IMAGE).id
    assert (scoring.image, scoring.image_digest) == (LEGACY_IMAGE, legacy_id)

    # The organizer's page of the submission shows it beside the image the bundle named; a participant's does not.
    server = ServiceServer(stack.platform, executor_warning=None).start()
    try:
        page = ok(server.browser("olga").get(f"submissions/{sid}")).text
        assert f'data-image="{LEGACY_IMAGE}"' in page and legacy_id in page
        assert f"instead of {REQUESTED}, named by the bundle" in page
        view = stack.platform.submission_view(sid, ORGANIZER)
        (row,) = [r for r in view["runs"] if r["step"] == "scoring"]
        assert (row["image"], row["image_digest"], row["requested_image"]) == (LEGACY_IMAGE, legacy_id, REQUESTED)
        own_page = ok(server.browser("ann").get(f"submissions/{sid}")).text
        assert 'id="runs"' in own_page and LEGACY_IMAGE not in own_page and REQUESTED not in own_page
    finally:
        server.stop()


def test_the_same_bundle_on_the_default_runtime_scores_minus_one(stack, tmp_path, docker_engine):
    """What happens without the legacy runtime: the program catches np.float's error and writes -1."""
    own = {REQUESTED: DEFAULT_IMAGE}
    previous = dict(stack.platform.config.image_aliases)
    stack.platform.config.image_aliases = own
    try:
        bundle = shutil.copytree(BUNDLE, tmp_path / "bundle")
        slug, warnings = stack.platform.create_competition(bundle, ORGANIZER)
        assert any(f"the image {REQUESTED} runs on {DEFAULT_IMAGE}" in w for w in warnings), warnings
        # ... and that its scoring program uses what that runtime's numpy no longer has.
        (removed,) = [w for w in warnings if "numpy removed in 1.24" in w]
        assert removed.startswith("scoring_program.zip: score.py line 20 uses np.float"), removed
        assert f"runs on {DEFAULT_IMAGE}" in removed and "codalab/codalab-legacy:py37" in removed
        sid, info = submit(stack, slug, tmp_path, "ann2")
    finally:
        stack.platform.config.image_aliases = previous
    assert info["status"] == m.FINISHED, info["error"]
    assert info["scores"] == {"rmse": -1.0, "close": -1.0}
    (scoring,) = [r for r in runs_of(stack, sid) if r.step == "scoring"]
    assert (scoring.image, scoring.image_digest) == (DEFAULT_IMAGE, docker_engine.images.get(DEFAULT_IMAGE).id)


def py2_bundle(root: Path) -> Path:
    bundle = shutil.copytree(BUNDLE, root / "py2-bundle")
    zip_folder(SOURCES / "py2_scoring_program", bundle / "scoring_program.zip")
    return bundle


def test_a_python_2_scoring_program_is_reported_at_upload_with_file_and_line(stack, tmp_path):
    bundle = py2_bundle(tmp_path)
    line = next(n for n, text in enumerate((SOURCES / "py2_scoring_program" / "score.py").read_text().splitlines(), 1)
                if text.startswith("print "))
    _, checked = stack.platform.validate_bundle(bundle)
    slug, warnings = stack.platform.create_competition(bundle, ORGANIZER)
    for found in (checked, warnings):
        (py2,) = [w for w in found if "Python 2" in w]
        assert py2.startswith(f"scoring_program.zip: score.py line {line} is Python 2 (a print statement")
        assert "phase 1 (Development)" in py2 and "port it to Python 3" in py2


def test_python_3_programs_of_the_fixtures_are_not_reported(stack):
    _, warnings = stack.platform.validate_bundle(BUNDLE_FIXTURES / "good" / "codalab_code")
    assert not [w for w in warnings if "Python 2" in w]
    assert [w for w in warnings if "codalab/codalab-legacy:py3" in w and LEGACY_IMAGE in w]


@pytest.mark.parametrize("source, line, construct", [
    ('import os\nprint "score", 1\n', 2, "a print statement"),
    ("try:\n    pass\nexcept ValueError, e:\n    pass\n", 3, "`except X, e:`"),
    ("x = `1`\n", 1, "backticks"),
    ('raise ValueError, "bad"\n', 1, "`raise E, message`"),
    ("if 1 <> 2:\n    pass\n", 1, "`<>`"),
    ("mode = 0777\n", 1, "octal"),
    ('exec "x = 1"\n', 1, "exec statement"),
    ('import sys\nprint >>sys.stderr, "x"\n', 2, "print statement to a file"),
    ("def f():\n\tif 1:\n        return 1\n", 3, "tabs and spaces"),
])
def test_python_2_constructs_are_found(source, line, construct):
    found = python2_line(source, "p.py")
    assert found is not None and found.line == line and construct in found.construct


@pytest.mark.parametrize("source", [
    'print("ok")\nprint\n',
    "x = (\n",  # broken, but not Python 2
    "try:\n    pass\nexcept (ValueError, TypeError):\n    pass\n",
    "print (1, 2)\nmode = 0o777\n",
])
def test_python_3_or_other_errors_are_not_called_python_2(source):
    assert python2_line(source, "p.py") is None


@pytest.mark.parametrize("source, found", [
    ("import numpy as np\nx = np.float(1)\n", "np.float"),
    ("import numpy\ny = 1\nx = numpy.int(2)\n", "numpy.int"),
    ("import numpy as N\nx = N.array([1], dtype=N.bool)\n", "N.bool"),
])
def test_numpy_names_removed_in_1_24_are_found(source, found):
    use = removed_numpy_use(source, "p.py")
    assert use is not None and use.construct == found and use.file == "p.py"


@pytest.mark.parametrize("source", [
    "import numpy as np\nx = np.float64(1)\n",  # still there
    "x = float(1)\nclass np: float = 1\ny = other.float\n",  # not numpy
    "print 'python 2'\n",  # not Python 3: the Python 2 check says it
])
def test_other_code_is_not_called_a_removed_numpy_name(source):
    assert removed_numpy_use(source) is None
