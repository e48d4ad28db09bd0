"""A zip written as it is sent: entries of an `app.downloads.Bundle` in, chunks of bytes out.

`zip_chunks` writes the zip into a sink that keeps only what was written
since the last chunk (`zipfile` writes to an unseekable stream with data
descriptors), reading each entry's file in pieces, so neither a file nor
the zip is ever held whole.  While it writes it counts each entry's size and
SHA-256, and it ends with `manifest.json`: the bundle's head, one line per
entry, and the files that could not be read (`left_out`).  `send_zip` takes
each chunk on the blocking pool (files are read there, never on the event
loop) and flushes it to the client.
"""
from __future__ import annotations

import hashlib
import json
import logging
import time
import zipfile
from typing import Any, Iterator

from ..app.downloads import MANIFEST, Bundle
from .uploads import safe_upload_name

log = logging.getLogger("compete.service")
CHUNK = 1 << 20


class _Sink:
    """A write-only, unseekable file for `zipfile`: it keeps the bytes until they are taken."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        self.size += len(data)
        return len(data)

    def flush(self) -> None:
        pass

    def take(self) -> bytes:
        data = b"".join(self.parts)
        self.parts.clear()
        self.size = 0
        return data


def _unique(path: str, used: set[str]) -> str:
    """`path`, or `path~2`, `path~3`… when an entry of that name was written already."""
    candidate, n = path, 1
    while candidate in used:
        n += 1
        candidate = f"{path}~{n}"
    used.add(candidate)
    return candidate


def zip_chunks(bundle: Bundle, chunk: int = CHUNK) -> Iterator[bytes]:
    """The bytes of the bundle's zip, in chunks of about `chunk` bytes; `manifest.json` is its last entry."""
    sink = _Sink()
    stamp = time.gmtime()[:6]
    listed: list[dict[str, Any]] = []
    left_out: list[dict[str, str]] = []
    used = {MANIFEST}
    with zipfile.ZipFile(sink, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as zf:  # type: ignore[arg-type]
        for entry in bundle.entries:
            try:
                source = entry.open()
            except OSError as exc:
                # Gone from the store meanwhile (a submission deleted): said in the manifest.
                log.warning("zip %s: %s left out: %s", bundle.filename, entry.path, exc)
                left_out.append({"path": entry.path, "reason": f"it could not be read: {exc.strerror or exc}"})
                continue
            path = _unique(entry.path, used)
            info = zipfile.ZipInfo(path, date_time=stamp)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            digest, size = hashlib.sha256(), 0
            # The size is known only once read: every entry may need zip64 fields.
            with source, zf.open(info, "w", force_zip64=True) as out:
                while piece := source.read(chunk):
                    digest.update(piece)
                    size += len(piece)
                    out.write(piece)
                    if sink.size >= chunk:
                        yield sink.take()
            listed.append({"path": path, "size": size, "sha256": digest.hexdigest(), **entry.meta})
            if sink.size >= chunk:
                yield sink.take()
        manifest = {**bundle.manifest, "entries": listed, "left_out": left_out}
        zf.writestr(zipfile.ZipInfo(MANIFEST, date_time=stamp),
                    json.dumps(manifest, indent=1, default=str).encode(), zipfile.ZIP_DEFLATED)
    yield sink.take()


async def send_zip(handler: Any, bundle: Bundle) -> None:
    """Stream the bundle's zip as the answer: each chunk made on the blocking pool, then flushed."""
    handler.set_header("Content-Type", "application/zip")
    handler.set_header("Content-Disposition",
                       f'attachment; filename="{safe_upload_name(bundle.filename, "submissions.zip")}"')
    chunks = zip_chunks(bundle)
    try:
        while (piece := await handler.run_blocking(next, chunks, None)) is not None:
            if piece:
                handler.write(piece)
                await handler.flush()
    finally:
        chunks.close()
    handler.finish()
