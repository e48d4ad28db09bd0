"""Participants and organizers: removing, banning, reinstating (on every board at once), bulk changes,
organizers who never register, and co-organizers from bundles and by name."""
from __future__ import annotations

import shutil
import zipfile

import pytest
import yaml

from hub_extension import models as m
from hub_extension.app import Actor, Forbidden, LimitReached, NotFound, PlatformError

from tests.support.bundles import FIXTURES
from tests.support.builders import (
    ADMIN,
    ANN,
    BEN,
    NORA,
    ORGANIZER,
    finish,
    results_zip,
    simple_spec,
)

CAROL = Actor("carol")


def boards(platform, slug: str, actor=ORGANIZER) -> dict[str, list[tuple]]:
    """Every board of phase 1 as `actor` sees it: (rank, participant, submission, scores) per row."""
    shown = {}
    for key in ("main", "private"):
        view = platform.leaderboard_view(slug, 1, actor=actor, board=key)
        shown[key] = [(r["rank"], r["participant"], r["submission"], r["scores"]) for r in view["rows"]]
    return shown


def history_names(platform, slug: str) -> set[str]:
    return {p["username"] for p in platform.best_score_history(slug, 1, None, ORGANIZER)}


# -- removing, banning, reinstating -----------------------------------------------------------------
def test_removing_takes_a_participant_off_every_board_and_reinstating_brings_them_back(platform, world):
    before = boards(platform, world.slug)
    assert [row[1] for row in before["main"]] == ["ben", "ann"]
    assert [row[1] for row in before["private"]] == ["ben", "ann"]
    assert history_names(platform, world.slug) == {"ann", "ben"}
    csv_before = platform.leaderboard_csv(world.slug, 1, actor=ORGANIZER)

    assert platform.set_registration(world.slug, "ben", m.REMOVED, ORGANIZER) == m.REMOVED
    after = boards(platform, world.slug)
    assert after["main"] == [(1, "ann", world.subs["ann"], before["main"][1][3])]
    assert [row[:3] for row in after["private"]] == [(1, "ann", world.subs["ann"])]
    assert history_names(platform, world.slug) == {"ann"}
    assert "ben" not in platform.leaderboard_csv(world.slug, 1, actor=ORGANIZER)
    # Ben keeps his submissions, and sees no row of his own on the board.
    assert platform.submission(world.subs["ben"])["status"] == "Finished"
    assert all(not r["own"] for r in platform.leaderboard_view(world.slug, 1, actor=BEN)["rows"])

    platform.set_registration(world.slug, "ben", m.APPROVED, ORGANIZER)
    assert boards(platform, world.slug) == before
    assert platform.leaderboard_csv(world.slug, 1, actor=ORGANIZER) == csv_before
    assert history_names(platform, world.slug) == {"ann", "ben"}


def test_a_removal_changes_the_etag_and_a_change_inside_the_off_statuses_rebuilds_nothing(platform, world):
    etag = platform.leaderboard_etag(world.slug, 1, actor=ANN)
    platform.set_registration(world.slug, "ben", m.REMOVED, ORGANIZER)
    removed = platform.leaderboard_etag(world.slug, 1, actor=ANN)
    assert removed != etag
    platform.set_registration(world.slug, "ben", m.BANNED, ORGANIZER)  # still off the boards
    assert platform.leaderboard_etag(world.slug, 1, actor=ANN) == removed


def test_a_banned_participant_cannot_register_again_nor_submit(platform, world, tmp_path):
    platform.set_registration(world.slug, "ann", m.BANNED, ORGANIZER)
    assert [row[1] for row in boards(platform, world.slug)["main"]] == ["ben"]
    with pytest.raises(Forbidden, match="banned .* cannot register again"):
        platform.register(world.slug, "ann", ANN, accept_terms=True)
    with pytest.raises(Forbidden, match="registration is banned"):
        platform.submit(world.slug, results_zip(tmp_path), username="ann", actor=ANN)
    assert platform.competition_detail(world.slug, ANN)["registration"] == m.BANNED
    # The organizers may take them back.
    assert platform.register(world.slug, "ann", ORGANIZER) == m.APPROVED
    assert [row[1] for row in boards(platform, world.slug)["main"]] == ["ben", "ann"]


