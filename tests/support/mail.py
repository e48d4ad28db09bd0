"""A real SMTP server for the tests (aiosmtpd on a free local port) that keeps what it receives.

`smtp_server` (one per session) is the server the shared hub's platform sends
its mail to; tests read `smtp_server.received` (parsed messages, newest last)
and wait for a mail with `smtp_server.wait_for(...)`.
"""
from __future__ import annotations

import email
import threading
import time
from email.message import EmailMessage
from email.policy import default as default_policy
from typing import Callable, Iterator

import pytest
from aiosmtpd.controller import Controller

from .hub import free_ports


class Recorder:
    """The aiosmtpd handler: keeps each message with its envelope's recipients."""

    def __init__(self) -> None:
        self.received: list[tuple[list[str], EmailMessage]] = []
        self.lock = threading.Lock()
        self.refuse: set[str] = set()  # addresses answered 550

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802 - aiosmtpd's name
        if address in self.refuse:
            return "550 no such mailbox here"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd's name
        msg = email.message_from_bytes(envelope.content, policy=default_policy)
        with self.lock:
            self.received.append((list(envelope.rcpt_tos), msg))
        return "250 Message accepted for delivery"


class SmtpServer:
    def __init__(self, controller: Controller, recorder: Recorder):
        self.controller, self.recorder = controller, recorder
        self.host, self.port = controller.hostname, controller.port

    @property
    def received(self) -> list[tuple[list[str], EmailMessage]]:
        with self.recorder.lock:
            return list(self.recorder.received)

    def wait_for(self, match: Callable[[list[str], EmailMessage], bool], timeout: float = 30) -> EmailMessage:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for rcpt, msg in self.received:
                if match(rcpt, msg):
                    return msg
            time.sleep(0.2)
        raise AssertionError(f"no such mail within {timeout} s; received: "
                             f"{[(r, m['Subject']) for r, m in self.received]}")


def start_smtp() -> SmtpServer:
    recorder = Recorder()
    controller = Controller(recorder, hostname="127.0.0.1", port=free_ports(1)[0])
    controller.start()
    return SmtpServer(controller, recorder)


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = start_smtp()
    yield server
    server.controller.stop()
