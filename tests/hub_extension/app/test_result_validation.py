"""A result is data from a machine the platform does not control: recorded only in its checked shape."""
from __future__ import annotations

from hub_extension import models as m
from hub_extension.app import LOCAL_ADMIN, Platform

from tests.support.builders import results_zip, simple_spec


def _sent_submission(platform: Platform, tmp_path) -> tuple[int, str]:
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    platform.register(slug, "ann", LOCAL_ADMIN)
    sid = platform.submit(slug, results_zip(tmp_path), username="ann", actor=LOCAL_ADMIN)
    assert platform.runs.claim(sid, "default", "submission-key-1")
    return sid, "submission-key-1"


def test_paths_outside_the_submission_and_bad_types_are_dropped(tmp_path):
    platform = Platform(home=str(tmp_path / "home"))
    sid, key = _sent_submission(platform, tmp_path)
    other = f"submissions/{sid + 1}/x/stdout.txt"
    result = {
        "status": "Finished",
        "scores": {"accuracy": 0.5},
        "worker": "w" * 1000,
        "tasks": [{"task_index": 0, "steps": [
            {"step": "scoring", "exit_code": "0; rm -rf /", "elapsed": "fast", "log_path": other},
            {"step": "prediction", "exit_code": 0, "elapsed": 1.5, "log_path": f"submissions/{sid}/../../etc"},
        ]}],
        "artifacts": {"executed_notebook": "/etc/passwd", "detailed_results": f"submissions/{sid}/a/detail.html"},
        "files": {f"submissions/{sid}/a/detail.html": b"<p>ok</p>", other: b"overwrite", "../../escape": b"x",
                  f"submissions/{sid}/a/not-bytes": "text"},
    }
    assert platform.runs.record_result(sid, result, key=key)
    info = platform.submission(sid)
    assert info["status"] == m.FINISHED and info["scores"] == {"accuracy": 0.5}
    assert info["artifacts"] == {"detailed_results": f"submissions/{sid}/a/detail.html"}
    files = platform.store.root / "files"
    assert (files / f"submissions/{sid}/a/detail.html").read_bytes() == b"<p>ok</p>"
    assert not (files / other).exists()
    assert not (files / f"submissions/{sid}/a/not-bytes").exists()
    assert not (tmp_path / "home" / "escape").exists()
    with platform.db.session() as s:
        runs = s.get(m.Submission, sid).runs
        assert [(r.exit_code, r.elapsed, r.log_path) for r in runs] == [(None, None, None), (0, 1.5, None)]
        assert len(s.get(m.Submission, sid).worker) == 300
    platform.close()


def test_a_result_for_another_attempt_or_twice_is_not_recorded(tmp_path):
    platform = Platform(home=str(tmp_path / "home"))
    sid, key = _sent_submission(platform, tmp_path)
    assert not platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": 1.0}}, key="submission-old")
    assert platform.submission(sid)["status"] == m.SUBMITTED
    assert platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": 0.25}}, key=key)
    assert not platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": 1.0}}, key=key)
    assert platform.submission(sid)["scores"] == {"accuracy": 0.25}
    platform.close()


def test_scores_that_are_not_numbers_fail_the_submission(tmp_path):
    platform = Platform(home=str(tmp_path / "home"))
    sid, key = _sent_submission(platform, tmp_path)
    assert platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": "__import__('os')"}}, key=key)
    info = platform.submission(sid)
    assert info["status"] == m.FAILED and "not a number" in info["error"]
    platform.close()


def test_concurrent_reports_record_one_end_only(any_platform, tmp_path):
    """A result event, a scheduler's failure and late status events racing: one terminal status."""
    import threading

    platform = any_platform
    slug = platform.competitions.insert_competition(simple_spec(), LOCAL_ADMIN)
    sids = []
    for n in range(6):
        platform.register(slug, f"user{n}", LOCAL_ADMIN)
        sid = platform.submit(slug, results_zip(tmp_path, f"p{n}.zip"), username=f"user{n}", actor=LOCAL_ADMIN)
        assert platform.runs.claim(sid, "default", f"submission-{sid}-k")
        sids.append(sid)

    def reports(sid):
        key = f"submission-{sid}-k"
        return [
            lambda: platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": 0.5}}, key=key),
            lambda: platform.runs.record_result(sid, {"status": "Failed", "error": "the worker died"}, key=key),
            lambda: platform.runs.record_result(sid, {"status": "Finished", "scores": {"accuracy": 0.9}}, key=key),
            lambda: platform.runs.set_status(sid, m.RUNNING, key=key, worker="w"),
            lambda: platform.runs.set_status(sid, m.CANCELLED, note="cancelled"),
            lambda: platform.runs.record_scores(sid, {"accuracy": 0.1}),
        ]

    calls = [call for sid in sids for call in reports(sid)] * 2
    barrier = threading.Barrier(len(calls))
    errors = []

    def run(call):
        barrier.wait()
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - collected and reported below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert not errors, errors
    with platform.db.session() as s:
        for sid in sids:
            sub = s.get(m.Submission, sid)
            ends = [h.status for h in sub.history if h.status in m.TERMINAL_STATUSES]
            assert len(ends) == 1 and sub.status == ends[0], (sid, [h.status for h in sub.history])
            assert sub.status in m.TERMINAL_STATUSES
            if sub.status == m.FINISHED:
                assert len(sub.scores) == 1
            else:
                assert sub.scores == []