def test_a_removed_participant_registers_again_as_pending(platform, world):
    platform.set_registration(world.slug, "ben", m.REMOVED, ORGANIZER)
    with pytest.raises(PlatformError, match="accept the terms"):
        platform.register(world.slug, "ben", BEN)
    # The competition approves at once, but the organizers removed Ben: they approve him again.
    assert platform.register(world.slug, "ben", BEN, accept_terms=True) == m.PENDING
    assert [row[1] for row in boards(platform, world.slug)["main"]] == ["ann"]  # pending: not on the boards
    platform.set_registration(world.slug, "ben", m.APPROVED, ORGANIZER)
    assert [row[1] for row in boards(platform, world.slug)["main"]] == ["ben", "ann"]


def test_only_organizers_change_a_status_and_the_status_must_be_known(platform, world):
    with pytest.raises(Forbidden):
        platform.set_registration(world.slug, "ben", m.REMOVED, ANN)
    with pytest.raises(PlatformError, match="unknown registration status 'kicked'"):
        platform.set_registration(world.slug, "ben", "kicked", ORGANIZER)
    with pytest.raises(NotFound, match="'nora' is not registered"):
        platform.set_registration(world.slug, "nora", m.BANNED, ORGANIZER)


# -- many at once ---------------------------------------------------------------------------------
def test_bulk_approve_and_bulk_remove(platform, tmp_path):
    spec = simple_spec()
    spec.registration_auto_approve = False
    slug = platform.competitions.insert_competition(spec, ORGANIZER)
    for actor in (ANN, BEN, NORA):
        assert platform.register(slug, actor.username, actor) == m.PENDING
    results = platform.bulk_set_registration(slug, ["ann", " ben ", "zed", "ann"], m.APPROVED, ORGANIZER)
    assert results == [
        {"username": "ann", "status": m.APPROVED, "previous": m.PENDING},
        {"username": "ben", "status": m.APPROVED, "previous": m.PENDING},
        {"username": "zed", "error": f"'zed' is not registered in {slug!r}"},
    ]
    statuses = {p["username"]: p["status"] for p in platform.participants(slug, ORGANIZER)}
    assert statuses == {"ann": m.APPROVED, "ben": m.APPROVED, "nora": m.PENDING}

    for actor, accuracy in ((ANN, 0.5), (BEN, 0.6)):
        sid = platform.submit(slug, results_zip(tmp_path), username=actor.username, actor=actor)
        finish(platform, sid, {"accuracy": accuracy}, with_outputs=False)
    assert [r["participant"] for r in platform.leaderboard_view(slug, actor=ORGANIZER)["rows"]] == ["ben", "ann"]
    platform.bulk_set_registration(slug, ["ann", "ben"], m.REMOVED, ORGANIZER)
    assert platform.leaderboard_view(slug, actor=ORGANIZER)["rows"] == []
    platform.bulk_set_registration(slug, ["ann", "ben"], m.APPROVED, ORGANIZER)
    assert [r["participant"] for r in platform.leaderboard_view(slug, actor=ORGANIZER)["rows"]] == ["ben", "ann"]


def test_bulk_reinstate_brings_back_only_the_removed_and_banned(platform, world):
    platform.set_registration(world.slug, "ann", m.REMOVED, ORGANIZER)
    platform.set_registration(world.slug, "ben", m.BANNED, ORGANIZER)
    platform.register(world.slug, "nora", NORA, accept_terms=True)
    assert boards(platform, world.slug)["main"] == []
    results = platform.bulk_reinstate(world.slug, ["ann", "ben", "nora", "zed"], ORGANIZER)
    assert results == [
        {"username": "ann", "status": m.APPROVED, "previous": m.REMOVED},
        {"username": "ben", "status": m.APPROVED, "previous": m.BANNED},
        {"username": "nora", "error": "'nora' is approved, neither removed nor banned: left as they are"},
        {"username": "zed", "error": f"'zed' is not registered in {world.slug!r}"},
    ]
    assert [row[1] for row in boards(platform, world.slug)["main"]] == ["ben", "ann"]
    with pytest.raises(Forbidden):
        platform.bulk_reinstate(world.slug, ["ann"], ANN)
    with pytest.raises(PlatformError, match="choose at least one participant"):
        platform.bulk_reinstate(world.slug, [], ORGANIZER)


