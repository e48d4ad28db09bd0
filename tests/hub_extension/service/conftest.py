"""Fixtures of the page tests: the service in-process on the test world of tests/support/builders.py."""
from __future__ import annotations

import pytest

from tests.support import builders
from tests.support.service_harness import start_server


@pytest.fixture
def world_server(platform, tmp_path):
    """The service and the test world."""
    world = builders.build_world(platform, tmp_path)
    server = start_server(platform)
    yield server, world
    server.stop()


@pytest.fixture
def blind_server(platform, tmp_path):
    """The service and the test world whose first phase is blind."""
    world = builders.build_world(platform, tmp_path, blind=True)
    server = start_server(platform)
    yield server, world
    server.stop()
