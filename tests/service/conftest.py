"""Fixtures of the page tests: the service in-process with the test world of builders.py."""
from __future__ import annotations

import pytest

from tests.service import builders
from tests.service.test_pages_harness import make_platform, start_server


def _serve(tmp_path, **world_options):
    platform = make_platform(tmp_path)
    world = builders.build_world(platform, tmp_path, **world_options)
    server = start_server(platform)
    return platform, server, world


@pytest.fixture
def world_server(tmp_path):
    platform, server, world = _serve(tmp_path)
    yield server, world
    server.stop()
    platform.close()


@pytest.fixture
def blind_server(tmp_path):
    platform, server, world = _serve(tmp_path, blind=True)
    yield server, world
    server.stop()
    platform.close()
