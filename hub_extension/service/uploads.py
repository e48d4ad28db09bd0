"""An incremental `multipart/form-data` parser for uploads that stream to disk.

`MultipartStream.feed(chunk)` is called with each piece of the request body
as it arrives (from `RequestHandler.data_received`): the part named by
`file_field` goes straight into a file, small text fields are kept in memory
(at most `FIELD_MAX_BYTES` each, `FIELDS_MAX` of them), any other file part is
dropped.  The memory it holds is the current chunk plus a tail as long as the
boundary, whatever the size of the upload; a boundary split across chunks is
found.  Every refusal (a file over the cap, a field too long, a malformed
body, a file name that is not UTF-8) is an `UploadRefused` with its HTTP
status and a message that says what to fix.

The handler side (`StreamedUpload`) never touches the disk on the event loop
while a body arrives: the bytes go to an `OffLoopFile`, which gathers them and
hands each batch of `WRITE_BATCH_BYTES` to a thread of the upload's own.
Under heavy writeback a `write()` waits in the kernel (dirty-page throttling)
and the unlink of a large file waits for its pages under writeback: on the
loop, either stalled every other request for up to a second.
"""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import tempfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO, Callable, Optional

from tornado import httputil, web

from ..app import PlatformError

# Room for multipart headers around the file itself.
MULTIPART_SLACK = 64 * 1024
FIELD_MAX_BYTES = 64 * 1024
FIELDS_MAX = 32
HEADERS_MAX_BYTES = 16 * 1024
# Bytes gathered before a write is handed to the upload's thread.  An upload
# holds at most two batches (one being written, one being gathered) plus a chunk.
WRITE_BATCH_BYTES = 1024 * 1024

log = logging.getLogger(__name__)

_PREAMBLE, _HEADERS, _BODY, _AFTER_BOUNDARY, _DONE = range(5)


class UploadRefused(PlatformError):
    """Why an upload is refused: `status` (400, 413 or 507), `code` and a message for the client."""

    def __init__(self, status: int, message: str, code: Optional[str] = None):
        super().__init__(message)
        self.status = status
        self.code = code or ("too_large" if status == 413 else "bad_request")


def multipart_boundary(content_type: str) -> bytes:
    """The boundary of a `multipart/form-data` Content-Type header."""
    _, params = httputil._parse_header(content_type)
    boundary = params.get("boundary", "")
    if boundary.startswith('"') and boundary.endswith('"'):
        boundary = boundary[1:-1]
    if not boundary or len(boundary) > 200:
        raise UploadRefused(400, "the multipart/form-data Content-Type has no usable boundary")
    return boundary.encode("latin-1")


