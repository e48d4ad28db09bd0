"""Similarity signals: reading hostile files under caps, normalizing, MinHash, the sweep and its pairs."""
from __future__ import annotations

import datetime as dt
import io
import json
import random
import stat
import zipfile

import pytest
from sqlalchemy import select

from hub_extension import models as m
from hub_extension import similarity as sim
from hub_extension.app import Actor, Forbidden, NotFound, PlatformError
from hub_extension.bundles.model import DataRef
from tests.support.builders import ORGANIZER, simple_spec

# A participant's notebook: load, clean, fit, predict.
CELLS = [
    "import pandas as pd\nimport numpy as np\nfrom sklearn.ensemble import RandomForestClassifier\n",
    "train = pd.read_csv('train.csv')\ntest = pd.read_csv('test.csv')\n"
    "train = train.dropna(subset=['age', 'fare'])\n",
    "features = ['age', 'fare', 'pclass']\nX = train[features].values\ny = train['survived'].values\n",
    "model = RandomForestClassifier(n_estimators=200, max_depth=7, random_state=0)\nmodel.fit(X, y)\n"
    "for depth in range(3, 9):\n    print(depth, model.score(X, y))\n",
    "pred = model.predict(test[features].fillna(0).values)\n"
    "pd.DataFrame({'id': test['id'], 'survived': pred}).to_csv('predictions.csv', index=False)\n",
]
# The same notebook, its names changed, its comments new, its cells in another order.
RENAMED = [
    "# model\nclf = RandomForestClassifier(n_estimators=500, max_depth=9, random_state=42)  # tuned\nclf.fit(A, b)\n"
    "for d in range(3, 9):\n    print(d, clf.score(A, b))\n",
    "import pandas as pandas_lib\nimport numpy as numeric\nfrom sklearn.ensemble import RandomForestClassifier\n",
    "cols = ['age', 'fare', 'pclass']\nA = data[cols].values\nb = data['survived'].values\n",
    "data = pandas_lib.read_csv('train.csv')   # training\nholdout = pandas_lib.read_csv('test.csv')\n"
    "data = data.dropna(subset=['age', 'fare'])\n",
    "out = clf.predict(holdout[cols].fillna(0).values)\n"
    "pandas_lib.DataFrame({'id': holdout['id'], 'survived': out}).to_csv('predictions.csv', index=False)\n",
]
# Another approach altogether.
UNRELATED = [
    "import torch\nfrom torch import nn\n",
    "class Net(nn.Module):\n    def __init__(self):\n        super().__init__()\n"
    "        self.layers = nn.Sequential(nn.Linear(3, 16), nn.ReLU(), nn.Linear(16, 1))\n\n"
    "    def forward(self, x):\n        return torch.sigmoid(self.layers(x))\n",
    "net = Net()\nopt = torch.optim.Adam(net.parameters(), lr=1e-3)\nwith open('train.txt') as fh:\n"
    "    rows = [list(map(float, line.split())) for line in fh]\n",
    "while epoch < 100:\n    opt.zero_grad()\n    loss = nn.functional.binary_cross_entropy(net(x), t)\n"
    "    loss.backward()\n    opt.step()\n    epoch += 1\n",
]
# The starting kit's code, which everyone keeps.
KIT = [
    "import os\nimport json\nDATA = os.environ.get('DATA_DIR', '/app/data')\n",
    "def write_predictions(path, ids, values):\n    with open(path, 'w') as fh:\n"
    "        for i, v in zip(ids, values):\n            fh.write(f'{i},{v}\\n')\n"
    "    json.dump({'rows': len(ids)}, open(path + '.json', 'w'))\n",
    "def load(name):\n    with open(os.path.join(DATA, name)) as fh:\n"
    "        return [line.strip().split(',') for line in fh if line.strip()]\n",
]


def notebook(cells: list[str], language: str = "python") -> bytes:
    return json.dumps({
        "nbformat": 4, "nbformat_minor": 5,
        "metadata": {"kernelspec": {"name": language, "language": language, "display_name": language}},
        "cells": [{"cell_type": "markdown", "metadata": {}, "source": "# My solution"}]
        + [{"cell_type": "code", "metadata": {}, "execution_count": None, "outputs": [], "source": c}
           for c in cells],
    }).encode()


