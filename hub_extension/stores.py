"""Which artifact store the platform builds: `make_store(config)`, chosen by `c.Compete.storage_url`.

Kept apart from the stores themselves (`storage.LocalStore`,
`storage_s3.S3Store`), so that neither of their modules imports the other.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .storage import LocalStore, Store


def make_store(config: Any) -> Store:
    """The platform's store, chosen by `config.storage_url`.

    `s3://bucket/prefix`: an `S3Store` with `config.storage_options` (its
    local read-through cache in `<home>/artifact-cache`, at most
    `config.storage_cache_max_bytes`); anything else:
    `config.store_class` (default `LocalStore`) at `config.resolved_storage()`.
    `config` is the platform's `Compete`; the store gets the whole traitlets
    configuration, so that `c.<StoreClass>.<trait>` reaches it.
    """
    url = getattr(config, "storage_url", "") or ""
    if url.startswith("s3://"):
        # Imported here: the S3 store needs s3fs, which only platforms with an object store install.
        from .storage_s3 import S3Store

        return S3Store(url, storage_options=dict(config.storage_options),
                       cache_dir=Path(config.home) / "artifact-cache",
                       cache_max_bytes=config.storage_cache_max_bytes, config=config.config)
    cls = getattr(config, "store_class", None) or LocalStore
    return cls(config.resolved_storage(), config=config.config)
