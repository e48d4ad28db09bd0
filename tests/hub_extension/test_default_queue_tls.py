"""The default queue's scheduler, a process of its own, takes no one but the platform.

Its workers read the platform's store (reference data included), so a local
process that could run code on that scheduler could reach every hidden
answer.  Attacks are run for real from another local process: a plain Dask
client, a TLS client without a certificate, a client certificate of another
CA (role `client` in it), and the default queue's own worker certificate used
as a client.  Each tries to run code on the scheduler that writes a marker
file; none may.  The dispatcher's client certificate, used the same way, does
write it: the attacks fail because of the guard, not because the harness is
broken.  Then submissions still run and cancel on that queue.
"""
from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import time
import uuid
import zipfile
from pathlib import Path

import pytest

from dask_workers import queue_guard
from dask_workers.executors.base import process_alive
from hub_extension import models as m
from hub_extension import tls
from hub_extension.app import DEFAULT_QUEUE, LOCAL_ADMIN, Platform
from tests.support.components import child_processes, descendants

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "templates" / "demo"

# Run as a separate local process: `python -c ATTACKS '<json>'`; prints one JSON line of outcomes.
ATTACKS = r'''
import asyncio, json, ssl, sys
from pathlib import Path

from distributed import Client
from distributed.core import rpc
from distributed.protocol.pickle import dumps
from distributed.protocol.serialize import ToPickle
from distributed.security import Security

args = json.loads(sys.argv[1])
address = args["address"]
host_port = address.split("://", 1)[1]


def write_marker(path):
    Path(path).write_text("ran on the scheduler")
    return "ran"


class Bomb:
    """Unpickling it creates a file: proof that the scheduler unpickled what a peer sent."""

    def __init__(self, path):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


class ContextSecurity(Security):
    """A Dask client security with a TLS context made by hand."""

    def __init__(self, context):
        super().__init__(require_encryption=True)
        self.context = context

    def get_connection_args(self, role):
        return {"ssl_context": self.context, "require_encryption": True, "extra_conn_args": {}}


def context(cert=None, key=None, ca=None):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    if ca:
        ctx.load_verify_locations(cafile=ca)
    else:
        ctx.verify_mode = ssl.CERT_NONE
    if cert:
        ctx.load_cert_chain(cert, key)
    return ctx


def as_client(name, addr, security, marker):
    try:
        client = Client(addr, security=security, timeout=6, set_as_default=False)
    except Exception as exc:
        return {"connected": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    try:
        result = client.run_on_scheduler(write_marker, marker)
        return {"connected": True, "ran": result}
    except Exception as exc:
        return {"connected": True, "error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        client.close(timeout=5)


async def raw_requests(ctx, markers):
    """Requests of a worker certificate straight to the scheduler, outside any Dask client."""
    out = {}
    r = rpc(address, connection_args={"ssl_context": ctx, "require_encryption": True}, timeout=6)
    try:
        for op, call in {
            "run_function": lambda: r.run_function(function=dumps(write_marker), args=dumps((markers["rpc"],)),
                                                   kwargs=dumps({})),
            "broadcast": lambda: r.broadcast(msg={"op": "run", "function": dumps(write_marker),
                                                  "args": dumps((markers["rpc"],)), "kwargs": dumps({})}),
            "echo": lambda: r.echo(data=ToPickle(Bomb(markers["pickle"]))),
            "identity": lambda: r.identity(),
        }.items():
            try:
                out[op] = {"answer": repr(await call())[:2000]}
            except Exception as exc:
                out[op] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    finally:
        await r.close_rpc()
    return out


outcomes = {}
markers = args["markers"]
outcomes["plain"] = as_client("plain", f"tcp://{host_port}", None, markers["plain"])
if "worker" in args:
    outcomes["no_cert"] = as_client("no_cert", address, ContextSecurity(context()), markers["no_cert"])
    other = args["other_ca"]
    outcomes["other_ca"] = as_client("other_ca", address, ContextSecurity(context(other["cert"], other["key"])),
                                     markers["other_ca"])
    worker = args["worker"]
    worker_ctx = context(worker["cert"], worker["key"], worker["ca"])
    outcomes["worker_client"] = as_client("worker_client", address, ContextSecurity(worker_ctx),
                                          markers["worker_client"])
    outcomes["worker_raw"] = asyncio.run(raw_requests(worker_ctx, markers))
    own = args["client"]
    outcomes["control"] = as_client("control", address,
                                    ContextSecurity(context(own["cert"], own["key"], own["ca"])), markers["control"])
print(json.dumps(outcomes))
'''


def zip_of(folder: Path, target: Path) -> Path:
    with zipfile.ZipFile(target, "w") as zf:
        for p in sorted(folder.rglob("*")):
            if p.is_file():
                zf.write(p, p.relative_to(folder).as_posix())
    return target