class MultipartStream:
    """Parses one multipart body fed in pieces; see the module docstring.

    `open_file(filename)` is called once, with the client's file name (not
    cleaned), when the file part starts, and returns the binary file to
    write to.  After the last `feed`, `finish()` checks the body was complete.
    """

    def __init__(self, boundary: bytes, open_file: Callable[[str], IO[bytes]], *, max_file_bytes: int,
                 file_field: str = "file"):
        self.delimiter = b"\r\n--" + boundary
        self.open_file = open_file
        self.max_file_bytes = max_file_bytes
        self.file_field = file_field
        self.fields: dict[str, str] = {}
        self.filename: Optional[str] = None
        self.file_bytes = 0
        self._file: Optional[IO[bytes]] = None
        self._buf = bytearray(b"\r\n")  # the first boundary has no CRLF before it
        self._state = _PREAMBLE
        self._part: Optional[str] = None  # "file", "field", or None (dropped)
        self._name = ""
        self._value = bytearray()

    @property
    def done(self) -> bool:
        return self._state == _DONE

    def feed(self, chunk: bytes) -> None:
        if self._state == _DONE:
            return  # an epilogue after the closing boundary is ignored
        self._buf += chunk
        while True:
            if self._state in (_PREAMBLE, _BODY):
                at = self._buf.find(self.delimiter)
                if at < 0:
                    # Keep what could be the start of a boundary split across chunks.
                    keep = len(self.delimiter) - 1
                    if len(self._buf) > keep:
                        self._emit(self._buf[:len(self._buf) - keep])
                        del self._buf[:len(self._buf) - keep]
                    return
                self._emit(self._buf[:at])
                del self._buf[:at + len(self.delimiter)]
                self._end_part()
                self._state = _AFTER_BOUNDARY
            elif self._state == _AFTER_BOUNDARY:
                if len(self._buf) < 2:
                    return
                if self._buf[:2] == b"--":
                    self._state = _DONE
                    self._buf.clear()
                    return
                end = self._buf.find(b"\r\n")
                if end < 0:
                    if len(self._buf) > 256:
                        raise UploadRefused(400, "the multipart body is malformed (garbage after a boundary)")
                    return
                if self._buf[:end].strip(b" \t"):
                    raise UploadRefused(400, "the multipart body is malformed (garbage after a boundary)")
                del self._buf[:end + 2]
                self._state = _HEADERS
            elif self._state == _HEADERS:
                end = self._buf.find(b"\r\n\r\n")
                if end < 0:
                    if len(self._buf) > HEADERS_MAX_BYTES:
                        raise UploadRefused(400, "the headers of a multipart part are too long")
                    return
                self._start_part(bytes(self._buf[:end]))
                del self._buf[:end + 4]
                self._state = _BODY

    def finish(self) -> None:
        """The body ended: it must have closed its last part."""
        if self._state != _DONE:
            self.close()
            raise UploadRefused(400, "the multipart body ended before its closing boundary (incomplete upload?)")

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None

    # -- parts ---------------------------------------------------------------------------
    def _start_part(self, raw: bytes) -> None:
        try:
            text = raw.decode("utf-8")
        except UnicodeDecodeError:
            raise UploadRefused(400, "the name of the uploaded file (or of a form field) is not valid UTF-8: "
                                     "rename the file with plain letters, digits, '-', '_' and '.'") from None
        headers = httputil.HTTPHeaders.parse(text + "\r\n")
        disposition, params = httputil._parse_header(headers.get("Content-Disposition", ""))
        if disposition != "form-data" or not params.get("name"):
            raise UploadRefused(400, "a part of the multipart body has no Content-Disposition: form-data name")
        self._name = params["name"]
        self._value = bytearray()
        if "filename" in params:
            if self._name == self.file_field and self._file is None and self.filename is None:
                self.filename = params["filename"]
                self._file = self.open_file(self.filename)
                self._part = "file"
            else:
                self._part = None
        else:
            if len(self.fields) >= FIELDS_MAX:
                raise UploadRefused(400, f"the form has more than {FIELDS_MAX} fields")
            self._part = "field"

    def _emit(self, data: bytearray) -> None:
        if not data or self._state == _PREAMBLE:
            return
        if self._part == "file":
            self.file_bytes += len(data)
            if self.file_bytes > self.max_file_bytes:
                self.close()
                raise UploadRefused(413, f"the file is larger than {self.max_file_bytes} bytes; "
                                         f"the largest accepted is {self.max_file_bytes}")
            self._file.write(data)
        elif self._part == "field":
            if len(self._value) + len(data) > FIELD_MAX_BYTES:
                raise UploadRefused(400, f"the form field {self._name!r} is longer than {FIELD_MAX_BYTES} bytes")
            self._value += data

    def _end_part(self) -> None:
        if self._part == "file":
            self.close()
        elif self._part == "field":
            self.fields.setdefault(self._name, self._value.decode("utf-8", "replace"))
        self._part = None


# -- the handler side ------------------------------------------------------------------------
def safe_upload_name(name: str, default: str) -> str:
    """A file name without folders or odd characters, keeping its suffix."""
    base = os.path.basename((name or "").replace("\\", "/")).strip()
    base = re.sub(r"[^A-Za-z0-9._-]+", "_", base).lstrip(".")
    return base[:120] or default


