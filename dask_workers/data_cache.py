"""Datasets fetched by reference: a worker's cache of archives, keyed by their SHA-256.

A job for a worker that does not see the platform's store names each
dataset by its content key and gives a URL for it (`Job.data_urls`: the
service's per-run link, or an object store's presigned URL).  `fetch`
returns the archive as a file of the worker's dataset cache
(`<cache>/blobs/<key>`, the folder `workdir.evict_cache` keeps under the
cache's size cap, least recently used first):

- a file already there is used when its SHA-256 is its key; one that is
  not (damaged, changed by hand) is fetched again;
- a download is written to a temporary file, checked against the key and
  renamed into place, so that no run ever sees a partial or wrong archive;
- an exclusive lock per key (`<cache>/blobs/.fetching/<key>`, `flock`)
  makes the runs of every worker process of the machine that need the same
  key at once download it once: the others wait and use it;
- an interrupted download resumes where it stopped (`Range`), a few times.

Worker side: the standard library only.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Optional

from .workdir import CacheUse, DatasetError, file_digest

log = logging.getLogger("compete.worker.data")

CHUNK = 1 << 20
ATTEMPTS = 3
TIMEOUT = 60.0


def _refusal(exc: urllib.error.HTTPError) -> str:
    """The sentence the platform gave with a refusal, else the HTTP status."""
    try:
        body = exc.read(4096)
        return str(json.loads(body).get("error") or exc.reason)
    except Exception:  # noqa: BLE001 - any unreadable body: the status says enough
        return f"HTTP {exc.code} {exc.reason}"


class DataCache:
    """The archives of a worker's dataset cache, fetched by URL and verified by their key."""

    def __init__(self, cache_dir: str | os.PathLike, timeout: float = TIMEOUT):
        self.blobs = Path(cache_dir) / "blobs"
        self.timeout = timeout
        # What this process did, for logs and tests: key -> "hit" | "fetched" | "refetched".
        self.events: list[tuple[str, str]] = []

    def fetch(self, key: str, url: str, use: Optional[CacheUse] = None) -> Path:
        """The verified archive `key`, downloaded from `url` unless the cache holds it intact."""
        blob = self.blobs / key
        (self.blobs / ".fetching").mkdir(parents=True, exist_ok=True)
        if use is not None:
            use.hold(blob)
        fd = os.open(self.blobs / ".fetching" / key, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            damaged = False
            if blob.is_file():
                if file_digest(blob) == key:
                    os.utime(blob)
                    self.events.append((key, "hit"))
                    log.info("dataset %s…: in the cache", key[:12])
                    return blob
                damaged = True
                log.warning("dataset %s… in the cache does not match its key: fetching it again", key[:12])
                blob.unlink(missing_ok=True)
            started = time.monotonic()
            size = self._download(key, url, blob)
            self.events.append((key, "refetched" if damaged else "fetched"))
            log.info("dataset %s…: fetched %d bytes in %.1f s", key[:12], size, time.monotonic() - started)
            return blob
        finally:
            os.close(fd)

    def _download(self, key: str, url: str, blob: Path) -> int:
        partial = blob.with_name(f".{key}.{os.getpid()}.part")
        digest = hashlib.sha256()
        received = 0
        try:
            with open(partial, "wb") as out:
                for attempt in range(ATTEMPTS):
                    request = urllib.request.Request(url)
                    if received:
                        request.add_header("Range", f"bytes={received}-")
                    try:
                        with urllib.request.urlopen(request, timeout=self.timeout) as response:
                            if received and response.status != 206:
                                # The server sent the whole file again: start over.
                                out.seek(0)
                                out.truncate()
                                digest, received = hashlib.sha256(), 0
                            for chunk in iter(lambda: response.read(CHUNK), b""):
                                out.write(chunk)
                                digest.update(chunk)
                                received += len(chunk)
                        break
                    except urllib.error.HTTPError as exc:
                        raise DatasetError(f"dataset {key[:12]} could not be fetched from the platform: "
                                           f"{_refusal(exc)}") from None
                    except (urllib.error.URLError, OSError, TimeoutError) as exc:
                        if attempt == ATTEMPTS - 1:
                            reason = getattr(exc, "reason", None) or exc
                            raise DatasetError(f"dataset {key[:12]} could not be fetched from the platform "
                                               f"({reason}); the worker must reach the platform's URL") from None
                        log.warning("dataset %s…: download interrupted after %d bytes (%s); resuming",
                                    key[:12], received, exc)
                        time.sleep(1.0 + attempt)
            if digest.hexdigest() != key:
                raise DatasetError(f"dataset {key[:12]} arrived damaged (checksum mismatch)")
            os.chmod(partial, 0o444)
            os.replace(partial, blob)
        finally:
            partial.unlink(missing_ok=True)
        return received
