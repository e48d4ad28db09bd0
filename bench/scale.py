"""Leaderboards and the service under many submissions, measured through the real hub and proxy.

    python bench/scale.py [--sizes 1000,10000,100000] [--database sqlite|postgresql] [--out bench/scale.json]

For each size, one competition (a results bundle: one task, one phase, one
board `main` with 3 score columns, rule Force_Last) holds that many finished
submissions from a tenth as many participants (10 each): 1k submissions
(100 participants), 10k (1,000), 100k (10,000).

How the rows are made:

- The first 1,000 submissions go through the application layer as a worker's
  run writes them: `Platform.register`, `Platform.submit` (a stored
  predictions zip), `Runs.claim` on the default queue, the worker's status
  reports (Preparing, Running, Scoring, through `Runs.set_status` with the
  run's key and worker) and its result (`Runs.record_result`: the scoring
  step's run row, the three scores, the status history).  A 1k run is made
  only that way.
- Beyond 1,000, a documented bulk insert copies what the application wrote
  for the last of those submissions, row for row, table by table
  (`participants`, `submissions`, `status_changes`, `runs`, `scores`), with
  new ids, usernames, keys, times and scores (`bulk_insert`).  Nothing else
  differs: same statuses, same queue and worker, same JSON fields, same
  number of history, run and score rows per submission.  PostgreSQL's id
  sequences are moved past the inserted ids.

The database is filled before the hub starts (a SQLite file, or a fresh
PostgreSQL database, given to the hub's service as COMPETE_DB_URL), so that
no dispatcher sees the submissions while they are made; the store's files
(the bundle's programs, the predictions zip) are then copied into the hub's
home.  The hub is started as the test suite starts it
(`tests.support.hub.start_hub`: the real JupyterHub, the proxy and the
competitions service on the process executor); every request goes through
the proxy with a hub token of participant `u0`.

Measured (per size):

- `leaderboard_1`: leaderboard API latency (p50, p99) with one keep-alive client;
- `leaderboard_20`: the same with 20 concurrent keep-alive clients, with
  requests/s in total and the count of failed requests (any status but 200),
  and `/health` p50/p99 polled every 50 ms during that load, through the proxy
  (`health_under_load`) and at the service's own address (`health_direct_under_load`:
  the service's loop, apart from the proxy's queue);
- `page`, `csv`: the leaderboard page and its CSV (one client);
- `not_modified`: a request with the `If-None-Match` of the last answer (304);
- `health_20`: the same clients on `/health` alone, the cheapest request: what
  the hub's proxy, the service's HTTP layer and this client manage together
  on this machine, a ceiling for `leaderboard_20`'s requests/s;
- `service_rss_peak_mb`: the service process's peak RSS (VmHWM) at the end;
  `service_helpers_rss_peak_mb`: its leaderboard reader and board builder
  processes, each and with the service in all;
- `cpu`: CPU-seconds per 1000 requests during `leaderboard_20` and
  `health_20`, by process group (read from /proc by psutil before and after
  the load): the service, its reader and builder processes, the hub's proxy,
  the hub, the database server's backends serving this bench's database
  (PostgreSQL; SQLite works inside the service's processes) and this bench's
  own client threads; `total` sums them without the client.  The baseline's
  CPU per ranking (this process and, on PostgreSQL, its backend) is in
  `baseline.cpu_ms`, and `ratios` divides the CPU per request by it;
- `baseline`: the same ranking done by one SQL query with a window function
  (each participant's last finished, shown submission) plus pandas (the
  pivot of the scores, dense ranks per column, average rank, the first 50
  rows), in this process on the same database; `ratios` divides the service's
  figures by it;
- `submit_to_finished`: a results submission's submit → Finished (medians)
  on an idle service and while 20 clients poll the leaderboard, and their ratio;
  `submit_to_board`: submit → on the board (its maintained rows), idle and
  under that load (boards are ranked again after results, off the recording).

The API is asked for a page of 50 rows (`?limit=50`); `paged` records whether
it answered with one (when it does not know `limit`, the full board is
measured).  When the application keeps each board's ranked rows in a table
of its own, `refresh_boards` rebuilds them after the bulk insert, as
recording a score does.
"""
from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zipfile
from pathlib import Path
from urllib.parse import urlparse
from typing import Any, Callable, Iterable, Iterator, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
import requests  # noqa: E402
from sqlalchemy import create_engine, func, insert, select, text  # noqa: E402

from hub_extension import models as m  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402
from hub_extension.db import normalize_url  # noqa: E402

TEMPLATE = ROOT / "templates" / "bundles" / "results"
PER_PARTICIPANT = 10
APP_LAYER_MAX = 1000
VIEWER = "u0"
COLUMNS = ("accuracy", "error", "coverage")
PAGE_ROWS = 50


