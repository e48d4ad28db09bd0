"""The embedded default's proxy keeps its connections to the services open (`hub_extension.service.proxy`).

Its HTTP client is tried against a small tornado server that counts the
connections it accepts: GET and HEAD requests share kept connections and get
the same answers (status, headers, body, a 304) as with tornado's simple
client; other methods go on a connection of their own; a kept connection the
server closed while idle is replaced without the caller seeing an error; a
server that is gone is a 599 error, as before.  Then the real proxy command
line is run in front of that server.
"""
from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time

import pytest
import requests
from tornado import httpserver, web
from tornado.httpclient import HTTPClientError, HTTPRequest
from tornado.simple_httpclient import SimpleAsyncHTTPClient

from hub_extension.service.proxy import KeepAliveHTTPClient


class Echo(web.RequestHandler):
    def get(self) -> None:
        if self.request.headers.get("If-None-Match") == '"v1"':
            self.set_status(304)
            return
        self.set_header("Etag", '"v1"')
        self.write({"path": self.request.path, "q": self.get_query_argument("q", ""),
                    "auth": self.request.headers.get("Authorization", "")})

    def head(self) -> None:
        self.set_header("X-Seen", "head")

    def post(self) -> None:
        self.write({"body": len(self.request.body)})


class Counting(httpserver.HTTPServer):
    accepted = 0

    def handle_stream(self, stream, address):  # noqa: ANN001 - tornado's signature
        type(self).accepted += 1
        self.streams.append(stream)
        return super().handle_stream(stream, address)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def serve() -> tuple[Counting, int]:
    Counting.accepted = 0
    server = Counting(web.Application([(r"/.*", Echo)]))
    server.streams = []
    port = free_port()
    server.listen(port, "127.0.0.1")
    return server, port


def test_get_and_head_share_kept_connections_with_the_same_answers():
    async def run() -> None:
        server, port = await serve()
        client = KeepAliveHTTPClient(force_instance=True)
        simple = SimpleAsyncHTTPClient(force_instance=True)
        try:
            for i in range(20):
                url = f"http://127.0.0.1:{port}/a/b?q={i}"
                kept = await client.fetch(HTTPRequest(url, headers={"Authorization": "token t"},
                                                      follow_redirects=False))
                plain = await simple.fetch(HTTPRequest(url, headers={"Authorization": "token t"},
                                                       follow_redirects=False))
                assert kept.code == plain.code == 200 and kept.body == plain.body
                assert kept.headers["Etag"] == '"v1"' and b'"q": "%d"' % i in kept.body
            assert Counting.accepted == 1 + 20  # one kept connection, the simple client's twenty
            head = await client.fetch(HTTPRequest(f"http://127.0.0.1:{port}/", method="HEAD",
                                                  follow_redirects=False))
            assert head.code == 200 and head.headers["X-Seen"] == "head" and head.body == b""
            not_modified = await client.fetch(HTTPRequest(f"http://127.0.0.1:{port}/", follow_redirects=False,
                                                          headers={"If-None-Match": '"v1"'}), raise_error=False)
            assert not_modified.code == 304
            # Twenty at once: more kept connections, all reused afterwards.
            before = Counting.accepted
            await asyncio.gather(*[client.fetch(HTTPRequest(f"http://127.0.0.1:{port}/c", follow_redirects=False))
                                   for _ in range(20)])
            grown = Counting.accepted - before
            assert grown <= 20
            await asyncio.gather(*[client.fetch(HTTPRequest(f"http://127.0.0.1:{port}/c", follow_redirects=False))
                                   for _ in range(20)])
            assert Counting.accepted - before == grown
            # A POST goes on a connection of its own, as with the simple client.
            posted = await client.fetch(HTTPRequest(f"http://127.0.0.1:{port}/p", method="POST", body=b"x" * 100,
                                                    follow_redirects=False))
            assert posted.body == b'{"body": 100}' and Counting.accepted - before == grown + 1
        finally:
            client.close()
            simple.close()
            server.stop()

    asyncio.run(run())


def test_a_connection_closed_while_idle_is_replaced_and_a_gone_server_is_an_error():
    async def run() -> None:
        server, port = await serve()
        client = KeepAliveHTTPClient(force_instance=True)
        try:
            url = f"http://127.0.0.1:{port}/x"
            assert (await client.fetch(HTTPRequest(url, follow_redirects=False))).code == 200
            for stream in server.streams:  # the server drops its idle connections
                stream.close()
            await asyncio.sleep(0.05)
            again = await client.fetch(HTTPRequest(url, follow_redirects=False))
            assert again.code == 200 and Counting.accepted == 2
            server.stop()
            for stream in server.streams:
                stream.close()
            await asyncio.sleep(0.05)
            with pytest.raises((OSError, HTTPClientError)):
                await client.fetch(HTTPRequest(url, follow_redirects=False))
        finally:
            client.close()
            server.stop()

    asyncio.run(run())


def test_the_proxy_command_line_serves_through_kept_connections():
    async def run() -> None:
        server, port = await serve()
        proxy_port, api_port = free_port(), free_port()
        proc = subprocess.Popen([sys.executable, "-m", "hub_extension.service.proxy", "--ip", "127.0.0.1",
                                 "--port", str(proxy_port), "--api-port", str(api_port), "--log-level", "WARNING",
                                 "--default-target", f"http://127.0.0.1:{port}"])
        loop = asyncio.get_running_loop()

        def client_requests() -> list[int]:
            deadline = time.monotonic() + 30
            session = requests.Session()
            while True:
                try:
                    session.get(f"http://127.0.0.1:{proxy_port}/ready", timeout=5)
                    break
                except requests.ConnectionError:
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.1)
            answers = [session.get(f"http://127.0.0.1:{proxy_port}/s?q={i}", timeout=10) for i in range(30)]
            assert all(a.json()["q"] == str(i) for i, a in enumerate(answers))
            return [a.status_code for a in answers]

        try:
            statuses = await loop.run_in_executor(None, client_requests)
            assert statuses == [200] * 30
            assert Counting.accepted <= 2  # one connection (two when the first answer raced its reuse)
        finally:
            proc.terminate()
            proc.wait(10)
            server.stop()

    asyncio.run(run())
