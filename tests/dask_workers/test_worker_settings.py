"""Executor settings on a worker: the platform's come with each job, the machine's own file beats them."""
from hub_extension.config import executor_settings, load_config
from hub_extension.contract import Job, TaskJob

from dask_workers import submission_job


def test_the_machine_settings_win_key_by_key():
    platform = {"DockerExecutor": {"user": "1000:1000", "tmp_size_mb": 64}, "UnsafeProcessExecutor": {"warm_kernel": True}}
    machine = {"DockerExecutor": {"user": "2000:2000"}, "Executor": {"x": 1}}
    assert submission_job.merged_settings(platform, machine) == {
        "DockerExecutor": {"user": "2000:2000", "tmp_size_mb": 64},
        "UnsafeProcessExecutor": {"warm_kernel": True},
        "Executor": {"x": 1},
    }
    assert platform["DockerExecutor"]["user"] == "1000:1000"


def test_compete_worker_reads_the_executor_sections_of_its_configuration(tmp_path, monkeypatch):
    monkeypatch.delenv("COMPETE_CONFIG", raising=False)
    (tmp_path / "compete_config.py").write_text(
        "c.DockerExecutor.user = '2000:2000'\nc.UnsafeProcessExecutor.warm_kernel = False\nc.Compete.step_cpus = 3.0\n")
    assert executor_settings(load_config(home=tmp_path).config) == {
        "DockerExecutor": {"user": "2000:2000"}, "UnsafeProcessExecutor": {"warm_kernel": False}}


def test_the_executor_of_a_run_is_built_with_the_merged_settings(monkeypatch):
    monkeypatch.setattr(submission_job, "_executors", {})
    monkeypatch.setattr(submission_job, "worker_executor_config", {"UnsafeProcessExecutor": {"warm_kernel": False}})
    job = Job(submission_id=1, queue="default", kind="results", filename="r.zip", submission="a" * 64,
              tasks=(TaskJob(index=0),), executor="process",
              executor_config={"UnsafeProcessExecutor": {"warm_kernel": True, "kernel_name": "python3"}})
    executor = submission_job.executor_for(job)
    try:
        assert executor.warm_kernel is False and executor.kernel_name == "python3"
    finally:
        executor.close()
