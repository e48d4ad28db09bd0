"""Run provenance, reproductions and signed manifests in the application layer (results recorded by hand).

The test world (tests/support/builders.py): `olga` organizes `secrets`, `ann` and `ben` submitted and
finished; `oscar` organizes another competition.  The runs on Docker are in tests/hub_extension/test_reproduce.py.
"""
from __future__ import annotations

import pytest
from sqlalchemy import select

from hub_extension import models as m
from hub_extension.app import Forbidden, NotFound, PlatformError
from hub_extension.app.reproduce import pinned_job
from hub_extension.manifest import load_key, verify_bytes, document_bytes
from tests.support.builders import ANN, BEN, ORGANIZER, OTHER_ORGANIZER, finish

DIGEST = "sha256:" + "ab" * 32
WORKER_FACTS = {
    "worker": {"queue": "default", "name": "w-1", "host": "judge-1", "cpu_model": "Test CPU 3000", "cpu_count": 2,
               "gpus": [{"model": "Test GPU", "driver": "550.1"}]},
    "executor": "docker",
    "packages": {DIGEST: {"sha256": "cd" * 32, "count": 42}},
    "started_at": "2026-12-05T07:00:00+00:00",
    "ended_at": "2026-12-05T07:00:03+00:00",
}


def record(platform, sid: int, scores: dict, *, digest: str = DIGEST, facts: dict = WORKER_FACTS) -> None:
    """A worker's result with images, digests and the worker's provenance facts."""
    result = {"status": "Finished", "scores": scores, "worker": "w-1", "provenance": facts, "tasks": [
        {"task_index": 0, "steps": [{"step": "scoring", "exit_code": 0, "elapsed": 0.5, "image": "runtime:1",
                                     "image_digest": digest}]}]}
    assert platform.runs.record_result(sid, result)


def allow_reproduce(platform, slug: str, allowed: bool = True) -> None:
    with platform.db.session() as s:
        comp = s.scalar(select(m.Competition).where(m.Competition.slug == slug))
        for ph in comp.phases:
            ph.allow_reproduce = allowed


@pytest.fixture
def recorded(platform, world, tmp_path):
    """Ann's submission ran again with full provenance (a digest-pinned image, the worker's facts)."""
    sid = platform.submit(world.slug, tmp_path / "predictions.zip", username="ann", actor=ANN)
    record(platform, sid, {"accuracy": 0.75, "secret": 0.25, "private_score": 0.1})
    return sid


def test_a_runs_provenance_joins_the_job_and_the_worker_and_only_organizers_see_it(platform, world, recorded):
    view = platform.submission_view(recorded, ORGANIZER)
    [run] = view["runs"]
    p = run["provenance"]
    with platform.db.session() as s:
        sub = s.get(m.Submission, recorded)
        task = s.scalar(select(m.Task).where(m.Task.competition_id == sub.phase.competition_id))
        assert p["submission"]["key"] == sub.file_key
        assert p["datasets"]["reference_data"] == task.reference_data_key
        assert p["program"] == p["programs"]["scoring_program"] == task.scoring_program_key
    assert p["image"] == {"name": "runtime:1", "digest": DIGEST, "requested": None}
    assert p["executor"]["name"] == "docker"
    assert set(p["executor"]["limits"]) >= {"time_limit", "memory_mb", "cpus", "pids", "network", "gpus"}
    assert p["worker"]["cpu_model"] == "Test CPU 3000" and p["worker"]["gpus"][0]["driver"] == "550.1"
    assert p["packages_sha256"] == "cd" * 32
    assert (p["started_at"], p["ended_at"], p["exit_code"]) == (WORKER_FACTS["started_at"],
                                                                WORKER_FACTS["ended_at"], 0)
    assert platform.run_provenance(recorded, ORGANIZER)[0]["provenance"] == p
    # The participant: no provenance anywhere.
    assert all("provenance" not in r for r in platform.submission_view(recorded, ANN)["runs"])
    for call in (platform.run_provenance, platform.submission_manifest):
        with pytest.raises(Forbidden):
            call(recorded, ANN)
        with pytest.raises(Forbidden):
            call(recorded, OTHER_ORGANIZER)


def test_a_worker_result_cannot_smuggle_unbounded_provenance(platform, world, tmp_path):
    sid = platform.submit(world.slug, tmp_path / "predictions.zip", username="ann", actor=ANN)
    deep: dict = {"x": "y" * 10_000}
    for _ in range(10):
        deep = {"deeper": deep}
    record(platform, sid, {"accuracy": 0.5}, facts={"worker": {"name": "w" * 5000, "nested": deep},
                                                    "started_at": float("nan"), "packages": list(range(1000))})
    p = platform.run_provenance(sid, ORGANIZER)[0]["provenance"]
    assert len(p["worker"]["name"]) == 300
    assert p["started_at"] is None and p["packages_sha256"] is None
    assert "y" * 301 not in str(p)


