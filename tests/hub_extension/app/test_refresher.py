"""Boards ranked again after results off the recording path (`refresher.BoardRefresher`).

Recording returns before the rebuild; results that arrive during a rebuild
are served by one more rebuild, not one each; the boards and their
best-score history then equal a rebuild from scratch; a process that stopped
before ranking a result leaves a stale phase the next platform ranks; the
service's builder ranks in a process of its own and survives a killed one.
"""
from __future__ import annotations

import os
import signal
import threading

from hub_extension.app import LOCAL_ADMIN, Actor, Platform
from hub_extension.app.refresher import BoardRefresher
from hub_extension.app.standings import stale_phases
from hub_extension.service.readers import BoardBuilder

from tests.support.builders import finish, results_zip


def _phase(platform, sid: int) -> int:
    from hub_extension import models as m

    with platform.db.session() as s:
        return s.get(m.Submission, sid).phase_id


def board(platform, slug: str) -> list[tuple[str, int]]:
    return [(r["participant"], r["submission"]) for r in platform.leaderboard_view(slug, actor=LOCAL_ADMIN)["rows"]]


def submit(platform, world, tmp_path, user: str) -> int:
    if user not in ("ann", "ben"):
        platform.register(world.slug, user, LOCAL_ADMIN)
    return platform.submit(world.slug, results_zip(tmp_path), username=user)


def test_results_wait_together_while_a_rebuild_runs_and_one_rebuild_serves_them(platform, world, tmp_path):
    gate, started = threading.Event(), threading.Event()
    calls: list[tuple[int, tuple[int, ...]]] = []

    def rebuild(phase_id: int, finished: tuple[int, ...]) -> None:
        calls.append((phase_id, finished))
        started.set()
        gate.wait(30)
        platform.runs.refresh_boards(phase_id, finished)

    refresher = BoardRefresher(rebuild)
    platform.runs.after_finish = refresher.request
    try:
        first = submit(platform, world, tmp_path, "p0")
        finish(platform, first, {"accuracy": 0.95, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
        assert started.wait(10)
        # Recording returned while the rebuild is held: the board does not show the result yet.
        assert ("p0", first) not in board(platform, world.slug)
        later = []
        for i in range(1, 6):
            sid = submit(platform, world, tmp_path, f"p{i}")
            finish(platform, sid, {"accuracy": 0.5 + i / 100, "secret": 0.0, "private_score": 0.0},
                   with_outputs=False)
            later.append(sid)
        gate.set()
        assert refresher.wait_idle(60)
    finally:
        refresher.close()
        platform.runs.after_finish = None
    phase_id = _phase(platform, first)
    assert calls == [(phase_id, (first,)), (phase_id, tuple(later))]
    assert refresher.rebuilds == 2
    shown = board(platform, world.slug)
    assert shown[0] == ("p0", first) and {sid for _, sid in shown} >= {first, *later}
    # The same rows and history as ranking everything again from scratch.
    history = platform.best_score_history(world.slug, None, None, LOCAL_ADMIN)
    before = platform.leaderboard_view(world.slug, actor=LOCAL_ADMIN)
    platform.rebuild_boards(world.slug)
    assert platform.leaderboard_view(world.slug, actor=LOCAL_ADMIN)["rows"] == before["rows"]
    assert platform.best_score_history(world.slug, None, None, LOCAL_ADMIN) == history
    assert [p["value"] for p in history][-1] == 0.95


def test_a_result_never_ranked_is_ranked_by_the_next_platform(platform, world, tmp_path):
    dropped: list[tuple[int, int]] = []
    platform.runs.after_finish = lambda phase_id, sid: dropped.append((phase_id, sid))  # a process that died
    sid = submit(platform, world, tmp_path, "p0")
    finish(platform, sid, {"accuracy": 0.99, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
    platform.runs.after_finish = None
    assert dropped == [(_phase(platform, sid), sid)]
    assert ("p0", sid) not in board(platform, world.slug)
    with platform.db.session() as s:
        assert stale_phases(s) == [_phase(platform, sid)]
    again = Platform(platform.config)
    try:
        assert board(again, world.slug)[0] == ("p0", sid)
        with again.db.session() as s:
            assert stale_phases(s) == []
    finally:
        again.close()


def test_the_services_builder_ranks_in_a_process_of_its_own(platform, world, tmp_path):
    builder = BoardBuilder(platform.db.url)
    try:
        sid = submit(platform, world, tmp_path, "p0")
        platform.runs.after_finish = lambda phase_id, s: None  # recorded, not ranked
        finish(platform, sid, {"accuracy": 0.99, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
        platform.runs.after_finish = None
        builder(_phase(platform, sid), (sid,))
        assert board(platform, world.slug)[0] == ("p0", sid)
        workers = list(builder._get()._processes)  # noqa: SLF001 - the pool's worker ids
        assert len(workers) == 1 and workers[0] != os.getpid()
        os.kill(workers[0], signal.SIGKILL)
        other = submit(platform, world, tmp_path, "p1")
        platform.runs.after_finish = lambda phase_id, s: None
        finish(platform, other, {"accuracy": 0.995, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
        platform.runs.after_finish = None
        builder(_phase(platform, other), (other,))  # a new process ranks it
        assert board(platform, world.slug)[0] == ("p1", other)
        assert platform.leaderboard_view(world.slug, actor=Actor("ann"))["rows"][0]["participant"] == "p1"
    finally:
        builder.close()


def test_a_submissions_view_says_whether_the_boards_include_it(platform, world, tmp_path):
    sid = submit(platform, world, tmp_path, "p0")
    ann_view = platform.submission_view(world.subs["ann"], Actor("ann"))
    assert ann_view["on_leaderboard"] is True  # finished and ranked when it was recorded
    assert platform.submission_view(sid, LOCAL_ADMIN)["on_leaderboard"] is None  # not finished yet
    platform.runs.after_finish = lambda phase_id, s: None  # recorded, not ranked yet
    try:
        finish(platform, sid, {"accuracy": 0.99, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
    finally:
        platform.runs.after_finish = None
    assert platform.submission_view(sid, LOCAL_ADMIN)["on_leaderboard"] is False
    assert platform.submission(sid)["on_leaderboard"] is False
    assert ("p0", sid) not in board(platform, world.slug)
    platform.runs.refresh_boards(_phase(platform, sid), (sid,))
    assert platform.submission_view(sid, LOCAL_ADMIN)["on_leaderboard"] is True
    assert board(platform, world.slug)[0] == ("p0", sid)
