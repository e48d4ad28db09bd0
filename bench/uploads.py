"""Concurrent large uploads against the service: memory and /health latency, in the same run.

    python bench/uploads.py [--mb 500] [--uploads 4] [--out bench/uploads.json] [--trace-stalls]

The service runs in a process of its own (`make_app` on a free port, the hub's
token check replaced by the stand-in of tests/support/service_harness.py, the
test world of tests/support/builders.py).  First the baseline: /health latency and
the service's RSS while idle.  Then `--uploads` clients each POST one
`--mb` MB submission zip as multipart/form-data at the same time, while
/health is polled every 50 ms and the RSS sampled.  Reported: /health median,
p95 and worst latency (and how many polls took over 100 ms), idle and during
the uploads (and their median ratio; the polls during the uploads also split at
the moment the last body was all sent: streaming to disk, then storing the
submissions), RSS before and at its peak (and their ratio), each upload's
status and time.  `--trace-stalls` prints the service's
event-loop stack whenever its loop stalls over 100 ms (to find what blocks it).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import uuid
import zipfile
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parents[1]
PREFIX = "/services/competitions/"

SERVER = textwrap.dedent("""
    import asyncio, sys
    from pathlib import Path
    sys.path.insert(0, {root!r})
    from tornado.httpserver import HTTPServer
    from hub_extension.app import Platform
    from hub_extension.service.app import make_app
    from tests.support import builders
    from tests.support.service_harness import PREFIX, make_hub_auth

    home = Path({home!r})
    platform = Platform(home=str(home))
    platform.config.max_upload_bytes = {cap}
    (home / "world").mkdir(parents=True, exist_ok=True)
    world = builders.build_world(platform, home / "world")

    if {trace_stalls}:
        # Loop-stall tracer: a heartbeat on the loop, a thread that prints the
        # loop thread's stack whenever the heartbeat is late by over 100 ms.
        import threading, time, traceback
        beat = [time.monotonic()]
        loop_thread = threading.get_ident()

        async def heartbeat():
            while True:
                beat[0] = time.monotonic()
                await asyncio.sleep(0.01)

        def watchdog():
            stalled_since, stacks, others = None, [], []
            while True:
                time.sleep(0.02)
                last = beat[0]
                late = time.monotonic() - last
                if late > 0.1:
                    if stalled_since != last:
                        stalled_since, stacks, others = last, [], []
                    frame = sys._current_frames().get(loop_thread)
                    stack = "".join(traceback.format_stack(frame, limit=30)) if frame else "?"
                    if stack not in stacks:
                        stacks.append(stack)
                    if len(stacks) == 1 and not others:
                        others.extend("".join(traceback.format_stack(f, limit=4))
                                      for t, f in sys._current_frames().items()
                                      if t not in (loop_thread, threading.get_ident()))
                elif stalled_since is not None and stalled_since != last:
                    ms = (last - stalled_since) * 1000
                    print(f"STALL of about {{ms:.0f}} ms; the loop thread was in:\\n" + "\\n".join(stacks)
                          + "\\nother threads, at its start:\\n" + "\\n".join(others),
                          file=sys.stderr, flush=True)
                    stalled_since = None

        threading.Thread(target=watchdog, daemon=True).start()

    async def main():
        if {trace_stalls}:
            asyncio.ensure_future(heartbeat())
        app = make_app(platform, prefix=PREFIX, hub_auth=make_hub_auth(), cookie_secret=b"x" * 32)
        server = HTTPServer(app, max_body_size={cap} + (1 << 20))
        server.listen({port}, "127.0.0.1")
        print("slug", world.slug, flush=True)
        await asyncio.Event().wait()

    asyncio.run(main())
