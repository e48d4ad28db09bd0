"""`compete submit --fact-sheet`: the answers go with the submission; a required question left out is named."""
from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

from hub_extension.app import LOCAL_ADMIN, Platform

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"


def _zip(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                zf.write(path, path.relative_to(folder).as_posix())
    return target


def test_submit_sends_the_fact_sheet_answers(tmp_path):
    home = tmp_path / "home"
    base = [sys.executable, "-m", "hub_extension.cli", "--home", str(home), "--executor", "process"]

    def compete(*argv: str) -> subprocess.CompletedProcess:
        return subprocess.run(base + list(argv), capture_output=True, text=True, timeout=300)

    slug = compete("competition", "create", str(DEMO)).stdout.strip().splitlines()[-1]
    platform = Platform(home=str(home))
    try:
        edit = platform.save_fact_sheet(slug, [{"key": "method", "type": "text", "title": "Method",
                                                "is_required": True}], LOCAL_ADMIN)
        assert edit.saved, edit.problems
    finally:
        platform.close()
    preds = _zip(DEMO / "sample_submissions" / "petal_rule", tmp_path / "ann.zip")
    refused = compete("submit", slug, str(preds), "--user", "ann", "--wait")
    assert refused.returncode != 0
    assert "fact sheet: 'Method' (method) is required: answer it to submit" in refused.stderr
    done = compete("submit", slug, str(preds), "--user", "ann", "--wait", "--json",
                   "--fact-sheet", json.dumps({"method": "petal rule"}))
    assert done.returncode == 0, done.stderr
    sid = json.loads(done.stdout.strip().splitlines()[-1])["id"]
    platform = Platform(home=str(home))
    try:
        assert platform.submission_view(sid, LOCAL_ADMIN)["fact_sheet"][0]["answer"] == "petal rule"
    finally:
        platform.close()