def zipped(members: dict[str, bytes], links: dict[str, str] = {}) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name, target in links.items():
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, target)
    return buf.getvalue()


def signature_of(data: bytes, name: str, kit: set[int] = frozenset(), **limits):
    signed = sim.sign(data, name, kit, sim.ReadLimits(**limits) if limits else sim.ReadLimits())
    return signed


def noise_source(seed: int, lines: int) -> bytes:
    """Python text that hardly compresses (a zip bomb of real text would be refused at submission)."""
    rng = random.Random(seed)
    return "".join(f"v{rng.getrandbits(64):x} = {rng.getrandbits(64)}\n" for _ in range(lines)).encode()


# -- the pure part ---------------------------------------------------------------------------------
def test_renamed_variables_and_reordered_cells_are_alike_and_unrelated_code_is_not():
    first = signature_of(notebook(CELLS), "a.ipynb")
    copy = signature_of(notebook(RENAMED), "b.ipynb")
    other = signature_of(notebook(UNRELATED), "c.ipynb")
    assert first.error is None and first.units == len(CELLS)
    assert sim.similarity(first.signature, copy.signature) >= 0.95
    assert sim.similarity(first.signature, other.signature) < 0.3
    # The estimate follows the exact Jaccard of the shingles it signs.
    exact = sim.jaccard(sim.shingles(sim.read_sources(notebook(CELLS), "a.ipynb").units),
                        sim.shingles(sim.read_sources(notebook(UNRELATED), "c.ipynb").units))
    assert abs(sim.similarity(first.signature, other.signature) - exact) < 0.15
    # The same code as files of a zip is the same code.
    as_zip = zipped({"metadata": b"command: python main.py\n",
                     **{f"src/part{i}.py": c.encode() for i, c in enumerate(reversed(CELLS))}})
    assert sim.similarity(first.signature, signature_of(as_zip, "code.zip").signature) >= 0.95
    # Many at once, as the sweep compares: the same values as one by one.
    matrix = sim.np.vstack([copy.signature, other.signature])
    assert list(sim.similarities(matrix, first.signature)) == [
        sim.similarity(first.signature, copy.signature), sim.similarity(first.signature, other.signature)]


def test_other_languages_and_unparsable_python_fall_back_to_the_regular_expression_tokenizer():
    r_one = "# clean\nx <- read.csv('train.csv')\nfit <- lm(y ~ a + b, data = x)\nprint(summary(fit))\n"
    r_two = "df <- read.csv(\"train.csv\")  # mine\nmodel <- lm(target ~ p + q, data = df)\nprint(summary(model))\n"
    assert sim.normalize(r_one, "r") == sim.normalize(r_two, "r")
    broken = "def f(:\n    return [1, 2\n"  # tokenize refuses it; its tokens still count
    assert sim.normalize(broken, "python")[0][:3] == ["def", "ID", "("]
    magic = "%matplotlib inline\n!pip install x\nvalue = 1\n"
    assert sim.normalize(magic, "python") == [["ID", "=", "NUM"]]


