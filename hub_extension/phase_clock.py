"""The phase clock under its old name: `tick(platform)` is `platform.tick_phases()`.

What the clock does (marking phases opened, auto-migration, idempotent across
restarts and processes) is `hub_extension.app.phases`; the service ticks it
every 30 seconds.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Optional


def tick(platform: Any, now: Optional[dt.datetime] = None, *, slug: Optional[str] = None) -> dict[str, Any]:
    """One pass of the clock over every competition (or only `slug`): `Platform.tick_phases`."""
    return platform.tick_phases(now, slug=slug)