def test_a_reproduction_is_pinned_to_what_the_original_ran_with(platform, world, recorded):
    made = platform.reproduce(recorded, ORGANIZER)
    pinned = made["pinned"]
    original = platform.run_provenance(recorded, ORGANIZER)[0]["provenance"]
    assert pinned["image_digest"] == DIGEST and pinned["images"] == {"0:scoring": DIGEST}
    assert pinned["submission_key"] == original["submission"]["key"]
    assert pinned["data_keys"]["0"] == original["datasets"]
    assert pinned["program_keys"]["0"] == original["programs"]
    job = platform.runs.job_for(made["id"])
    [task] = job.tasks
    assert task.scoring_image == DIGEST
    assert task.reference_data == original["datasets"]["reference_data"]
    assert task.scoring_program == original["programs"]["scoring_program"]
    # Replacing the task's data later changes nothing for the reproduction.
    with platform.db.session() as s:
        for t in s.scalars(select(m.Task)):
            t.reference_data_key = t.scoring_program_key  # a stored dataset other than the reference data
    assert platform.runs.job_for(made["id"]).tasks[0].reference_data == original["datasets"]["reference_data"]
    assert platform.runs.job_for(recorded).tasks[0].reference_data == original["programs"]["scoring_program"]


def test_pinned_job_leaves_what_is_not_pinned():
    from hub_extension.contract import Job, TaskJob

    job = Job(submission_id=1, queue="default", kind="code", filename="a.zip", submission="s" * 64,
              tasks=(TaskJob(index=0, scoring_program="p" * 64, ingestion_program="i" * 64, scoring_image="img",
                             ingestion_image="img"),))
    pinned = pinned_job(job, {"images": {"0:prediction": DIGEST}, "data_keys": {"0": {"input_data": "d" * 64}},
                              "submission_key": "t" * 64})
    [task] = pinned.tasks
    assert (task.ingestion_image, task.scoring_image) == (DIGEST, "img")
    assert (task.input_data, task.scoring_program, pinned.submission) == ("d" * 64, "p" * 64, "t" * 64)


def test_the_organizer_chooses_the_queue(platform, world, recorded):
    with pytest.raises(NotFound, match="no queue 'gpu'"):
        platform.reproduce(recorded, ORGANIZER, queue="gpu")
    made = platform.reproduce(recorded, ORGANIZER, queue="default")
    assert made["pinned"]["queue"] == "default"
    assert platform.runs.job_queue(made["id"]) == "default"


def test_reproductions_stay_off_boards_limits_and_participants_lists(platform, world, recorded):
    left = platform.submissions_left(world.slug, "ann")
    made = platform.reproduce(recorded, ORGANIZER)
    record(platform, made["id"], {"accuracy": 0.99, "secret": 0.01, "private_score": 0.5})
    assert platform.submissions_left(world.slug, "ann") == left
    board = platform.leaderboard(world.slug, 1, actor=ORGANIZER)
    assert made["id"] not in [r["submission"] for r in board["rows"]]
    assert recorded in [r["submission"] for r in board["rows"]]
    mine = [item["id"] for item in platform.submissions_view(world.slug, ANN)["items"]]
    assert recorded in mine and made["id"] not in mine
    assert made["id"] not in [item["id"] for item in platform.submissions_of(world.slug, "ann")]
    everyone = [item["id"] for item in platform.submissions_view(world.slug, ORGANIZER)["items"]]
    assert made["id"] in everyone
    with pytest.raises(Forbidden):
        platform.submission_view(made["id"], ANN)
    planned = [item["id"] for item in platform.rerun_plan(world.slug, 1, ORGANIZER)["items"]]
    assert recorded in planned and made["id"] not in planned  # rerunning a phase leaves reproductions alone
    # Migrating the phase takes each participant's own latest, never the organizers' reproduction of it.
    migrated = [item["id"] for item in platform.migration_plan(world.slug, 1, ORGANIZER)["items"]]
    assert recorded in migrated and made["id"] not in migrated


def test_who_may_reproduce(platform, world, recorded):
    ben_sid = world.subs["ben"]
    for actor, sid in ((ANN, recorded), (BEN, recorded), (OTHER_ORGANIZER, recorded)):
        with pytest.raises(Forbidden):
            platform.reproduce(sid, actor)
    allow_reproduce(platform, world.slug)
    made = platform.reproduce(recorded, ANN)
    assert made["reproduces"] == recorded
    with pytest.raises(Forbidden, match="another participant"):
        platform.reproduce(ben_sid, ANN)
    with pytest.raises(Forbidden, match="queue"):
        platform.reproduce(recorded, ANN, queue="default")
    # The owner follows it and sees the scores compared, never the provenance.
    assert platform.submission_view(made["id"], ANN)["reproduces"] == recorded
    record(platform, made["id"], {"accuracy": 0.75, "secret": 0.25, "private_score": 0.1})
    compared = platform.reproduction_comparison(recorded, ANN)
    assert compared["equal"] is True and compared["inputs_differ"] == []
    with pytest.raises(Forbidden):
        platform.run_provenance(made["id"], ANN)


