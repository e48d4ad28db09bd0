"""Reproductions on the Docker executor, through the real dispatcher and a Dask queue.

Two competitions built here: one whose scoring program is deterministic (it
counts the predictions that match), one whose scoring program writes a random
score.  A submission's reproduction runs in the same image (by digest), with
the same programs and data: the first gives equal scores, the second reports
the difference.  A reproduction pinned to an image the worker lacks fails
saying so, never running in another one.  Reproductions stay off the board and
the limits.
"""
from __future__ import annotations

import re
import zipfile
from pathlib import Path

import pytest
from sqlalchemy import select

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Actor
from tests.support.stacks import DockerStack

ANN = Actor("ann")

COMPETITION = """\
version: 2
title: {title}
published: true
registration_auto_approve: true
tasks:
  - index: 0
    name: Colors
    scoring_program: scoring_program
    reference_data: reference_data
phases:
  - index: 0
    name: Development
    start: 1-1-2024
    end: 12-31-2099
    tasks: [0]
    max_submissions: 2
leaderboards:
  - index: 0
    title: Results
    key: main
    submission_rule: Force_Last
    columns:
      - {{title: Accuracy, key: accuracy, index: 0, sorting: desc}}
"""

DETERMINISTIC = """\
import json, os, sys
inp, out = sys.argv[1], sys.argv[2]
truth = open(os.path.join(inp, "ref", "truth.txt")).read().split()
pred = open(os.path.join(inp, "res", "predictions.txt")).read().split()
json.dump({"accuracy": sum(a == b for a, b in zip(truth, pred)) / len(truth)},
          open(os.path.join(out, "scores.json"), "w"))
"""

RANDOM = """\
import json, os, random, sys
json.dump({"accuracy": random.random()}, open(os.path.join(sys.argv[2], "scores.json"), "w"))
"""


def bundle(root: Path, title: str, score: str) -> Path:
    (root / "scoring_program").mkdir(parents=True)
    (root / "reference_data").mkdir()
    (root / "competition.yaml").write_text(COMPETITION.format(title=title))
    (root / "scoring_program" / "metadata.yaml").write_text("command: python3 $program/score.py $input $output\n")
    (root / "scoring_program" / "score.py").write_text(score)
    (root / "reference_data" / "truth.txt").write_text("red\nblue\ngreen\nred\n")
    return root


def predictions(path: Path) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("predictions.txt", "red\nblue\nblue\nred\n")
    return path


class Stack(DockerStack):
    def run(self, sid: int) -> dict:
        return self.finish(sid)


@pytest.fixture(scope="module")
def stack(tmp_path_factory, runtime_image):
    s = Stack(tmp_path_factory.mktemp("reproduce-home"))
    yield s
    s.close()


@pytest.fixture(scope="module")
def originals(stack, tmp_path_factory):
    """A finished submission of ann in each competition: {"fixed": (slug, id), "random": (slug, id)}."""
    tmp = tmp_path_factory.mktemp("reproduce-bundles")
    made = {}
    for name, score in (("fixed", DETERMINISTIC), ("random", RANDOM)):
        slug, _ = stack.platform.create_competition(bundle(tmp / name, f"Reproduce {name}", score), LOCAL_ADMIN)
        stack.platform.register(slug, "ann", LOCAL_ADMIN)
        sid = stack.platform.submit(slug, predictions(tmp / f"{name}.zip"), username="ann", actor=ANN)
        info = stack.run(sid)
        assert info["status"] == m.FINISHED, info["error"]
        made[name] = (slug, sid)
    return made


def test_a_docker_run_records_its_provenance(stack, originals):
    slug, sid = originals["fixed"]
    [run] = stack.platform.run_provenance(sid, LOCAL_ADMIN)
    p = run["provenance"]
    assert run["step"] == "scoring" and p["exit_code"] == 0
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", p["image"]["digest"]) or "@sha256:" in p["image"]["digest"]
    assert re.fullmatch(r"[0-9a-f]{64}", p["packages_sha256"] or ""), p.get("packages_error")
    assert p["packages_count"] > 10  # the runtime image's Python packages
    assert p["executor"]["name"] == "docker" and p["executor"]["limits"]["network"] is False
    assert p["worker"]["queue"] == "default" and p["worker"]["cpu_model"] and p["worker"]["cpu_count"]
    assert p["started_at"] <= p["ended_at"]
    assert p["datasets"]["reference_data"] and p["program"]


def test_a_deterministic_scoring_program_reproduces_equal_scores(stack, originals):
    slug, sid = originals["fixed"]
    made = stack.platform.reproduce(sid, LOCAL_ADMIN)
    info = stack.run(made["id"])
    assert info["status"] == m.FINISHED, info["error"]
    compared = stack.platform.reproduction_comparison(made["id"], LOCAL_ADMIN)
    assert compared["scores"] == [{"key": "accuracy", "original": 0.75, "reproduced": 0.75, "equal": True,
                                   "difference": 0.0}]
    assert compared["equal"] is True and compared["inputs_differ"] == []
    original = stack.platform.run_provenance(sid, LOCAL_ADMIN)[0]["provenance"]
    again = stack.platform.run_provenance(made["id"], LOCAL_ADMIN)[0]["provenance"]
    assert again["image"]["digest"] == original["image"]["digest"]
    assert again["packages_sha256"] == original["packages_sha256"]
    # Off the board and off the limits.
    board = stack.platform.leaderboard(slug, 1, actor=LOCAL_ADMIN)
    assert [r["submission"] for r in board["rows"]] == [sid]
    assert stack.platform.submissions_left(slug, "ann")["total"] == 1  # of 2: the reproduction used none


def test_a_random_scoring_program_reports_the_difference(stack, originals):
    slug, sid = originals["random"]
    made = stack.platform.reproduce_top(slug, 1, 1, LOCAL_ADMIN)
    [entry] = made["reproductions"]
    assert entry["reproduces"] == sid
    info = stack.run(entry["id"])
    assert info["status"] == m.FINISHED, info["error"]
    compared = stack.platform.reproduction_comparison(entry["id"], LOCAL_ADMIN)
    [row] = compared["scores"]
    assert row["equal"] is False and row["difference"] == pytest.approx(row["reproduced"] - row["original"])
    assert row["difference"] != 0 and compared["equal"] is False
    assert compared["inputs_differ"] == []  # same inputs: the program itself is not deterministic


def test_a_pinned_image_the_worker_lacks_is_never_replaced(stack, originals):
    slug, sid = originals["fixed"]
    made = stack.platform.reproduce(sid, LOCAL_ADMIN)
    missing = "sha256:" + "0" * 64
    with stack.platform.db.session() as s:
        sub = s.get(m.Submission, made["id"])
        sub.pinned = {**sub.pinned, "images": {"0:scoring": missing}, "image_digest": missing}
    info = stack.run(made["id"])
    assert info["status"] == m.FAILED
    assert f"pinned to the image {missing}, which is not on this worker" in info["error"], info["error"]
    with stack.platform.db.session() as s:
        runs = s.scalars(select(m.Run).where(m.Run.submission_id == made["id"])).all()
        assert [r.image for r in runs] == [missing] and all(r.exit_code is None for r in runs)
