"""Leaderboards read by processes of their own (`readers.BoardReaders`), as the real service does.

The answers are the ones the service's own threads give (API page and ETag,
304, the page, the history), none of them is computed in the service's
process, a killed reader costs no request (the service's threads answer its
requests, and it is replaced while the other goes on), and readers exit when
the service's process is gone.
"""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from hub_extension.app import LOCAL_ADMIN, Actor
from hub_extension.service.readers import BoardReaders

from tests.hub_extension.service.test_api_leaderboard_pages import add_participants
from tests.hub_extension.test_dispatch_off_loop import spy
from tests.support.builders import finish, results_zip
from tests.support.service_harness import ok, start_server


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as fh:  # a zombie is gone too
        return fh.read().split(")")[-1].split()[0] != "Z"


@pytest.fixture
def reader_server(platform, world, tmp_path):
    add_participants(platform, world.slug, tmp_path, 30)
    platform.register(world.slug, "nora", LOCAL_ADMIN)  # ranked last, 33rd
    last = platform.submit(world.slug, results_zip(tmp_path), username="nora")
    finish(platform, last, {"accuracy": 0.01, "secret": 0.0, "private_score": 0.0}, with_outputs=False)
    readers = BoardReaders(platform.db.url, 2)
    server = start_server(platform, board_readers=readers)
    yield server, world, readers
    server.stop()


def test_readers_answer_what_the_service_would_and_none_of_it_is_computed_here(reader_server):
    server, world, readers = reader_server
    platform = server.platform
    here: dict[str, list[str]] = {name: [] for name in ("leaderboard_answer", "leaderboard_view",
                                                        "best_score_history")}
    for name, threads in here.items():
        spy(platform, name, threads)
    base = f"api/v1/competitions/{world.slug}/leaderboard"
    client = server.client("ann")
    page = ok(client.get(f"{base}?limit=5")).json()
    expected = platform.leaderboards.leaderboard_view(world.slug, actor=Actor("ann"), limit=5)
    assert page == expected and page["total"] == 33 and len(page["rows"]) == 5
    # The viewer's own row comes with any page.
    last = ok(server.client("nora").get(f"{base}?limit=3")).json()
    assert [r["rank"] for r in last["rows"]] == [1, 2, 3, 33] and last["rows"][-1]["own"]
    # The ETag is the one the service's threads give; with it, 304.
    first = ok(client.get(f"{base}?limit=5"))
    etag = first.headers["Etag"]
    assert etag == platform.leaderboards.leaderboard_etag(
        world.slug, actor=Actor("ann"), query="phase=None&board=None&offset=0&limit=5")
    assert client.get(f"{base}?limit=5", headers={"If-None-Match": etag}).status_code == 304
    assert client.get(f"{base}?limit=6", headers={"If-None-Match": etag}).status_code == 200
    history = ok(client.get(f"{base}/history")).json()["items"]
    assert history == platform.leaderboards.best_score_history(world.slug, None, None, Actor("ann"))
    html = ok(server.client("ann").get(f"competitions/{world.slug}/leaderboard")).text
    assert "p029" in html and "p000" in html
    # Errors keep their status and message.
    missing = server.client("ann").get(f"{base}?board=nope")
    assert missing.status_code == 404 and "has no leaderboard 'nope'" in missing.text
    with ThreadPoolExecutor(10) as pool:
        statuses = list(pool.map(lambda i: client.get(f"{base}?limit=10&offset={i}").status_code, range(40)))
    assert set(statuses) == {200}
    assert here == {name: [] for name in here}, "a leaderboard read was computed in the service's process"


