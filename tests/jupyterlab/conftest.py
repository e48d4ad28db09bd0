"""Fixtures of the participant-side tests."""
from __future__ import annotations

import pytest

from tests.service.api_harness import ApiServer
from tests.service.builders import build_world

from .lab_helpers import RunningStack


@pytest.fixture
def server(platform):
    srv = ApiServer(platform).start()
    yield srv
    srv.stop()


@pytest.fixture
def world(platform, tmp_path):
    return build_world(platform, tmp_path)


@pytest.fixture(scope="module")
def running(tmp_path_factory):
    stack = RunningStack(tmp_path_factory.mktemp("running-home"))
    yield stack
    stack.close()


@pytest.fixture
def widget_comms(monkeypatch):
    """A comm that records what a widget would send to the front end (nothing is sent)."""
    import comm
    from comm.base_comm import BaseComm, CommManager

    manager = CommManager()
    sent: list[tuple[str, str, dict]] = []

    class RecordingComm(BaseComm):
        def publish_msg(self, msg_type, data=None, metadata=None, buffers=None, **keys):
            sent.append((msg_type, self.comm_id, data or {}))

    monkeypatch.setattr(comm, "create_comm", lambda *args, **kwargs: RecordingComm(*args, **kwargs))
    monkeypatch.setattr(comm, "get_comm_manager", lambda: manager)
    return sent
