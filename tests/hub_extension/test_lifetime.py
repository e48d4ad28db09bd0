"""`hub_extension.lifetime`: a process follows the hub named in its environment."""
from __future__ import annotations

import subprocess
import sys
import threading

from hub_extension.lifetime import OWNER_ENV, alive, describe_process, owner, owner_environment, watch_owner


def test_the_hub_is_named_by_pid_and_start_time():
    me = describe_process()
    assert owner({OWNER_ENV: me}) is not None and alive(owner({OWNER_ENV: me}))
    pid, started = owner({OWNER_ENV: me})
    # The same pid with another start time is another process (a recycled pid).
    assert not alive((pid, started - 100))
    assert owner({}) is None and owner({OWNER_ENV: "not-a-pid"}) is None
    assert owner_environment({OWNER_ENV: me, "OTHER": "x"}) == {OWNER_ENV: me}
    assert owner_environment({}) == {} and watch_owner(environ={}) is None


def test_the_watcher_acts_once_the_hub_is_gone():
    hub = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    gone = threading.Event()
    try:
        thread = watch_owner(gone.set, environ={OWNER_ENV: describe_process(hub.pid)}, every=0.1)
        assert thread is not None and not gone.wait(0.5)  # still running: nothing happens
        hub.kill()
        hub.wait()
        assert gone.wait(5)
    finally:
        hub.kill()
        hub.wait()
