"""The artifact store in an S3-compatible object store (moto's server), chosen by `c.Compete.storage_url`."""
from __future__ import annotations

import hashlib
import shutil

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
