"""`python -m hub_extension.service`: the process JupyterHub starts as the service `competitions`.

It reads its configuration as every platform process does
(`config.load_config`: $COMPETE_CONFIG or `$COMPETE_HOME/compete_config.py`,
over COMPETE_HOME and COMPETE_DB_URL), upgrades the database's schema (the
explicit step `compete db upgrade`), and listens where the hub tells a managed
service to (JUPYTERHUB_SERVICE_URL, JUPYTERHUB_SERVICE_PREFIX: the defaults of
`c.ServiceProcess.*`).  It serves the pages and the API while three periodic
tasks run, none on the loop that answers requests: the dispatcher (every
2 s, in the dispatcher's own thread: `Dispatcher.start`), the phase clock
(every 30 s, in a thread of its own) and the mail thread (every 3 s: the mail
queued in the database goes to SMTP or the Maildir, `app.messages`).  A failing tick is logged and retried,
never fatal.  A fourth, the similarity sweep (every `c.Compete.similarity_sweep_seconds`, in a thread of
its own: `app.similarity`), signs new code and notebook submissions for the organizers' review.

The dispatcher dispatches only while it holds the database's dispatcher lease
(`app.lease`); while another process holds it (a `compete dispatcher`, a
second service on the same database) this service serves pages and the API,
and its dispatcher's ticks only try to take the lease, which it gets when the
holder's lease expires.  Stopping the service releases the lease.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable, Optional
from urllib.parse import urlparse

from tornado.httpserver import HTTPServer
from tornado.ioloop import PeriodicCallback
from traitlets import Unicode, default
from traitlets.config import Configurable

from dask_workers import executors

from ..app import Platform
from ..app.refresher import BoardRefresher
from ..config import load_config
from ..db import upgrade_database
from ..lifetime import watch_owner
from .app import DEFAULT_PREFIX, make_app
from .readers import BoardBuilder

log = logging.getLogger("compete.service")

PHASE_CLOCK_SECONDS = 30.0
# Mail waits in the database; a request never waits for an SMTP server.
MAIL_SECONDS = 3.0
FALLBACK_WARNING = (
    "No Docker engine answers: submissions run with the 'process' executor, which does not "
    "isolate them. Run only trusted code, or start Docker and restart the hub."
)
PROCESS_WARNING = (
    "Submissions run with the 'process' executor (c.Compete.executor = 'process'), which does not "
    "isolate them. Run only trusted code."
)


class ServiceProcess(Configurable):
    """Where the service listens: what the hub gives a managed service, unless the config file says otherwise."""

    url = Unicode(help="URL the service listens on. Defaults to $JUPYTERHUB_SERVICE_URL, "
                       "else http://127.0.0.1:10101.").tag(config=True)
    prefix = Unicode(help="URL prefix of the service's pages and API. Defaults to "
                          f"$JUPYTERHUB_SERVICE_PREFIX, else {DEFAULT_PREFIX}.").tag(config=True)

    @default("url")
    def _url_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_URL") or "http://127.0.0.1:10101"

    @default("prefix")
    def _prefix_default(self) -> str:
        return os.environ.get("JUPYTERHUB_SERVICE_PREFIX") or DEFAULT_PREFIX


def resolve_executor(config) -> Optional[str]:
    """Pin `auto` to what this machine has; the warning organizers see when it is `process`."""
    if config.executor == "auto":
        if executors.docker_available():
            config.executor = "docker"
            return None
        config.executor = "process"
        return FALLBACK_WARNING
    if config.executor == "process":
        return PROCESS_WARNING
    return None


class Ticker:
    """Runs `fn` every `seconds` in its own thread; an exception is logged, never fatal.

    A tick that is still running when the next one is due is not doubled.
    """

    def __init__(self, name: str, fn: Callable[[], Any], seconds: float):
        self.name = name
        self.fn = fn
        self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=f"compete-{name}")
        self.running = False
        self.last_error: Optional[str] = None
        self.callback = PeriodicCallback(self._tick, seconds * 1000)

    def start(self) -> None:
        self.callback.start()

    def stop(self) -> None:
        self.callback.stop()
        self.pool.shutdown(wait=False, cancel_futures=True)

    async def _tick(self) -> None:
        if self.running:
            return
        self.running = True
        try:
            await asyncio.get_running_loop().run_in_executor(self.pool, self.fn)
            self.last_error = None
        except Exception as exc:  # noqa: BLE001 - a periodic task must survive its own failures
            text = f"{type(exc).__name__}: {exc}"
            if text != self.last_error:
                log.exception("%s tick failed (retrying every %.0f s)", self.name, self.callback.callback_time / 1000)
            self.last_error = text
        finally:
            self.running = False


def main(argv: Optional[list[str]] = None) -> int:
    # A hub stopped cleanly sends SIGTERM; one that was killed sends nothing: follow its process.
    watch_owner()
    loaded = load_config()
    config = loaded.compete
    logging.basicConfig(
        level=config.log_level,
        format="[%(levelname)1.1s %(asctime)s %(name)s] %(message)s",
    )
    if loaded.file is not None:
        log.info("configuration file %s", loaded.file)
    if not config.db_url:
        os.makedirs(config.home, exist_ok=True)  # the SQLite file's folder
    log.info("%s", upgrade_database(config.resolved_db_url()))
    warning = resolve_executor(config)
    if warning:
        log.warning(warning)
    platform = Platform(config)
    log.info("platform home %s, database %s, executor %s",
             config.home, platform.db.engine.url.render_as_string(), config.executor)
    dispatcher = None
    try:
        # A failure contained: a dispatcher that cannot be imported (distributed) or started
        # leaves the pages and the API serving.
        from ..dispatch import Dispatcher

        dispatcher = Dispatcher(platform)
    except Exception:  # noqa: BLE001 - pages and the API still work without a queue
        log.exception("the dispatcher could not start: submissions wait until the service restarts")
    # Boards are ranked again after results by a process of their own (the dispatcher goes on recording).
    builder = BoardBuilder(platform.db.url) if config.board_reader_processes > 0 else None
    refresher = BoardRefresher(builder or platform.runs.refresh_boards)
    platform.runs.after_finish = refresher.request
    try:
        asyncio.run(serve(platform, dispatcher, warning, ServiceProcess(config=loaded.config)))
    finally:
        if dispatcher is not None:
            try:
                dispatcher.close()
            except Exception:  # noqa: BLE001
                log.exception("closing the dispatcher failed")
        refresher.close()
        if builder is not None:
            builder.close()
        platform.close()
    return 0


async def serve(platform, dispatcher, executor_warning: Optional[str],
                where: Optional[ServiceProcess] = None) -> None:
    """Serve until SIGTERM or SIGINT."""
    where = where or ServiceProcess()
    prefix = where.prefix
    url = urlparse(where.url)
    app = make_app(platform, prefix=prefix, dispatcher=dispatcher, executor_warning=executor_warning)
    server = HTTPServer(app, xheaders=True, max_body_size=platform.config.max_upload_bytes + (1 << 20))
    server.listen(url.port or 80, url.hostname or "127.0.0.1")
    log.info("competition service listening at %s (prefix %s)", url.geturl(), prefix)

    tickers = [Ticker("phase-clock", platform.tick_phases, PHASE_CLOCK_SECONDS),
               Ticker("mail", platform.send_queued, MAIL_SECONDS)]
    if platform.config.similarity_sweep_seconds > 0:
        tickers.append(Ticker("similarity", platform.similarity_sweep, platform.config.similarity_sweep_seconds))
    for ticker in tickers:
        ticker.start()
    if dispatcher is not None:
        # Its own thread and clock: a request that holds this loop does not hold back dispatching.
        dispatcher.start()

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    try:
        await stop.wait()
        log.info("stopping")
    finally:
        server.stop()
        for ticker in tickers:
            ticker.stop()
        app.settings["blocking_pool"].shutdown(wait=False, cancel_futures=True)
        if app.settings.get("board_readers") is not None:
            app.settings["board_readers"].close()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