@pytest.mark.parametrize("usernames, status, message", [
    (["ann"], "pending", "unknown status 'pending' for many participants"),
    ([], m.APPROVED, "choose at least one participant"),
    ("ann", m.APPROVED, "as a list of user names"),
    (["ann", ""], m.APPROVED, "an empty user name"),
    (["ann bob"], m.APPROVED, "is not a user name"),
    ([f"u{n}" for n in range(1001)], m.APPROVED, "at most 1000"),
])
def test_bulk_changes_refuse_bad_input(platform, world, usernames, status, message):
    with pytest.raises(PlatformError, match=message):
        platform.bulk_set_registration(world.slug, usernames, status, ORGANIZER)


def test_only_organizers_change_many_at_once(platform, world):
    with pytest.raises(Forbidden):
        platform.bulk_set_registration(world.slug, ["ben"], m.REMOVED, ANN)
    assert [row[1] for row in boards(platform, world.slug)["main"]] == ["ben", "ann"]


# -- organizers do not register -------------------------------------------------------------------
def test_an_organizer_cannot_register_to_their_own_competition(platform, world):
    for organizer in (ORGANIZER, ADMIN):
        with pytest.raises(PlatformError, match="organizers do not register") as refused:
            platform.register(world.slug, organizer.username, organizer, accept_terms=True)
        assert refused.value.status == 400
    # They register others, approved at once.
    assert platform.register(world.slug, "nora", ORGANIZER) == m.APPROVED
    # A down-scoped token acts as a participant: it registers like one.
    scoped = Actor("olga", groups=frozenset({"organizers"}), organizer_powers=False)
    assert platform.register(world.slug, "olga", scoped, accept_terms=True) == m.APPROVED


def test_an_organizers_first_submission_enters_them(platform, world, tmp_path):
    assert platform.competition_detail(world.slug, ORGANIZER)["registration"] == "none"
    sid = platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=ORGANIZER)
    finish(platform, sid, {"accuracy": 0.9, "private_score": 0.1}, with_outputs=False)
    assert platform.competition_detail(world.slug, ORGANIZER)["registration"] == m.APPROVED
    entry = [p for p in platform.participants(world.slug, ORGANIZER) if p["username"] == "olga"]
    assert entry == [{**entry[0], "status": m.APPROVED, "organizer": True, "submissions": 1}]
    assert boards(platform, world.slug)["main"][0][:2] == (1, "olga")
    # The limits hold for organizers too: 5 a day in this phase.
    for _ in range(4):
        platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=ORGANIZER)
    with pytest.raises(LimitReached, match="all 5 submissions of today"):
        platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=ORGANIZER)


def test_a_removed_organizer_is_not_entered_again_by_a_submission(platform, world, tmp_path):
    platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=ORGANIZER)
    platform.set_registration(world.slug, "olga", m.REMOVED, ORGANIZER)
    with pytest.raises(Forbidden, match="registration is removed"):
        platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=ORGANIZER)


def test_a_participant_submitting_unregistered_is_still_refused(platform, world, tmp_path):
    with pytest.raises(Forbidden, match="register first"):
        platform.submit(world.slug, results_zip(tmp_path), username="nora", actor=NORA)
    scoped = Actor("olga", groups=frozenset({"organizers"}), organizer_powers=False)
    with pytest.raises(Forbidden, match="register first"):
        platform.submit(world.slug, results_zip(tmp_path), username="olga", actor=scoped)