# -- the competition and its data ---------------------------------------------------------------
def make_bundle(tmp: Path) -> Path:
    """The results template with 3 score columns and no submission limits."""
    target = tmp / "bundle"
    shutil.copytree(TEMPLATE, target)
    yaml = target / "competition.yaml"
    body = (yaml.read_text().replace("title: Animals (results)", "title: Scale\npublished: true")
            .replace("max_submissions: 100", "max_submissions: 10000000")
            .replace("max_submissions_per_day: 5", "max_submissions_per_day: 10000000"))
    body = body.rstrip("\n") + """
      - title: Error
        key: error
        index: 1
        sorting: asc
        precision: 3
      - title: Coverage
        key: coverage
        index: 2
        sorting: desc
        precision: 3
"""
    yaml.write_text(body)
    score = target / "scoring_program" / "score.py"
    score.write_text(score.read_text().replace(
        'json.dump({"accuracy": correct / max(len(truth), 1)}, fh)',
        'accuracy = correct / max(len(truth), 1)\n'
        '        json.dump({"accuracy": accuracy, "error": 1 - accuracy, "coverage": 1.0}, fh)'))
    return target


def predictions(tmp: Path) -> Path:
    path = tmp / "predictions.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(TEMPLATE / "sample_submission" / "predictions.csv", "predictions.csv")
    return path


def value_of(k: int, key: str) -> float:
    """Score `key` of the k-th submission (the same for every run of the bench)."""
    return round(random.Random(f"{k}:{key}").random(), 6)


def scores_of(k: int, keys: Iterable[str] = COLUMNS) -> dict[str, float]:
    return {key: value_of(k, key) for key in keys}


def finish_as_worker(platform: Platform, sid: int, k: int) -> None:
    """What the default queue and a worker write for a results submission that scores."""
    key = f"submission-{sid}-{uuid.uuid4().hex[:12]}"
    assert platform.runs.claim(sid, "default", key)
    for status in (m.PREPARING, m.RUNNING, m.SCORING):
        platform.runs.set_status(sid, status, note="bench-worker", key=key, worker="bench-worker", queue="default")
    base = f"submissions/{sid}/attempt-1"
    result = {"status": m.FINISHED, "scores": scores_of(k), "worker": "bench-worker", "artifacts": {},
              "tasks": [{"task_index": 0, "scores": scores_of(k), "steps": [
                  {"step": "scoring", "exit_code": 0, "elapsed": 0.05, "log_path": f"{base}/task-0/scoring"}]}]}
    assert platform.runs.record_result(sid, result, key=key, queue="default")


def app_layer(platform: Platform, slug: str, upload: Path, n: int) -> None:
    """The first `n` submissions (10 per participant), through the application layer."""
    for k in range(n):
        user = f"u{k // PER_PARTICIPANT}"
        if k % PER_PARTICIPANT == 0:
            platform.register(slug, user, LOCAL_ADMIN)
        sid = platform.submit(slug, upload, username=user, actor=LOCAL_ADMIN)
        finish_as_worker(platform, sid, k)


def _rows(conn, table, *where) -> list[dict[str, Any]]:
    return [dict(r._mapping) for r in conn.execute(select(table).where(*where).order_by(table.c.id))]


def bulk_insert(platform: Platform, start: int, n: int, batch: int = 5000, *, template: Optional[int] = None) -> None:
    """Submissions `start`..`n`-1 (and their participants), copied from what the application wrote.

    The template is the last submission made through the application (or
    submission `template`) and its participant: every row of `participants`, `submissions`, `status_changes`,
    `runs` and `scores` that belongs to them is copied with new ids, the
    username u<k // 10>, the key submission-<id>-bulk, times moved by one
    second per submission, and the scores of `scores_of(k)`.
    """
    engine = platform.db.engine
    subs, parts = m.Submission.__table__, m.Participant.__table__
    history, runs, scores = m.StatusChange.__table__, m.Run.__table__, m.Score.__table__
    with engine.begin() as conn:
        template_id = template or conn.scalar(select(func.max(subs.c.id)))
        sub = _rows(conn, subs, subs.c.id == template_id)[0]
        part = _rows(conn, parts, parts.c.id == sub["participant_id"])[0]
        sub_history = _rows(conn, history, history.c.submission_id == template_id)
        sub_runs = _rows(conn, runs, runs.c.submission_id == template_id)
        sub_scores = _rows(conn, scores, scores.c.submission_id == template_id)
        next_id = {t.name: (conn.scalar(select(func.max(t.c.id))) or 0) + 1
                   for t in (subs, parts, history, runs, scores)}
        shift_keys = ("status_changed_at", "submitted_at", "started_at", "finished_at", "dispatched_at")
        part_rows, sub_rows, history_rows, run_rows, score_rows = [], [], [], [], []
        part_ids: dict[int, int] = {}

        def flush() -> None:
            for table, rows in ((parts, part_rows), (subs, sub_rows), (history, history_rows), (runs, run_rows),
                                (scores, score_rows)):
                if rows:
                    conn.execute(insert(table), rows)
                    rows.clear()

        for k in range(start, n):
            u = k // PER_PARTICIPANT
            if u not in part_ids:
                part_ids[u] = next_id["participants"]
                next_id["participants"] += 1
                part_rows.append({**part, "id": part_ids[u], "username": f"u{u}",
                                  "submission_seq": PER_PARTICIPANT})
            sid = next_id["submissions"]
            next_id["submissions"] += 1
            delta = dt.timedelta(seconds=k - start + 1)
            row = {**sub, "id": sid, "participant_id": part_ids[u], "dispatch_key": f"submission-{sid}-bulk"}
            for key in shift_keys:
                if row.get(key) is not None:
                    row[key] = row[key] + delta
            row["task_scores"] = [{**t, "scores": scores_of(k, t.get("scores") or {})}
                                  for t in (sub["task_scores"] or [])]
            sub_rows.append(row)
            for h in sub_history:
                history_rows.append({**h, "id": next_id["status_changes"], "submission_id": sid,
                                     "at": h["at"] + delta})
                next_id["status_changes"] += 1
            for r in sub_runs:
                run_rows.append({**r, "id": next_id["runs"], "submission_id": sid,
                                 "log_path": (r["log_path"] or "").replace(f"/{template_id}/", f"/{sid}/") or None})
                next_id["runs"] += 1
            for sc in sub_scores:
                score_rows.append({**sc, "id": next_id["scores"], "submission_id": sid, "value": value_of(k, sc["key"])})
                next_id["scores"] += 1
            if len(sub_rows) >= batch:
                flush()
        flush()
        if engine.dialect.name == "postgresql":
            for table in (subs, parts, history, runs, scores):
                conn.execute(text(f"SELECT setval(pg_get_serial_sequence('{table.name}', 'id'), "
                                  f"(SELECT max(id) FROM {table.name}))"))