def test_zip_bomb_links_and_huge_members_are_refused_or_left_out_with_a_reason():
    limits = dict(max_member_bytes=20_000, max_total_bytes=60_000, max_members=50)
    code = "\n".join(CELLS).encode()
    # Links and names out of the archive: never followed, said so; the rest is read.
    hostile = zipped({"main.py": code, "../escape.py": b"import os\n", "/abs.py": b"import sys\n",
                      "data.csv": b"1,2,3\n" * 100, "model.bin": b"\0\1\2" * 100},
                     links={"stolen.py": "/etc/passwd"})
    signed = signature_of(hostile, "code.zip", **limits)
    assert signed.signature is not None and signed.units == 1
    error = signed.error
    assert "stolen.py: a symbolic link, not followed" in error
    assert "../escape.py: a name outside the archive" in error and "/abs.py: a name outside the archive" in error
    assert "data.csv" not in error and "passwd" not in error  # data files are not code; a link is not read
    # A member over its cap is left out, the others read.
    huge = zipped({"main.py": code, "weights.py": noise_source(1, 2000)})
    signed = signature_of(huge, "code.zip", **limits)
    assert signed.signature is not None and "weights.py" in signed.error and "over the 20000 bytes" in signed.error
    # Members that would unpack past the total: nothing is read.
    bomb = zipped({f"part{i}.py": noise_source(i, 300) for i in range(10)})
    with pytest.raises(sim.UnreadableSubmission, match="would unpack to .* over the 60000 bytes"):
        signature_of(bomb, "code.zip", **limits)
    with pytest.raises(sim.UnreadableSubmission, match="entries, over the 50"):
        signature_of(zipped({f"f{i}.py": b"x = 1\n" for i in range(60)}), "code.zip", **limits)
    with pytest.raises(sim.UnreadableSubmission, match="over the 100 bytes read"):
        signature_of(code, "main.py", max_file_bytes=100)
    with pytest.raises(sim.UnreadableSubmission, match="not a readable zip"):
        sim.read_sources(b"PK\x05\x06" + b"\0" * 10, "broken.zip")
    # A notebook that is not one, and a file with nothing to compare.
    assert "not a notebook" in signature_of(b"{nope", "x.ipynb").error
    assert signature_of(zipped({"README.md": b"hello"}), "x.zip").error == "no source code to compare"


def test_starting_kit_code_is_left_out_of_the_shingles():
    kit, problems = sim.kit_shingles([(zipped({f"kit/k{i}.py": c.encode() for i, c in enumerate(KIT)}), "kit.zip")])
    assert kit and problems == []
    # Two participants who kept the whole kit and added a few lines of their own, unalike.
    ann = notebook(KIT + ["rows = load('train.csv')\nprint(len(rows))\n"])
    ben = notebook(KIT + ["import random\nwrite_predictions('p.csv', range(10), [random.random() for _ in range(10)])\n"])
    with_kit = sim.similarity(signature_of(ann, "a.ipynb").signature, signature_of(ben, "b.ipynb").signature)
    without = sim.similarity(signature_of(ann, "a.ipynb", kit).signature, signature_of(ben, "b.ipynb", kit).signature)
    assert with_kit >= 0.6 and without < 0.2, (with_kit, without)
    # Only the kit: nothing of one's own to compare.
    only_kit = signature_of(notebook(KIT), "k.ipynb", kit)
    assert only_kit.signature is None and only_kit.error == "no source code to compare beyond the starting kit"


# -- the sweep and the organizers' review, on a platform -----------------------------------------
@pytest.fixture
def comp(platform):
    """A competition whose open phase has a starting kit holding KIT as a notebook; ann, ben and nora registered."""
    kit = platform.store.put_dataset_bytes(zipped({"starting_kit/kit.ipynb": notebook(KIT)}))
    slug = platform.competitions.insert_competition(
        simple_spec(starting_kit=DataRef("key", kit), start=dt.datetime(2020, 1, 1)), ORGANIZER)
    for name in ("ann", "ben", "nora"):
        platform.register(slug, name, Actor(name), accept_terms=True)
    return slug


def submit(platform, slug, tmp_path, who: str, name: str, data: bytes) -> int:
    path = tmp_path / who / name
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(data)
    return platform.submit(slug, path, username=who, actor=Actor(who))