# -- co-organizers --------------------------------------------------------------------------------
def test_co_organizers_from_a_codalab_bundle(platform):
    slug, warnings = platform.create_competition(FIXTURES / "good" / "codalab_results", ORGANIZER)
    assert any(w.startswith("competition.yaml: admin_names: alice, bob will organize this competition")
               for w in warnings)
    alice = Actor("alice")
    assert platform.organizers(slug, alice) == {"competition": slug, "creator": "olga",
                                                "co_organizers": ["alice", "bob"], "may_change": False}
    assert platform.participants(slug, alice) == []
    with pytest.raises(PlatformError, match="organizers do not register"):
        platform.register(slug, "alice", alice, accept_terms=True)
    with pytest.raises(Forbidden, match="only the creator .* and the admins"):
        platform.set_organizers(slug, ["alice", "carol"], alice)

    after = platform.set_organizers(slug, ["carol", "olga", "carol"], ORGANIZER)
    assert after["co_organizers"] == ["carol"] and after["may_change"] is True
    assert after["notes"] == [f"olga created {slug!r} and organizes it already"]
    with pytest.raises(Forbidden):
        platform.participants(slug, alice)
    assert platform.participants(slug, CAROL) == []
    # Admins name them too; an empty list leaves the creator alone.
    assert platform.set_organizers(slug, [], ADMIN)["co_organizers"] == []
    with pytest.raises(Forbidden):
        platform.organizers(slug, CAROL)


@pytest.mark.parametrize("usernames, message", [
    ("carol", "as a list of user names"),
    (["a,b"], "is not a user name"),
    (["x" * 201], "is not a user name"),
    ([f"u{n}" for n in range(101)], "at most 100"),
])
def test_co_organizers_refuse_bad_names(platform, world, usernames, message):
    with pytest.raises(PlatformError, match=message):
        platform.set_organizers(world.slug, usernames, ORGANIZER)


def test_co_organizers_from_a_codabench_bundle_and_back(platform, tmp_path):
    """Codabench names collaborators in its editor only; `admin_names` is read in its dialect too, so that an
    exported competition keeps its co-organizers."""
    root = tmp_path / "bundle"
    shutil.copytree(FIXTURES / "good" / "codabench_results", root)
    doc = yaml.safe_load((root / "competition.yaml").read_text())
    doc["admin_names"] = ["alice", "bad name", "alice"]
    (root / "competition.yaml").write_text(yaml.safe_dump(doc, sort_keys=False))
    slug, warnings = platform.create_competition(root, ORGANIZER)
    assert any("admin_names: 'bad name' is not a user name" in w for w in warnings)
    assert platform.organizers(slug, ORGANIZER)["co_organizers"] == ["alice"]
    out = platform.export_competition(slug, tmp_path / "out.zip", actor=ORGANIZER)
    with zipfile.ZipFile(out) as zf:
        exported = yaml.safe_load(zf.read("competition.yaml"))
    assert exported["admin_names"] == "alice"


def test_a_co_organizers_submission_enters_them(platform, world, tmp_path):
    platform.set_organizers(world.slug, ["carol"], ORGANIZER)
    sid = platform.submit(world.slug, results_zip(tmp_path), username="carol", actor=CAROL)
    assert platform.submission(sid)["participant"] == "carol"
    assert platform.competition_detail(world.slug, CAROL)["registration"] == m.APPROVED


def test_co_organizers_edit_the_yaml_but_not_its_co_organizers(platform):
    slug, _ = platform.create_competition(FIXTURES / "good" / "codalab_results", ORGANIZER)
    alice = Actor("alice")
    text = platform.competition_yaml(slug, alice)
    assert "admin_names: alice, bob" in text
    problems = platform.update_competition_yaml(slug, text.replace("admin_names: alice, bob", "admin_names: alice, eve"),
                                                alice)
    assert problems == ["competition.yaml: admin_names: only the creator (olga) and the admins choose the "
                        "co-organizers; leave the list as it is"]
    assert platform.update_competition_yaml(slug, text.replace("Hello World", "Hello Again"), alice) == []
    assert platform.update_competition_yaml(
        slug, text.replace("admin_names: alice, bob", "admin_names: alice"), ORGANIZER) == []
    assert platform.organizers(slug, ORGANIZER)["co_organizers"] == ["alice"]