def refresh_boards(platform: Platform, slug: str) -> Optional[str]:
    """Bring the application's kept leaderboard rows up to date after the bulk insert (when it keeps any).

    The bulk insert writes the rows a run writes, not what the application
    derives from them in the same transaction: an application that keeps each
    board's ranked rows (`hub_extension.app.standings`) rebuilds them here, as
    recording a score does (`refresh_phase`).  Returns what was called (None:
    the application ranks on each request and keeps nothing).
    """
    try:
        # Imported here: only an application that keeps its boards' rows has it.
        from hub_extension.app import standings
    except ImportError:
        return None
    refresh = getattr(standings, "refresh_phase", None)
    if refresh is None:
        return None
    with platform.db.session() as s:
        for phase_id in s.scalars(select(m.Phase.id).join(m.Competition).where(m.Competition.slug == slug)):
            refresh(s, phase_id)
    return "standings.refresh_phase"


def fill(platform: Platform, slug: str, upload: Path, n: int) -> dict[str, Any]:
    started = time.perf_counter()
    app_n = min(n, APP_LAYER_MAX)
    app_layer(platform, slug, upload, app_n)
    app_s = time.perf_counter() - started
    if n > app_n:
        bulk_insert(platform, app_n, n)
    refreshed = refresh_boards(platform, slug)
    if platform.db.engine.dialect.name == "postgresql":
        with platform.db.engine.begin() as conn:
            conn.execute(text("ANALYZE"))
    return {"app_layer": app_n, "bulk": n - app_n, "app_layer_s": round(app_s, 1),
            "total_s": round(time.perf_counter() - started, 1), "boards_refreshed_by": refreshed}


# -- the baseline -------------------------------------------------------------------------------
BASELINE_SQL = """
SELECT p.username, l.id, l.submitted_at, sc.key, sc.value
FROM (
    SELECT s.id, s.participant_id, s.submitted_at,
           ROW_NUMBER() OVER (PARTITION BY s.participant_id ORDER BY s.submitted_at DESC, s.id DESC) AS rn
    FROM submissions s
    WHERE s.phase_id = :phase AND s.status = :finished AND s.hidden = :no AND s.parent_id IS NULL
) l
JOIN participants p ON p.id = l.participant_id
JOIN scores sc ON sc.submission_id = l.id
WHERE l.rn = 1
"""


def baseline_board(engine, phase_id: int, viewer: str = VIEWER) -> list[dict[str, Any]]:
    """The board by one SQL query with a window function, ranked with pandas: the first 50 rows and the viewer's."""
    # Imported here: pandas is needed by the baseline only.
    import pandas as pd

    with engine.connect() as conn:
        df = pd.read_sql_query(text(BASELINE_SQL), conn,
                               params={"phase": phase_id, "finished": m.FINISHED, "no": False})
    wide = df.pivot_table(index=["username", "id", "submitted_at"], columns="key", values="value").reset_index()
    for column, ascending in (("accuracy", False), ("error", True), ("coverage", False)):
        wide[f"rank_{column}"] = wide[column].rank(method="dense", ascending=ascending, na_option="bottom")
    wide["average_rank"] = wide[[f"rank_{c}" for c in COLUMNS]].mean(axis=1)
    wide = wide.sort_values(["rank_accuracy", "submitted_at", "id"]).reset_index(drop=True)
    wide["rank"] = wide["rank_accuracy"].astype(int)
    page = wide.head(PAGE_ROWS)
    mine = wide[wide["username"] == viewer]
    return pd.concat([page, mine]).drop_duplicates("id").to_dict("records")