class OffLoopFile:
    """A binary file written by a thread (`executor`, one worker: the writes keep their order).

    `write()` only gathers the bytes (on the event loop, no system call);
    `await flush()` hands them over once there is a batch of them, and waits
    only while the previous batch is still being written: one batch on its
    way to the disk, the next one gathering, whatever the size of the file.
    That wait is the flow control of the upload (tornado reads no more of the
    body meanwhile).  `close()` says no more bytes come: the next `flush()`
    writes the rest and closes the file, and `complete` turns true.
    `discard()` drops what is not written yet and closes the file, without
    waiting.  A write that fails is raised by the `flush()` that follows it.
    """

    def __init__(self, path: Path, executor: ThreadPoolExecutor, batch_bytes: int = WRITE_BATCH_BYTES):
        self.path = path
        self.batch_bytes = batch_bytes
        self._executor = executor
        self._fh: Optional[IO[bytes]] = open(path, "wb")  # creating an empty file does not wait for the disk
        self._pending = bytearray()
        self._writing: Optional[Future] = None
        self.closed = False  # no more bytes accepted
        self.complete = False  # every byte written and the file closed
        self.bytes_written = 0

    def write(self, data) -> int:
        if self.closed:
            raise ValueError(f"write to {self.path.name} after its end")
        self._pending += data
        return len(data)

    def close(self) -> None:
        self.closed = True

    @property
    def flush_due(self) -> bool:
        return not self.complete and (len(self._pending) >= self.batch_bytes or self.closed) and self._fh is not None

    async def flush(self) -> None:
        if not self.flush_due:
            return
        if self._writing is not None:
            writing, self._writing = self._writing, None
            await asyncio.wrap_future(writing)
            if self._fh is None:  # discarded meanwhile
                return
        data, self._pending = self._pending, bytearray()
        last = self.closed
        self._writing = self._executor.submit(self._write, self._fh, data, last)
        if last:
            writing, self._writing = self._writing, None
            await asyncio.wrap_future(writing)
            self._fh = None
            self.complete = True

    def finish_blocking(self) -> None:
        """`close()` and the final flush, waiting on the calling thread: for a body whose end
        only shows once it has all arrived (a raw body sent chunked).  It waits for at most
        two batches."""
        self.closed = True
        if self.complete or self._fh is None:
            return
        if self._writing is not None:
            writing, self._writing = self._writing, None
            writing.result()
        data, self._pending = self._pending, bytearray()
        self._executor.submit(self._write, self._fh, data, True).result()
        self._fh = None
        self.complete = True

    def discard(self) -> None:
        self.closed = True
        self._pending = bytearray()
        if self._fh is not None and not self.complete:
            # Queued behind the write in progress (if any); its outcome no longer matters.
            self._executor.submit(self._fh.close).add_done_callback(lambda f: f.exception())
            if self._writing is not None:
                self._writing.add_done_callback(lambda f: f.exception())
                self._writing = None
        self._fh = None

    def _write(self, fh: IO[bytes], data: bytearray, last: bool) -> None:
        try:
            if data:
                fh.write(data)
                self.bytes_written += len(data)
        finally:
            if last:
                fh.close()


