"""Organizer queues against the default queue, measured in the same run.

    python bench/queues.py [--n 20] [--throughput 60] [--out bench/queues.json] [--data-gb N [--data-only]]

Both queues run the same results submissions on the process executor (so
that the figures compare the queues, not the executors): the default queue
is the platform's own queue process; the organizer queue is a scheduler process
with its own CA, TLS everywhere, one `compete worker` process attached, and
datasets and results carried with each run.  Reported: submit → Finished
latency (medians), throughput, and how long a run takes to come back after
its worker is killed (the retry on a second worker).

`--data-gb N` adds a run whose task carries an N GB dataset by reference
(`--data-only`: that alone, written as the `data_by_reference` entry of an
existing `--out` file).  The dataset is a ZIP archive stored, not
compressed, holding N GB of random bytes (and the template's truth.csv); it is
put in the platform's store as any dataset is (its SHA-256 is its key) and
made the reference data of a competition of the results template on an
organizer queue of its own, by setting the task's key in the database (what
importing a bundle with that archive as its reference data does, without
zipping N GB at import).  The service's per-run link (`public_url`) serves it
from this process; one `compete worker` (process executor, its own temporary
folder, so its own dataset cache) runs two submissions one after the other.
Reported: the queue scheduler process's RSS before, at its peak during and
after the runs; each run's submit → Finished time; the bytes the link served
and the time it took for each run (the second must be 0: a cache hit); the
worker's dataset cache on disk (the archive and its unpacked folder); this
process's RSS (the service streamed the file).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub_extension import models as m  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402

TEMPLATE = ROOT / "templates" / "bundles" / "results"


def make_bundle(tmp: Path, title: str, sleep_scorer: bool = False) -> Path:
    target = tmp / title.replace(" ", "-")
    shutil.copytree(TEMPLATE, target)
    yaml = target / "competition.yaml"
    text = yaml.read_text().replace("title: Animals (results)", f"title: {title}\npublished: true")
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


# -- a large dataset by reference ---------------------------------------------------------------
def write_dataset(path: Path, size: int) -> None:
    """A ZIP archive, stored (not compressed), of the template's truth.csv and `size` random bytes."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED, allowZip64=True) as zf:
        zf.write(TEMPLATE / "reference_data" / "truth.csv", "truth.csv")
        with zf.open("noise.bin", "w", force_zip64=True) as out:
            left = size
            while left > 0:
                block = os.urandom(min(16 << 20, left))
                out.write(block)
                left -= len(block)


