"""Results of organizer queues: what was kept is said, and the scheduler keeps no payload once collected.

Real processes: `compete dispatcher` (which runs the queue's scheduler
process) and `compete worker` attached with the queue's credentials, or a real
Dask worker with the worker certificate sending events itself.
"""
from __future__ import annotations

import asyncio
import json
import time

import pytest

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform
from hub_extension.contract import RESULT_TOPIC
from hub_extension.queue_scheduler import PAYLOAD_DROPPED, payload_bytes
from hub_extension.queues import SchedulerSupervisor, client_security

from tests.support.builders import results_zip, simple_spec
from tests.support.queues import QueueLab

pytestmark = pytest.mark.timeout(600)


def _scheduler_client(platform, name):
    from distributed import Client

    return Client(SchedulerSupervisor(platform).address(name), security=client_security(platform, name),
                  timeout=10, set_as_default=False)


def test_files_over_the_cap_are_dropped_said_and_never_listed(tmp_path, monkeypatch):
    platform = Platform(home=str(tmp_path / "home"))
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, results_zip(tmp_path), username="ann", actor=LOCAL_ADMIN)
    assert platform.runs.claim(sid, "org", "submission-key-1")
    platform.config.result_files_max_mb = 1000 / (1024 * 1024)
    attempt = f"submissions/{sid}/20261203T000000-1-1"
    home = str(platform.config.home)
    result = {
        "status": "Finished",
        "scores": {"accuracy": 0.5},
        "error": None,
        "tasks": [{"task_index": 0, "steps": [
            {"step": "scoring", "exit_code": 0, "log_path": f"{attempt}/task-0/scoring",
             "error": f"warning from {home}/artifacts/files/{attempt}/task-0/scoring/stdout.txt"}]}],
        "artifacts": {"executed_notebook": f"{attempt}/executed_notebook.ipynb",
                      "detailed_results": f"{attempt}/detailed_results.html",
                      "executed_notebook_html": f"{attempt}/executed_notebook.html"},
        "files": {f"{attempt}/task-0/scoring/stdout.txt": b"ok\n",
                  f"{attempt}/detailed_results.html": b"d" * 900,          # does not fit after the notebook
                  f"{attempt}/executed_notebook.ipynb": b"n" * 600},       # fits (listed first below)
        # What the worker itself left out (its own inline cap), in its words.
        "warnings": ["executed notebook HTML (70.0 MB) was not kept: over the inline cap; "
                     "/tmp/jupyter-compete/work/submission-9-x/out.html"],
        "dropped": [{"name": "executed notebook HTML", "bytes": 70 << 20, "reason": "over the inline cap"}],
    }
    result["files"] = dict(sorted(result["files"].items(), key=lambda kv: "notebook" not in kv[0]))
    assert platform.runs.record_result(sid, result, key="submission-key-1", queue="org")
    info = platform.submission(sid)
    assert info["status"] == m.FINISHED
    # Only artifacts whose file was written are listed; each one left out is said, with why.
    assert info["artifacts"] == {"executed_notebook": f"{attempt}/executed_notebook.ipynb"}
    assert platform.store.file_path(info["artifacts"]["executed_notebook"]).is_file()
    names = {d["name"] for d in info["dropped"]}
    assert names == {"executed notebook HTML", "detailed_results.html"}, info["dropped"]
    dropped = next(d for d in info["dropped"] if d["name"] == "detailed_results.html")
    assert dropped["bytes"] == 900 and "kept up to" in dropped["reason"]
    text = "\n".join(info["warnings"])
    assert "detailed_results.html (0.0 MB) was not kept" in text
    assert "detailed results is not available" in text and "executed notebook html is not available" in text
    # No host path in anything recorded.
    with platform.db.session() as s:
        sub = s.get(m.Submission, sid)
        recorded = json.dumps([sub.warnings, sub.dropped, sub.error, [r.error for r in sub.runs]], ensure_ascii=False)
    assert home not in recorded and "/tmp/jupyter-compete" not in recorded, recorded
    assert "…/stdout.txt" in recorded
    platform.close()


