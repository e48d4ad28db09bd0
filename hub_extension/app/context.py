"""What every part of the application layer shares: the database, the artifact store, the configuration.

`Platform` builds one `Context` and hands it to each of its parts; a part
reaches the database and the store through it only.
"""
from __future__ import annotations

import dataclasses

from .. import models as m
from ..bundles import UnpackLimits
from ..config import Compete
from ..db import Database
from ..storage import Store


@dataclasses.dataclass
class Context:
    config: Compete
    db: Database
    store: Store

    def unpack_limits(self) -> UnpackLimits:
        c = self.config
        return UnpackLimits(
            max_members=c.unpack_max_members,
            max_total_bytes=c.unpack_max_total_bytes,
            max_file_bytes=c.unpack_max_file_bytes,
            max_ratio=c.unpack_max_ratio,
        )

    def dataset_exists(self, key: str) -> bool:
        """A dataset stored and recorded (a bundle may name it by its key instead of carrying it)."""
        if not self.store.has_dataset(key):
            return False
        with self.db.session() as s:
            return s.get(m.Dataset, key) is not None
