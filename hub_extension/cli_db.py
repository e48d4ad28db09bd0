"""`compete db upgrade`: bring the platform's database to the schema of this version.

The explicit step of an upgrade, as with JupyterHub's `jupyterhub upgrade-db`:
the platform refuses a database behind its schema (hub_extension/db.py says
why), the service runs this step when it starts and `scripts/run.sh` before
the hub.  Prints what it did in one line.
"""
from __future__ import annotations

import argparse
from pathlib import Path

from .cli_common import loaded_config
from .db import upgrade_database


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    config = loaded_config(args).compete
    if not config.db_url:
        Path(config.home).mkdir(parents=True, exist_ok=True)  # the SQLite file's folder
    print(upgrade_database(config.resolved_db_url()))
    return 0
