"""The embedded default's demo: a competition, demo accounts and scored sample submissions.

`compete demo` (behind `scripts/run.sh`) loads `templates/demo/` once, registers
the demo participants, runs the sample submissions (a predictions zip each, and
the starting-kit notebook) on the local Dask queue, and prints the leaderboard.
Running it again reuses what is there.  When a process already dispatches on
this database (the holder of the dispatcher lease), that process runs them
and the demo waits on the database (`cli_queue.run_submissions`).
"""
from __future__ import annotations

import sys
import tempfile
from pathlib import Path

from kernels.build import build_image

from . import models as m
from .app import LOCAL_ADMIN, Platform, zip_folder
from .cli_common import print_leaderboard
from .cli_queue import run_submissions
from .resources import templates

DEMO_BUNDLE = templates("demo")
DEMO_SLUG_TITLE = "Demo: flower species"
# participant -> what they submit (a folder of predictions, or the notebook)
DEMO_SUBMISSIONS = {
    "alice": "starting_kit/starting_kit.ipynb",
    "bob": "sample_submissions/petal_rule",
    "carol": "sample_submissions/constant",
}


def ensure_demo_competition(platform: Platform) -> str:
    for comp in platform.list_competitions():
        if comp["title"] == DEMO_SLUG_TITLE:
            return comp["slug"]
    slug, _ = platform.create_competition(DEMO_BUNDLE, LOCAL_ADMIN)
    return slug


def ensure_runtime(platform: Platform) -> str:
    """Resolve the executor; build the runtime image first when Docker will run the steps."""
    # Start-up cost: the executors (and the Docker client) load only when the demo runs.
    from dask_workers.executors import make_executor

    executor = make_executor(platform.config.executor)
    if executor.name == "docker":
        print("checking the runtime image (built once per machine, a few minutes the first time)", flush=True)
        build_image(platform.config.default_image)
    else:
        print("warning: the process executor runs submissions WITHOUT isolation (no Docker engine)", file=sys.stderr)
    platform.config.executor = executor.name
    return executor.name


def _report(info: dict) -> None:
    line = f"  submission {info['id']} ({info['participant']}, {info['filename']}): {info['status']}"
    if info["error"]:
        line += f" — {info['error'].splitlines()[0]}"
    print(line, flush=True)


def run_demo(platform: Platform) -> int:
    slug = ensure_demo_competition(platform)
    print(f"competition: {slug}  (home: {platform.config.home})")
    executor = ensure_runtime(platform)
    print(f"executor: {executor}")
    todo = []
    with tempfile.TemporaryDirectory() as tmp:
        for user, rel in DEMO_SUBMISSIONS.items():
            platform.register(slug, user, LOCAL_ADMIN)
            already = [s for s in platform.submissions_of(slug, user) if s["status"] != m.FAILED]
            if already:
                continue
            source = DEMO_BUNDLE / rel
            if source.is_dir():
                archive = Path(tmp) / f"{user}.zip"
                zip_folder(source, archive)
                source = archive
            todo.append(platform.submit(slug, source, username=user, actor=LOCAL_ADMIN))
        pending = platform.runs.pending_submissions()
        if todo or pending:
            print(f"running {len(todo)} sample submissions on the local Dask queue ...", flush=True)
            run_submissions(platform, pending, timeout=900, sent_only=True, each=_report)
    print()
    print_leaderboard(platform.leaderboard(slug))
    return 0
