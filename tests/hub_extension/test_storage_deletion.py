"""Removing stored bytes (a deleted submission's file) and reading a stored folder, in both stores."""
from __future__ import annotations

from hub_extension.storage import LocalStore
from hub_extension.storage_s3 import S3Store


def _check(store) -> None:
    key = store.put_dataset_bytes(b"a submission's zip")
    assert store.dataset_path(key).read_bytes() == b"a submission's zip"  # cached locally too
    store.put_file_bytes("submissions/5/attempt/task-0/scoring_output/scores.json", b"{}")
    store.put_file_bytes("submissions/5/attempt/task-0/scoring_output/deep/x.txt", b"x")
    folder = store.file_path("submissions/5/attempt/task-0/scoring_output")
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "deep/x.txt", "scores.json"]
    store.delete_dataset(key)
    assert not store.has_dataset(key) and not store.dataset_path(key).exists()
    store.delete_dataset(key)  # nothing there: nothing to do
    store.delete_file("submissions/5")
    assert not store.file_path("submissions/5/attempt/task-0/scoring_output/scores.json").exists()


def test_a_local_store_removes_a_dataset(tmp_path):
    _check(LocalStore(tmp_path / "store"))


def test_an_object_store_removes_a_dataset_and_its_cached_copy(tmp_path, s3_url, s3_options):
    _check(S3Store(s3_url, storage_options=s3_options, cache_dir=tmp_path / "cache"))
