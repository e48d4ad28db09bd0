"""Configuration of the platform: the `Compete` traitlets class and the one loader every process uses.

`load_config()` is how the service, every `compete` command (the dispatcher and
the worker included), the judge kernel's install and the embedded default's
`jupyterhub_config.py` read their configuration.  It loads a traitlets Python
config file (`c.Compete.*`, and the sections of other configurables such as
`c.DockerExecutor.*` or `c.Dispatcher.*`): the file `$COMPETE_CONFIG` names,
else `<home>/compete_config.py` when it exists, where home is `--home`, else
`$COMPETE_HOME`, else the default.  It returns the `Compete` instance and the
whole traitlets `Config`, to give to the other configurables.

Precedence, strongest first: a command-line option (`--home`, `--db`,
`--executor`), the config file, the environment (`COMPETE_HOME`,
`COMPETE_DB_URL`, `COMPETE_LOG_LEVEL`: trait defaults only), the built-in
default.
"""
from __future__ import annotations

import json
import logging
import os
from pathlib import Path
from typing import Any, Mapping, NamedTuple, Optional

from traitlets import Bool, Dict, Float, Integer, Type, Unicode, default, validate
from traitlets.config import Config, LoggingConfigurable, PyFileConfigLoader

from kernels.images import legacy_aliases, merge_aliases

CONFIG_FILE_NAME = "compete_config.py"


def default_home(fallback: Optional[str | Path] = None) -> Path:
    """$COMPETE_HOME, else `fallback`, else ~/.local/share/jupyter-compete (under $XDG_DATA_HOME)."""
    env = os.environ.get("COMPETE_HOME")
    if env:
        return Path(env).expanduser()
    if fallback:
        return Path(fallback).expanduser()
    return Path(os.environ.get("XDG_DATA_HOME", Path.home() / ".local" / "share")) / "jupyter-compete"


