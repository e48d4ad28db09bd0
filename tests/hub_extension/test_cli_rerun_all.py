"""`compete rerun-all`: shows the count and asks, or runs at once with `--confirm`; each rerun linked to its original."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return target


def test_rerun_all_asks_then_reruns_each_submission_linked_to_its_original(tmp_path):
    home = tmp_path / "home"
    base = [sys.executable, "-m", "hub_extension.cli", "--home", str(home), "--executor", "process"]

    def compete(*argv: str, stdin: str = "") -> subprocess.CompletedProcess:
        return subprocess.run(base + list(argv), input=stdin, capture_output=True, text=True, timeout=300)

    slug = compete("competition", "create", str(DEMO)).stdout.strip().splitlines()[-1]
    originals = {}
    for user, sample in (("ann", "constant"), ("ben", "petal_rule")):
        preds = _zip(DEMO / "sample_submissions" / sample, tmp_path / f"{user}.zip")
        done = compete("submit", slug, str(preds), "--user", user, "--wait", "--json")
        assert done.returncode == 0, done.stderr
        originals[user] = json.loads(done.stdout.strip().splitlines()[-1])
    platform = Platform(home=str(home))
    left = platform.submissions_left(slug, "ann", 1)
    platform.close()

    refused = compete("rerun-all", slug, "--phase", "1", stdin="n\n")
    assert refused.returncode == 1
    assert "2 submissions would run again" in refused.stderr and "nothing was rerun" in refused.stderr
    assert str(originals["ann"]["id"]) in refused.stderr

    agreed = compete("rerun-all", slug, "--phase", "1", "--wait", "--json", stdin="y\n")
    assert agreed.returncode == 0, agreed.stderr
    answer = json.loads(agreed.stdout.strip().splitlines()[-1])
    assert answer["count"] == 2
    by_user = {s["participant"]: s for s in answer["submissions"]}
    for user in ("ann", "ben"):
        rerun = by_user[user]
        assert rerun["parent"] == originals[user]["id"] and rerun["status"] == m.FINISHED
        assert rerun["scores"] == originals[user]["scores"]

    # Reruns are not rerun again, and nothing was asked with --confirm.
    again = compete("rerun-all", slug, "--phase", "1", "--confirm", "--wait")
    assert again.returncode == 0, again.stderr
    assert "would run again" not in again.stderr
    lines = again.stdout.strip().splitlines()
    assert len(lines) == 2 and all(": Finished" in line for line in lines)
    assert {line.split("rerun of ")[1].split(" ")[0] for line in lines} == {
        str(originals["ann"]["id"]), str(originals["ben"]["id"])}

    platform = Platform(home=str(home))
    try:
        assert platform.submissions_left(slug, "ann", 1) == left
        assert platform.submissions_view(slug, LOCAL_ADMIN, phase=1)["total"] == 6
    finally:
        platform.close()

    missing = compete("rerun-all", slug, "--phase", "7", "--confirm")
    assert missing.returncode == 1 and "Traceback" not in missing.stderr and "7" in missing.stderr

