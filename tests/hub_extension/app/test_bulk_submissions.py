"""Bulk acts on submissions: rerunning a whole phase, migrating with a confirmed count, deleting, downloading."""
from __future__ import annotations

import datetime as dt

import pytest

from hub_extension import models as m
from hub_extension.app import Forbidden, NotFound, PlatformError
from hub_extension.contract import StoreLayout
from hub_extension.errors import CountChanged

from tests.support.builders import ANN, ANONYMOUS, BEN, NORA, ORGANIZER, OTHER_ORGANIZER, finish, results_zip


def _count(platform, slug, phase=1):
    return platform.submissions_view(slug, ORGANIZER, phase=phase)["total"]


# -- rerunning a phase ---------------------------------------------------------------------------
def test_rerun_plan_counts_the_phase_s_own_submissions_not_reruns_nor_cancelled(platform, world):
    platform.cancel_submission(world.subs["ann_waiting"], ANN)
    plan = platform.rerun_plan(world.slug, 1, ORGANIZER)
    assert plan["count"] == 2 and {i["id"] for i in plan["items"]} == {world.subs["ann"], world.subs["ben"]}
    assert platform.rerun_count(world.slug, 1, ORGANIZER) == 2
    platform.rerun(world.subs["ann"], ORGANIZER)  # a rerun is not itself rerun again
    assert platform.rerun_plan(world.slug, 1, ORGANIZER)["count"] == 2 == platform.rerun_count(world.slug, 1, ORGANIZER)


def test_rerun_phase_links_each_new_submission_and_charges_no_limit(platform, world):
    platform.cancel_submission(world.subs["ann_waiting"], ANN)
    left_before = platform.submissions_left(world.slug, "ann", 1)
    done = platform.rerun_phase(world.slug, 1, ORGANIZER, confirm=2)
    assert done["count"] == 2
    assert {(d["participant"], d["parent"]) for d in done["submissions"]} == {
        ("ann", world.subs["ann"]), ("ben", world.subs["ben"])}
    for made in done["submissions"]:
        view = platform.submission_view(made["id"], ORGANIZER)
        assert view["parent"] == made["parent"] and view["status"] == m.SUBMITTED and view["phase"] == 1
    assert platform.submissions_left(world.slug, "ann", 1) == left_before


def test_rerun_phase_refuses_a_count_that_changed_and_does_nothing(platform, world):
    before = _count(platform, world.slug)
    with pytest.raises(CountChanged) as refused:
        platform.rerun_phase(world.slug, 1, ORGANIZER, confirm=2)  # ann_waiting makes it 3
    assert refused.value.count == 3 and refused.value.status == 409 and refused.value.code == "CountChanged"
    with pytest.raises(CountChanged) as missing:
        platform.rerun_phase(world.slug, 1, ORGANIZER, confirm=None)
    assert missing.value.code == "confirmation_needed" and missing.value.count == 3
    with pytest.raises(PlatformError, match="confirm"):
        platform.rerun_phase(world.slug, 1, ORGANIZER, confirm="3")
    assert _count(platform, world.slug) == before