class Compete(LoggingConfigurable):
    home = Unicode(
        help="Directory of the embedded default: holds compete.sqlite and artifacts/. "
        "Defaults to $COMPETE_HOME, else ~/.local/share/jupyter-compete.",
    ).tag(config=True)

    home_fallback = Unicode(
        "", help="The home when neither the configuration nor $COMPETE_HOME names one (not configurable: "
        "the embedded default's ./compete-home).",
    )

    @default("home")
    def _home_default(self) -> str:
        return str(default_home(self.home_fallback or None))

    db_url = Unicode(
        help="SQLAlchemy URL of the database (sqlite:///... or postgresql://user@host/db). "
        "Defaults to $COMPETE_DB_URL; empty: a SQLite file in `home`.",
    ).tag(config=True)

    @default("db_url")
    def _db_url_default(self) -> str:
        return os.environ.get("COMPETE_DB_URL", "")

    upgrade_db = Bool(
        False,
        help="Upgrade a database whose schema is behind this version's when the platform opens it. "
        "Off: the platform refuses such a database and says to run `compete db upgrade` "
        "(the service and scripts/run.sh run it when they start).",
    ).tag(config=True)

    log_level = Unicode(
        help="Log level of the platform's processes (DEBUG, INFO, WARNING, ...). Defaults to "
        "$COMPETE_LOG_LEVEL, else INFO.",
    ).tag(config=True)

    @default("log_level")
    def _log_level_default(self) -> str:
        return os.environ.get("COMPETE_LOG_LEVEL") or "INFO"

    storage_url = Unicode(
        "",
        help="Where artifacts (datasets, programs, submissions, logs) live: a local directory (a path or "
        "file:///path), or an S3-compatible object store (s3://bucket/prefix, with `storage_options`). "
        "Empty: `home`/artifacts.",
    ).tag(config=True)

    storage_options = Dict(
        help="Options of an s3:// store, as s3fs takes them: {'key': ..., 'secret': ..., "
        "'endpoint_url': 'https://minio.example.org', 'client_kwargs': {'region_name': ...}}. "
        "Empty: the AWS defaults of the environment.",
    ).tag(config=True)

    storage_cache_max_bytes = Integer(
        10 * 1024 ** 3,
        help="Most bytes of the local copies an s3:// store keeps in `home`/artifact-cache (what the platform "
        "reads or serves from files: exports, outputs, logs); past it the least recently used are removed, "
        "never one being read.",
    ).tag(config=True)

    public_url = Unicode(
        "",
        help="The competitions service's root URL as the workers of organizer queues reach it "
        "(https://hub.example.org/services/competitions/). Runs sent there name their datasets, and the "
        "workers fetch each by a per-run, read-only link of the service into their cache. Empty (and a "
        "local store): the datasets travel inline with each run, up to `queue_inline_data_max_bytes`.",
    ).tag(config=True)

    run_data_link_ttl = Float(
        7 * 86400.0, help="Seconds an object store's presigned URL of a run's dataset stays valid (S3 allows "
        "at most 7 days): a run that waits in its queue longer fails to fetch its data.",
    ).tag(config=True)

    store_class = Type(
        "hub_extension.storage.LocalStore", klass="hub_extension.storage.Store",
        help="The artifact store: a subclass of hub_extension.storage.Store, built at `storage_url` "
        "(its own options as c.<StoreClass>.<trait>).",
    ).tag(config=True)

    result_files_max_mb = Float(
        64.0, help="Most megabytes of files one result carries inline (organizer queues) that the platform "
        "keeps; each file past it is left out, and the run says so.",
    ).tag(config=True)

    board_reader_processes = Integer(
        2, min=0, help="Processes of the competitions service that answer leaderboard reads (API, page, "
        "history), each with its own connection to the database, so that thousands of polling widgets "
        "never hold the service's own loop. 0: threads of the service's process answer them.",
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

    legacy_image = Unicode(
        "jupyter-compete/runtime:legacy",
        help="Runtime image of CodaLab-era bundles: the images the platform's own `image_aliases` entries "
        "map (codalab/codalab-legacy:*, ...) run here. Built by `compete image build --all`.",
    ).tag(config=True)

    image_aliases = Dict(
        help="Image name or shell pattern (`codalab/codalab-legacy:*`) -> local image to run instead; the "
        "first matching entry wins. Your entries come first; the platform's own entries (kernels.images."
        "LEGACY_ALIASES: CodaLab-era images -> `legacy_image`, codalab/codalab-legacy:py312 -> "
        "`default_image`) follow unless you name them. Map a name to '' to have it pulled as named.",
    ).tag(config=True)

    @default("image_aliases")
    def _image_aliases_default(self) -> dict:
        return legacy_aliases(self.legacy_image, self.default_image)

    @validate("image_aliases")
    def _keep_platform_aliases(self, proposal: Any) -> dict:
        return merge_aliases(dict(proposal["value"]), legacy_aliases(self.legacy_image, self.default_image))

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
        help="Largest total size of the datasets sent inline with one run to an organizer's queue (only "
        "without `public_url` and with a local store; else workers fetch them by reference). "
        "Larger data belongs on the organizer's workers (a task's `worker_data`).",
    ).tag(config=True)

    default_queue_workers = Integer(
        1, help="Worker processes of the default queue (the platform's own Dask cluster)."
    ).tag(config=True)

    default_queue_threads = Integer(
        2, help="Runs at a time per worker process of the default queue."
    ).tag(config=True)

    smtp_host = Unicode(
        "", help="SMTP server that sends the platform's mail (announcements, notifications). Empty: no mail "
        "leaves the machine; each one is kept in the Maildir `<home>/mail`, which admins read on the admin "
        "pages. Every message is kept in the platform (Announcements, Messages) whatever happens to its mail.",
    ).tag(config=True)
    smtp_port = Integer(0, help="Port of `smtp_host`; 0: 465 with `smtp_ssl`, else 587 with `smtp_starttls`, "
                        "else 25.").tag(config=True)
    smtp_user = Unicode("", help="User name to log in to `smtp_host` (empty: no login).").tag(config=True)
    smtp_password = Unicode("", help="Password of `smtp_user`.").tag(config=True)
    smtp_starttls = Bool(False, help="Upgrade the SMTP connection with STARTTLS before logging in.").tag(config=True)
    smtp_ssl = Bool(False, help="Speak SMTP over TLS from the start (SMTPS, usually port 465).").tag(config=True)
    smtp_timeout = Float(30.0, help="Seconds one SMTP conversation may take before it is given up and "
                         "retried.").tag(config=True)
    mail_from = Unicode(
        "", help="The From address of the platform's mail ('Competitions <noreply@example.org>'). "
        "Empty: competitions@<this machine's name>.",
    ).tag(config=True)
    mail_retry_seconds = Float(
        60.0, help="Seconds before a mail that could not be sent (server away, temporary refusal) is tried "
        "again; it is tried until `mail_give_up_hours` after it was written, then marked failed.",
    ).tag(config=True)
    mail_give_up_hours = Float(24.0, help="Hours after which a mail still not sent is marked failed.").tag(config=True)
    mail_site_url = Unicode(
        help="The competitions service's address as people's browsers reach it "
        "(https://hub.example.org/services/competitions/), for the links in mail (the message, the "
        "unsubscribe link). Defaults to the hub's public address the service is given "
        "($COMPETE_PUBLIC_URL or $JUPYTERHUB_PUBLIC_HUB_URL) with the service's prefix.",
    ).tag(config=True)

    @default("mail_site_url")
    def _mail_site_url_default(self) -> str:
        public = os.environ.get("COMPETE_PUBLIC_URL", "")
        hub_public = os.environ.get("JUPYTERHUB_PUBLIC_HUB_URL", "").rstrip("/")
        if not public and hub_public.endswith("/hub"):
            public = hub_public[: -len("hub")]
        prefix = os.environ.get("JUPYTERHUB_SERVICE_PREFIX", "/services/competitions/")
        return (public or "http://localhost:8000/").rstrip("/") + "/" + prefix.strip("/") + "/"

    similarity_threshold = Float(
        0.8, help="Code and notebook submissions of two different participants (or teams) whose estimated "
        "similarity (Jaccard of normalized 5-token shingles, starting kit left out) reaches this are listed "
        "for the organizers to review. Nothing is done to them automatically.",
    ).tag(config=True)
    similarity_sweep_seconds = Float(
        20.0, help="Seconds between the service's passes that sign new code and notebook submissions and "
        "compare them with the competition's others (0: never; `compete competition similarity SLUG --scan` "
        "still signs them on demand).",
    ).tag(config=True)

    @validate("similarity_threshold")
    def _check_similarity_threshold(self, proposal):
        value = proposal["value"]
        if not 0.0 < value <= 1.0:
            raise ValueError(f"c.Compete.similarity_threshold must be in (0, 1], got {value}")
        return value

    def resolved_db_url(self) -> str:
        return self.db_url or f"sqlite:///{Path(self.home) / 'compete.sqlite'}"

    def resolved_storage(self) -> Path:
        """The local store's folder (`storage_url` a path or file:///path; empty: `home`/artifacts)."""
        url = self.storage_url
        if url.startswith("file://"):
            url = url[len("file://"):]
        return Path(url) if url else Path(self.home) / "artifacts"


