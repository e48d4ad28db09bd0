"""Organizer queues against the default queue, measured in the same run.

    python bench/queues.py [--n 20] [--throughput 60] [--out bench/queues.json]

Both queues run the same results submissions on the process executor (so
that the figures compare the queues, not the executors): the default queue
is the platform's own queue process; the organizer queue is a scheduler process
with its own CA, TLS everywhere, one `compete worker` process attached, and
datasets and results carried with each run.  Reported: submit → Finished
latency (medians), throughput, and how long a run takes to come back after
its worker is killed (the retry on a second worker).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub_extension import models as m  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402

TEMPLATE = ROOT / "templates" / "bundles" / "results"


def make_bundle(tmp: Path, title: str, sleep_scorer: bool = False) -> Path:
    target = tmp / title.replace(" ", "-")
    shutil.copytree(TEMPLATE, target)
    yaml = target / "competition.yaml"
    text = yaml.read_text().replace("title: Animals (results)", f"title: {title}")
    yaml.write_text(text.replace("max_submissions: 100", "max_submissions: 100000")
                    .replace("max_submissions_per_day: 5", "max_submissions_per_day: 100000"))
    if sleep_scorer:
        score = target / "scoring_program" / "score.py"
        score.write_text(score.read_text().replace(
            "import csv\n", "import csv\nimport time\ntime.sleep(3)\n", 1))
    return target


def predictions(tmp: Path) -> Path:
    path = tmp / "predictions.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.write(TEMPLATE / "sample_submission" / "predictions.csv", "predictions.csv")
    return path


class Bench:
    def __init__(self, home: Path):
        self.platform = Platform(home=str(home))
        self.platform.config.executor = "process"
        self.users = 0
        self.home = home

    def submit(self, slug: str, path: Path) -> int:
        self.users += 1
        user = f"u{self.users}"
        self.platform.register(slug, user, LOCAL_ADMIN)
        return self.platform.submit(slug, path, username=user, actor=LOCAL_ADMIN)

    def worker(self, queue: str, name: str, nthreads: int = 2) -> subprocess.Popen:
        creds = self.home / "queues" / queue / "worker-credentials.json"
        return subprocess.Popen(
            [sys.executable, "-m", "hub_extension.cli", "--home", str(self.home), "worker", "--credentials",
             str(creds), "--name", name, "--nthreads", str(nthreads), "--worker-executor", "process"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def latency(bench: Bench, dispatcher, slug: str, path: Path, n: int) -> list[float]:
    times = []
    for _ in range(n):
        started = time.perf_counter()
        sid = bench.submit(slug, path)
        dispatcher.dispatch(sid)
        info = dispatcher.wait(sid, 120)
        assert info["status"] == m.FINISHED, info
        times.append(time.perf_counter() - started)
    return times


def throughput(bench: Bench, dispatcher, slug: str, path: Path, n: int) -> float:
    started = time.perf_counter()
    sids = [bench.submit(slug, path) for _ in range(n)]
    for sid in sids:
        dispatcher.dispatch(sid)
    for sid in sids:
        assert dispatcher.wait(sid, 600)["status"] == m.FINISHED
    return n / (time.perf_counter() - started)


def retry_after_kill(bench: Bench, dispatcher, slug: str, path: Path, workers: dict[str, subprocess.Popen]) -> float:
    """Seconds from SIGKILL of the worker running a 3-second run to that run finishing elsewhere."""
    sid = bench.submit(slug, path)
    dispatcher.dispatch(sid)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        info = bench.platform.submission(sid)
        if info["status"] == m.SCORING and info["worker"] in workers:
            break
        time.sleep(0.02)
    victim = workers.pop(info["worker"])
    victim.send_signal(signal.SIGKILL)
    killed = time.perf_counter()
    victim.wait()
    info = dispatcher.wait(sid, 120)
    assert info["status"] == m.FINISHED, info
    return time.perf_counter() - killed


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--throughput", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "bench" / "queues.json"))
    args = parser.parse_args(argv)

    from hub_extension.dispatch import Dispatcher
    from hub_extension.queues import SchedulerSupervisor

    tmp = Path(tempfile.mkdtemp(prefix="compete-bench-queues-"))
    bench = Bench(tmp / "home")
    workers: dict[str, subprocess.Popen] = {}
    dispatcher = Dispatcher(bench.platform, n_workers=1, threads_per_worker=2)
    try:
        path = predictions(tmp)
        default_slug, _ = bench.platform.create_competition(make_bundle(tmp, "On Default"), LOCAL_ADMIN)
        lab_slug, _ = bench.platform.create_competition(make_bundle(tmp, "On Lab"), LOCAL_ADMIN)
        slow_slug, _ = bench.platform.create_competition(make_bundle(tmp, "Slow On Lab", True), LOCAL_ADMIN)
        bench.platform.create_queue("lab", competition=lab_slug)
        with bench.platform.db.session() as s:
            s.query(m.Competition).filter(m.Competition.slug == slow_slug).one().queue = "lab"
        workers["lab-1"] = bench.worker("lab", "lab-1")
        while not bench.platform.wait_for_workers("lab", 1, timeout=1):
            dispatcher.tick()
        # Warm both queues once (imports on the workers).
        latency(bench, dispatcher, default_slug, path, 2)
        latency(bench, dispatcher, lab_slug, path, 2)
        res = {"n": args.n}
        default_lat = latency(bench, dispatcher, default_slug, path, args.n)
        lab_lat = latency(bench, dispatcher, lab_slug, path, args.n)
        res["latency_default_s"] = statistics.median(default_lat)
        res["latency_lab_s"] = statistics.median(lab_lat)
        res["latency_ratio"] = res["latency_lab_s"] / res["latency_default_s"]
        res["throughput_default_per_s"] = throughput(bench, dispatcher, default_slug, path, args.throughput)
        res["throughput_lab_per_s"] = throughput(bench, dispatcher, lab_slug, path, args.throughput)
        res["throughput_ratio"] = res["throughput_lab_per_s"] / res["throughput_default_per_s"]
        workers["lab-2"] = bench.worker("lab", "lab-2")
        while len(bench.platform.wait_for_workers("lab", 2, timeout=1)) < 2:
            dispatcher.tick()
        res["retry_after_kill_s"] = retry_after_kill(bench, dispatcher, slow_slug, path, workers)
        res["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    finally:
        for proc in workers.values():
            proc.kill()
        dispatcher.close()
        SchedulerSupervisor(bench.platform).stop("lab")
        bench.platform.close()
        shutil.rmtree(tmp, ignore_errors=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(f"submit → Finished, median of {args.n}: default {res['latency_default_s']:.3f} s, "
          f"organizer queue {res['latency_lab_s']:.3f} s (ratio {res['latency_ratio']:.2f})")
    print(f"throughput: default {res['throughput_default_per_s']:.1f}/s, organizer queue "
          f"{res['throughput_lab_per_s']:.1f}/s (ratio {res['throughput_ratio']:.2f})")
    print(f"a 3 s run whose worker is killed finishes on another worker {res['retry_after_kill_s']:.1f} s after the kill")
    return 0


if __name__ == "__main__":
    sys.exit(main())
