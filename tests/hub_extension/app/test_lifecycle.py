"""A competition's lifecycle in the application layer: draft, published, private, archived, deleted.

A draft or private competition must be invisible to whoever may not see it by
every read path (each answers exactly what a competition that does not exist
answers); an archived one is read-only with its boards kept; deleting takes
the typed slug and removes the rows and the store files no other competition uses.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import shutil

import pytest
import yaml
from sqlalchemy import select

from hub_extension import models as m
from hub_extension.app import Actor, NotFound, PlatformError
from hub_extension.bundles.model import DataRef
from hub_extension.errors import Conflict, Forbidden
from tests.support.builders import (
    ADMIN,
    ANN,
    ANONYMOUS,
    BEN,
    NORA,
    ORGANIZER,
    OTHER_ORGANIZER,
    results_zip,
)
from tests.support.bundles import FIXTURES, zip_folder

MISSING = "no competition 'no-such-competition'"


def reads(platform, slug, actor):
    """Every read path of a competition, as the adapters call them."""
    return {
        "detail": lambda: platform.competition_detail(slug, actor),
        "phases": lambda: platform.phases_view(slug, actor),
        "leaderboard": lambda: platform.leaderboard_view(slug, actor=actor),
        "answer": lambda: platform.leaderboard_answer(slug, actor=actor),
        "csv": lambda: platform.leaderboard_csv(slug, actor=actor),
        "history": lambda: platform.best_score_history(slug, None, None, actor),
        "submissions": lambda: platform.submissions_view(slug, actor),
        "submissions_left": lambda: platform.submissions_left(slug, actor.username or "x", actor=actor),
        "logo": lambda: platform.competition_logo(slug, actor),
        "starting_kit": lambda: platform.phase_download(slug, 1, "starting_kit", actor),
        "lab_files": lambda: platform.phase_files(slug, 1, actor),
        "register": lambda: platform.register(slug, actor.username or "x", actor, accept_terms=True),
        "participants": lambda: platform.participants(slug, actor),
        "yaml": lambda: platform.competition_yaml(slug, actor),
    }


def assert_invisible(platform, slug, actor, tmp_path):
    """Each path answers what it answers for a competition that does not exist (the slug aside)."""
    for name, read in reads(platform, slug, actor).items():
        if name in ("submissions", "submissions_left", "register", "participants", "yaml") and actor.is_anonymous:
            continue  # these ask for a login first, existing competition or not
        with pytest.raises(NotFound) as caught:
            read()
        assert str(caught.value).startswith(f"no competition {slug!r}"), (name, str(caught.value))
    with pytest.raises(NotFound):
        platform.submit(slug, results_zip(tmp_path), username=actor.username or "x", actor=actor)
    assert slug not in [c["slug"] for c in platform.list_competitions(actor=actor)]
    assert slug not in [c["slug"] for c in platform.list_competitions(search=slug, actor=actor)]
    assert platform.leaderboard_etag(slug, actor=actor) is None


def test_a_missing_competition_answers_as_the_invisible_ones(platform):
    for name, read in reads(platform, "no-such-competition", ANN).items():
        with pytest.raises(NotFound, match=MISSING):
            read()


def test_a_draft_is_seen_by_its_organizers_only(platform, world, tmp_path):
    after = platform.set_lifecycle(world.slug, m.DRAFT, ORGANIZER)
    assert after["status"] == m.DRAFT and after["status_changed_at"] and after["secret"] is None
    # Its own participants, other organizers and anonymous visitors alike: nothing, by any path.
    for actor in (ANN, NORA, OTHER_ORGANIZER, ANONYMOUS, dataclasses.replace(ORGANIZER, organizer_powers=False)):
        assert_invisible(platform, world.slug, actor, tmp_path)
    # Even a submission of their own, made before it went back to draft.
    with pytest.raises(NotFound):
        platform.submission_view(world.subs["ann"], ANN)
    for actor in (ORGANIZER, ADMIN):
        listed = {c["slug"]: c for c in platform.list_competitions(actor=actor)}
        assert listed[world.slug]["lifecycle"] == m.DRAFT
        assert platform.competition_detail(world.slug, actor)["lifecycle"] == m.DRAFT
        assert platform.leaderboard_view(world.slug, actor=actor)["rows"]
    # Its organizers test it: their own first submission enters them.
    sid = platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=ORGANIZER)
    assert platform.submission_view(sid, ORGANIZER)["competition"] == world.slug
    # Organizer powers are refused as "no such competition" too.
    with pytest.raises(NotFound):
        platform.set_lifecycle(world.slug, m.PUBLISHED, OTHER_ORGANIZER)
    platform.set_lifecycle(world.slug, m.PUBLISHED, ORGANIZER)
    assert platform.competition_detail(world.slug, NORA)["lifecycle"] == m.PUBLISHED
    assert world.slug in [c["slug"] for c in platform.list_competitions(actor=ANONYMOUS)]


def test_a_private_competition_opens_to_its_link_and_its_participants(platform, world, tmp_path):
    after = platform.set_lifecycle(world.slug, m.PRIVATE, ORGANIZER)
    secret = after["secret"]
    assert secret and len(secret) >= 24
    assert platform.set_lifecycle(world.slug, m.PRIVATE, ORGANIZER)["secret"] == secret  # the same link after
    # Listed nowhere, even to its approved participants, who still see it.
    for actor in (ANN, NORA, ANONYMOUS):
        assert world.slug not in [c["slug"] for c in platform.list_competitions(actor=actor)]
    assert platform.competition_detail(world.slug, ANN)["lifecycle"] == m.PRIVATE
    assert platform.leaderboard_view(world.slug, actor=BEN)["rows"]
    assert platform.competition_detail(world.slug, ORGANIZER)["secret"] == secret
    assert "secret" not in platform.competition_detail(world.slug, ANN)
    for actor in (NORA, ANONYMOUS, OTHER_ORGANIZER, dataclasses.replace(NORA, secret="wrong")):
        assert_invisible(platform, world.slug, actor, tmp_path)
    # The link opens it, and registration through it.
    nora = dataclasses.replace(NORA, secret=secret)
    assert platform.competition_detail(world.slug, nora)["registration"] == "none"
    assert platform.leaderboard_view(world.slug, actor=nora)["rows"]
    assert platform.register(world.slug, "nora", nora, accept_terms=True) == m.APPROVED
    assert platform.competition_detail(world.slug, NORA)["registration"] == m.APPROVED  # no link needed now
    # A new link: the old one opens nothing; registrations made through it stay.
    rotated = platform.rotate_secret(world.slug, ORGANIZER)["secret"]
    assert rotated != secret
    assert_invisible(platform, world.slug, dataclasses.replace(OTHER_ORGANIZER, secret=secret), tmp_path)
    assert platform.competition_detail(world.slug, NORA)["lifecycle"] == m.PRIVATE
    # An invitation registers, approved.
    eve = Actor("eve")
    assert_invisible(platform, world.slug, eve, tmp_path)
    done = platform.invite(world.slug, ["eve", "ann", " "], ORGANIZER)
    assert done == {"invited": ["eve"], "already": ["ann"], "skipped": []}
    assert platform.competition_detail(world.slug, eve)["registration"] == m.APPROVED
    with pytest.raises(PlatformError, match="not a hub user name"):
        platform.invite(world.slug, ["has space"], ORGANIZER)
    with pytest.raises(Forbidden):
        platform.invite(world.slug, ["zed"], ANN)
    with pytest.raises(NotFound):
        platform.invite(world.slug, ["zed"], OTHER_ORGANIZER)


def test_a_pending_registration_through_the_link_keeps_the_competition_in_sight(platform, world):
    with platform.db.session() as s:
        s.scalars(select(m.Competition).where(m.Competition.slug == world.slug)).one().registration_auto_approve = False
    secret = platform.set_lifecycle(world.slug, m.PRIVATE, ORGANIZER)["secret"]
    assert platform.register(world.slug, "nora", dataclasses.replace(NORA, secret=secret), accept_terms=True) == m.PENDING
    assert platform.competition_detail(world.slug, NORA)["registration"] == m.PENDING
    platform.set_registration(world.slug, "nora", m.DENIED, ORGANIZER)
    with pytest.raises(NotFound):
        platform.competition_detail(world.slug, NORA)


def test_an_archived_competition_is_read_only_with_its_boards_kept(platform, world, tmp_path):
    board = platform.leaderboard_view(world.slug, actor=NORA)["rows"]
    platform.set_lifecycle(world.slug, m.ARCHIVED, ORGANIZER)
    assert platform.leaderboard_view(world.slug, actor=NORA)["rows"] == board
    assert platform.competition_detail(world.slug, ANONYMOUS)["lifecycle"] == m.ARCHIVED
    assert {c["slug"]: c["lifecycle"] for c in platform.list_competitions(actor=NORA)}[world.slug] == m.ARCHIVED
    refused = {
        "register": lambda: platform.register(world.slug, "nora", NORA, accept_terms=True),
        "submit": lambda: platform.submit(world.slug, results_zip(tmp_path), username="ann", actor=ANN),
        "edit": lambda: platform.update_competition_yaml(world.slug, platform.competition_yaml(world.slug, ORGANIZER),
                                                         ORGANIZER),
        "open phase": lambda: platform.open_phase_now(world.slug, 2, ORGANIZER),
        "rerun": lambda: platform.rerun(world.subs["ann"], ORGANIZER),
        "hide": lambda: platform.set_hidden(world.subs["ann"], True, ORGANIZER),
        "approve": lambda: platform.set_registration(world.slug, "ben", m.DENIED, ORGANIZER),
        "invite": lambda: platform.invite(world.slug, ["eve"], ORGANIZER),
    }
    for name, change in refused.items():
        with pytest.raises(Conflict, match="archived and read-only") as caught:
            change()
        assert caught.value.status == 409, name
    # The phase clock leaves it alone: phase 2 (auto-migration) opens in 2100.
    later = dt.datetime(2100, 1, 2)
    assert platform.tick_phases(later, slug=world.slug) == {"opened": [], "migrated": {}}
    # Its organizers still read everything, and may publish it again.
    assert platform.submissions_view(world.slug, ORGANIZER)["total"] == 3
    platform.set_lifecycle(world.slug, m.PUBLISHED, ORGANIZER)
    assert platform.register(world.slug, "nora", NORA, accept_terms=True) == m.APPROVED


def test_unknown_lifecycle_statuses_are_refused(platform, world):
    with pytest.raises(PlatformError, match="unknown lifecycle status 'gone'; one of draft, published"):
        platform.set_lifecycle(world.slug, "gone", ORGANIZER)
    with pytest.raises(Forbidden):
        platform.set_lifecycle(world.slug, m.ARCHIVED, ANN)
    assert platform.lifecycle(world.slug, ORGANIZER)["status"] == m.PUBLISHED


def _dataset_files(platform) -> set[str]:
    return {p.name for p in (platform.store.root / "datasets").rglob("*") if p.is_file()}


def test_deleting_removes_the_rows_and_the_files_no_other_competition_uses(platform, world, tmp_path):
    spec = platform.competition_spec(world.slug)
    own = platform.store.put_dataset_bytes(b"a logo only the copy has")
    spec.logo = DataRef("key", own)
    copy = platform.competitions.insert_competition(spec, ORGANIZER)  # shares every dataset of `world`
    shared = {spec.phases[0].starting_kit.value, spec.tasks[0].reference_data.value}
    folders = {sid: platform.store.file_path(f"submissions/{sid}") for sid in world.subs.values()}
    assert folders[world.subs["ann"]].is_dir()
    with platform.db.session() as s:
        submitted = {s.get(m.Submission, sid).file_key for sid in world.subs.values()}
    before = _dataset_files(platform)
    assert shared | submitted | {own} <= before

    with pytest.raises(PlatformError, match="type its slug"):
        platform.delete_competition(world.slug, world.slug.upper(), ORGANIZER)
    with pytest.raises(Forbidden):
        platform.delete_competition(world.slug, world.slug, ANN)
    with pytest.raises(Forbidden):
        platform.delete_competition(world.slug, world.slug, OTHER_ORGANIZER)
    assert platform.competition_detail(world.slug, ANN)["slug"] == world.slug  # nothing was deleted

    done = platform.delete_competition(world.slug, world.slug, ORGANIZER)
    assert done["submissions"] == 3
    assert set(done["datasets"]) == submitted  # the submissions' files: no other competition has them
    for read in reads(platform, world.slug, ORGANIZER).values():
        with pytest.raises(NotFound):
            read()
    with pytest.raises(NotFound):
        platform.submission_view(world.subs["ann"], ADMIN)
    assert not any(folder.exists() for folder in folders.values())
    assert _dataset_files(platform) == before - submitted
    with platform.db.session() as s:
        assert s.scalars(select(m.Participant.username).join(m.Competition)
                         .where(m.Competition.slug == world.slug)).all() == []
        assert s.get(m.Dataset, spec.tasks[0].reference_data.value) is not None
    assert platform.leaderboard_view(world.other_slug, actor=ANN)["competition"] == world.other_slug

    # The copy goes with the data it shared, now used by no one.
    done = platform.delete_competition(copy, copy, ADMIN)
    assert shared | {own} <= set(done["datasets"])
    assert not (shared | {own}) & _dataset_files(platform)
    with platform.db.session() as s:
        assert s.get(m.Dataset, own) is None


@pytest.mark.parametrize("fixture,published,status", [
    ("codabench_results", None, m.DRAFT),
    ("codabench_results", False, m.DRAFT),
    ("codabench_results", True, m.PUBLISHED),
    ("codalab_results", None, m.DRAFT),
    ("codalab_results", False, m.DRAFT),
    ("codalab_results", "yes", m.PUBLISHED),
])
def test_the_bundles_published_key_chooses_the_lifecycle_at_upload(platform, tmp_path, fixture, published, status):
    folder = tmp_path / fixture
    shutil.copytree(FIXTURES / "good" / fixture, folder)
    doc = yaml.safe_load((folder / "competition.yaml").read_text())
    doc.pop("published", None)  # the fixture's own, so that the case without the key is one
    if published is not None:
        doc["published"] = published
    (folder / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    slug, warnings = platform.create_competition(zip_folder(folder, tmp_path / "bundle.zip"), ORGANIZER)
    assert not [w for w in warnings if "published" in w], warnings
    assert platform.lifecycle(slug, ORGANIZER)["status"] == status
    listed = slug in [c["slug"] for c in platform.list_competitions(actor=NORA)]
    assert listed == (status == m.PUBLISHED)
    # Export writes the key back as the bundle had it.
    exported = yaml.safe_load(platform.competition_yaml(slug, ORGANIZER))
    assert exported.get("published") == published