class LinkLog(logging.Handler):
    """What the service's per-run links served: (key prefix, bytes, seconds) of each request for a dataset."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.requests: list[tuple[str, int, float]] = []
        self.ranges: dict[int, tuple[str, int]] = {}

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == "compete.run_data" and record.getMessage().startswith("dataset "):
            start, end = int(record.args[2]), int(record.args[3])
            self.ranges[len(self.requests)] = (str(record.args[0]), end - start + 1)
        elif record.name == "tornado.access" and "/data/" in record.getMessage():
            status, _summary, ms = record.args
            key, sent = self.ranges.pop(len(self.requests), ("", 0))
            self.requests.append((key, sent if int(status) in (200, 206) else 0, float(ms) / 1000))


class RssPeak:
    """The peak RSS of a process, sampled every 0.1 s in a thread."""

    def __init__(self, pid: int):
        self.proc = psutil.Process(pid)
        self.peak = self.proc.memory_info().rss
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            self.peak = max(self.peak, self.proc.memory_info().rss)

    def stop(self) -> int:
        self._stop.set()
        self._thread.join()
        return self.peak


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file() and not p.is_symlink())


def data_by_reference(bench: Bench, dispatcher, tmp: Path, path: Path, gb: float) -> dict:
    """Two runs of an organizer queue whose task has a `gb` GB dataset, fetched by the worker by reference."""
    # Imported here: the queues' supervisor as in main(), and the service's test harness (which
    # loads pytest), only for this measure.
    from hub_extension.queues import SchedulerSupervisor
    from tests.support.service_harness import start_server

    size = int(gb * 1e9)
    links = LinkLog()
    for name in ("compete.run_data", "tornado.access"):
        logging.getLogger(name).addHandler(links)
        logging.getLogger(name).setLevel(logging.INFO)
        logging.getLogger(name).propagate = False
    server = start_server(bench.platform)
    worker = None
    try:
        bench.platform.config.public_url = server.base
        slug, _ = bench.platform.create_competition(make_bundle(tmp, "Big Data"), LOCAL_ADMIN)
        started = time.perf_counter()
        archive = tmp / "big-dataset.zip"
        write_dataset(archive, size)
        key = bench.platform.store.put_dataset_file(archive)
        archive.unlink()
        stored = bench.platform.store.dataset_size(key)
        with bench.platform.db.session() as s:
            s.add(m.Dataset(key=key, kind="reference_data", name="big-dataset.zip", size=stored,
                            created_by=LOCAL_ADMIN.username))
            s.flush()
            (task,) = s.query(m.Task).join(m.Competition).filter(m.Competition.slug == slug).all()
            task.reference_data_key = key
        made_s = time.perf_counter() - started
        bench.platform.create_queue("data", competition=slug)

        worker_tmp = tmp / "worker-tmp"
        worker_tmp.mkdir()
        creds = bench.home / "queues" / "data" / "worker-credentials.json"
        with open(tmp / "worker-data.log", "wb") as log_file:
            worker = subprocess.Popen(
                [sys.executable, "-m", "hub_extension.cli", "--home", str(bench.home), "worker", "--credentials",
                 str(creds), "--name", "data-1", "--nthreads", "1", "--worker-executor", "process"],
                stdout=log_file, stderr=subprocess.STDOUT, env={**os.environ, "TMPDIR": str(worker_tmp)})
        while not bench.platform.wait_for_workers("data", 1, timeout=1):
            dispatcher.tick()
        scheduler_pid = SchedulerSupervisor(bench.platform).pid("data")
        scheduler = psutil.Process(scheduler_pid)
        service = psutil.Process(os.getpid())
        res = {"dataset_bytes": stored, "dataset_made_s": made_s,
               "scheduler_rss_before": scheduler.memory_info().rss, "bench_rss_before": service.memory_info().rss}
        peak = RssPeak(scheduler_pid)
        runs = []
        for label in ("first", "second"):
            served_before = len(links.requests)
            run_started = time.perf_counter()
            sid = bench.submit(slug, path)
            dispatcher.dispatch(sid)
            info = dispatcher.wait(sid, 1800)
            elapsed = time.perf_counter() - run_started
            assert info["status"] == m.FINISHED, info
            assert info["scores"], info
            served = links.requests[served_before:]
            big = [(b, s) for k, b, s in served if k == key[:12]]
            runs.append({"run": label, "submit_to_finished_s": elapsed,
                         "link_requests": len(served), "bytes_fetched": sum(b for _, b, _ in served),
                         "dataset_requests": len(big), "dataset_bytes_fetched": sum(b for b, _ in big),
                         "dataset_fetch_s": sum(s for _, s in big),
                         "scheduler_rss_after": scheduler.memory_info().rss})
        res["scheduler_rss_peak"] = peak.stop()
        res["runs"] = runs
        cache = worker_tmp / "jupyter-compete" / "datasets"
        blob = cache / "blobs" / key
        res["worker_cache_bytes"] = folder_bytes(cache)
        res["worker_cache_archive_bytes"] = blob.stat().st_size if blob.is_file() else 0
        res["worker_rss"] = psutil.Process(worker.pid).memory_info().rss
        res["bench_rss_after"] = service.memory_info().rss
        res["scheduler_rss_growth"] = res["scheduler_rss_peak"] - res["scheduler_rss_before"]
        res["second_run_cache_hit"] = runs[1]["dataset_bytes_fetched"] == 0 and runs[1]["dataset_requests"] == 0
        return res
    finally:
        for name in ("compete.run_data", "tornado.access"):
            logging.getLogger(name).removeHandler(links)
        if worker is not None:
            worker.kill()
            worker.wait()
        server.stop()


def print_data(res: dict) -> None:
    mb = 1 << 20
    first, second = res["runs"]
    print(f"organizer-queue run with a {res['dataset_bytes'] / 1e9:.2f} GB dataset by reference:")
    print(f"  queue scheduler RSS {res['scheduler_rss_before'] / mb:.1f} MB before, "
          f"{res['scheduler_rss_peak'] / mb:.1f} MB at its peak during both runs "
          f"(+{res['scheduler_rss_growth'] / mb:.1f} MB)")
    for run in (first, second):
        print(f"  {run['run']} run: submit → Finished {run['submit_to_finished_s']:.1f} s; the dataset: "
              f"{run['dataset_requests']} link request(s), {run['dataset_bytes_fetched']} bytes fetched in "
              f"{run['dataset_fetch_s']:.1f} s (all of the run's links: {run['bytes_fetched']} bytes)")
    print(f"  second run a cache hit: {res['second_run_cache_hit']}; worker's dataset cache "
          f"{res['worker_cache_bytes'] / 1e9:.2f} GB on disk (archive {res['worker_cache_archive_bytes'] / 1e9:.2f} GB "
          f"and its unpacked folder); worker RSS {res['worker_rss'] / mb:.0f} MB")
    print(f"  this process (the service streaming the file) RSS {res['bench_rss_before'] / mb:.0f} MB before, "
          f"{res['bench_rss_after'] / mb:.0f} MB after")


def compare_queues(bench: Bench, dispatcher, tmp: Path, path: Path, workers: dict[str, subprocess.Popen],
                   args: argparse.Namespace) -> dict:
    """Latency, throughput and the retry after a kill, on the default queue and an organizer queue."""
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
    res = {}
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
    return res


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=20)
    parser.add_argument("--throughput", type=int, default=60)
    parser.add_argument("--out", default=str(ROOT / "bench" / "queues.json"))
    parser.add_argument("--data-gb", type=float, default=0.0,
                        help="also run an organizer-queue task with a dataset of this many GB, by reference")
    parser.add_argument("--data-only", action="store_true", help="with --data-gb: only that measure")
    args = parser.parse_args(argv)

    from hub_extension.dispatch import Dispatcher
    from hub_extension.queues import SchedulerSupervisor

    tmp = Path(tempfile.mkdtemp(prefix="compete-bench-queues-"))
    bench = Bench(tmp / "home")
    workers: dict[str, subprocess.Popen] = {}
    dispatcher = Dispatcher(bench.platform, n_workers=1, threads_per_worker=2)
    try:
        path = predictions(tmp)
        res = {"n": args.n}
        if not args.data_only:
            res.update(compare_queues(bench, dispatcher, tmp, path, workers, args))
        if args.data_gb:
            res["data_by_reference"] = data_by_reference(bench, dispatcher, tmp, path, args.data_gb)
        res["machine"] = {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    finally:
        for proc in workers.values():
            proc.kill()
        dispatcher.close()
        for queue in ("lab", "data"):
            SchedulerSupervisor(bench.platform).stop(queue)
        bench.platform.close()
        shutil.rmtree(tmp, ignore_errors=True)
    res["machine"]["commit"] = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"],
                                              capture_output=True, text=True).stdout.strip()
    out = Path(args.out)
    if args.data_only and out.is_file():
        # The queues' comparison of an earlier run stays; this run's data measure replaces its own.
        kept = json.loads(out.read_text())
        kept["data_by_reference"] = {**res["data_by_reference"], "machine": res["machine"]}
        out.write_text(json.dumps(kept, indent=2) + "\n")
    else:
        out.write_text(json.dumps(res, indent=2) + "\n")
    if "latency_default_s" in res:
        print(f"submit → Finished, median of {args.n}: default {res['latency_default_s']:.3f} s, "
              f"organizer queue {res['latency_lab_s']:.3f} s (ratio {res['latency_ratio']:.2f})")
        print(f"throughput: default {res['throughput_default_per_s']:.1f}/s, organizer queue "
              f"{res['throughput_lab_per_s']:.1f}/s (ratio {res['throughput_ratio']:.2f})")
        print(f"a 3 s run whose worker is killed finishes on another worker {res['retry_after_kill_s']:.1f} s "
              "after the kill")
    if "data_by_reference" in res:
        print_data(res["data_by_reference"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
