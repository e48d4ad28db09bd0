"""The phase clock: phases noticed open once, auto-migration once, across restarts and processes."""
from __future__ import annotations

import datetime as dt
import threading

from hub_extension import models as m
from hub_extension.app import Platform
from hub_extension.app.phases import Phases

from tests.support.builders import ORGANIZER, build_world

BEFORE_FINAL = dt.datetime(2030, 1, 1)
FINAL_OPEN = dt.datetime(2100, 1, 2)


def _phase2_submissions(platform, slug):
    return platform.submissions_view(slug, ORGANIZER, phase=2)["items"]


def test_opening_is_noticed_once(platform, tmp_path):
    world = build_world(platform, tmp_path)
    first = platform.tick_phases(now=BEFORE_FINAL)
    assert f"{world.slug}/1" in first["opened"] and f"{world.other_slug}/1" in first["opened"]
    assert first["migrated"] == {}
    assert platform.tick_phases(now=BEFORE_FINAL) == {"opened": [], "migrated": {}}
    assert _phase2_submissions(platform, world.slug) == []


def test_auto_migration_runs_once_when_the_next_phase_opens(platform, tmp_path):
    world = build_world(platform, tmp_path)
    platform.tick_phases(now=BEFORE_FINAL)
    done = platform.tick_phases(now=FINAL_OPEN)
    assert done["opened"] == [f"{world.slug}/2"]
    new_ids = done["migrated"][f"{world.slug}/2"]
    migrated = _phase2_submissions(platform, world.slug)
    assert sorted(s["id"] for s in migrated) == sorted(new_ids)
    assert {(s["participant"], s["parent"]) for s in migrated} == {
        ("ann", world.subs["ann"]), ("ben", world.subs["ben"])}
    assert platform.tick_phases(now=FINAL_OPEN + dt.timedelta(minutes=1)) == {"opened": [], "migrated": {}}
    assert len(_phase2_submissions(platform, world.slug)) == 2


def test_the_clock_survives_a_restart(any_platform, tmp_path):
    world = build_world(any_platform, tmp_path)
    any_platform.tick_phases(now=FINAL_OPEN)
    assert len(_phase2_submissions(any_platform, world.slug)) == 2
    again = Platform(home=any_platform.config.home, db_url=any_platform.config.db_url or None)
    try:
        assert again.tick_phases(now=FINAL_OPEN + dt.timedelta(hours=1)) == {"opened": [], "migrated": {}}
        assert len(_phase2_submissions(again, world.slug)) == 2
    finally:
        again.close()


def test_two_services_ticking_at_once_migrate_once(platform, tmp_path):
    world = build_world(platform, tmp_path)
    others = [Platform(home=platform.config.home) for _ in range(3)]
    results: list[dict] = []
    start = threading.Barrier(len(others))

    def run(p):
        start.wait()
        results.append(p.tick_phases(now=FINAL_OPEN))

    threads = [threading.Thread(target=run, args=(p,)) for p in others]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    for p in others:
        p.close()
    assert len(results) == 3
    claims = [r["migrated"] for r in results if r["migrated"]]
    assert len(claims) == 1, results
    assert len(_phase2_submissions(platform, world.slug)) == 2


def test_a_phase_without_auto_migration_only_opens(platform, tmp_path):
    world = build_world(platform, tmp_path)
    with platform.db.session() as s:
        s.query(m.Phase).filter(m.Phase.name == "Final").update({"auto_migrate": False})
    done = platform.tick_phases(now=FINAL_OPEN)
    assert f"{world.slug}/2" in done["opened"] and done["migrated"] == {}
    assert _phase2_submissions(platform, world.slug) == []


def test_late_registrations_and_hidden_submissions_are_not_migrated(platform, tmp_path):
    world = build_world(platform, tmp_path)
    platform.set_hidden(world.subs["ben"], True, ORGANIZER)
    platform.set_registration(world.slug, "ann", m.REMOVED, ORGANIZER)
    done = platform.tick_phases(now=FINAL_OPEN)
    assert done["migrated"] == {f"{world.slug}/2": []}


def test_one_broken_competition_does_not_stop_the_others(platform, tmp_path, monkeypatch):
    world = build_world(platform, tmp_path)
    real = Phases.migrate

    def broken(self, s, comp, source, target, now):
        if comp.slug == world.slug:
            raise RuntimeError("boom")
        return real(self, s, comp, source, target, now)

    monkeypatch.setattr(Phases, "migrate", broken)
    done = platform.tick_phases(now=FINAL_OPEN)
    assert f"{world.other_slug}/1" in done["opened"]
    # The failed migration rolled back with its claim: the next tick tries again.
    monkeypatch.setattr(Phases, "migrate", real)
    again = platform.tick_phases(now=FINAL_OPEN)
    assert len(again["migrated"][f"{world.slug}/2"]) == 2


def test_open_now_and_new_dates_run_the_clock_at_once(platform, tmp_path):
    world = build_world(platform, tmp_path)
    platform.open_phase_now(world.slug, 2, ORGANIZER)
    assert len(_phase2_submissions(platform, world.slug)) == 2
    # Moving the dates afterwards does not migrate a second time.
    platform.set_phase_dates(world.slug, 2, "2020-06-01", None, ORGANIZER)
    assert len(_phase2_submissions(platform, world.slug)) == 2
