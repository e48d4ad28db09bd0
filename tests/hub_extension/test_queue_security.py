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
from hub_extension.queues import SchedulerSupervisor, client_security

from tests.support.queues import QueueLab, compete_cmd


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
        platform.create_queue(name, LOCAL_ADMIN)
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

    from dask_workers.queue_guard import REFUSED

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

    from dask_workers.queue_guard import REFUSED

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

    home = tmp_path / "home"
    platform = Platform(home=str(home))
    supervisor = SchedulerSupervisor(platform)
    try:
        platform.create_queue("gamma", LOCAL_ADMIN)
        supervisor.ensure("gamma")
        creds_file = home / "queues" / "gamma" / "worker-credentials.json"
        old = tmp_path / "old.json"
        old.write_text(creds_file.read_text())
        before = json.loads(old.read_text())
        info = platform.rotate_credentials("gamma", LOCAL_ADMIN)
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


# -- a worker serves its queue's scheduler only ------------------------------------------------


@pytest.fixture
def lab(tmp_path):
    lab = QueueLab(tmp_path / "home")
    yield lab
    lab.close()


def _attached(platform, queue: str, name: str) -> bool:
    """Whether worker `name` is attached to `queue`; False while its scheduler is not up yet."""
    try:
        return name in _worker_states(platform, queue)
    except OSError:
        return False


async def _call_worker(address, creds, calls):
    """Each call of `calls` (name -> (op, kwargs)) made with the worker certificate: name -> outcome."""
    from distributed.core import rpc

    outcomes = {}
    security = _worker_security(creds, as_client=True)
    async with rpc(address, connection_args=security.get_connection_args("client"), timeout=10) as worker:
        for what, (op, kwargs) in calls.items():
            try:
                outcomes[what] = ("answered", await getattr(worker, op)(**kwargs))
            except Exception as exc:  # noqa: BLE001 - the refusal is what is tested
                outcomes[what] = (type(exc).__name__, str(exc))
    return outcomes


@pytest.mark.timeout(600)
def test_worker_credentials_cannot_call_another_worker(lab, tmp_path):
    """Another machine's worker certificate reaches a `compete worker`: nothing is served; the scheduler still is."""
    from functools import partial

    from distributed import Client
    from distributed.protocol import ToPickle

    from dask_workers.submission_job import cancel_on_worker
    from hub_extension import models as m

    slug = lab.competition("Guarded Worker", tmp_path)
    lab.platform.create_queue("guarded", competition=slug)
    creds_path = lab.home / "queues" / "guarded" / "worker-credentials.json"
    creds = json.loads(creds_path.read_text())
    lab.start_dispatcher()
    victim = lab.start_worker(creds_path, "victim")
    lab.wait_for(lambda: _attached(lab.platform, "guarded", "victim"), 120, "the worker to attach")
    victim_address = _worker_states(lab.platform, "guarded")["victim"]["address"]

    ran = tmp_path / "ran-on-the-worker"
    coroutine_ran = tmp_path / "coroutine-ran-on-the-worker"
    unpickled = tmp_path / "unpickled-by-the-worker"
    plugin_ran = tmp_path / "plugin-unpickled-by-the-worker"
    outcomes = asyncio.run(_call_worker(victim_address, creds, {
        "run": ("run", {"function": pickle.dumps(partial(Path.touch, ran))}),
        "run_coroutine": ("run_coroutine", {"function": pickle.dumps(partial(Path.touch, coroutine_ran))}),
        "get_data": ("get_data", {"keys": ["anything"]}),
        "update_data": ("update_data", {"data": {"planted": 1}}),
        "plugin-add": ("plugin-add", {"plugin": pickle.dumps(Touch(str(plugin_ran)))}),
        "identity": ("identity", {}),
        "terminate": ("terminate", {"reason": "attack"}),
    }))
    for what, (outcome, text) in outcomes.items():
        assert outcome == "PermissionError" and "scheduler only" in text, (what, outcome, text)

    async def raw(msg):
        return await _request(victim_address, _worker_security(creds, as_client=True), "client", msg)

    # A stream to the worker (where the scheduler sends `compute-task`) is refused too.
    stream_reply = asyncio.run(raw({"op": "connection_stream"}))
    assert stream_reply.get("status") == "uncaught-error" and "scheduler only" in stream_reply["exception_text"]
    # A pickle in a request is never loaded, refused operation or not.
    asyncio.run(raw({"op": "identity", "data": ToPickle(Touch(str(unpickled)))}))
    time.sleep(1.0)
    for marker in (ran, coroutine_ran, unpickled, plugin_ran):
        assert not marker.exists(), f"{marker.name}: code of the caller ran on the worker"
    assert victim.poll() is None, "the worker process stopped"
    assert "victim" in _worker_states(lab.platform, "guarded"), "the worker left its queue"
    assert "refused 'run' from a worker connection" in (lab.logs / "worker-victim.log").read_text()

    # The scheduler's own traffic is served: a submission runs to the end on this worker.
    sid = lab.submit(slug, tmp_path)
    lab.wait_terminal([sid], 180)
    info = lab.platform.submission(sid)
    assert info["status"] == m.FINISHED, (info["error"], lab.diagnostics())
    assert info["worker"] == "victim"

    # ... and the platform's broadcasts through the scheduler: `client.run`, as the dispatcher cancels.
    sid = lab.submit(slug, tmp_path, sleep=120)
    lab.wait_for(lambda: lab.status(sid) == m.SCORING, 120, "the slow run to start")
    with Client(SchedulerSupervisor(lab.platform).address("guarded"),
                security=client_security(lab.platform, "guarded"), timeout=10, set_as_default=False) as client:
        from_scheduler = tmp_path / "run-from-the-scheduler"
        client.run(partial(Path.touch, from_scheduler))
        assert from_scheduler.exists()
        lab.platform.runs.set_status(sid, m.CANCELLED, note="cancelled")
        # (What a worker returns reaches the platform as plain data only: the answer itself is not used.)
        assert set(client.run(cancel_on_worker, sid)) == {victim_address}
    lab.wait_for(lambda: _worker_states(lab.platform, "guarded")["victim"]["running"] == [], 60,
                 "the cancelled run to stop")
    assert lab.status(sid) == m.CANCELLED
    assert victim.poll() is None