# -- measuring ----------------------------------------------------------------------------------
def pct(values: list[float], q: float) -> Optional[float]:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(q * (len(ordered) - 1)))))]


def summary(times: list[float], failed: int = 0, **extra: Any) -> dict[str, Any]:
    return {"n": len(times), "p50_ms": _ms(pct(times, 0.5)), "p99_ms": _ms(pct(times, 0.99)),
            "failed": failed, **extra}


def _ms(value: Optional[float]) -> Optional[float]:
    return None if value is None else round(value * 1000, 1)


def timed(session: requests.Session, url: str, *, headers: Optional[dict[str, str]] = None,
          timeout: float = 120) -> tuple[float, int, requests.Response]:
    started = time.perf_counter()
    resp = session.get(url, headers=headers, timeout=timeout)
    return time.perf_counter() - started, resp.status_code, resp


def sequential(session: requests.Session, url: str, n: int, seconds: float, *, expect: int = 200,
               headers: Optional[dict[str, str]] = None) -> dict[str, Any]:
    times, failed = [], 0
    deadline = time.monotonic() + seconds
    for _ in range(n):
        took, status, _ = timed(session, url, headers=headers)
        times.append(took)
        failed += status != expect
        if time.monotonic() > deadline:
            break
    return summary(times, failed)


@contextlib.contextmanager
def health_poller(url: str, every: float = 0.05) -> Iterator[list[float]]:
    """Polls `url` every `every` seconds while the block runs; yields the list of latencies."""
    times: list[float] = []
    stop = threading.Event()

    def run() -> None:
        session = requests.Session()
        while not stop.is_set():
            try:
                took, status, _ = timed(session, url, timeout=60)
                times.append(took if status == 200 else 60.0)
            except requests.RequestException:
                times.append(60.0)  # a failed check counts as the longest wait
            stop.wait(every)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield times
    finally:
        stop.set()
        thread.join(90)


@contextlib.contextmanager
def load(url: str, clients: int, token: str) -> Iterator[dict[str, Any]]:
    """`clients` keep-alive clients requesting `url` back to back while the block runs.

    The clients are coroutines of one asyncio process of their own
    (`load_process`, aiohttp, one connection each): threads of this process
    would cost more CPU than the service answering them, and their GIL
    would delay this process's `/health` pollers.  Afterwards the state holds
    `times` (latencies), `failed`, `seconds`, `done` (the monotonic time each
    request ended, to count the requests of a window) and `pid`.
    """
    child = subprocess.Popen([sys.executable, __file__, "--load-process", url, str(clients)],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                             env={**os.environ, "BENCH_TOKEN": token}, text=True)
    state: dict[str, Any] = {"times": [], "failed": 0, "done": [], "pid": child.pid}
    assert child.stdout is not None and child.stdin is not None
    if child.stdout.readline().strip() != "started":
        raise RuntimeError("the load process did not start")
    try:
        yield state
    finally:
        out, _ = child.communicate("stop\n", timeout=300)
        result = json.loads(out)
        state.update(times=result["times"], failed=result["failed"], seconds=result["seconds"], done=result["done"])


def load_process(url: str, clients: int) -> None:
    """The clients of `load`: until a line arrives on stdin, then their figures as JSON on stdout."""
    # Imported here: only the load process needs them.
    import asyncio

    import aiohttp

    async def main() -> dict[str, Any]:
        headers = {"Authorization": f"token {os.environ['BENCH_TOKEN']}"}
        stop = asyncio.Event()
        times: list[float] = []
        done: list[float] = []
        failed = [0]

        async def client() -> None:
            async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1), headers=headers,
                                             timeout=aiohttp.ClientTimeout(total=120)) as session:
                while not stop.is_set():
                    started = time.perf_counter()
                    try:
                        async with session.get(url) as resp:
                            await resp.read()
                            ok = resp.status == 200
                    except (aiohttp.ClientError, asyncio.TimeoutError):
                        failed[0] += 1
                        continue
                    times.append(time.perf_counter() - started)
                    done.append(time.monotonic())
                    failed[0] += not ok

        loop = asyncio.get_running_loop()
        started = time.perf_counter()
        tasks = [asyncio.create_task(client()) for _ in range(clients)]
        print("started", flush=True)
        await loop.run_in_executor(None, sys.stdin.readline)
        stop.set()
        await asyncio.gather(*tasks)
        return {"times": times, "done": done, "failed": failed[0], "seconds": time.perf_counter() - started}

    print(json.dumps(asyncio.run(main())), flush=True)


def drain(health_url: str, limit: float = 600.0) -> float:
    """Seconds until `/health` answers within a second again (the service has worked off its backlog)."""
    started = time.perf_counter()
    session = requests.Session()
    while time.perf_counter() - started < limit:
        try:
            took, status, _ = timed(session, health_url, timeout=60)
        except requests.RequestException:
            continue
        if status == 200 and took < 1.0:
            break
    return round(time.perf_counter() - started, 1)