""")


class MultipartFile:
    """A multipart/form-data body around a file on disk, read in pieces (requests sends its length)."""

    def __init__(self, path: Path, boundary: str):
        self.head = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"big.zip\"\r\n"
                     "Content-Type: application/zip\r\n\r\n").encode()
        self.tail = f"\r\n--{boundary}--\r\n".encode()
        self.fh = open(path, "rb")
        self.size = path.stat().st_size
        self.parts = [self.head, None, self.tail]
        self.sent_at: float | None = None  # when requests had read the whole body (perf_counter)

    def __len__(self) -> int:
        return len(self.head) + self.size + len(self.tail)

    def read(self, n: int = -1) -> bytes:
        while self.parts:
            part = self.parts[0]
            if part is None:
                data = self.fh.read(n if n and n > 0 else 1 << 20)
                if data:
                    return data
                self.fh.close()
                self.parts.pop(0)
                continue
            self.parts.pop(0)
            return part
        if self.sent_at is None:
            self.sent_at = time.perf_counter()
        return b""


def make_payload(path: Path, mb: int) -> None:
    """A stored (uncompressed) zip of random bytes: `mb` MB, within the unpack caps."""
    block = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("predictions.txt", "w", force_zip64=True) as member:
            for _ in range(mb):
                member.write(block)


def health_probe(base: str, stop: threading.Event, out: list[float], starts: list[float] | None = None) -> None:
    session = requests.Session()
    while not stop.is_set():
        started = time.perf_counter()
        session.get(base + "api/v1/health", timeout=60).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
        if starts is not None:
            starts.append(started)
        time.sleep(0.05)


def rss_probe(proc: psutil.Process, stop: threading.Event, out: list[int]) -> None:
    while not stop.is_set():
        out.append(proc.memory_info().rss)
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mb", type=int, default=500, help="size of each upload, in MB")
    parser.add_argument("--uploads", type=int, default=4, help="uploads at the same time")
    parser.add_argument("--out", default=str(ROOT / "bench" / "uploads.json"))
    parser.add_argument("--trace-stalls", action="store_true",
                        help="print the service's event-loop stack on stderr whenever the loop stalls over 100 ms")
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="compete-bench-uploads-"))
    port = 20000 + os.getpid() % 20000
    cap = (args.mb + 16) * 1024 * 1024
    script = SERVER.format(root=str(ROOT), home=str(tmp / "home"), cap=cap, port=port,
                           trace_stalls=bool(args.trace_stalls))
    proc = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE, text=True, cwd=ROOT)
    try:
        slug = proc.stdout.readline().split()[1]
        service = psutil.Process(proc.pid)
        base = f"http://127.0.0.1:{port}{PREFIX}"
        payload = tmp / "payload.zip"
        make_payload(payload, args.mb)

        idle: list[float] = []
        stop = threading.Event()
        prober = threading.Thread(target=health_probe, args=(base, stop, idle))
        prober.start()
        time.sleep(5)
        stop.set()
        prober.join()
        rss_before = service.memory_info().rss

        during: list[float] = []
        during_starts: list[float] = []
        bodies_sent: list[float] = []
        rss: list[int] = []
        stop = threading.Event()
        probes = [threading.Thread(target=health_probe, args=(base, stop, during, during_starts)),
                  threading.Thread(target=rss_probe, args=(service, stop, rss))]
        results: list[dict] = []

        def upload(i: int) -> None:
            boundary = uuid.uuid4().hex
            started = time.perf_counter()
            body = MultipartFile(payload, boundary)
            resp = requests.post(base + f"api/v1/competitions/{slug}/submissions", data=body,
                                 headers={"Authorization": "token token-ann",
                                          "Content-Type": f"multipart/form-data; boundary={boundary}"},
                                 timeout=1800)
            bodies_sent.append(body.sent_at or time.perf_counter())
            results.append({"status": resp.status_code, "seconds": round(time.perf_counter() - started, 1),
                            "answer": resp.text[:160] if resp.status_code >= 400 else ""})

        for t in probes:
            t.start()
        time.sleep(1)
        uploaders = [threading.Thread(target=upload, args=(i,)) for i in range(args.uploads)]
        for t in uploaders:
            t.start()
        for t in uploaders:
            t.join()
        stop.set()
        for t in probes:
            t.join()

        def ms(values: list[float]) -> dict:
            p95 = statistics.quantiles(values, n=20, method="inclusive")[-1] if len(values) > 1 else values[0]
            return {"median": round(statistics.median(values), 2), "p95": round(p95, 2),
                    "max": round(max(values), 2), "over_100ms": sum(v > 100 for v in values), "n": len(values)}

        report = {
            "uploads": args.uploads,
            "mb_each": args.mb,
            "health_ms_idle": ms(idle),
            "health_ms_during_uploads": ms(during),
            # Split at the moment the last body was all sent: before it the bodies stream to the
            # service's disk; after it the service stores the submissions (hash, copy, database).
            "health_ms_while_bodies_stream": ms([v for v, t in zip(during, during_starts) if t < max(bodies_sent)]),
            "health_ms_after_bodies_sent": ms([v for v, t in zip(during, during_starts) if t >= max(bodies_sent)]
                                              or [0.0]),
            "health_median_ratio_during_vs_idle": round(statistics.median(during) / statistics.median(idle), 2),
            "rss_mb_before": round(rss_before / 2**20, 1),
            "rss_mb_peak_during": round(max(rss) / 2**20, 1),
            "rss_ratio_peak_vs_before": round(max(rss) / rss_before, 2),
            "upload_results": results,
        }
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
        print(json.dumps(report, indent=2))
        return 0
    finally:
        proc.terminate()
        proc.wait(10)
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
