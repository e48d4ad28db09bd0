"""pytest fixtures of the bundle tests: a store and the folder-or-zip source switch."""
from __future__ import annotations

from pathlib import Path

import pytest

from hub_extension.bundles import canonical_zip_bytes
from hub_extension.storage import LocalStore

from tests.support.bundles import FIXTURES, zip_folder


@pytest.fixture
def store(tmp_path: Path) -> LocalStore:
    """A store holding the dataset that the `stored_key` fixture refers to."""
    store = LocalStore(tmp_path / "store")
    store.put_dataset_bytes(canonical_zip_bytes(FIXTURES / "stored" / "reference_data"))
    return store


@pytest.fixture(params=["folder", "zip"])
def as_source(request, tmp_path: Path):
    """Turns a fixture folder into the bundle source under test: itself, or its zip."""
    def make(folder: Path) -> Path:
        if request.param == "folder":
            return folder
        return zip_folder(folder, tmp_path / f"{folder.name}.zip")
    return make