def service_pid(hub_pid: int) -> Optional[int]:
    """The competitions service the hub started (a descendant of the hub running hub_extension.service)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(ppid, []).append(int(entry.name))
    todo = [hub_pid]
    while todo:
        pid = todo.pop()
        for child in children.get(pid, []):
            try:
                args = (Path("/proc") / str(child) / "cmdline").read_bytes().split(b"\0")
            except OSError:
                continue
            if b"hub_extension.service" in args:  # `-m hub_extension.service`, not the proxy's module
                return child
            todo.append(child)
    return None


def children_of(pid: int) -> list[int]:
    """The processes whose parent is `pid`."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, IndexError, ValueError):
                continue
    return sorted(found)


def cmdline(pid: int) -> bytes:
    try:
        return (Path("/proc") / str(pid) / "cmdline").read_bytes()
    except OSError:
        return b""


def rss_peak_mb(pid: Optional[int]) -> Optional[float]:
    if pid is None:
        return None
    for line in (Path("/proc") / str(pid) / "status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    return None


def cpu_seconds(pid: int) -> float:
    """User and system CPU-seconds of one process so far (0 once it is gone)."""
    try:
        t = psutil.Process(pid).cpu_times()
    except psutil.Error:
        return 0.0
    return t.user + t.system


def database_backends(db_url: str) -> list[int]:
    """The PostgreSQL server's processes that serve the database of `db_url` (their titles name it)."""
    if not db_url.startswith("postgresql"):
        return []
    name = db_url.rsplit("/", 1)[1].split("?")[0].encode()
    return [p.pid for p in psutil.process_iter(["name"]) if p.info["name"] == "postgres"
            and name in cmdline(p.pid)]


class CpuMeter:
    """CPU-seconds of the processes that answer a request, by group, over a window (`start`, `stop`).

    Groups: the service's process, its spawned helpers (leaderboard readers,
    board builder), the hub's proxy, the hub, the database backends of this
    bench's database, and the clients (the load process and this bench's
    process, whose threads poll `/health`).  Processes that appear during the
    window count from zero.
    """

    def __init__(self, hub_pid: int, service: Optional[int], db_url: str):
        self.hub_pid, self.service, self.db_url = hub_pid, service, db_url

    def groups(self, clients: Iterable[int]) -> dict[str, list[int]]:
        hub_children = children_of(self.hub_pid)
        service = [self.service] if self.service else []
        return {
            "service": service,
            "readers": [c for c in children_of(self.service) if b"spawn_main" in cmdline(c)] if self.service else [],
            "proxy": [c for c in hub_children if b"configurable-http-proxy" in cmdline(c)
                      or b"configurable_http_proxy" in cmdline(c) or b"hub_extension.service.proxy" in cmdline(c)],
            "hub": [self.hub_pid],
            "database": database_backends(self.db_url),
            "client": [os.getpid(), *clients],
        }

    def read(self, clients: Iterable[int]) -> dict[tuple[str, int], float]:
        return {(group, pid): cpu_seconds(pid) for group, pids in self.groups(clients).items() for pid in pids}

    def start(self, *clients: int) -> dict[str, Any]:
        return {"clients": clients, "before": self.read(clients), "from": time.monotonic()}

    def stop(self, window: dict[str, Any]) -> dict[str, Any]:
        window["after"] = self.read(window["clients"])
        window["to"] = time.monotonic()
        return window

    @staticmethod
    def per_request(window: dict[str, Any], n: int) -> dict[str, Any]:
        """CPU-seconds by group over the window and per 1000 of its `n` requests (`total`: all but the clients)."""
        used: dict[str, float] = {}
        for (group, pid), value in window["after"].items():
            used[group] = used.get(group, 0.0) + max(0.0, value - window["before"].get((group, pid), 0.0))
        per: dict[str, Optional[float]] = {g: round(1000 * v / n, 3) if n else None for g, v in used.items()}
        per["total"] = round(1000 * sum(v for g, v in used.items() if g != "client") / n, 3) if n else None
        # CPU-seconds per 1000 requests: the same number as milliseconds of CPU per request.
        return {"requests": n, "seconds": round(window["to"] - window["from"], 2),
                "cpu_s": {g: round(v, 3) for g, v in used.items()}, "cpu_s_per_1000": per}


def ended_within(done: list[float], window: dict[str, Any]) -> int:
    """How many of the requests that ended at the monotonic times `done` ended within the window."""
    return sum(window["from"] <= t <= window["to"] for t in done)


def on_board(platform: Platform, sid: int) -> bool:
    with platform.db.engine.connect() as conn:
        return conn.execute(select(m.BoardRow.position).where(m.BoardRow.submission_id == sid).limit(1)).first() \
            is not None


def submit_to_finished(platform: Platform, slug: str, upload: Path, n: int, wait: float = 180.0,
                       boarded: Optional[list[float]] = None) -> list[float]:
    """Seconds from `submit` to Finished in the database, for `n` results submissions of the viewer.

    A submission not seen Finished within `wait` seconds counts as `inf`, and
    the next ones are not made.  `boarded` gets the seconds from `submit` until
    the submission is on the board (its maintained rows).
    """
    times: list[float] = []
    for _ in range(n):
        started = time.perf_counter()
        sid = platform.submit(slug, upload, username=VIEWER, actor=LOCAL_ADMIN)
        deadline = time.monotonic() + wait
        while True:
            # The database says when the dispatcher recorded it (the API may be too busy to answer).
            status = platform.submission(sid)["status"]
            if status in m.TERMINAL_STATUSES:
                break
            if time.monotonic() > deadline:
                return times + [float("inf")]
            time.sleep(0.05)
        if status != m.FINISHED:
            raise RuntimeError(f"submission {sid} ended {status}")
        times.append(time.perf_counter() - started)
        if boarded is not None:
            while not on_board(platform, sid) and time.monotonic() < deadline:
                time.sleep(0.05)
            boarded.append(time.perf_counter() - started if on_board(platform, sid) else float("inf"))
    return times


# -- one size -----------------------------------------------------------------------------------
@contextlib.contextmanager
def database(kind: str, tmp: Path) -> Iterator[str]:
    """A fresh database: a SQLite file in `tmp`, or a new database on the PostgreSQL server the tests use."""
    if kind == "sqlite":
        yield f"sqlite:///{tmp / 'compete.sqlite'}"
        return
    server = os.environ.get("COMPETE_TEST_PG_URL") or subprocess.run(
        ["bash", str(ROOT / "scripts" / "ensure_postgres.sh")], capture_output=True, text=True, check=True,
    ).stdout.strip()
    admin = create_engine(normalize_url(server), isolation_level="AUTOCOMMIT")
    name = f"bench_scale_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield f"{server.rsplit('/', 1)[0]}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def measure_size(n: int, kind: str, args: argparse.Namespace) -> dict[str, Any]:
    # Imported here: the test support (the hub's start) is needed only once the bench runs.
    from tests.support.hub import start_hub

    tmp = Path(tempfile.mkdtemp(prefix=f"compete-bench-scale-{n}-"))
    res: dict[str, Any] = {"submissions": n, "participants": n // PER_PARTICIPANT, "database": kind,
                           "proxy": args.proxy or "the embedded default's: configurable-http-proxy (PyPI) by hub_extension.service.proxy"}
    try:
        with database(kind, tmp) as db_url:
            fill_home = tmp / "fill-home"
            platform = Platform(home=str(fill_home), db_url=db_url)
            try:
                upload = predictions(tmp)
                slug, _ = platform.create_competition(make_bundle(tmp), LOCAL_ADMIN)
                res["fill"] = fill(platform, slug, upload, n)
                with platform.db.session() as s:
                    phase_id = s.scalar(select(m.Phase.id).join(m.Competition).where(m.Competition.slug == slug))
                print(f"[{n}] filled: {res['fill']}", flush=True)
                res["baseline"] = baseline(platform.db.engine, phase_id, args.requests, db_url)
                print(f"  baseline (SQL + pandas): {res['baseline']}", flush=True)
            finally:
                platform.close()
            (tmp / "hub").mkdir()
            # --proxy: another configurable-http-proxy (the npm one production uses) in place of the embedded one.
            proxy = (f"c.ConfigurableHTTPProxy.command = [{args.proxy!r}, '--proxy-timeout', '3600000']"
                     if args.proxy else "")
            with start_hub(tmp / "hub", {"COMPETE_LAB_DOCKER": "0", "COMPETE_DB_URL": db_url},
                           extra_config=proxy) as hub:
                # The store's files (programs, data, the predictions zip) go where the service reads them.
                shutil.copytree(fill_home, hub.home, dirs_exist_ok=True,
                                ignore=shutil.ignore_patterns("*.sqlite*", "service_cookie_secret"))
                res.update(measure_service(hub, slug, db_url, upload, n // PER_PARTICIPANT, args))
        res["ratios"] = ratios(res)
        res["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return res


def baseline(engine, phase_id: int, n: int, db_url: str) -> dict[str, Any]:
    """Latency of the SQL-plus-pandas ranking, and its CPU per ranking (this process and its database backend)."""
    times = []
    rows: list[dict[str, Any]] = []
    baseline_board(engine, phase_id)  # the imports (pandas) and the connection aside
    cpu_before = time.process_time()
    db_before = {pid: cpu_seconds(pid) for pid in database_backends(db_url)}
    for _ in range(max(3, min(n, 10))):
        started = time.perf_counter()
        rows = baseline_board(engine, phase_id)
        times.append(time.perf_counter() - started)
    cpu = time.process_time() - cpu_before
    cpu += sum(max(0.0, cpu_seconds(pid) - db_before.get(pid, 0.0)) for pid in database_backends(db_url))
    return summary(times, rows=len(rows), cpu_ms=round(1000 * cpu / len(times), 2))


def measure_service(hub, slug: str, db_url: str, upload: Path, participants: int,
                    args: argparse.Namespace) -> dict[str, Any]:
    hub.create_user(VIEWER)
    token = hub.token_for(VIEWER)
    base = hub.service_url.rstrip("/")
    api = f"{base}/api/v1"
    board_url = f"{api}/competitions/{slug}/leaderboard?limit={PAGE_ROWS}"
    health_url = f"{api}/health"

    def session() -> requests.Session:
        s = requests.Session()
        s.headers["Authorization"] = f"token {token}"
        return s

    out: dict[str, Any] = {}
    client = session()
    first = client.get(board_url, timeout=300)
    first.raise_for_status()
    body = first.json()
    out["rows_answered"] = len(body.get("rows", []))
    # A page: at most 50 rows and the viewer's own, out of one row per participant.
    out["paged"] = out["rows_answered"] <= PAGE_ROWS + 1 < participants
    seconds = args.seconds
    out["leaderboard_1"] = sequential(client, board_url, args.requests, seconds)
    print(f"  leaderboard, 1 client: {out['leaderboard_1']}", flush=True)
    # The service's own address (not the proxy's): how its loop answers, apart from the proxy's queue.
    own = (hub.api("GET", "services/competitions").json().get("url") or "").rstrip("/")
    direct_health_url = f"{own}{urlparse(health_url).path}" if own else None
    meter = CpuMeter(hub.process.pid, service_pid(hub.process.pid), db_url)
    with health_poller(health_url) as health, \
            (health_poller(direct_health_url) if direct_health_url else contextlib.nullcontext([])) as direct:
        with load(board_url, args.clients, token) as state:
            time.sleep(min(1.0, seconds / 10))  # the clients' connections made
            polled = len(health) + len(direct)
            window = meter.start(state["pid"])
            time.sleep(seconds)
            meter.stop(window)
            # The pollers' few requests count too: they cross the same processes.
            polled = len(health) + len(direct) - polled
    out["leaderboard_20"] = summary(state["times"], state["failed"], clients=args.clients,
                                    requests_per_s=round(len(state["times"]) / state["seconds"], 2))
    out["cpu"] = {"leaderboard_20": meter.per_request(window, ended_within(state["done"], window) + polled)}
    # The same clients on /health: what the hub, its proxy and this client do for the cheapest request.
    with load(health_url, args.clients, token) as floor:
        time.sleep(min(1.0, seconds / 10))
        window = meter.start(floor["pid"])
        time.sleep(min(seconds, 10.0))
        meter.stop(window)
    out["health_20"] = summary(floor["times"], floor["failed"], clients=args.clients,
                               requests_per_s=round(len(floor["times"]) / floor["seconds"], 2))
    out["cpu"]["health_20"] = meter.per_request(window, ended_within(floor["done"], window))
    out["health_under_load"] = summary(health, sum(t >= 60.0 for t in health))
    out["health_direct_under_load"] = summary(direct, sum(t >= 60.0 for t in direct))
    # Requests the clients gave up on are still worked through by the service: let it drain first.
    out["drain_s"] = drain(health_url)
    print(f"  leaderboard, {args.clients} clients: {out['leaderboard_20']}; /health: {out['health_under_load']}",
          flush=True)
    print(f"  /health alone, {args.clients} clients: {out['health_20']}; /health at the service's own address "
          f"under the leaderboard load: {out['health_direct_under_load']}", flush=True)
    print(f"  CPU-seconds per 1000 requests: leaderboard {out['cpu']['leaderboard_20']['cpu_s_per_1000']}; "
          f"/health {out['cpu']['health_20']['cpu_s_per_1000']}", flush=True)
    out["page"] = sequential(client, f"{base}/competitions/{slug}/leaderboard", max(3, args.requests // 4), seconds)
    out["csv"] = sequential(client, f"{api}/competitions/{slug}/leaderboard.csv", max(3, args.requests // 4), seconds)
    etag = client.get(board_url, timeout=300).headers.get("ETag")
    out["not_modified"] = (sequential(client, board_url, args.requests, seconds, expect=304,
                                      headers={"If-None-Match": etag}) if etag else {"etag": None})
    print(f"  page {out['page']}; csv {out['csv']}; 304 {out['not_modified']}", flush=True)

    platform = Platform(home=str(hub.home), db_url=db_url)
    try:
        submit_to_finished(platform, slug, upload, 1)  # the queue's first run (imports) aside
        idle_board: list[float] = []
        busy_board: list[float] = []
        idle = submit_to_finished(platform, slug, upload, args.submissions, boarded=idle_board)
        with load(board_url, args.clients, token):
            busy = submit_to_finished(platform, slug, upload, args.submissions, boarded=busy_board)
        drain(health_url)
    finally:
        platform.close()
    idle_s, busy_s = statistics.median(idle), statistics.median(busy)
    out["submit_to_finished"] = {"n": args.submissions, "idle_s": round(idle_s, 3),
                                 # None: not seen Finished within 180 s under the load.
                                 "under_load_s": round(busy_s, 3) if busy_s != float("inf") else None,
                                 "ratio": round(busy_s / idle_s, 2) if busy_s != float("inf") else None}
    out["submit_to_board"] = {"idle_s": round(statistics.median(idle_board), 3),
                              "under_load_s": round(statistics.median(busy_board), 3)}
    print(f"  submit → Finished: {out['submit_to_finished']}; → on the board: {out['submit_to_board']}",
          flush=True)
    pid = service_pid(hub.process.pid)
    out["service_rss_peak_mb"] = rss_peak_mb(pid)
    # The service's leaderboard reader and board builder processes (its spawned children), each and in all.
    helpers = [rss_peak_mb(child) for child in children_of(pid) if b"spawn_main" in cmdline(child)] if pid else []
    out["service_helpers_rss_peak_mb"] = {
        "each": helpers, "total_with_service": round(sum(filter(None, helpers)) + (out["service_rss_peak_mb"] or 0), 1)}
    return out


def ratios(res: dict[str, Any]) -> dict[str, Optional[float]]:
    base = res["baseline"]["p50_ms"]

    def r(value: Optional[float]) -> Optional[float]:
        return None if value is None or not base else round(value / base, 2)

    return {
        "leaderboard_1_p50": r(res["leaderboard_1"]["p50_ms"]),
        "leaderboard_1_p99": r(res["leaderboard_1"]["p99_ms"]),
        "leaderboard_20_p50": r(res["leaderboard_20"]["p50_ms"]),
        "leaderboard_20_p99": r(res["leaderboard_20"]["p99_ms"]),
        "page_p50": r(res["page"]["p50_ms"]),
        "csv_p50": r(res["csv"]["p50_ms"]),
        "not_modified_p50": r(res["not_modified"].get("p50_ms")),
        # CPU per leaderboard request (every process but the clients) against the baseline's per ranking.
        "leaderboard_20_cpu": cpu_ratio(res),
    }


def cpu_ratio(res: dict[str, Any]) -> Optional[float]:
    per = (res.get("cpu") or {}).get("leaderboard_20", {}).get("cpu_s_per_1000", {}).get("total")
    base = res["baseline"].get("cpu_ms")
    return None if per is None or not base else round(per / base, 3)


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000,10000,100000",
                        help="submission counts, comma-separated (a tenth as many participants)")
    parser.add_argument("--database", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--requests", type=int, default=40, help="requests per one-client measure (at most)")
    parser.add_argument("--clients", type=int, default=20, help="concurrent clients of the load")
    parser.add_argument("--seconds", type=float, default=20.0,
                        help="seconds of the concurrent load, and the most a one-client measure takes")
    parser.add_argument("--submissions", type=int, default=3, help="timed submissions, idle and under load")
    parser.add_argument("--out", default=None, help="results file (default bench/scale-<database>.json)")
    parser.add_argument("--proxy", default=None,
                        help="the hub's proxy command instead of the embedded default's (the PyPI "
                        "configurable-http-proxy), e.g. the npm configurable-http-proxy production uses")
    parser.add_argument("--load-process", nargs=2, metavar=("URL", "CLIENTS"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.load_process:
        load_process(args.load_process[0], int(args.load_process[1]))
        return 0
    sizes = [int(s) for s in args.sizes.split(",") if s.strip()]
    if any(s % PER_PARTICIPANT for s in sizes):
        parser.error(f"sizes are multiples of {PER_PARTICIPANT}")
    out = Path(args.out or ROOT / "bench" / f"scale-{args.database}.json")
    results: dict[str, Any] = {
        "command": "python bench/scale.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0],
                    "load_average_at_start": [round(x, 2) for x in os.getloadavg()]},
        "commit": subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True,
                                 text=True).stdout.strip(),
        "sizes": [],
    }
    for n in sizes:
        print(f"[{n}] submissions, {n // PER_PARTICIPANT} participants, {args.database}", flush=True)
        results["sizes"].append(measure_size(n, args.database, args))
        out.write_text(json.dumps(results, indent=2, default=str) + "\n")
    for res in results["sizes"]:
        print(f"{res['submissions']:>7}: leaderboard p50 {res['leaderboard_1']['p50_ms']} ms "
              f"(×{res['ratios']['leaderboard_1_p50']} the baseline {res['baseline']['p50_ms']} ms), "
              f"20 clients p99 {res['leaderboard_20']['p99_ms']} ms, {res['leaderboard_20']['requests_per_s']} req/s, "
              f"/health p99 {res['health_under_load']['p99_ms']} ms, RSS {res['service_rss_peak_mb']} MB, "
              f"CPU {res['cpu']['leaderboard_20']['cpu_s_per_1000']['total']} ms per request "
              f"(×{res['ratios']['leaderboard_20_cpu']} the baseline's {res['baseline']['cpu_ms']} ms)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