class StreamedUpload:
    """Mixin of handlers whose POST body is a file, written to disk as it arrives.

    A `multipart/form-data` body is parsed while it arrives (`MultipartStream`):
    the `upload_field` part goes to disk, small text fields stay in memory
    (`field(name)`).  A raw body (`?filename=NAME`) is written as it is.
    Either way the service holds a batch or two of the body at a time, never
    the whole of it, and parses nothing after the body has arrived.  The disk
    work (writes, closing, removing the folder) runs in a thread of the
    upload's own (`OffLoopFile`), never on the event loop; `data_received` is
    a coroutine, so tornado reads no more of the body while a batch waits.

    The handler class must be decorated with `tornado.web.stream_request_body`.
    Identity and XSRF are checked in `prepare`, before the body: a form that a
    cookie authenticates sends its `_xsrf` in the query string of its action
    (or the `X-XSRFToken` header), not as a form field.
    """

    upload_default_name = "upload.zip"
    upload_field = "file"  # the form field that carries the file
    _received = 0
    _expected: Optional[int] = None  # Content-Length, when the client sent one
    _too_large = False
    _refusal: Optional[BaseException] = None
    _write_error: Optional[OSError] = None
    _sink: Optional[OffLoopFile] = None  # the file being written (raw body or the multipart file part)
    _multipart: Optional[MultipartStream] = None
    _target: Optional[Path] = None
    _io: Optional[ThreadPoolExecutor] = None
    workdir: Optional[Path] = None

    async def prepare(self) -> None:
        if self.request.method != "POST":
            await self.authenticate()
            return
        cap = self.platform.config.max_upload_bytes
        length = self.request.headers.get("Content-Length")
        if length and length.isdigit() and int(length) > cap + MULTIPART_SLACK:
            # Answered before the body: a client that waits for "100 Continue" sends none of it.
            self.set_header("Connection", "close")
            raise web.HTTPError(413, "the upload is %s bytes; the largest accepted is %s", length, cap)
        if length and length.isdigit():
            self._expected = int(length)
        self.request.connection.set_max_body_size(cap + MULTIPART_SLACK)
        self.workdir = Path(tempfile.mkdtemp(prefix="compete-upload-"))
        # Its thread starts with the first write, and ends once the upload's work is done.
        self._io = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compete-upload")
        try:
            await self.authenticate()
            self.require_login()
        except Exception as exc:  # noqa: BLE001 - answered once the body is read
            # Refusing before reading the body makes the client see a reset
            # connection instead of the answer: read (and drop) it first.
            self._refusal = exc
            return
        try:
            self._start_body()
        except (UploadRefused, web.HTTPError) as exc:
            self._refusal = exc

    def _start_body(self) -> None:
        content_type = self.request.headers.get("Content-Type", "")
        if content_type.startswith("multipart/form-data"):
            self._multipart = MultipartStream(
                multipart_boundary(content_type), self._open_target, max_file_bytes=self.platform.config.max_upload_bytes,
                file_field=self.upload_field)
        else:
            self._open_target(self.get_query_argument("filename", ""))

    def _open_target(self, filename: str) -> OffLoopFile:
        self._target = self.workdir / safe_upload_name(filename, self.upload_default_name)
        self._sink = OffLoopFile(self._target, self._io)
        return self._sink

    async def data_received(self, chunk: bytes) -> None:
        if self._refusal is not None or self._too_large or self._write_error is not None:
            return  # read and dropped: the answer goes out once the body is in
        self._received += len(chunk)
        if self._received > self.platform.config.max_upload_bytes + MULTIPART_SLACK:
            self._too_large = True
            self._close_files()
            return
        try:
            if self._multipart is not None:
                self._multipart.feed(chunk)  # the parser is cheap: it stays on the loop
            elif self._sink is not None:
                self._sink.write(chunk)
                if self._expected is not None and self._received >= self._expected:
                    self._sink.close()  # the last bytes of the body: written and closed below
            if self._sink is not None:
                await self._sink.flush()
        except UploadRefused as exc:
            self._refusal = exc
            self._close_files()
        except OSError as exc:  # the disk refused a write (full, quota): answered once the body is in
            log.error("upload to %s failed: %s", self._target, exc)
            self._write_error = exc
            self._close_files()

    def _close_files(self) -> None:
        """Drops the file being written, unless it is complete (no waiting, no disk work here)."""
        if self._sink is not None and not self._sink.complete:
            self._sink.discard()
        if self._multipart is not None:
            self._multipart.close()  # the parser writes no more

    def uploaded_file(self) -> Path:
        """The uploaded file, saved under its (cleaned) name in a private folder."""
        if self._refusal is not None or self._too_large or self._write_error is not None:
            self._close_files()
        if self._refusal is not None:
            raise self._refusal
        cap = self.platform.config.max_upload_bytes
        if self._too_large:
            raise web.HTTPError(413, "the upload is larger than %s bytes", cap)
        if self._write_error is not None:
            raise web.HTTPError(507, "the service could not store the upload (%s); try again later",
                                self._write_error.strerror or type(self._write_error).__name__)
        if self._multipart is not None:
            try:
                self._multipart.finish()
            except UploadRefused:
                self._close_files()
                raise
            if not self._multipart.filename:  # a browser sends an empty name when no file was chosen
                raise PlatformError(f"choose a file to upload (form field {self.upload_field!r})")
            self.form = dict(self._multipart.fields)
            # The closing boundary came with a chunk: the file was written and closed in data_received.
            self._complete_sink()
            return self._target
        self.form = {}
        if self._received == 0:
            self._close_files()
            raise PlatformError("the request has no file: send multipart/form-data with a 'file' field, "
                                "or the bytes with ?filename=NAME")
        if self._received > cap:
            self._close_files()
            raise web.HTTPError(413, "the file is %s bytes; the largest accepted is %s", self._received, cap)
        # A raw body sent chunked: its end shows only now.  The last batch at most is left.
        self._complete_sink()
        return self._target

    def _complete_sink(self) -> None:
        if self._sink is None or self._sink.complete:
            return
        try:
            self._sink.finish_blocking()
        except OSError as exc:
            log.error("upload to %s failed: %s", self._target, exc)
            self._close_files()
            raise web.HTTPError(507, "the service could not store the upload (%s); try again later",
                                exc.strerror or type(exc).__name__) from None

    def field(self, name: str) -> Optional[str]:
        """A form field (multipart) or query argument."""
        value = getattr(self, "form", {}).get(name)
        return value if value is not None else self.get_query_argument(name, None)

    def on_finish(self) -> None:
        self._close_files()
        workdir, self.workdir = self.workdir, None
        if self._io is not None:
            if workdir is not None:
                # Unlinking hundreds of MB waits for their pages under writeback: not on the loop.
                self._io.submit(shutil.rmtree, workdir, ignore_errors=True)
            self._io.shutdown(wait=False)  # the thread ends once the queued work is done
        elif workdir is not None:
            shutil.rmtree(workdir, ignore_errors=True)

    def on_connection_close(self) -> None:
        self.on_finish()
        super().on_connection_close()
