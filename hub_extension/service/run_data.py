"""The per-run, read-only data links of the service: `GET api/v1/runs/<token>/data/<key>`.

A worker of an organizer's queue (which does not share the platform's
store) fetches each dataset of its run here (`hub_extension.data_links`
makes the links the job carries).  No hub login: the token is the
credential.  Every request checks that the token was signed by the
platform, that it grants `key`, that the run it was made for is still that
attempt (the submission's `dispatch_key`) and not final, and that the
store holds the dataset; anything else is refused (403, or 404 for a
dataset the store lacks) with a sentence saying why.  The file is streamed
in chunks read off the event loop; a single `Range: bytes=a-b` is honoured
(206), so that an interrupted download can resume.
"""
from __future__ import annotations

import asyncio
import logging
import re
from typing import Any, Optional

from tornado import web

from .. import models as m
from ..data_links import LinkError, RunDataSigner, RunGrant

log = logging.getLogger("compete.run_data")

CHUNK = 1 << 20
_RANGE = re.compile(r"bytes=(\d*)-(\d*)$")


class RunDataHandler(web.RequestHandler):
    """Streams one dataset of one open run to the worker holding its link."""

    def set_default_headers(self) -> None:
        self.set_header("X-Content-Type-Options", "nosniff")
        self.set_header("Cache-Control", "no-store")

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        reason = self._reason
        exc = kwargs.get("exc_info", (None, None))[1]
        if isinstance(exc, web.HTTPError) and exc.log_message:
            reason = exc.log_message
        self.set_header("Content-Type", "application/json")
        self.finish({"error": reason, "status": status_code})

    @property
    def platform(self):
        return self.settings["platform"]

    async def _blocking(self, fn, *args: Any) -> Any:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.settings.get("blocking_pool"), fn, *args)

    def _signer(self) -> RunDataSigner:
        signer = self.settings.get("run_data_signer")
        if signer is None:
            signer = RunDataSigner.for_home(self.platform.config.home)
            self.settings["run_data_signer"] = signer
        return signer

    def _open_run(self, grant: RunGrant) -> Optional[str]:
        """Why the run of `grant` may not read data now, or None when it may."""
        with self.platform.db.session() as s:
            sub = s.get(m.Submission, grant.submission_id)
            if sub is None:
                return "the run of this link no longer exists"
            if sub.dispatch_key != grant.dispatch_key:
                return "this link belongs to an earlier attempt of the run"
            if sub.status in m.TERMINAL_STATUSES:
                return f"the run of this link is over ({sub.status})"
        return None

    async def get(self, token: str, key: str) -> None:
        try:
            grant = self._signer().verify(token)
        except LinkError as exc:
            raise web.HTTPError(403, f"refused: {exc}") from None
        if key not in grant.keys:
            raise web.HTTPError(403, "refused: this link does not grant that dataset")
        refusal = await self._blocking(self._open_run, grant)
        if refusal:
            raise web.HTTPError(403, f"refused: {refusal}")
        store = self.platform.store
        if not await self._blocking(store.has_dataset, key):
            raise web.HTTPError(404, "the platform's store does not hold this dataset")
        size = await self._blocking(store.dataset_size, key)
        start, end = 0, size - 1
        wanted = self.request.headers.get("Range")
        if wanted:
            match = _RANGE.match(wanted.strip())
            if not match or (not match.group(1) and not match.group(2)):
                raise web.HTTPError(416, "only one range of bytes (bytes=a-b) is served")
            if match.group(1):
                start = int(match.group(1))
                end = min(int(match.group(2)), size - 1) if match.group(2) else size - 1
            else:
                start = max(size - int(match.group(2)), 0)
            if start > end or start >= size:
                self.set_header("Content-Range", f"bytes */{size}")
                raise web.HTTPError(416, "the range asked for is outside the dataset")
            self.set_status(206)
            self.set_header("Content-Range", f"bytes {start}-{end}/{size}")
        self.set_header("Content-Type", "application/zip")
        self.set_header("Accept-Ranges", "bytes")
        self.set_header("Content-Length", str(end - start + 1))
        log.info("dataset %s… for submission %s (bytes %d-%d of %d)", key[:12], grant.submission_id,
                 start, end, size)
        fh = await self._blocking(store.open_dataset, key)
        try:
            if start:
                await self._blocking(fh.seek, start)
            left = end - start + 1
            while left > 0:
                chunk = await self._blocking(fh.read, min(CHUNK, left))
                if not chunk:
                    break
                left -= len(chunk)
                self.write(chunk)
                await self.flush()
        finally:
            await self._blocking(fh.close)
        self.finish()


def run_data_routes(prefix: str) -> list[Any]:
    """The handler's route (described in openapi.yaml as `/runs/{token}/data/{key}`)."""
    return [(rf"{prefix}api/v1/runs/(?P<token>[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+)/data/(?P<key>[0-9a-f]{{64}})",
             RunDataHandler)]
