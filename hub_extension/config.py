"""Configuration of the platform: the `Compete` traitlets class.

Set in `jupyterhub_config.py` or a `compete_config.py` as `c.Compete.<name>`;
`compete --home DIR` and `COMPETE_HOME` pick the directory that holds the
SQLite file and the artifact store of the embedded default.
"""
from __future__ import annotations

import os
from pathlib import Path

from traitlets import Dict, Float, Integer, Unicode, default
from traitlets.config import LoggingConfigurable


def default_home() -> Path:
    env = os.environ.get("COMPETE_HOME")
    if env:
        return Path(env).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "jupyter-compete"


class Compete(LoggingConfigurable):
    home = Unicode(
        help="Directory of the embedded default: holds compete.sqlite and artifacts/. "
        "Defaults to $COMPETE_HOME, else ~/.local/share/jupyter-compete.",
    ).tag(config=True)

    @default("home")
    def _home_default(self) -> str:
        return str(default_home())

    db_url = Unicode(
        "",
        help="SQLAlchemy URL of the database (sqlite:///... or postgresql://user@host/db). "
        "Empty: a SQLite file in `home`.",
    ).tag(config=True)

    storage_url = Unicode(
        "",
        help="Where artifacts (datasets, programs, submissions, logs) live: a local directory. "
        "Empty: `home`/artifacts.",
    ).tag(config=True)

    executor = Unicode(
        "auto",
        help="How steps run: 'docker' (isolated, production), 'process' (no isolation, trusted "
        "code only) or 'auto' (docker when an engine answers, else process).",
    ).tag(config=True)

    default_image = Unicode(
        "jupyter-compete/runtime:py3",
        help="Runtime image used when a bundle names none, or when the named image cannot be had.",
    ).tag(config=True)

    image_aliases = Dict(
        {"codalab/codalab-legacy:py37": "jupyter-compete/runtime:py3",
         "codalab/codalab-legacy:py3": "jupyter-compete/runtime:py3",
         "codalab/default": "jupyter-compete/runtime:py3"},
        help="Image name -> local image to run instead when the named image cannot be pulled.",
    ).tag(config=True)

    max_upload_bytes = Integer(
        512 * 1024 * 1024, help="Largest bundle or submission upload accepted, in bytes."
    ).tag(config=True)

    unpack_max_members = Integer(20000, help="Most files a bundle or submission zip may hold.").tag(config=True)
    unpack_max_total_bytes = Integer(
        4 * 1024**3, help="Largest total uncompressed size of a bundle or submission zip."
    ).tag(config=True)
    unpack_max_file_bytes = Integer(2 * 1024**3, help="Largest single file inside a zip.").tag(config=True)
    unpack_max_ratio = Float(
        100.0, help="Largest compression ratio of a zip member (guards against zip bombs)."
    ).tag(config=True)

    step_memory_mb = Integer(2048, help="Memory limit of one step, in MB.").tag(config=True)
    step_cpus = Float(1.0, help="CPU limit of one step, in cores.").tag(config=True)
    step_pids = Integer(256, help="Most processes one step may run.").tag(config=True)
    step_output_mb = Integer(
        1024, help="Most megabytes a step may write to its output folders; over it the step is stopped and fails."
    ).tag(config=True)
    dataset_cache_mb = Integer(
        10240, help="Most megabytes of unpacked datasets and submissions a worker keeps in its cache; the least "
                    "recently used are removed first (never one a running job uses)."
    ).tag(config=True)

    queue_host = Unicode(
        "127.0.0.1",
        help="Host name or address that organizers' workers use to reach the queue schedulers "
        "this platform runs (written into their credentials). Set the machine's public name "
        "when workers attach from other machines.",
    ).tag(config=True)

    queue_listen_host = Unicode(
        "",
        help="Interface the queue schedulers listen on ('0.0.0.0' for every interface). "
        "Empty: `queue_host`.",
    ).tag(config=True)

    queue_inline_data_max_bytes = Integer(
        512 * 1024 * 1024,
        help="Largest total size of the datasets sent with one run to an organizer's queue. "
        "Larger data belongs on the organizer's workers (a task's `worker_data`).",
    ).tag(config=True)

    default_queue_workers = Integer(
        1, help="Worker processes of the default queue (the platform's own Dask cluster)."
    ).tag(config=True)

    default_queue_threads = Integer(
        2, help="Runs at a time per worker process of the default queue."
    ).tag(config=True)

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.home) / 'compete.sqlite'}"

    def resolved_storage(self) -> Path:
        return Path(self.storage_url) if self.storage_url else Path(self.home) / "artifacts"


def config_from_env() -> Compete:
    """The configuration of a platform process: $COMPETE_CONFIG (a Python config file setting
    `c.Compete.*`), then $COMPETE_HOME and $COMPETE_DB_URL on top."""
    from traitlets.config import Config, PyFileConfigLoader

    loaded = Config()
    config_file = os.environ.get("COMPETE_CONFIG")
    if config_file:
        path = Path(config_file).resolve()
        if not path.is_file():
            raise FileNotFoundError(f"COMPETE_CONFIG={config_file}: no such file")
        loaded = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    config = Compete(config=loaded)
    if os.environ.get("COMPETE_HOME"):
        config.home = os.environ["COMPETE_HOME"]
    if os.environ.get("COMPETE_DB_URL"):
        config.db_url = os.environ["COMPETE_DB_URL"]
    return config