def test_rerunning_a_phase_is_for_its_organizers(platform, world):
    for who in (ANN, NORA, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.rerun_plan(world.slug, 1, who)
        with pytest.raises(Forbidden):
            platform.rerun_phase(world.slug, 1, who, confirm=3)
    with pytest.raises(NotFound):
        platform.rerun_plan(world.slug, 9, ORGANIZER)


def test_migration_needs_the_count_it_was_shown(platform, world):
    plan = platform.migration_plan(world.slug, 1, ORGANIZER)
    assert plan["count"] == 2 and plan["to"] == 2
    with pytest.raises(CountChanged) as refused:
        platform.migrate_submissions(world.slug, 1, ORGANIZER, confirm=1)
    assert refused.value.count == 2 and _count(platform, world.slug, 2) == 0
    ids = platform.migrate_submissions(world.slug, 1, ORGANIZER, confirm=2)
    assert len(ids) == 2 and platform.migration_plan(world.slug, 1, ORGANIZER)["count"] == 0


# -- deleting ------------------------------------------------------------------------------------
def test_a_participant_deletes_their_own_submission_and_the_board_follows(platform, world, tmp_path):
    own = platform.submit(world.slug, results_zip(tmp_path, "own.zip", "0\n0\n1\n"), username="ann", actor=ANN)
    finish(platform, own, {"accuracy": 0.95})
    board = platform.leaderboard_view(world.slug, actor=ANN)
    assert [r["submission"] for r in board["rows"] if r["participant"] == "ann"] == [own]
    with platform.db.session() as s:
        key = s.get(m.Submission, own).file_key
    assert platform.store.has_dataset(key)
    assert platform.store.file_path(StoreLayout.submission_files(own)).is_dir()

    with pytest.raises(Forbidden):
        platform.delete_submission(own, BEN)
    answer = platform.delete_submission(own, ANN)
    assert answer == {"id": own, "competition": world.slug, "phase": 1, "was_on_leaderboard": True,
                      "file_removed": True}
    with pytest.raises(NotFound):
        platform.submission_view(own, ANN)
    board = platform.leaderboard_view(world.slug, actor=ANN)
    # Force_Last: ann's latest finished one is on the board again.
    assert [r["submission"] for r in board["rows"] if r["participant"] == "ann"] == [world.subs["ann"]]
    assert not platform.store.has_dataset(key)
    assert not platform.store.file_path(StoreLayout.submission_files(own)).exists()


def test_a_file_shared_with_another_submission_stays(platform, world):
    with platform.db.session() as s:
        key = s.get(m.Submission, world.subs["ann"]).file_key
    platform.cancel_submission(world.subs["ann_waiting"], ANN)
    answer = platform.delete_submission(world.subs["ann_waiting"], ANN)
    assert answer["file_removed"] is False and platform.store.has_dataset(key)


def test_what_cannot_be_deleted(platform, world):
    with pytest.raises(PlatformError, match="cancel it first"):
        platform.delete_submission(world.subs["ann_waiting"], ANN)
    rerun = platform.rerun(world.subs["ben"], ORGANIZER)
    with pytest.raises(PlatformError, match=f"run again as submission.*{rerun}"):
        platform.delete_submission(world.subs["ben"], BEN)
    # The phase ends: ann's submission is on its final leaderboard.
    platform.close_phase_now(world.slug, 1, ORGANIZER, now=m.utcnow() - dt.timedelta(seconds=1))
    with pytest.raises(PlatformError, match="final leaderboard"):
        platform.delete_submission(world.subs["ann"], ANN)
    # The organizers may.
    assert platform.delete_submission(world.subs["ann"], ORGANIZER)["was_on_leaderboard"] is True
    rows = platform.leaderboard_view(world.slug, phase=1, actor=ORGANIZER)["rows"]
    assert [r["participant"] for r in rows] == ["ben"]
    with pytest.raises(Forbidden):
        platform.delete_submission(world.subs["ben"], OTHER_ORGANIZER)


# -- downloads -----------------------------------------------------------------------------------
def _with_outputs(platform, sid):
    """What a worker keeps of a run's outputs (`StoreLayout.step_output`) beside the builder's logs."""
    attempt = f"submissions/{sid}/attempt-1"
    platform.store.put_file_bytes(f"{StoreLayout.step_output(attempt, 0, 'prediction')}/predictions.txt", b"1\n0\n")
    platform.store.put_file_bytes(f"{StoreLayout.step_output(attempt, 0, 'scoring')}/scores.json", b'{"a": 1}')
    platform.store.put_file_bytes(f"{StoreLayout.step_output(attempt, 0, 'scoring')}/deep/x.txt", b"x")


def test_a_phase_bundle_lists_every_file_of_every_submission(platform, world):
    _with_outputs(platform, world.subs["ann"])
    bundle = platform.phase_bundle(world.slug, 1, ORGANIZER)
    assert bundle.filename == f"{world.slug}-phase1-submissions.zip"
    assert [s["id"] for s in bundle.manifest["submissions"]] == [world.subs["ann"], world.subs["ben"],
                                                                  world.subs["ann_waiting"]]
    entries = list(bundle.entries)
    ann = f"submissions/{world.subs['ann']}-ann"
    paths = {e.path for e in entries}
    assert {f"{ann}/submitted/predictions.zip", f"{ann}/logs/task-0/prediction/stdout.txt",
            f"{ann}/logs/task-0/scoring/stderr.txt", f"{ann}/prediction_output/task-0/predictions.txt",
            f"{ann}/scoring_output/task-0/scores.json", f"{ann}/scoring_output/task-0/deep/x.txt",
            f"{ann}/feedback/detailed_results.html"} <= paths
    first = next(e for e in entries if e.path == f"{ann}/scoring_output/task-0/scores.json")
    assert first.meta["participant"] == "ann" and first.meta["scores"]["accuracy"] == 0.7
    with first.open() as fh:
        assert fh.read() == b'{"a": 1}'


def test_bundles_are_for_the_organizers(platform, world):
    for who in (ANN, BEN, OTHER_ORGANIZER, ANONYMOUS):
        with pytest.raises(Forbidden):
            platform.phase_bundle(world.slug, 1, who)
        with pytest.raises(Forbidden):
            platform.submission_bundle(world.subs["ann"], who)
    one = platform.submission_bundle(world.subs["ann"], ORGANIZER)
    assert [s["participant"] for s in one.manifest["submissions"]] == ["ann"]