def test_an_error_with_host_paths_reaches_the_participant_without_them(tmp_path):
    platform = Platform(home=str(tmp_path / "home"))
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, results_zip(tmp_path), username="ann", actor=LOCAL_ADMIN)
    assert platform.runs.claim(sid, "default", "k")
    store = platform.store.root.resolve()
    error = (f"could not read {store}/files/submissions/{sid}/x/predictions.csv; "
             f"work folder /tmp/jupyter-compete/work/submission-{sid}-ab/task-0 kept")
    assert platform.runs.record_result(sid, {"status": "Failed", "error": error}, key="k")
    shown = platform.submission(sid)["error"]
    assert str(store) not in shown and "/tmp/jupyter-compete" not in shown, shown
    assert "…/predictions.csv" in shown and "…/task-0" in shown
    platform.close()


def test_after_collection_the_scheduler_keeps_no_result_files(tmp_path):
    """A run with 3 MB of outputs on an organizer queue: served by the platform, gone from the scheduler."""
    lab = QueueLab(tmp_path / "home")
    try:
        slug = lab.competition("Big Output", tmp_path, output_bytes=3 * 1024 * 1024)
        lab.platform.create_queue("bigout", competition=slug)
        lab.start_dispatcher()
        lab.start_worker(lab.home / "queues" / "bigout" / "worker-credentials.json", "box")
        sid = lab.submit(slug, tmp_path)
        lab.wait_terminal([sid], 300)
        info = lab.platform.submission(sid)
        assert info["status"] == m.FINISHED, lab.diagnostics()
        detailed = lab.platform.store.file_path(info["artifacts"]["detailed_results"])
        assert detailed.stat().st_size == 3 * 1024 * 1024
        with _scheduler_client(lab.platform, "bigout") as client:
            deadline = time.monotonic() + 30
            while True:
                events = [e for e in client.get_events(RESULT_TOPIC) if e[1].get("submission") == sid]
                if events and not any(payload_bytes(e) for e in events):
                    break
                assert time.monotonic() < deadline, [payload_bytes(e) for e in events]
                time.sleep(0.3)
            # The result itself stays for a platform that restarts (already recorded: nothing changes).
            assert events[-1][1]["result"]["status"] == m.FINISHED
            assert events[-1][1]["result"]["files"] == {}
    finally:
        lab.close()


def test_uncollected_results_keep_a_bounded_payload_and_a_restarted_platform_still_gets_them(tmp_path):
    from distributed import Worker
    from distributed.security import Security

    platform = Platform(home=str(tmp_path / "home"))
    supervisor = SchedulerSupervisor(platform)
    try:
        platform.create_queue("bounded", LOCAL_ADMIN)
        settings_file = tmp_path / "home" / "queues" / "bounded" / "scheduler.json"
        settings = json.loads(settings_file.read_text())
        settings["payload_max_bytes"] = 1_000_000
        settings_file.write_text(json.dumps(settings))
        address = supervisor.ensure("bounded")
        creds = json.loads((tmp_path / "home" / "queues" / "bounded" / "worker-credentials.json").read_text())
        security = Security(tls_ca_file=creds["ca"], tls_worker_cert=creds["cert"], tls_worker_key=creds["key"],
                            require_encryption=True)
        refused = []

        async def report():
            async with Worker(address, security=security, nthreads=1, name="reporter", dashboard=False) as worker:
                for n in (1, 2, 3):
                    worker.log_event(RESULT_TOPIC, {"submission": n, "key": f"key-{n}", "result": {
                        "status": "Finished", "scores": {"accuracy": 1.0}, "warnings": [],
                        "files": {f"submissions/{n}/a/detailed_results.html": bytes([n]) * 600_000}}})
                    await asyncio.sleep(0.3)
                try:  # only the platform says what it collected
                    await worker.scheduler.compete_collected(keys=["key-3"])
                except Exception as exc:  # noqa: BLE001
                    refused.append(str(exc))
                await asyncio.sleep(0.5)

        asyncio.run(report())
        assert refused and "not allowed" in refused[0]
        with _scheduler_client(platform, "bounded") as client:
            events = {e[1]["key"]: e for e in client.get_events(RESULT_TOPIC)}
            assert payload_bytes(events["key-3"]) == 600_000  # newest, not collected: kept for the platform
            assert payload_bytes(events["key-1"]) == payload_bytes(events["key-2"]) == 0
            assert PAYLOAD_DROPPED in events["key-1"][1]["result"]["warnings"]
            assert events["key-1"][1]["result"]["scores"] == {"accuracy": 1.0}  # the result itself stays
            assert client.sync(client.scheduler.compete_collected, keys=["key-3"]) == 1
            assert payload_bytes({e[1]["key"]: e for e in client.get_events(RESULT_TOPIC)}["key-3"]) == 0
    finally:
        supervisor.stop("bounded")
        platform.close()
