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
"""
from __future__ import annotations

from typing import IO, Callable, Optional

from tornado import httputil

FIELD_MAX_BYTES = 64 * 1024
FIELDS_MAX = 32
HEADERS_MAX_BYTES = 16 * 1024

_PREAMBLE, _HEADERS, _BODY, _AFTER_BOUNDARY, _DONE = range(5)


class UploadRefused(Exception):
    """Why an upload is refused: `status` (400 or 413), `code` and a message for the client."""

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
                raise UploadRefused(413, f"the file is larger than {self.max_file_bytes} bytes, the largest "
                                         "accepted upload")
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