def test_a_killed_reader_costs_no_request_and_is_replaced(reader_server):
    server, world, readers = reader_server
    base = f"api/v1/competitions/{world.slug}/leaderboard?limit=5"
    client = server.client("ben")
    ok(client.get(base))
    workers = readers.pids()
    assert len(workers) == 2 and os.getpid() not in workers
    os.kill(workers[0], signal.SIGKILL)
    statuses = [client.get(base).status_code for _ in range(6)]
    assert statuses == [200] * 6
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        now = readers.pids()
        if len(now) == 2 and workers[0] not in now:
            break
        ok(client.get(base))
        time.sleep(0.2)
    # The killed one is replaced; the other went on answering.
    assert len(now) == 2 and workers[0] not in now and workers[1] in now, (workers, now)
    assert ok(client.get(base)).json()["rows"][0]["participant"] == "ben"


def test_readers_exit_when_the_service_process_is_gone(platform, tmp_path):
    script = (
        "import sys, time\n"
        "from hub_extension.service.readers import BoardReaders\n"
        "r = BoardReaders(sys.argv[1], 2)\n"
        "deadline = time.monotonic() + 60\n"
        "print(' '.join(map(str, r.pids())), flush=True)\n"
        "time.sleep(600)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, platform.db.url], stdout=subprocess.PIPE, text=True)
    try:
        workers = [int(p) for p in proc.stdout.readline().split()]
        assert len(workers) == 2 and all(alive(p) for p in workers)
    finally:
        proc.kill()
        proc.wait()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.2)
    assert not any(alive(p) for p in workers), workers


def test_a_board_never_built_is_built_by_the_reader(platform, world, tmp_path):
    from hub_extension import models as m

    with platform.db.session() as s:
        s.query(m.BoardRow).delete()
        s.query(m.BoardState).delete()
    readers = BoardReaders(platform.db.url, 1)
    server = start_server(platform, board_readers=readers)
    try:
        page = ok(server.client("ann").get(f"api/v1/competitions/{world.slug}/leaderboard")).json()
        assert [r["participant"] for r in page["rows"]] == ["ben", "ann"]
        assert platform.leaderboards.leaderboard_view(world.slug, actor=LOCAL_ADMIN)["total"] == 2
    finally:
        server.stop()


def test_offsets_and_limits_past_any_row_answer_the_viewers_own_row(any_platform, tmp_path):
    from tests.support.builders import build_world

    world = build_world(any_platform, tmp_path)
    server = start_server(any_platform, board_readers=BoardReaders(any_platform.db.url, 1))
    try:
        base = f"api/v1/competitions/{world.slug}/leaderboard"
        for query in ("offset=2147483647&limit=2147483647", "offset=0&limit=2147483647",
                      "offset=2147483646&limit=5"):
            page = ok(server.client("ann").get(f"{base}?{query}")).json()
            assert [r["participant"] for r in page["rows"] if r["own"]] == ["ann"], (query, page["rows"])
    finally:
        server.stop()


def test_no_reader_answers_an_old_definition_after_it_is_saved(platform, world, tmp_path):
    readers = BoardReaders(platform.db.url, 1)
    server = start_server(platform, board_readers=readers)
    try:
        base = f"api/v1/competitions/{world.slug}/leaderboard"
        client = server.client("ann")
        before = ok(client.get(base))
        text = platform.competition_yaml(world.slug, LOCAL_ADMIN)
        assert platform.update_competition_yaml(world.slug, text.replace("Accuracy", "Accuracy (test set)"),
                                                LOCAL_ADMIN) == []
        after = ok(client.get(base, headers={"If-None-Match": before.headers["Etag"]}))
        assert after.json()["columns"][0]["title"] == "Accuracy (test set)"
        assert after.json()["rows"] == before.json()["rows"]
        # Saved again: the board may come back under the same id with its version counted from 1 again,
        # and still no reader answers from what it kept of the last one.
        text = platform.competition_yaml(world.slug, LOCAL_ADMIN)
        assert platform.update_competition_yaml(world.slug, text.replace("Accuracy (test set)", "Acc."),
                                                LOCAL_ADMIN) == []
        again = client.get(base, headers={"If-None-Match": after.headers["Etag"]})
        assert again.status_code == 200 and again.json()["columns"][0]["title"] == "Acc."
        assert ok(client.get(f"{base}?limit=1")).json()["columns"][0]["title"] == "Acc."
    finally:
        server.stop()