class Stack:
    def __init__(self, home: Path):
        from hub_extension.dispatch import Dispatcher

        self.platform = Platform(home=str(home))
        self.platform.config.executor = "process"
        self.slug, _ = self.platform.create_competition(DEMO, LOCAL_ADMIN)
        self.dispatcher = Dispatcher(self.platform, n_workers=2, threads_per_worker=1)
        self.users = 0

    def submit(self, path: Path) -> int:
        self.users += 1
        user = f"user{self.users}"
        self.platform.register(self.slug, user, LOCAL_ADMIN)
        sid = self.platform.submit(self.slug, path, username=user, actor=LOCAL_ADMIN)
        assert self.dispatcher.dispatch(sid)
        return sid

    def close(self) -> None:
        self.dispatcher.close()
        self.platform.close()


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    stack = Stack(tmp_path_factory.mktemp("tls-home"))
    yield stack
    stack.close()


def _files(stack: Stack) -> dict:
    folder = stack.dispatcher.default_process.folder / "tls"
    return {role: tls.RoleFiles(folder / "ca.pem", folder / f"{role}.pem", folder / f"{role}.key")
            for role in ("scheduler", "client", "worker")}


def test_the_default_queue_listens_on_tls_only_with_a_private_ephemeral_ca(stack):
    process = stack.dispatcher.default_process
    assert process.address.startswith("tls://127.0.0.1:"), process.address
    assert process.pid != os.getpid() and process.pid is not None
    assert process.folder.parent == Path(stack.platform.config.home) / "default-queue"
    assert stat.S_IMODE(process.folder.stat().st_mode) == 0o700
    folder = process.folder / "tls"
    assert stat.S_IMODE(folder.stat().st_mode) == 0o700
    names = sorted(p.name for p in folder.iterdir())
    # The CA's key is never written: no other certificate of this CA can be made.
    assert names == ["ca.pem", "client.key", "client.pem", "scheduler.key", "scheduler.pem",
                     "worker.key", "worker.pem"], names
    for p in folder.iterdir():
        assert stat.S_IMODE(p.stat().st_mode) == 0o600, p
    for role in ("scheduler", "client", "worker"):
        assert queue_guard.role_of_peercert(_peercert(_files(stack)[role].cert)) == role


def _peercert(cert_path: Path) -> dict:
    """A certificate's subject in the shape `ssl.SSLSocket.getpeercert()` gives it."""
    from cryptography import x509

    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    return {"subject": tuple(((attr.oid._name, attr.value),) for attr in cert.subject)}


def test_the_workers_get_their_certificate_as_files_never_in_their_environment(stack):
    link = stack.dispatcher.link(DEFAULT_QUEUE)
    workers = link.client.scheduler_info(n_workers=-1)["workers"]
    assert len(workers) == 2 and all(a.startswith("tls://") for a in workers), workers
    key_text = _files(stack)["worker"].key.read_text().strip().splitlines()[1]
    queue_pid = stack.dispatcher.default_process.pid
    nannies = child_processes(queue_pid)
    # The nannies, the workers they spawned, and the queue's process itself.
    pids = descendants(queue_pid) + [queue_pid]
    assert len(nannies) == 2 and len(pids) >= 5, pids
    for pid in pids:
        environ = Path(f"/proc/{pid}/environ").read_bytes().decode(errors="replace")
        assert "PRIVATE KEY" not in environ and key_text not in environ
        assert "DASK_DISTRIBUTED__COMM__TLS" not in environ
    for pid in nannies:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().decode().split("\0")
        assert str(_files(stack)["worker"].key) in cmdline and "PRIVATE KEY" not in " ".join(cmdline)


def _attack(args: dict, cwd: Path) -> dict:
    proc = subprocess.run([sys.executable, "-c", ATTACKS, json.dumps(args)], capture_output=True, text=True,
                          timeout=240, cwd=str(cwd))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_plain_dask_client_of_the_host_runs_nothing_on_the_scheduler(stack, tmp_path):
    marker = tmp_path / "marker-plain"
    address = stack.dispatcher.default_process.address
    outcome = _attack({"address": address, "markers": {"plain": str(marker)}}, tmp_path)["plain"]
    assert not marker.exists(), f"a plain Dask client ran code on the default queue's scheduler through {address}"
    assert not outcome["connected"], outcome