def test_what_cannot_be_reproduced(platform, world, recorded):
    with pytest.raises(PlatformError, match="only a finished submission"):
        platform.reproduce(world.subs["ann_waiting"], ORGANIZER)
    made = platform.reproduce(recorded, ORGANIZER)
    with pytest.raises(PlatformError, match="is a reproduction"):
        platform.reproduce(made["id"], ORGANIZER)
    with pytest.raises(NotFound, match="not been reproduced"):
        platform.reproduction_comparison(world.subs["ben"], ORGANIZER)


def test_the_comparison_gives_each_scores_difference_and_the_inputs_that_differed(platform, world, recorded):
    made = platform.reproduce(recorded, ORGANIZER)
    pending = platform.reproduction_comparison(made["id"], ORGANIZER)
    assert pending["scores"] == [] and pending["equal"] is False
    record(platform, made["id"], {"accuracy": 0.5, "secret": 0.25, "private_score": 0.1},
           digest="sha256:" + "ef" * 32)
    compared = platform.reproduction_comparison(made["id"], ORGANIZER)
    assert compared["original"]["id"] == recorded and compared["reproduction"]["id"] == made["id"]
    rows = {row["key"]: row for row in compared["scores"]}
    assert rows["accuracy"]["equal"] is False and rows["accuracy"]["difference"] == pytest.approx(-0.25)
    assert rows["secret"] == {"key": "secret", "original": 0.25, "reproduced": 0.25, "equal": True,
                              "difference": 0.0}
    assert compared["equal"] is False
    assert any("image digest" in d for d in compared["inputs_differ"]), compared["inputs_differ"]
    # Of the original: its latest reproduction.
    assert platform.reproduction_comparison(recorded, ORGANIZER)["reproduction"]["id"] == made["id"]


def test_reproduce_top_takes_the_primary_board_in_order(platform, world, recorded):
    for sid in (world.subs["ben"],):
        record(platform, platform.rerun(sid, ORGANIZER), {"accuracy": 0.8})  # ben's latest, with provenance
    with pytest.raises(PlatformError, match="from 1 to 100"):
        platform.reproduce_top(world.slug, 1, 0, ORGANIZER)
    with pytest.raises(PlatformError, match="from 1 to 100"):
        platform.reproduce_top(world.slug, 1, 101, ORGANIZER)
    with pytest.raises(Forbidden):
        platform.reproduce_top(world.slug, 1, 1, ANN)
    board = platform.leaderboard(world.slug, 1, actor=ORGANIZER)
    done = platform.reproduce_top(world.slug, 1, 1, ORGANIZER)
    assert [r["reproduces"] for r in done["reproductions"]] == [board["rows"][0]["submission"]]
    done = platform.reproduce_top(world.slug, 1, 5, ORGANIZER)
    assert len(done["reproductions"]) + len(done["skipped"]) == len(board["rows"])


def test_a_manifest_is_signed_with_the_homes_key(platform, world, recorded):
    document = platform.submission_manifest(recorded, ORGANIZER)
    assert document["signature"]["algorithm"] == "HMAC-SHA256"
    manifest = document["manifest"]
    assert manifest["submission"]["id"] == recorded and manifest["competition"]["slug"] == world.slug
    assert manifest["scores"]["accuracy"] == 0.75 and manifest["runs"][0]["provenance"]["image"]["digest"] == DIGEST
    key_file = platform.config.home + "/manifest_key"
    import os
    import stat

    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    assert verify_bytes(document_bytes(document), load_key(platform.config.home)).valid


def test_a_reproduction_tells_the_participant_nothing(platform, world, recorded):
    platform.save_mail_settings(ANN, mail={"submission_finished": True, "submission_failed": True})
    made = platform.reproduce(recorded, ORGANIZER)
    record(platform, made["id"], {"accuracy": 0.75, "secret": 0.25, "private_score": 0.1})
    assert platform.inbox(ANN)["total"] == 0
    again = platform.rerun(recorded, ORGANIZER)  # a rerun is theirs: it is told
    record(platform, again, {"accuracy": 0.75, "secret": 0.25, "private_score": 0.1})
    assert platform.inbox(ANN)["items"][0]["subject"].endswith(f"submission {again} finished")