def test_the_sweep_pairs_near_copies_of_different_participants_only(platform, comp, tmp_path):
    ann = submit(platform, comp, tmp_path, "ann", "solution.ipynb", notebook(KIT + CELLS))
    ann_again = submit(platform, comp, tmp_path, "ann", "again.ipynb", notebook(KIT + CELLS))
    ben = submit(platform, comp, tmp_path, "ben", "mine.ipynb", notebook(KIT[:1] + RENAMED))
    nora = submit(platform, comp, tmp_path, "nora", "nn.ipynb", notebook(KIT + UNRELATED))
    results = submit(platform, comp, tmp_path, "nora", "predictions.zip", zipped({"predictions.txt": b"1\n"}))
    done = platform.similarity_sweep()
    assert done == {"signed": 4, "errors": 0, "pairs": 2, "pending": 0}
    assert platform.similarity_sweep() == {"signed": 0, "errors": 0, "pairs": 0, "pending": 0}

    listing = platform.similarity_pairs(comp, ORGANIZER)
    pairs = {(p["first"]["submission_id"], p["second"]["submission_id"]): p for p in listing["pairs"]}
    # ben's copy is paired with both of ann's; ann is never paired with herself, nora with nobody.
    assert set(pairs) == {(ann, ben), (ann_again, ben)}
    pair = pairs[(ann, ben)]
    assert pair["similarity"] >= 0.9 and pair["verdict"] is None
    assert (pair["first"]["username"], pair["second"]["username"]) == ("ann", "ben")
    assert listing["signed"] == 4 and listing["pending"] == 0 and listing["errors"] == []
    assert nora not in {i for key in pairs for i in key} and results not in {i for key in pairs for i in key}
    assert platform.similarity_pairs(comp, ORGANIZER, minimum=0.999)["pairs"] == [
        p for p in listing["pairs"] if p["similarity"] >= 0.999]

    detail = platform.similarity_pair(comp, pair["id"], ORGANIZER)
    assert "RandomForestClassifier" in detail["first"]["source"] and "clf.fit(A, b)" in detail["second"]["source"]
    assert "ID = ID ( NUM , NUM )" not in detail["first"]["normalized"]
    assert "ID . ID ( ID , ID )" in detail["first"]["normalized"] and "# tuned" not in detail["second"]["normalized"]

    reviewed = platform.set_similarity_verdict(comp, pair["id"], "copy", ORGANIZER)
    assert reviewed["verdict"] == "copy" and reviewed["reviewed_by"] == "olga"
    assert platform.set_similarity_verdict(comp, pair["id"], None, ORGANIZER)["reviewed_by"] is None
    with pytest.raises(PlatformError, match="verdict must be one of copy, independent, unsure"):
        platform.set_similarity_verdict(comp, pair["id"], "guilty", ORGANIZER)
    with pytest.raises(PlatformError, match="min must be between 0 and 1"):
        platform.similarity_pairs(comp, ORGANIZER, minimum=2)
    with pytest.raises(NotFound):
        platform.similarity_pair(comp, 999_999, ORGANIZER)
    # Participants: refused everywhere.
    for call in (lambda a: platform.similarity_pairs(comp, a), lambda a: platform.similarity_pair(comp, pair["id"], a),
                 lambda a: platform.set_similarity_verdict(comp, pair["id"], "independent", a),
                 lambda a: platform.scan_similarity(comp, a)):
        with pytest.raises(Forbidden):
            call(Actor("ben"))


def test_team_mates_are_not_paired(platform, tmp_path):
    kit = platform.store.put_dataset_bytes(zipped({"kit.py": b"print('kit')\n"}))
    slug = platform.competitions.insert_competition(simple_spec(starting_kit=DataRef("key", kit)), ORGANIZER)
    with platform.db.session() as s:
        s.get(m.Competition, s.scalars(select(m.Competition.id).where(m.Competition.slug == slug)).one()
              ).allow_teams = True
    for name in ("ann", "ben"):
        platform.register(slug, name, Actor(name), accept_terms=True)
    team = platform.create_team(slug, "Pair", Actor("ann"))
    platform.invite_to_team(slug, team, "ben", Actor("ann"))
    platform.answer_invitation(slug, team, True, Actor("ben"))
    submit(platform, slug, tmp_path, "ann", "a.ipynb", notebook(CELLS))
    submit(platform, slug, tmp_path, "ben", "b.ipynb", notebook(RENAMED))
    done = platform.similarity_sweep()
    assert done["signed"] == 2 and done["pairs"] == 0


