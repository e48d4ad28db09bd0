"""A large dataset travels to a worker in chunks: no step of the way reads the whole file into memory.

A 200 MB dataset goes from the platform's store through the service's
per-run link (`hub_extension.service.run_data`) into a worker's dataset
cache (`dask_workers.data_cache`), once from a local store and once from an
object store (moto's server in a process of its own, so that what it holds
is not counted here); the object store's read-through copy and a presigned
URL fetch are measured too.  Python's allocations (`tracemalloc`, every
thread of this process: the service's and the client's) must peak far below
the file's size.
"""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import tracemalloc
import uuid
from pathlib import Path

import pytest
import requests

from dask_workers.data_cache import DataCache
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.config import Compete
from hub_extension.data_links import RunDataSigner, run_data_url

from tests.support.builders import results_zip, simple_spec
from tests.support.service_harness import start_server

pytestmark = pytest.mark.timeout(900)

SIZE = 200 << 20
# Far below the file: a few chunks and buffers whatever the file's size (about 4 MB from a local
# store, 30 MB through s3fs's read-ahead blocks; a whole read would be over 200 MB).
PEAK_BOUND = 64 << 20


def _big_file(path: Path, size: int = SIZE) -> Path:
    with open(path, "wb") as fh:
        for _ in range(size >> 20):
            fh.write(os.urandom(1 << 20))
    return path


def _peak(fn, *args):
    """(result, peak bytes Python allocated while `fn` ran)."""
    tracemalloc.start()
    try:
        result = fn(*args)
        return result, tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _open_run(platform, tmp_path, key: str, link_base: str) -> str:
    """A run claimed by an organizer queue, and its link to dataset `key`."""
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, results_zip(tmp_path, "ann.zip", "1\n"), username="ann", actor=LOCAL_ADMIN)
    assert platform.runs.claim(sid, "org", f"submission-{sid}-a")
    token = RunDataSigner.for_home(platform.config.home).token(sid, f"submission-{sid}-a", [key])
    return run_data_url(link_base, token, key)


def _fetch_through_the_link(platform, tmp_path, key: str, cache: Path) -> None:
    server = start_server(platform)
    try:
        url = _open_run(platform, tmp_path, key, server.base)
        worker = DataCache(cache)
        blob, peak = _peak(worker.fetch, key, url)
        assert worker.events == [(key, "fetched")]
        assert blob.stat().st_size == platform.store.dataset_size(key) >= SIZE
        assert peak < PEAK_BOUND, f"{peak} bytes allocated at the peak to serve and fetch {SIZE} bytes"
        # Verified again on the next use, in chunks too.
        _, peak = _peak(worker.fetch, key, url)
        assert worker.events[-1] == (key, "hit") and peak < PEAK_BOUND
    finally:
        server.stop()


def test_a_large_dataset_streams_from_a_local_store_through_the_link_into_the_cache(platform, tmp_path):
    key = platform.store.put_dataset_file(_big_file(tmp_path / "big.bin"))
    _fetch_through_the_link(platform, tmp_path, key, tmp_path / "worker-cache")
    assert hashlib.sha256((tmp_path / "worker-cache" / "blobs" / key).read_bytes()).hexdigest() == key


@pytest.fixture
def s3_process(tmp_path):
    """storage_options of an S3-compatible server (moto's) running in a process of its own."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-c", "import sys; from moto.server import ThreadedMotoServer; "
                             "s = ThreadedMotoServer(ip_address='127.0.0.1', port=int(sys.argv[1]), verbose=False); "
                             "s.start(); sys.stdin.read()", str(port)],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            requests.get(endpoint, timeout=2)
            break
        except requests.ConnectionError:
            assert time.monotonic() < deadline and proc.poll() is None, "moto's server did not start"
            time.sleep(0.2)
    yield {"key": "testing", "secret": "testing", "endpoint_url": endpoint,
           "client_kwargs": {"region_name": "us-east-1"}}
    proc.stdin.close()
    proc.kill()
    proc.wait()


def test_a_large_dataset_streams_from_the_object_store(tmp_path, s3_process):
    # Imported here: boto3 comes with moto, a test-only dependency.
    import boto3

    bucket = f"compete-{uuid.uuid4().hex[:12]}"
    boto3.client("s3", endpoint_url=s3_process["endpoint_url"], aws_access_key_id="testing",
                 aws_secret_access_key="testing", region_name="us-east-1").create_bucket(Bucket=bucket)
    platform = Platform(Compete(home=str(tmp_path / "home"), storage_url=f"s3://{bucket}/artifacts",
                                storage_options=s3_process))
    try:
        store = platform.store
        key = store.put_dataset_file(_big_file(tmp_path / "big.bin"))
        (tmp_path / "big.bin").unlink()
        # The service's link reads the object in chunks.
        _fetch_through_the_link(platform, tmp_path, key, tmp_path / "link-cache")
        # A worker fetching the object store's presigned URL.
        worker = DataCache(tmp_path / "presigned-cache")
        _, peak = _peak(worker.fetch, key, store.dataset_url(key, expires=600))
        assert worker.events == [(key, "fetched")] and peak < PEAK_BOUND, peak
        # The platform's read-through copy (exports, downloads of the file).
        local, peak = _peak(store.dataset_path, key)
        assert local.stat().st_size == SIZE and peak < PEAK_BOUND, peak
    finally:
        platform.close()
