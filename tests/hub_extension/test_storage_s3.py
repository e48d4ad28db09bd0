"""The artifact store in an S3-compatible object store (moto's server), chosen by `c.Compete.storage_url`,
and its local read-through cache, kept under its size cap least recently used first."""
from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import subprocess
import sys
import time

import pytest
import requests

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.config import Compete
from hub_extension.storage import LocalStore
from hub_extension.stores import make_store
from hub_extension.storage_s3 import S3Store

from tests.hub_extension.bundles.test_bundles_end_to_end import GOOD, NOW, codabench_expected, zip_of
from tests.support.service_harness import start_server

pytestmark = pytest.mark.timeout(600)


def _config(tmp_path, url, options=None, **values) -> Compete:
    return Compete(home=str(tmp_path / "home"), storage_url=url, storage_options=options or {}, **values)


def test_the_store_is_chosen_by_its_url(tmp_path, s3_url, s3_options):
    assert isinstance(make_store(_config(tmp_path, "")), LocalStore)
    local = make_store(_config(tmp_path, f"file://{tmp_path / 'here'}"))
    assert isinstance(local, LocalStore) and local.root == tmp_path / "here"
    assert make_store(_config(tmp_path, str(tmp_path / "there"))).root == tmp_path / "there"
    remote = make_store(_config(tmp_path, s3_url, s3_options))
    assert isinstance(remote, S3Store) and remote.root is None


def test_datasets_and_files_round_trip_through_the_object_store(tmp_path, s3_url, s3_options):
    store = make_store(_config(tmp_path, s3_url, s3_options))
    data = b"zip bytes " * 100000
    key = store.put_dataset_bytes(data)
    assert key == hashlib.sha256(data).hexdigest() and store.has_dataset(key)
    assert not store.has_dataset("0" * 64) and not store.has_dataset("not a key")
    assert store.dataset_size(key) == len(data)
    with store.open_dataset(key) as fh:
        fh.seek(5)
        assert fh.read(10) == data[5:15]
    # A worker fetches it from the object store itself, by a presigned URL.
    url = store.dataset_url(key, expires=600)
    assert url.startswith(s3_options["endpoint_url"]) and "Signature" in url
    assert requests.get(url, timeout=30).content == data
    # Another platform process on another machine (an empty cache) reads the same objects.
    other = S3Store(s3_url, storage_options=s3_options, cache_dir=tmp_path / "other-cache")
    assert other.dataset_path(key).read_bytes() == data
    source = tmp_path / "upload.bin"
    source.write_bytes(b"streamed upload")
    assert other.put_dataset_file(source) == hashlib.sha256(b"streamed upload").hexdigest()

    store.put_file_bytes("submissions/1/a/task-0/scoring/stdout.txt", b"hello\n")
    assert other.file_path("submissions/1/a/task-0/scoring/stdout.txt").read_bytes() == b"hello\n"
    assert not other.file_path("submissions/1/a/missing.txt").exists()
    with pytest.raises(ValueError):
        store.file_path("../escape")
    assert store.usage_bytes() == len(data) + len(b"streamed upload") + len(b"hello\n")
    store.put_file_bytes("submissions/12/b/out.txt", b"1234")
    assert store.folder_bytes("submissions") == {"1": len(b"hello\n"), "12": 4}
    assert store.folder_bytes("nothing-here") == {}
    store.delete_file("submissions/12")
    store.delete_file("submissions/1")
    assert not store.fs.exists(f"{store.base}/files/submissions/1/a/task-0/scoring/stdout.txt")
    assert not store.file_path("submissions/1/a/task-0/scoring/stdout.txt").exists()


def test_a_submission_runs_end_to_end_with_every_artifact_in_the_object_store(tmp_path, s3_url, s3_options,
                                                                              runtime_image):
    from hub_extension.dispatch import Dispatcher

    platform = Platform(_config(tmp_path, s3_url, s3_options, executor="docker"))
    dispatcher = Dispatcher(platform)
    server = None
    try:
        bundle = GOOD / "codabench_results"
        slug, _ = platform.create_competition(bundle, LOCAL_ADMIN)
        platform.register(slug, "ann", LOCAL_ADMIN)
        predictions = bundle / "solution"
        sid = platform.submit(slug, zip_of(predictions, tmp_path / "sub.zip"), username="ann", phase=1,
                              actor=LOCAL_ADMIN, now=NOW)
        store = platform.store
        # The bundle's programs and data, and the submission, are objects: nothing in a local store folder.
        assert not (tmp_path / "home" / "artifacts").exists()
        with platform.db.session() as s:
            file_key = s.get(m.Submission, sid).file_key
            (task,) = s.query(m.Task).join(m.Competition).filter(m.Competition.slug == slug).all()
            for key in (file_key, task.scoring_program_key, task.reference_data_key):
                assert store.fs.exists(f"{store.base}/datasets/{key[:2]}/{key}"), key

        assert dispatcher.dispatch(sid)
        info = dispatcher.wait(sid, 300)
        assert info["status"] == m.FINISHED, info["error"]
        assert info["scores"] == pytest.approx(codabench_expected(bundle, predictions, tmp_path / "by-hand"))
        # The run's logs went back to the object store.
        logs = store.fs.find(f"{store.base}/files/submissions/{sid}")
        assert any(path.endswith("scoring/stdout.txt") for path in logs), logs

        # Through the service: the submitted file and a log, read from the object store.
        # (This machine's cache emptied first: what is served comes from the object store.)
        shutil.rmtree(store.cache_dir)
        store.cache_dir.mkdir()
        server = start_server(platform)
        root = server.client("root")
        submitted = root.get(f"api/v1/submissions/{sid}/file")
        assert submitted.status_code == 200, submitted.text[:500]
        assert hashlib.sha256(submitted.content).hexdigest() == file_key
        log = root.get(f"api/v1/submissions/{sid}/logs/0/scoring/stdout")
        assert log.status_code == 200, log.text[:500]
        remote_log = next(p for p in logs if p.endswith("scoring/stdout.txt"))
        assert store.fs.cat_file(remote_log).decode() in log.text
        # The admin's storage page counts what this machine holds of the object store.
        assert platform.storage_use(LOCAL_ADMIN)["datasets"]["bytes"] > 0
    finally:
        if server is not None:
            server.stop()
        dispatcher.close()
        platform.close()