def test_unreadable_submissions_are_recorded_with_their_error_and_shown(platform, comp, tmp_path):
    platform.similarity.limits = sim.ReadLimits(max_member_bytes=20_000, max_total_bytes=60_000)
    bomb = zipped({"metadata": b"command: python main.py\n",
                   **{f"part{i}.py": noise_source(i, 300) for i in range(10)}})
    huge = zipped({"metadata": b"command: python main.py\n", "main.py": "\n".join(CELLS).encode(),
                   "weights.py": noise_source(99, 2000)})
    bomb_id = submit(platform, comp, tmp_path, "ann", "bomb.zip", bomb)
    huge_id = submit(platform, comp, tmp_path, "ben", "huge.zip", huge)
    gone_id = submit(platform, comp, tmp_path, "nora", "gone.ipynb", notebook(CELLS))
    with platform.db.session() as s:
        key = s.get(m.Submission, gone_id).file_key
    platform.store.delete_dataset(key)
    done = platform.similarity_sweep()
    assert done["signed"] == 3 and done["errors"] == 3
    errors = {e["submission_id"]: e for e in platform.similarity_pairs(comp, ORGANIZER)["errors"]}
    assert "would unpack to" in errors[bomb_id]["error"] and not errors[bomb_id]["compared"]
    assert "weights.py" in errors[huge_id]["error"] and errors[huge_id]["compared"]  # the rest was compared
    assert "gone from the store" in errors[gone_id]["error"] and errors[gone_id]["username"] == "nora"
    # Recorded once: the next pass does not read them again.
    assert platform.similarity_sweep()["signed"] == 0


def test_scan_signs_what_waits_now(platform, comp, tmp_path):
    submit(platform, comp, tmp_path, "ann", "a.ipynb", notebook(CELLS))
    submit(platform, comp, tmp_path, "ben", "b.ipynb", notebook(RENAMED))
    assert platform.scan_similarity(comp, ORGANIZER) == {"signed": 2, "errors": 0, "pairs": 1, "pending": 0}
    # A new signature is compared with those kept from before (the matrix is refreshed, not re-read).
    submit(platform, comp, tmp_path, "nora", "c.ipynb", notebook(CELLS))
    assert platform.scan_similarity(comp, ORGANIZER)["pairs"] == 2


def test_the_cli_scans_lists_shows_and_records_a_verdict(platform, comp, tmp_path, capsys):
    from hub_extension.cli import main

    submit(platform, comp, tmp_path, "ann", "a.ipynb", notebook(CELLS))
    submit(platform, comp, tmp_path, "ben", "b.ipynb", notebook(RENAMED))
    home = platform.config.home

    def run(*argv):
        code = main(["--home", home, "competition", "similarity", comp, *map(str, argv)])
        return code, capsys.readouterr()

    code, out = run("--scan")
    assert code == 0 and "2 submission(s) signed (0 with an error), 1 pair(s) found, 0 waiting" in out.out
    code, out = run("--json")
    [pair] = json.loads(out.out.splitlines()[-1])["pairs"]
    code, out = run()
    assert code == 0 and f"pair {pair['id']:>5}" in out.out and "ann #" in out.out and "ben #" in out.out
    code, out = run("--pair", pair["id"])
    assert code == 0 and "+clf.fit(A, b)" in out.out and "-model.fit(X, y)" in out.out
    code, out = run("--pair", pair["id"], "--verdict", "independent")
    assert code == 0 and "verdict independent" in out.out
    assert platform.similarity_pair(comp, pair["id"], ORGANIZER)["reviewed_by"] == "admin"
    code, out = run("--pair", 999_999)
    assert code != 0 and "no similarity pair 999999" in out.err


def test_a_starting_kit_that_cannot_be_read_is_shown_to_organizers(platform, comp, tmp_path):
    with platform.db.session() as s:
        key = s.scalars(select(m.Phase.starting_kit_key).join(m.Competition)
                        .where(m.Competition.slug == comp)).one()
    platform.store.delete_dataset(key)
    submit(platform, comp, tmp_path, "ann", "a.ipynb", notebook(KIT + CELLS))
    assert platform.similarity_sweep()["signed"] == 1
    [problem] = platform.similarity_pairs(comp, ORGANIZER)["kit_problems"]
    assert "gone from the store" in problem
