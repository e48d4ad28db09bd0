"""The wire contract: jobs survive the wire, untrusted results come out bounded and safe."""
import json

from hub_extension.contract import (
    Job, JobResult, Status, StepLimits, StoreLayout, TaskJob, UnpackCaps, without_host_paths,
)

KEY_A, KEY_B, KEY_C = "a" * 64, "b" * 64, "c" * 64


def make_job() -> Job:
    return Job(
        submission_id=7, queue="default", kind="code", filename="code.zip", submission=KEY_A,
        tasks=(TaskJob(index=0, scoring_program=KEY_B, reference_data=KEY_C,
                       worker_data={"reference_data": "/data/ref"}),
               TaskJob(index=1, scoring_program=KEY_B)),
        limits=StepLimits(time_limit=60, memory_mb=512, network=True), unpack_limits=UnpackCaps(max_members=10),
        image_aliases={"x": "y"}, executor_config={"DockerExecutor": {"user": "1000:1000"}},
    )


def test_job_round_trips_through_json():
    job = make_job()
    wire = json.loads(json.dumps(job.to_wire()))
    assert Job.from_wire(wire) == job
    assert Job.from_wire({**wire, "unknown": 1}) == job


def test_job_data_keys_skip_worker_data_and_repeat_once():
    assert make_job().data_keys() == [KEY_A, KEY_B]


def test_statuses():
    assert set(Status.TERMINAL) < set(Status.ALL)
    assert Status.STEPS + Status.TERMINAL == Status.ALL


def test_store_layout_paths():
    assert StoreLayout.dataset(KEY_A) == f"datasets/aa/{KEY_A}"
    attempt = StoreLayout.attempt(3, "T1")
    assert StoreLayout.is_own_path(3, StoreLayout.step_logs(attempt, 0, "scoring"))
    for bad in ("submissions/4/T1/x", "submissions/3/../4/x", "submissions/3", "/etc/passwd", 5, "submissions/3//x"):
        assert not StoreLayout.is_own_path(3, bad)
    assert StoreLayout.label(3, f"{attempt}/task-0/scoring/stdout.txt") == "task-0/scoring/stdout.txt"


def test_untrusted_result_is_reduced():
    raw = {
        "status": "Finished", "scores": {"acc": 0.5}, "worker": "w" * 1000,
        "error": "failed reading /srv/home/artifacts/files/x.csv",
        "tasks": [{"task_index": 0, "steps": [{"step": "scoring", "exit_code": True,
                                               "log_path": "submissions/8/x"}]}, "junk"],
        "artifacts": {"executed_notebook": "submissions/9/T/executed_notebook.ipynb",
                      "detailed_results": "submissions/9/T/detailed_results.html"},
        "files": {"submissions/9/T/a.txt": b"x" * 10, "submissions/9/T/b.txt": b"y" * 30,
                  "submissions/9/T/c.txt": b"z" * 5, "../../etc/passwd": b"no"},
        "warnings": ["", "kept", 3], "dropped": [{"name": "n", "bytes": "big", "reason": "r"}],
    }
    result = JobResult.from_untrusted(9, raw, host_roots=["/srv/home"], files_max_bytes=20)
    assert result.status == Status.FINISHED and len(result.worker) == 300
    assert "/srv/home" not in result.error and "x.csv" in result.error
    step = result.tasks[0].steps[0]
    assert step.exit_code is None and step.log_path is None and len(result.tasks) == 1
    assert result.artifacts == {"executed_notebook": "submissions/9/T/executed_notebook.ipynb",
                                "detailed_results": "submissions/9/T/detailed_results.html"}
    assert set(result.files) == {"submissions/9/T/a.txt", "submissions/9/T/c.txt"}
    assert [d.name for d in result.dropped] == ["n", "b.txt"] and result.dropped[0].bytes is None
    assert result.warnings[0] == "kept" and "b.txt (" in result.warnings[1]
    json.dumps({k: v for k, v in result.to_wire().items() if k != "files"})


def test_no_result_is_a_failure():
    for raw in (None, [], "Finished"):
        result = JobResult.from_untrusted(1, raw)
        assert result.status == Status.FAILED and result.error == "the worker returned no result"


def test_worker_work_folders_are_hidden():
    text = "cannot open /tmp/jupyter-compete-run-1/input/res/predictions.csv"
    assert without_host_paths(text) == "cannot open …/predictions.csv"


def test_tuples_from_the_event_wire_read_as_lists():
    # Dask's event wire hands lists back as tuples.
    raw = {"status": "Failed", "warnings": ("a link was removed",),
           "dropped": ({"name": "n", "bytes": 1, "reason": "r"},),
           "tasks": ({"task_index": 0, "steps": ({"step": "prediction", "exit_code": 3},)},)}
    result = JobResult.from_untrusted(1, raw)
    assert result.warnings == ["a link was removed"] and result.dropped[0].name == "n"
    assert [s.step for s in result.tasks[0].steps] == ["prediction"]