class LoadedConfig(NamedTuple):
    """What `load_config` read: the platform's settings, the whole traitlets Config, the file (None: none)."""

    compete: Compete
    config: Config
    file: Optional[Path]


def find_config_file(home: Optional[str | Path] = None, home_fallback: Optional[str | Path] = None) -> Optional[Path]:
    """$COMPETE_CONFIG (which must exist), else `<home>/compete_config.py` when it exists, else None."""
    named = os.environ.get("COMPETE_CONFIG")
    if named:
        path = Path(named).expanduser().resolve()
        if not path.is_file():
            raise FileNotFoundError(f"COMPETE_CONFIG={named}: no such file")
        return path
    where = Path(home).expanduser() if home else default_home(home_fallback)
    candidate = where / CONFIG_FILE_NAME
    return candidate.resolve() if candidate.is_file() else None


def load_config(*, home: Optional[str | Path] = None, db_url: Optional[str] = None,
                executor: Optional[str] = None, home_fallback: Optional[str | Path] = None) -> LoadedConfig:
    """The configuration of a platform process.

    `home`, `db_url` and `executor` are command-line options: when given they
    beat the file.  `home_fallback` is the home when nothing names one (the
    embedded default's ./compete-home).
    """
    path = find_config_file(home, home_fallback)
    config = Config()
    if path is not None:
        config = PyFileConfigLoader(path.name, path=str(path.parent)).load_config()
    overrides = {"home": str(home) if home else None, "db_url": db_url, "executor": executor}
    for name, value in overrides.items():
        if value:
            config.Compete[name] = value
    compete = Compete(config=config, home_fallback=str(home_fallback or ""))
    return LoadedConfig(compete, config, path)


def executor_settings(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """The sections of a traitlets configuration for executor classes (`c.DockerExecutor.*`, `c.Executor.*`).

    They travel with each job (`Job.executor_config`) to the worker, which
    builds its executor with them; only plain, JSON-able values are sent.
    """
    settings: dict[str, dict[str, Any]] = {}
    for section, values in config.items():
        if not (isinstance(section, str) and section.endswith("Executor") and isinstance(values, Mapping)):
            continue
        plain = {}
        for name, value in values.items():
            try:
                json.dumps(value)
            except (TypeError, ValueError):
                logging.getLogger("compete.config").warning(
                    "c.%s.%s is not plain data: not sent to the workers", section, name)
                continue
            plain[str(name)] = value
        if plain:
            settings[section] = plain
    return settings