# -- the read-through cache's size cap -------------------------------------------------------------
def _age(path, seconds_ago):
    """Mark a cached file as last used `seconds_ago` seconds ago."""
    when = time.time() - seconds_ago
    os.utime(path, (when, when))


def test_the_cache_keeps_under_its_cap_least_recently_used_first(tmp_path, s3_url, s3_options):
    mb = 1 << 20
    store = make_store(_config(tmp_path, s3_url, s3_options, storage_cache_max_bytes=3 * mb + 1000))
    assert store.cache_max_bytes == 3 * mb + 1000
    store.cache_grace = 0.0
    blobs = {name: bytes([index]) * mb for index, name in enumerate("abcde")}
    keys = {name: store.put_dataset_bytes(data) for name, data in blobs.items()}
    # Uploads do not fill the cache; reads do.
    assert store.cache_bytes() == 0
    paths = {}
    for age, name in zip((50, 40, 30), "abc"):
        paths[name] = store.dataset_path(keys[name])
        _age(paths[name], age)
    assert store.cache_bytes() == 3 * mb
    # `a` read again: now the most recently used.
    assert store.dataset_path(keys["a"]).read_bytes() == blobs["a"]
    _age(paths["a"], 20)
    # A fourth file: over the cap, `b` (the least recently used) goes.
    paths["d"] = store.dataset_path(keys["d"])
    assert not paths["b"].exists()
    assert all(paths[name].exists() for name in "acd")
    assert store.cache_bytes() <= store.cache_max_bytes
    # An evicted file is fetched again from the object store, whole.
    assert store.dataset_path(keys["b"]).read_bytes() == blobs["b"]
    assert not paths["c"].exists() and store.cache_bytes() <= store.cache_max_bytes
    # Plain files (logs, outputs) count and go the same way.
    store.put_file_bytes("submissions/9/a/task-0/scoring/stdout.txt", b"x" * mb)
    assert store.cache_bytes() <= store.cache_max_bytes
    assert store.file_path("submissions/9/a/task-0/scoring/stdout.txt").read_bytes() == b"x" * mb
    # The default cap.
    assert make_store(_config(tmp_path, s3_url, s3_options)).cache_max_bytes == 10 * 1024 ** 3


def test_a_file_being_read_or_just_handed_out_is_never_evicted(tmp_path, s3_url, s3_options):
    mb = 1 << 20
    store = S3Store(s3_url, storage_options=s3_options, cache_dir=tmp_path / "cache", cache_max_bytes=10 * mb,
                    cache_grace=0.0)
    data = {name: bytes([index + 1]) * (2 * mb) for index, name in enumerate("abc")}
    paths = {name: store.dataset_path(store.put_dataset_bytes(blob)) for name, blob in data.items()}
    for name in "abc":
        _age(paths[name], 100)

    # `a` is being served by this process, `b` by another process of the platform.
    reader = open(paths["a"], "rb")
    other = subprocess.Popen([sys.executable, "-c", "import sys; f = open(sys.argv[1], 'rb'); "
                              "print('open', flush=True); sys.stdin.read(); print(len(f.read()))", str(paths["b"])],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert other.stdout.readline().strip() == "open"
        first = reader.read(mb)
        removed = store.trim_cache(0)
        # Only the file no one reads went, although the cap (0) is not met without them.
        assert removed == [paths["c"]]
        assert paths["a"].exists() and paths["b"].exists()
        assert first + reader.read() == data["a"]
        other.stdin.close()
        assert int(other.stdout.readline()) == len(data["b"])
        assert other.wait(30) == 0
    finally:
        reader.close()
        if other.poll() is None:
            other.kill()
    # Closed: now they go.
    assert sorted(store.trim_cache(0)) == sorted([paths["a"], paths["b"]])
    assert store.cache_bytes() == 0

    # A file handed out within the grace period is kept: its caller is about to open it.
    store.cache_grace = 60.0
    fresh = store.dataset_path(store.put_dataset_bytes(b"fresh" * mb))
    old = store.dataset_path(store.put_dataset_bytes(b"old!!" * mb))
    _age(old, 120)
    assert store.trim_cache(0) == [old]
    assert fresh.read_bytes() == b"fresh" * mb
    # Another process of the platform trimming at the same moment: this one leaves it to that one.
    lock = os.open(store.cache_dir / ".trim.lock", os.O_RDWR)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        _age(fresh, 120)
        assert store.trim_cache(0) == [] and fresh.exists()
    finally:
        os.close(lock)
    assert store.trim_cache(0) == [fresh]
