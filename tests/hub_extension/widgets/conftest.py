"""Fixtures of the widget tests: a comm that records what a widget sends."""
from __future__ import annotations

import pytest


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


@pytest.fixture
def kit(tmp_path, monkeypatch):
    """A kit's folder (`competitions/kit/`), with the kernel of its notebook running in it."""
    folder = tmp_path / "competitions" / "kit"
    folder.mkdir(parents=True)
    monkeypatch.chdir(folder)
    return folder