def test_local_processes_without_the_platforms_client_certificate_run_nothing_on_the_scheduler(stack, tmp_path):
    other = tls.make_ca(DEFAULT_QUEUE)
    forged = tls.issue(other, DEFAULT_QUEUE, "client")
    (tmp_path / "other.pem").write_text(forged.cert_pem)
    (tmp_path / "other.key").write_text(forged.key_pem)
    markers = {name: str(tmp_path / f"marker-{name}")
               for name in ("plain", "no_cert", "other_ca", "worker_client", "rpc", "pickle", "control")}
    files = _files(stack)
    outcomes = _attack({
        "address": stack.dispatcher.default_process.address,
        "markers": markers,
        "other_ca": {"cert": str(tmp_path / "other.pem"), "key": str(tmp_path / "other.key")},
        "worker": {"cert": str(files["worker"].cert), "key": str(files["worker"].key), "ca": str(files["worker"].ca)},
        "client": {"cert": str(files["client"].cert), "key": str(files["client"].key), "ca": str(files["client"].ca)},
    }, tmp_path)

    # The harness works: the platform's own client certificate runs code there.
    assert outcomes["control"].get("ran") == "ran", outcomes["control"]
    assert Path(markers["control"]).exists()

    # (1) No plain TCP, no TLS without a certificate, no certificate of another CA.
    for name in ("plain", "no_cert", "other_ca"):
        assert not outcomes[name]["connected"], (name, outcomes[name])
        assert not Path(markers[name]).exists(), name

    # (2) The workers' certificate is refused every client operation ...
    assert "ran" not in outcomes["worker_client"], outcomes["worker_client"]
    assert not Path(markers["worker_client"]).exists()
    raw = outcomes["worker_raw"]
    for op in ("run_function", "broadcast"):
        assert "PermissionError" in raw[op].get("error", ""), (op, raw[op])
    assert not Path(markers["rpc"]).exists()
    # ... what it sends is never unpickled ...
    from dask_workers.queue_guard import REFUSED

    assert raw["echo"].get("answer") == repr(REFUSED), raw["echo"]
    assert not Path(markers["pickle"]).exists(), "the scheduler unpickled what a worker certificate sent"
    # ... and it learns nothing of the other workers.
    assert "answer" in raw["identity"] and "tls://127.0.0.1" in raw["identity"]["answer"]
    worker_addresses = stack.dispatcher.link(DEFAULT_QUEUE).client.scheduler_info(n_workers=-1)["workers"]
    assert not any(a in raw["identity"]["answer"] for a in worker_addresses), raw["identity"]


def test_submissions_run_to_the_end_on_the_guarded_queue(stack, tmp_path):
    preds = DEMO / "sample_submissions" / "petal_rule"
    sid = stack.submit(zip_of(preds, tmp_path / "p.zip"))
    info = stack.dispatcher.wait(sid, 300)
    assert info["status"] == m.FINISHED, info["error"]
    assert 0.5 < info["scores"]["accuracy"] <= 1.0


def _processes_with(text: str) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if text in (entry / "cmdline").read_bytes().decode(errors="replace"):
                found.append(int(entry.name))
        except OSError:
            continue
    return found


def test_cancel_reaches_the_guarded_queues_workers_and_kills_the_step(stack, tmp_path):
    tag = f"cancel-marker-{uuid.uuid4().hex[:8]}"
    code = tmp_path / "slow"
    code.mkdir()
    (code / "metadata").write_text(f"command: python3 -c 'import time, sys; time.sleep(300)' {tag}\n")
    sid = stack.submit(zip_of(code, tmp_path / "slow.zip"))
    deadline = time.monotonic() + 120
    while not _processes_with(tag):
        assert time.monotonic() < deadline, stack.platform.submission(sid)
        stack.dispatcher.tick()
        time.sleep(0.2)
    assert stack.dispatcher.cancel(sid)
    deadline = time.monotonic() + 30
    while _processes_with(tag):
        assert time.monotonic() < deadline, "the cancelled step still runs"
        time.sleep(0.2)
    info = stack.dispatcher.wait(sid, 30)
    assert info["status"] == m.CANCELLED, info


def test_the_queue_process_and_its_folder_go_at_close_and_a_dead_ones_folder_at_start(tmp_path):
    from hub_extension.dispatch import Dispatcher

    platform = Platform(home=str(tmp_path / "home"))
    parent = Path(platform.config.home) / "default-queue"
    stale = parent / "q-20200101T000000-dead"
    stale.mkdir(parents=True, mode=0o700)
    (stale / "state.json").write_text(json.dumps({"pid": 999999999, "host": os.uname().nodename}))
    legacy = parent / "tls-999999999-abcdef"
    legacy.mkdir(mode=0o700)
    (legacy / "worker.key").write_text("left by a dispatcher that was killed")
    dispatcher = Dispatcher(platform, n_workers=1, threads_per_worker=1)
    try:
        process = dispatcher.default_process
        assert process.folder.is_dir() and not stale.exists() and not legacy.exists()
        assert platform.queue_scheduler(DEFAULT_QUEUE)["pid"] == process.pid
    finally:
        dispatcher.close()
    # Nothing was in flight: the holder stopped the queue's process, and its record is gone.
    assert not process.folder.exists()
    assert not process_alive(process.pid)
    assert platform.queue_scheduler(DEFAULT_QUEUE) is None
    platform.close()
