"""Concurrent large uploads against the service: memory and /health latency, in the same run.

    python bench/uploads.py [--mb 500] [--uploads 4] [--out bench/uploads.json]

The service runs in a process of its own (`make_app` on a free port, the hub's
token check replaced by the stand-in of tests/service/api_harness.py, the test
world of tests/service/builders.py).  First the baseline: /health latency and
the service's RSS while idle.  Then `--uploads` clients each POST one
`--mb` MB submission zip as multipart/form-data at the same time, while
/health is polled every 50 ms and the RSS sampled.  Reported: /health median
and worst latency idle and during the uploads (and their ratio), RSS before
and at its peak (and their ratio), each upload's status and time.
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
    from tests.service import builders
    from tests.service.api_harness import PREFIX, make_hub_auth

    home = Path({home!r})
    platform = Platform(home=str(home))
    platform.config.max_upload_bytes = {cap}
    (home / "world").mkdir(parents=True, exist_ok=True)
    world = builders.build_world(platform, home / "world")

    async def main():
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
        return b""


def make_payload(path: Path, mb: int) -> None:
    """A stored (uncompressed) zip of random bytes: `mb` MB, within the unpack caps."""
    block = os.urandom(1 << 20)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        with zf.open("predictions.txt", "w", force_zip64=True) as member:
            for _ in range(mb):
                member.write(block)


def health_probe(base: str, stop: threading.Event, out: list[float]) -> None:
    session = requests.Session()
    while not stop.is_set():
        started = time.perf_counter()
        session.get(base + "api/v1/health", timeout=60).raise_for_status()
        out.append((time.perf_counter() - started) * 1000)
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
    args = parser.parse_args(argv)

    tmp = Path(tempfile.mkdtemp(prefix="compete-bench-uploads-"))
    port = 20000 + os.getpid() % 20000
    cap = (args.mb + 16) * 1024 * 1024
    script = SERVER.format(root=str(ROOT), home=str(tmp / "home"), cap=cap, port=port)
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
        rss: list[int] = []
        stop = threading.Event()
        probes = [threading.Thread(target=health_probe, args=(base, stop, during)),
                  threading.Thread(target=rss_probe, args=(service, stop, rss))]
        results: list[dict] = []

        def upload(i: int) -> None:
            boundary = uuid.uuid4().hex
            started = time.perf_counter()
            resp = requests.post(base + f"api/v1/competitions/{slug}/submissions", data=MultipartFile(payload, boundary),
                                 headers={"Authorization": "token token-ann",
                                          "Content-Type": f"multipart/form-data; boundary={boundary}"},
                                 timeout=1800)
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
            return {"median": round(statistics.median(values), 2), "max": round(max(values), 2), "n": len(values)}

        report = {
            "uploads": args.uploads,
            "mb_each": args.mb,
            "health_ms_idle": ms(idle),
            "health_ms_during_uploads": ms(during),
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
