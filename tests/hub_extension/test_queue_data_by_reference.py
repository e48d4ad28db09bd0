"""Datasets of organizer queues travel by reference: the job names them, the worker fetches and caches them.

The per-run link of the service (`GET api/v1/runs/<token>/data/<key>`) is
tested over real HTTP on SQLite and PostgreSQL; the whole path runs with a
real `compete dispatcher` (and its queue's scheduler process), a real
`compete worker` on the docker executor and the service's handler serving
the data.
"""
from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import psutil
import pytest
import requests

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN
from hub_extension.data_links import RunDataSigner, run_data_url
from hub_extension.queues import SchedulerSupervisor

from tests.support.builders import results_zip, simple_spec
from tests.support.queues import QueueLab, slow_bundle
from tests.support.service_harness import PREFIX, start_server

pytestmark = pytest.mark.timeout(600)


# -- the per-run link ------------------------------------------------------------------------
@pytest.fixture
def two_runs(any_platform, tmp_path):
    """Two sent runs of one competition: (platform, [(sid, dispatch key, submission file key)])."""
    platform = any_platform
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    runs = []
    for index, user in enumerate(("ann", "ben")):
        platform.register(slug, user, LOCAL_ADMIN)
        sid = platform.submit(slug, results_zip(tmp_path, f"{user}.zip", f"{index}\n"), username=user,
                              actor=LOCAL_ADMIN)
        assert platform.runs.claim(sid, "org", f"submission-{sid}-a")
        with platform.db.session() as s:
            runs.append((sid, f"submission-{sid}-a", s.get(m.Submission, sid).file_key))
    return platform, runs


def _link(server, platform, sid, key, data_key, keys=None):
    token = RunDataSigner.for_home(platform.config.home).token(sid, key, keys or [data_key])
    return run_data_url(server.base, token, data_key)


def test_a_run_reads_its_own_datasets_whole_or_by_range(two_runs):
    platform, [(sid, key, data_key), _] = two_runs
    server = start_server(platform)
    try:
        stored = platform.store.dataset_path(data_key).read_bytes()
        url = _link(server, platform, sid, key, data_key)
        whole = requests.get(url, timeout=30)
        assert whole.status_code == 200, whole.text
        assert whole.content == stored and hashlib.sha256(whole.content).hexdigest() == data_key
        part = requests.get(url, headers={"Range": "bytes=10-19"}, timeout=30)
        assert part.status_code == 206 and part.content == stored[10:20]
        assert part.headers["Content-Range"] == f"bytes 10-19/{len(stored)}"
        tail = requests.get(url, headers={"Range": f"bytes={len(stored) - 5}-"}, timeout=30)
        assert tail.status_code == 206 and tail.content == stored[-5:]
        outside = requests.get(url, headers={"Range": f"bytes={len(stored) + 10}-"}, timeout=30)
        assert outside.status_code == 416
    finally:
        server.stop()


def test_the_link_refuses_another_runs_key_a_forged_token_an_earlier_attempt_and_a_finished_run(two_runs):
    platform, [(sid, key, data_key), (other_sid, other_key, other_data)] = two_runs
    server = start_server(platform)

    def refused(url, status, words):
        response = requests.get(url, timeout=30)
        assert response.status_code == status, (response.status_code, response.text)
        assert words in response.json()["error"], response.text
        assert response.content.find(platform.store.dataset_path(data_key).read_bytes()[:64]) < 0

    try:
        # Another run's dataset, through this run's token: not granted.
        refused(_link(server, platform, sid, key, data_key).replace(data_key, other_data), 403,
                "does not grant")
        # A token signed with another secret, and one whose payload was changed.
        forged = RunDataSigner(b"x" * 32).token(sid, key, [data_key, other_data])
        refused(run_data_url(server.base, forged, other_data), 403, "not issued by the platform")
        good = RunDataSigner.for_home(platform.config.home).token(sid, key, [data_key]).split(".")
        mine = RunDataSigner.for_home(platform.config.home).token(sid, key, [data_key, other_data]).split(".")
        refused(run_data_url(server.base, f"{mine[0]}.{good[1]}", other_data), 403, "not issued by the platform")
        # A token for a dataset key the store does not hold: granted, but nothing to serve.
        missing = "0" * 64
        refused(_link(server, platform, sid, key, missing), 404, "does not hold")
        # Nothing else answers under the path.
        assert requests.get(f"{server.base}api/v1/runs/not-a-token/data/{data_key}", timeout=30).status_code == 404

        # An earlier attempt of a run that was sent again: its links are dead.
        assert platform.runs.release(other_sid, other_key, "lost")
        assert platform.runs.claim(other_sid, "org", f"submission-{other_sid}-b")
        refused(_link(server, platform, other_sid, other_key, other_data), 403, "earlier attempt")
        assert requests.get(_link(server, platform, other_sid, f"submission-{other_sid}-b", other_data),
                            timeout=30).status_code == 200

        # A finished run reads nothing more.
        url = _link(server, platform, sid, key, data_key)
        assert requests.get(url, timeout=30).status_code == 200
        assert platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": 1.0}},
                                           key=key, queue="org")
        assert platform.submission(sid)["status"] == m.FINISHED
        refused(url, 403, "is over (Finished)")
    finally:
        server.stop()