def _environ_of(pid: int) -> dict[str, str]:
    raw = Path(f"/proc/{pid}/environ").read_bytes()
    return dict(item.split("=", 1) for item in raw.decode(errors="replace").split("\0") if "=" in item)


# Set by `compete worker` in the environment it executes itself again with (`dask_workers.attach`).
REEXEC_MARKER = "COMPETE_WORKER_CLEAN_ENVIRONMENT"


def test_a_worker_keeps_no_secret_of_its_starter(two_queues, tmp_path):
    """`compete worker` started with a hub token in its environment executes itself again without it."""
    import os

    platform, queues, home = two_queues
    path = tmp_path / "alpha.json"
    path.write_text(json.dumps(queues["alpha"]["credentials"]))
    secrets = {"JUPYTERHUB_API_TOKEN": "hub-token-of-the-starter", "COMPETE_DB_URL": "postgresql://u:pw@db/compete",
               "MY_SERVICE_SECRET": "starter-secret"}
    env = {**os.environ, **secrets}
    env.pop(REEXEC_MARKER, None)
    log = tmp_path / "clean.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(path), "--name", "clean",
                                            "--worker-executor", "process"),
                                env=env, stdout=out, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and "clean" not in _workers_on(platform, "alpha"):
            time.sleep(0.3)
        assert "clean" in _workers_on(platform, "alpha"), log.read_text(errors="replace")
        assert proc.poll() is None
        environ = _environ_of(proc.pid)  # the same process, executed again
        assert not set(secrets) & set(environ), sorted(set(secrets) & set(environ))
        raw = Path(f"/proc/{proc.pid}/environ").read_text(errors="replace")
        assert not [value for value in secrets.values() if value in raw]
        assert environ.get(REEXEC_MARKER) == "1" and environ.get("PATH") == os.environ["PATH"]
        cmdline = Path(f"/proc/{proc.pid}/cmdline").read_bytes().split(b"\0")
        assert [b"--credentials", str(path).encode(), b"--name", b"clean"] == cmdline[
            cmdline.index(b"--credentials"):cmdline.index(b"--name") + 2]
        assert log.read_text(errors="replace").count("restarting without") == 1
    finally:
        proc.kill()
        proc.wait()

    # A process that was executed again and still sees a secret stops instead of looping or keeping it.
    with open(tmp_path / "looping.log", "wb") as out:
        proc = subprocess.Popen(compete_cmd(home, "worker", "--credentials", str(path), "--name", "looping",
                                            "--worker-executor", "process"),
                                env={**env, REEXEC_MARKER: "1"}, stdout=out, stderr=subprocess.STDOUT)
    try:
        assert proc.wait(timeout=60) != 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    text = (tmp_path / "looping.log").read_text(errors="replace")
    assert "still holds" in text and "restarting without" not in text, text
    assert "looping" not in _workers_on(platform, "alpha")
