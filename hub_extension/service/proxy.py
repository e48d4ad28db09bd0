"""The embedded default's proxy: the PyPI `configurable-http-proxy`, keeping its connections to the services open.

    python -m hub_extension.service.proxy [configurable-http-proxy's options]

That proxy asks its targets (the hub, the competitions service, users'
servers) through tornado's simple HTTP client, which opens a new connection
for every request and closes it after the answer.  Thousands of widgets
polling leaderboards then cost the proxy and the service a TCP connection
each, more than the answer itself.  Here its GET and HEAD requests go through
`KeepAliveHTTPClient`, which keeps up to `IDLE_PER_HOST` idle connections per
target and reuses them; every other request (uploads, forms) and websockets
go as before.  The proxy's options and behaviour are otherwise its own.
"""
from __future__ import annotations

import asyncio
import io
import sys
import time
from typing import Any, Callable, Optional
from urllib.parse import urlsplit

from tornado import httputil
from tornado.http1connection import HTTP1Connection, HTTP1ConnectionParameters
from tornado.httpclient import AsyncHTTPClient, HTTPRequest, HTTPResponse
from tornado.iostream import IOStream, StreamClosedError
from tornado.simple_httpclient import HTTPStreamClosedError, HTTPTimeoutError, SimpleAsyncHTTPClient
from tornado.tcpclient import TCPClient

# Idle connections kept per target (host, port); more are closed after their answer.
IDLE_PER_HOST = 64
# An answer larger than this is refused, as the simple client's default.
MAX_BODY = 100 * 1024 * 1024
KEPT_METHODS = frozenset({"GET", "HEAD"})


class _Collect(httputil.HTTPMessageDelegate):
    """The parts of one answer, as tornado's HTTP/1 connection reads them."""

    def __init__(self) -> None:
        self.start_line: Optional[httputil.ResponseStartLine] = None
        self.headers: Optional[httputil.HTTPHeaders] = None
        self.chunks: list[bytes] = []

    def headers_received(self, start_line: Any, headers: httputil.HTTPHeaders) -> None:
        self.start_line, self.headers = start_line, headers

    def data_received(self, chunk: bytes) -> None:
        self.chunks.append(chunk)


class KeepAliveHTTPClient(SimpleAsyncHTTPClient):
    """tornado's simple client, with GET and HEAD requests to plain-HTTP targets on kept connections.

    A kept connection that the target closed while idle fails before any
    byte of the answer: the request is sent once more on a new connection
    (GET and HEAD only, so nothing is done twice).
    """

    def initialize(self, *args: Any, **kwargs: Any) -> None:  # type: ignore[override]
        super().initialize(*args, **kwargs)
        self._idle: dict[tuple[str, int], list[IOStream]] = {}
        self._tcp = TCPClient()

    def fetch_impl(self, request: HTTPRequest, callback: Callable[[HTTPResponse], None]) -> None:
        parts = urlsplit(request.url)
        if (request.method not in KEPT_METHODS or parts.scheme != "http" or request.body
                or request.streaming_callback or request.header_callback or request.proxy_host
                or request.follow_redirects):
            super().fetch_impl(request, callback)
            return
        future = asyncio.ensure_future(self._fetch(request, parts))

        def done(f: asyncio.Future) -> None:
            error = f.exception()
            callback(self._error(request, time.monotonic(), error) if error is not None else f.result())

        future.add_done_callback(done)

    async def _fetch(self, request: HTTPRequest, parts: Any) -> HTTPResponse:
        started, started_wall = time.monotonic(), time.time()
        key = (parts.hostname or "127.0.0.1", parts.port or 80)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        headers = httputil.HTTPHeaders(request.headers)
        for hop in ("Connection", "Keep-Alive"):  # this hop's, not the client's
            headers.pop(hop, None)
        headers.setdefault("Host", parts.netloc)
        timeout = request.request_timeout or 20.0
        for attempt in range(2):
            idle = self._idle.get(key)
            reused = bool(idle)
            try:
                stream = idle.pop() if idle else await asyncio.wait_for(
                    self._tcp.connect(*key), request.connect_timeout or 20.0)
            except asyncio.TimeoutError:
                return self._error(request, started, HTTPTimeoutError("Timeout while connecting"))
            except OSError as exc:
                return self._error(request, started, exc)
            stream.set_close_callback(None)
            stream.set_nodelay(True)
            conn = HTTP1Connection(stream, True, HTTP1ConnectionParameters(
                no_keep_alive=False, decompress=bool(request.decompress_response), max_body_size=MAX_BODY))
            answer = _Collect()
            try:
                conn.write_headers(httputil.RequestStartLine(request.method, path, "HTTP/1.1"), headers)
                conn.finish()
                complete = await asyncio.wait_for(conn.read_response(answer), timeout)
            except asyncio.TimeoutError:
                conn.close()
                return self._error(request, started, HTTPTimeoutError("Timeout during request"))
            except (StreamClosedError, OSError) as exc:
                conn.close()
                if reused and answer.start_line is None and attempt == 0:
                    continue  # the target closed the idle connection: once more on a new one
                return self._error(request, started, HTTPStreamClosedError("Stream closed") if
                                   isinstance(exc, StreamClosedError) else exc)
            if not complete or answer.start_line is None or answer.headers is None:
                conn.close()
                return self._error(request, started, HTTPStreamClosedError("Stream closed"))
            self._keep(key, conn, answer, request.method == "HEAD")
            return HTTPResponse(request, answer.start_line.code, reason=answer.start_line.reason,
                                headers=answer.headers, buffer=io.BytesIO(b"".join(answer.chunks)),
                                request_time=time.monotonic() - started, start_time=started_wall,
                                effective_url=request.url)
        raise AssertionError("unreachable")  # pragma: no cover

    def _keep(self, key: tuple[str, int], conn: HTTP1Connection, answer: _Collect, head: bool) -> None:
        """Put the connection back among the idle ones when the answer lets it be reused."""
        headers = answer.headers
        reusable = (answer.start_line is not None and answer.start_line.version == "HTTP/1.1"
                    and headers is not None and (headers.get("Connection") or "").lower() != "close"
                    and ("Content-Length" in headers or "chunked" in headers.get("Transfer-Encoding", "").lower()
                         or answer.start_line.code in (204, 304) or head))
        stream = conn.detach() if conn.stream is not None else None
        if stream is None or stream.closed():
            return
        idle = self._idle.setdefault(key, [])
        if not reusable or len(idle) >= IDLE_PER_HOST:
            stream.close()
            return
        idle.append(stream)
        # A connection the target closes while idle leaves the list at once.
        stream.set_close_callback(lambda: idle.remove(stream) if stream in idle else None)

    @staticmethod
    def _error(request: HTTPRequest, started: float, exc: BaseException) -> HTTPResponse:
        code = 599
        return HTTPResponse(request, code, error=exc, request_time=time.monotonic() - started)

    def close(self) -> None:
        for streams in self._idle.values():
            for stream in list(streams):
                stream.close()
        self._idle.clear()
        super().close()


def main(argv: Optional[list[str]] = None) -> None:
    # Imported here: the proxy's command line parses sys.argv when it runs.
    from configurable_http_proxy import cli

    AsyncHTTPClient.configure(KeepAliveHTTPClient)
    if argv is not None:
        sys.argv = [sys.argv[0], *argv]
    cli.main()


if __name__ == "__main__":
    main()