# -- a whole run ----------------------------------------------------------------------------
class _Served(logging.Handler):
    """Counts the datasets the service's per-run links served, by key prefix."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.keys: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("dataset "):
            self.keys.append(str(record.args[0]))

    def count(self, key: str) -> int:
        return self.keys.count(key[:12])


def _big_data_bundle(target: Path, size: int) -> Path:
    """The results template on the private queue, whose reference data holds `size` random bytes more."""
    bundle = slow_bundle(target, "Big Data By Reference")
    (bundle / "reference_data" / "noise.bin").write_bytes(os.urandom(size))
    yaml = bundle / "competition.yaml"
    yaml.write_text(yaml.read_text().replace("docker_image: python:3.11-slim\n",
                                             "docker_image: python:3.11-slim\nqueue: bigdata\n"))
    return bundle


def _task_sizes(client) -> dict[str, int]:
    """Pickled bytes of each task the queue's scheduler holds (what it keeps in memory for it)."""
    def sizes(dask_scheduler):
        import pickle

        return {str(k): len(pickle.dumps(ts.run_spec)) for k, ts in dask_scheduler.tasks.items()}

    return client.run_on_scheduler(sizes)


def test_an_organizer_run_fetches_its_dataset_by_reference_once_and_again_when_damaged(
        tmp_path, runtime_image, docker_engine):
    from distributed import Client

    from hub_extension.queues import client_security

    size = 50 << 20
    lab = QueueLab(tmp_path / "home")
    served = _Served()
    link_log = logging.getLogger("compete.run_data")
    link_log.addHandler(served)
    link_log.setLevel(logging.INFO)
    server = start_server(lab.platform)
    client, reference = None, None
    try:
        # The dispatcher process gives its workers the service's links.
        (lab.home / "compete_config.py").write_text(
            f"c.Compete.public_url = 'http://127.0.0.1:{server.port}{PREFIX}'\n")
        slug, _ = lab.platform.create_competition(_big_data_bundle(tmp_path / "bundle", size), LOCAL_ADMIN)
        lab.platform.create_queue("bigdata", competition=slug)
        with lab.platform.db.session() as s:
            (task,) = s.query(m.Task).join(m.Competition).filter(m.Competition.slug == slug).all()
            reference = task.reference_data_key
        assert lab.platform.store.dataset_size(reference) > size

        lab.start_dispatcher()
        lab.start_worker(lab.home / "queues" / "bigdata" / "worker-credentials.json", "data-box",
                         executor="docker")
        supervisor = SchedulerSupervisor(lab.platform)
        lab.wait_for(lambda: supervisor.pid("bigdata") is not None, 120, "the queue's scheduler")
        scheduler = psutil.Process(supervisor.pid("bigdata"))
        client = Client(supervisor.address("bigdata"), security=client_security(lab.platform, "bigdata"),
                        timeout=30, set_as_default=False)
        rss_before = scheduler.memory_info().rss

        # The first run: the worker fetches the dataset once, the scheduler holds a small description.
        first = lab.submit(slug, tmp_path, sleep=4)
        lab.wait_for(lambda: lab.status(first) in (m.RUNNING, m.SCORING) or lab.status(first) in m.TERMINAL_STATUSES,
                     180, "the first run to start")
        sizes = _task_sizes(client)
        assert sizes, "the run's task is not on the scheduler"
        assert max(sizes.values()) < 64 * 1024, sizes
        lab.wait_terminal([first], 300)
        info = lab.platform.submission(first)
        assert info["status"] == m.FINISHED, (info, lab.diagnostics())
        assert info["scores"]["accuracy"] == pytest.approx(0.75)
        grown = scheduler.memory_info().rss - rss_before
        assert grown < size // 2, f"the scheduler grew by {grown} bytes"
        assert served.count(reference) == 1, served.keys

        # The second run on the same worker: from its cache, not fetched again.
        second = lab.submit(slug, tmp_path)
        lab.wait_terminal([second], 300)
        assert lab.platform.submission(second)["status"] == m.FINISHED
        assert served.count(reference) == 1, served.keys
        (blob,) = Path("/tmp").glob(f"jupyter-compete*/datasets/blobs/{reference}")
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == reference

        # A damaged copy in the cache is noticed by its hash and fetched again.
        os.chmod(blob, 0o644)
        with open(blob, "r+b") as fh:
            fh.seek(size // 2)
            fh.write(b"tampered")
        third = lab.submit(slug, tmp_path)
        lab.wait_terminal([third], 300)
        info = lab.platform.submission(third)
        assert info["status"] == m.FINISHED and info["scores"]["accuracy"] == pytest.approx(0.75), info
        assert served.count(reference) == 2, served.keys
        assert hashlib.sha256(blob.read_bytes()).hexdigest() == reference
        log_text = (lab.logs / "worker-data-box.log").read_text(errors="replace")
        assert "does not match its key" in log_text, log_text[-3000:]
    finally:
        link_log.removeHandler(served)
        if client is not None:
            client.close()
        server.stop()
        lab.close()
        for blob in Path("/tmp").glob(f"jupyter-compete*/datasets/blobs/{reference}"):
            blob.unlink(missing_ok=True)
