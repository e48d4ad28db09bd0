"""A platform and its dispatcher on the docker executor, shared by the tests of one module."""
from __future__ import annotations

from pathlib import Path

from hub_extension.app import Platform


class DockerStack:
    """One platform and one dispatcher on the docker executor."""

    def __init__(self, home: Path):
        from hub_extension.dispatch import Dispatcher

        self.platform = Platform(home=str(home))
        self.platform.config.executor = "docker"
        self.dispatcher = Dispatcher(self.platform)

    def finish(self, sid: int, timeout: float = 300) -> dict:
        """Send submission `sid` and wait for its final state."""
        assert self.dispatcher.dispatch(sid)
        return self.dispatcher.wait(sid, timeout)

    def close(self) -> None:
        try:
            self.dispatcher.close()
        finally:
            self.platform.close()
