"""Memory of an organizer queue's scheduler over many runs with large outputs.

    python bench/queue_results.py [--n 100] [--mb 50] [--out bench/queue_results.json]

An organizer queue (its own scheduler process, TLS, one `compete worker`
process on the process executor) runs `--n` results submissions one after the
other; each one's scoring program leaves `--mb` MB of detailed results, which
travel back inline in the result event (no shared store).  After each run the
platform has recorded the result (the file is checked on disk, then removed so
the disk does not fill) and the scheduler process's resident memory (VmRSS) is
read.  The baseline is the RSS after the first run, in the same process of the
same run; reported: RSS after every run, the peak, the growth over the
baseline, and the bytes of result files still held in the scheduler's event
log at the end.
"""
from __future__ import annotations

import argparse
import json
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from hub_extension import models as m  # noqa: E402
from hub_extension.app import LOCAL_ADMIN, Platform  # noqa: E402
from tests.support.queues import big_output_bundle, predictions_zip  # noqa: E402

QUEUE = "bench-results"


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def log_payload_bytes(link) -> int:
    from hub_extension.contract import RESULT_TOPIC
    from hub_extension.queue_scheduler import payload_bytes

    return sum(payload_bytes(e) for e in link.client.get_events(RESULT_TOPIC))

def run(n: int, mb: float, tmp: Path) -> dict:
    from hub_extension.dispatch import Dispatcher
    from hub_extension.queues import SchedulerSupervisor

    home = tmp / "home"
    platform = Platform(home=str(home))
    platform.config.executor = "process"
    size = int(mb * 1024 * 1024)
    slug, _ = platform.create_competition(big_output_bundle(tmp / "bundle", "Large Outputs", size), LOCAL_ADMIN)
    platform.create_queue(QUEUE, LOCAL_ADMIN, competition=slug)
    dispatcher = Dispatcher(platform, n_workers=1, threads_per_worker=1)
    worker_log = open(tmp / "worker.log", "ab")
    worker = subprocess.Popen(
        [sys.executable, "-m", "hub_extension.cli", "--home", str(home), "--executor", "process", "worker",
         "--credentials", str(home / "queues" / QUEUE / "worker-credentials.json"), "--name", "bench-box",
         "--nthreads", "1", "--worker-executor", "process", "--local-directory", str(tmp / "scratch")],
        stdout=worker_log, stderr=subprocess.STDOUT,
    )
    zip_path = predictions_zip(tmp, "predictions.zip")
    samples: list[dict] = []
    try:
        link = dispatcher.link(QUEUE)
        deadline = time.monotonic() + 60
        while not link.client.scheduler_info(n_workers=-1)["workers"]:
            if time.monotonic() > deadline:
                raise RuntimeError("the worker did not attach; see " + str(tmp / "worker.log"))
            time.sleep(0.2)
        pid = SchedulerSupervisor(platform).pid(QUEUE)
        start_rss = rss_mb(pid)
        for index in range(n):
            user = f"user{index}"
            platform.register(slug, user, LOCAL_ADMIN)
            sid = platform.submit(slug, zip_path, username=user, actor=LOCAL_ADMIN)
            started = time.monotonic()
            dispatcher.dispatch(sid)
            info = dispatcher.wait(sid, 600)
            elapsed = time.monotonic() - started
            if info["status"] != m.FINISHED:
                raise RuntimeError(f"run {index}: {info['status']}: {info['error']}")
            detailed = platform.store.file_path(info["artifacts"]["detailed_results"])
            if detailed.stat().st_size != size:
                raise RuntimeError(f"run {index}: {detailed.stat().st_size} bytes of detailed results, not {size}")
            shutil.rmtree(platform.store.file_path(f"submissions/{sid}"))
            time.sleep(0.5)  # the scheduler is told asynchronously that the result was collected
            samples.append({"run": index + 1, "rss_mb": round(rss_mb(pid), 1), "seconds": round(elapsed, 2)})
            print(f"run {index + 1:3d}: scheduler RSS {samples[-1]['rss_mb']:7.1f} MB  ({elapsed:.1f} s)", flush=True)
        held = log_payload_bytes(link)
    finally:
        worker.terminate()
        try:
            worker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            worker.kill()
        worker_log.close()
        dispatcher.close()
        SchedulerSupervisor(platform).stop(QUEUE)
        platform.close()
    rss = [s["rss_mb"] for s in samples]
    baseline = rss[0]
    last = rss[-10:] if len(rss) >= 10 else rss
    return {
        "runs": n,
        "output_mb": mb,
        "scheduler_rss_mb": {
            "before_first_run": round(start_rss, 1),
            "baseline_after_run_1": baseline,
            "peak": max(rss),
            "final": rss[-1],
            "median_last_10": statistics.median(last),
            "growth_over_baseline": round(rss[-1] - baseline, 1),
            "peak_over_baseline": round(max(rss) - baseline, 1),
        },
        "result_file_bytes_held_by_scheduler_at_end": held,
        "median_run_seconds": statistics.median(s["seconds"] for s in samples),
        "samples": samples,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=100, help="runs, one after the other")
    parser.add_argument("--mb", type=float, default=50.0, help="MB of detailed results each run leaves")
    parser.add_argument("--out", default=str(ROOT / "bench" / "queue_results.json"))
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="bench-queue-results-") as tmp:
        res = run(args.n, args.mb, Path(tmp))
    summary = {k: v for k, v in res.items() if k != "samples"}
    print(json.dumps(summary, indent=2))
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
