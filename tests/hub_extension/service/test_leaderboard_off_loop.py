"""Leaderboards are read off the service's request loop: API, page, CSV and history.

Thousands of widgets poll boards; while any of them is being read, the loop
must stay free for everything else (`/health` included).  Each platform call
behind the leaderboard handlers is spied on: the thread that made it is never
the loop's own, while 20 clients read the board at once and `/health` still
answers.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from tests.hub_extension.service.test_api_leaderboard_pages import add_participants
from tests.hub_extension.test_dispatch_off_loop import spy

READS = ("leaderboard_answer", "leaderboard_view", "leaderboard_csv_chunks", "best_score_history")


def test_boards_are_read_on_the_blocking_pool_not_the_loop(server, world, tmp_path):
    platform = server.platform
    add_participants(platform, world.slug, tmp_path, 20)
    threads: dict[str, list[str]] = {name: [] for name in READS}
    for name in READS:
        spy(platform, name, threads[name])
    base = f"api/v1/competitions/{world.slug}"
    paths = [f"{base}/leaderboard?limit=5", f"{base}/leaderboard", f"{base}/leaderboard.csv",
             f"{base}/leaderboard/history", f"competitions/{world.slug}/leaderboard",
             f"competitions/{world.slug}/leaderboard.csv"]

    def read(i: int) -> int:
        return server.client("ann").get(paths[i % len(paths)]).status_code

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(read, range(120)))
        health = server.client().get("api/v1/health")
    assert set(statuses) == {200}, statuses
    assert health.status_code == 200
    loop_thread = server._thread.name  # the service's loop runs there
    # The API asks for its ETag and page in one call (`leaderboard_answer`); the page asks for the view.
    for name in ("leaderboard_answer", "leaderboard_view", "best_score_history"):
        assert threads[name], f"{name} was not called"
        assert loop_thread not in threads[name], (name, threads[name])
        assert all(t.startswith("compete-blocking") for t in threads[name]), (name, set(threads[name]))
    # The CSV's generator is made on the loop (no work done yet); its chunks come from the pool.
    assert threads["leaderboard_csv_chunks"]
