"""A queue's worker credentials give a machine the worker's part, nothing more.

Real scheduler processes (started by the platform's supervisor), real TLS with
each queue's own CA, real Dask workers and clients.
"""
from __future__ import annotations

import asyncio
import json
import pickle
import subprocess
import time
from pathlib import Path

import pytest

from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.queues import SchedulerSupervisor, client_security, create_queue

from .queue_helpers import compete_cmd


class Touch:
    """Unpickling this creates a file: proof that a pickle from a peer was loaded."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


@pytest.fixture(scope="module")
def two_queues(tmp_path_factory):
    home = tmp_path_factory.mktemp("queue-security")
    platform = Platform(home=str(home))
    supervisor = SchedulerSupervisor(platform)
    queues = {}
    for name in ("alpha", "beta"):
        create_queue(platform, name, LOCAL_ADMIN)
        address = supervisor.ensure(name)
        creds = json.loads((home / "queues" / name / "worker-credentials.json").read_text())
        queues[name] = {"address": address, "credentials": creds}
    yield platform, queues, home
    for name in queues:
        supervisor.stop(name)
    platform.close()


def _worker_security(creds, as_client: bool = False):
    from distributed.security import Security

    if as_client:
        return Security(tls_ca_file=creds["ca"], tls_client_cert=creds["cert"], tls_client_key=creds["key"],
                        require_encryption=True)
    return Security(tls_ca_file=creds["ca"], tls_worker_cert=creds["cert"], tls_worker_key=creds["key"],
                    require_encryption=True)


def _workers_on(platform, name) -> list[str]:
    from distributed import Client

    from hub_extension.queue_scheduler import queue_snapshot

    with Client(SchedulerSupervisor(platform).address(name), security=client_security(platform, name),
                timeout=10, set_as_default=False) as client:
        return [w["name"] for w in client.run_on_scheduler(queue_snapshot)["workers"]]


def test_a_worker_of_one_queue_cannot_join_another(two_queues, tmp_path):
    platform, queues, home = two_queues
    # alpha's credentials pointed at beta's scheduler: the TLS handshake fails (another CA).
    creds = dict(queues["alpha"]["credentials"], scheduler=queues["beta"]["address"])
    path = tmp_path / "mixed.json"
    path.write_text(json.dumps(creds))
    log = tmp_path / "worker.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(path), "--name", "intruder",
                                            "--worker-executor", "process"), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "cannot attach" not in log.read_text(errors="replace"):
            time.sleep(0.3)
        assert "cannot attach" in log.read_text(errors="replace"), log.read_text(errors="replace")
        assert "intruder" not in _workers_on(platform, "beta")
    finally:
        proc.kill()
        proc.wait()
    # The same worker with its own queue's credentials does attach (the test above can fail).
    good = tmp_path / "alpha.json"
    good.write_text(json.dumps(queues["alpha"]["credentials"]))
    with open(tmp_path / "worker2.log", "wb") as out:
        proc = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(good), "--name", "member",
                                            "--worker-executor", "process"), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "member" not in _workers_on(platform, "alpha"):
            time.sleep(0.3)
        assert "member" in _workers_on(platform, "alpha")
    finally:
        proc.kill()
        proc.wait()


def test_worker_credentials_cannot_connect_as_a_client(two_queues):
    from distributed import Client

    platform, queues, home = two_queues
    creds = queues["alpha"]["credentials"]
    with pytest.raises((OSError, TimeoutError)):
        Client(queues["alpha"]["address"], security=_worker_security(creds, as_client=True), timeout=5,
               set_as_default=False)
    log = (home / "queues" / "alpha" / "scheduler.log").read_text()
    assert "refused operation 'register-client' from a worker connection" in log
    # The platform's own client certificate connects (the refusal above is the certificate's role).
    with Client(queues["alpha"]["address"], security=client_security(platform, "alpha"), timeout=10,
                set_as_default=False) as client:
        assert client.status == "running"


async def _request(address, security, role, msg):
    from distributed.comm import connect

    comm = await connect(address, **security.get_connection_args(role))
    try:
        await comm.write(msg)
        return await comm.read()
    finally:
        await comm.close()


def test_worker_credentials_cannot_run_code_on_the_scheduler(two_queues, tmp_path):
    _, queues, _ = two_queues
    creds, address = queues["alpha"]["credentials"], queues["alpha"]["address"]
    marker = tmp_path / "ran-on-scheduler"

    # run_function unpickles its `function` on the scheduler: refused to a worker certificate.
    reply = asyncio.run(_request(address, _worker_security(creds), "worker",
                                 {"op": "run_function", "function": pickle.dumps(Touch(str(marker))),
                                  "args": (), "kwargs": {}}))
    assert reply.get("status") == "uncaught-error", reply
    assert "not allowed" in reply.get("exception_text", ""), reply
    assert not marker.exists()


def test_a_pickle_sent_by_a_worker_is_never_loaded(two_queues, tmp_path):
    from distributed.protocol import ToPickle
    from distributed.security import Security

    from hub_extension.queue_scheduler import REFUSED

    platform, queues, home = two_queues
    creds, address = queues["alpha"]["credentials"], queues["alpha"]["address"]
    from_worker = tmp_path / "from-worker"
    reply = asyncio.run(_request(address, _worker_security(creds), "worker",
                                 {"op": "echo", "data": ToPickle(Touch(str(from_worker)))}))
    assert reply == REFUSED, reply
    time.sleep(0.5)
    assert not from_worker.exists(), "the scheduler unpickled data sent with a worker certificate"

    # Control: the platform's own client certificate is trusted, and the same message is loaded.
    folder = home / "queues" / "alpha"
    platform_security = Security(tls_ca_file=str(folder / "ca.pem"), tls_client_cert=str(folder / "client.pem"),
                                 tls_client_key=str(folder / "client.key"), require_encryption=True)
    from_platform = tmp_path / "from-platform"
    asyncio.run(_request(address, platform_security, "client",
                         {"op": "echo", "data": ToPickle(Touch(str(from_platform)))}))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not from_platform.exists():
        time.sleep(0.1)
    assert from_platform.exists(), "the control message from the platform's client was not loaded"


def test_a_worker_event_carrying_a_pickle_reaches_the_platform_as_plain_data(two_queues, tmp_path):
    """A worker's events go to the platform's client: a pickle inside one is refused on the way."""
    from distributed import Client, Worker
    from distributed.protocol import ToPickle

    from hub_extension.queue_scheduler import REFUSED

    platform, queues, _ = two_queues
    creds, address = queues["alpha"]["credentials"], queues["alpha"]["address"]
    marker = tmp_path / "unpickled-by-platform"
    received = []

    client = Client(address, security=client_security(platform, "alpha"), timeout=10, set_as_default=False)
    try:
        client.subscribe_topic("compete-result", lambda event: received.append(event))

        async def send():
            async with Worker(address, security=_worker_security(creds), nthreads=1, name="sender",
                              dashboard=False) as worker:
                worker.log_event("compete-result", {"submission": 1, "key": "k", "result": ToPickle(Touch(str(marker)))})
                await asyncio.sleep(1.0)

        asyncio.run(send())
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not received:
            time.sleep(0.1)
        assert received, "the event never reached the platform"
        assert received[0][1]["result"] == REFUSED
        assert not marker.exists()
    finally:
        client.close()


def test_rotated_credentials_shut_out_the_old_ones(tmp_path):
    from hub_extension.queues import rotate_credentials

    home = tmp_path / "home"
    platform = Platform(home=str(home))
    supervisor = SchedulerSupervisor(platform)
    try:
        create_queue(platform, "gamma", LOCAL_ADMIN)
        supervisor.ensure("gamma")
        creds_file = home / "queues" / "gamma" / "worker-credentials.json"
        old = tmp_path / "old.json"
        old.write_text(creds_file.read_text())
        before = json.loads(old.read_text())
        info = rotate_credentials(platform, "gamma", LOCAL_ADMIN)
        after = json.loads(creds_file.read_text())
        assert after["ca"] != before["ca"] and after["scheduler"] == before["scheduler"]
        assert info["ca_fingerprint"].startswith("sha256:")
        supervisor.ensure("gamma")  # what the dispatcher does on its next check

        log = tmp_path / "old-worker.log"
        with open(log, "wb") as out:
            proc = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(old), "--name", "stale",
                                                "--worker-executor", "process"), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "cannot attach" not in log.read_text(errors="replace"):
                time.sleep(0.3)
            assert "cannot attach" in log.read_text(errors="replace")
            assert "stale" not in _workers_on(platform, "gamma")
        finally:
            proc.kill()
            proc.wait()
        with open(tmp_path / "new-worker.log", "wb") as out:
            proc = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(creds_file), "--name", "fresh",
                                                "--worker-executor", "process"), stdout=out, stderr=subprocess.STDOUT)
        try:
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline and "fresh" not in _workers_on(platform, "gamma"):
                time.sleep(0.3)
            assert "fresh" in _workers_on(platform, "gamma")
        finally:
            proc.kill()
            proc.wait()
    finally:
        supervisor.stop("gamma")
        platform.close()



def _worker_states(platform, name) -> dict[str, dict]:
    from distributed import Client

    from hub_extension.queue_scheduler import queue_snapshot

    with Client(SchedulerSupervisor(platform).address(name), security=client_security(platform, name),
                timeout=10, set_as_default=False) as client:
        return {w["name"]: w for w in client.run_on_scheduler(queue_snapshot)["workers"]}


def test_a_worker_certificate_acts_on_its_own_worker_only(two_queues, tmp_path):
    """Two machines of one queue: the holder of the credentials cannot list, retire or alter the other."""
    from distributed import Worker

    platform, queues, home = two_queues
    creds, address = queues["beta"]["credentials"], queues["beta"]["address"]
    path = tmp_path / "beta.json"
    path.write_text(json.dumps(creds))
    with open(tmp_path / "victim.log", "wb") as out:
        victim = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(path), "--name", "victim",
                                              "--worker-executor", "process"), stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "victim" not in _worker_states(platform, "beta"):
            time.sleep(0.3)
        victim_address = _worker_states(platform, "beta")["victim"]["address"]
        refusals = []

        async def attack():
            async with Worker(address, security=_worker_security(creds), nthreads=1, name="holder",
                              dashboard=False) as worker:
                sched = worker.scheduler
                identity = await sched.identity()
                metrics = await worker.get_metrics()
                attempts = {
                    "retire by address": sched.retire_workers(workers=[victim_address], close_workers=True,
                                                              remove=True, stimulus_id="attack-1"),
                    "retire by name": sched.retire_workers(names=["victim"], close_workers=True, stimulus_id="attack-2"),
                    "retire, the scheduler choosing": sched.retire_workers(stimulus_id="attack-3"),
                    "unregister": sched.unregister(address=victim_address, stimulus_id="attack-4"),
                    "unregister by name": sched.unregister(address="victim", stimulus_id="attack-5"),
                    "set_resources": sched.set_resources(worker=victim_address, resources={"GPU": 8}),
                    "heartbeat": sched.heartbeat_worker(address=victim_address, now=time.time(), metrics=metrics),
                    "register_nanny": sched.register_nanny(address=victim_address),
                }
                for what, call in attempts.items():
                    try:
                        await call
                    except Exception as exc:  # noqa: BLE001 - the refusal is what is tested
                        refusals.append((what, str(exc)))
                # Its own worker: the heartbeat is answered, and it may retire itself.
                own = await sched.heartbeat_worker(address=worker.contact_address, now=time.time(), metrics=metrics)
                states = _worker_states(platform, "beta")
                assert "victim" in states, "the holder removed the other worker"
                assert states["victim"]["resources"] == {}, states["victim"]
                await worker.close_gracefully(reason="test: retiring itself")
                return identity, own

        identity, own = asyncio.run(attack())
        assert "workers" not in identity and victim_address not in json.dumps(identity, default=str), identity
        assert own.get("status") == "OK", own
        refused = {what for what, _ in refusals}
        assert refused == {"retire by address", "retire by name", "retire, the scheduler choosing", "unregister",
                           "unregister by name", "set_resources", "heartbeat", "register_nanny"}, refusals
        assert all("own worker only" in text or "not allowed" in text for _, text in refusals), refusals
        states = _worker_states(platform, "beta")
        assert "victim" in states and "holder" not in states, states
        assert victim.poll() is None, "the victim's process stopped"
        log = (home / "queues" / "beta" / "scheduler.log").read_text()
        assert "refused retire_workers from worker connection" in log
    finally:
        victim.kill()
        victim.wait()
