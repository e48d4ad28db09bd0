"""The worker's side of run provenance: the machine, GPUs through nvidia-smi, package lists once per image."""
from __future__ import annotations

import hashlib
import importlib.metadata
import os
import subprocess
import sys

from dask_workers import provenance
from hub_extension.contract import JobResult, plain_facts

CPUINFO = """processor\t: 0
vendor_id\t: GenuineIntel
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
flags\t\t: fpu vme

processor\t: 1
model name\t: Intel(R) Xeon(R) CPU @ 2.20GHz
"""


def test_the_cpu_model_is_read_from_cpuinfo():
    assert provenance.cpu_model(CPUINFO) == "Intel(R) Xeon(R) CPU @ 2.20GHz"
    assert provenance.cpu_model("processor : 0\n") is None
    facts = provenance.machine_facts()
    assert facts["cpu_count"] == os.cpu_count() and facts["host"]
    assert facts["cpu_model"] == provenance.cpu_model(open("/proc/cpuinfo").read())


def test_gpus_come_from_nvidia_smi_when_it_is_there(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    assert provenance.gpu_facts() == []
    tool = tmp_path / "nvidia-smi"
    tool.write_text("#!/bin/sh\necho 'Tesla T4, 535.54.03'\necho 'NVIDIA A100-SXM4-40GB, 535.54.03'\n")
    tool.chmod(0o755)
    assert provenance.gpu_facts() == [{"model": "Tesla T4", "driver": "535.54.03"},
                                      {"model": "NVIDIA A100-SXM4-40GB", "driver": "535.54.03"}]
    tool.write_text("#!/bin/sh\nexit 9\n")
    assert provenance.gpu_facts()[0]["error"] == "nvidia-smi failed: CalledProcessError"


class ProcessExecutor:
    name = "process"
    isolates = False


def test_the_workers_own_package_list_is_hashed_once(monkeypatch):
    provenance._packages.clear()
    facts = provenance.package_list_sha256(ProcessExecutor(), None)
    lines = sorted({f"{(d.metadata['Name'] or '?').lower()}=={d.version}" for d in importlib.metadata.distributions()})
    assert facts == {"sha256": hashlib.sha256("\n".join(lines).encode()).hexdigest(), "count": len(lines)}

    def refuse(*args, **kwargs):
        raise AssertionError("listed twice")

    monkeypatch.setattr(subprocess, "run", refuse)
    assert provenance.package_list_sha256(ProcessExecutor(), None) == facts


def test_run_facts_and_what_the_platform_keeps_of_them():
    facts = provenance.run_facts(ProcessExecutor(), [None, None], queue="default", worker="w", started_at="a",
                                 ended_at="b")
    assert facts["executor"] == "process" and list(facts["packages"]) == ["worker"]
    assert facts["worker"]["queue"] == "default" and facts["worker"]["python"] == sys.version.split()[0]
    kept = JobResult.from_untrusted(1, {"status": "Finished", "provenance": facts}).provenance
    assert kept == facts
    assert JobResult.from_untrusted(1, {"status": "Finished", "provenance": ["not", "a", "dict"]}).provenance == {}
    assert plain_facts({"a": object(), "b": [float("inf")], "c": 2**70}) == {"a": None, "b": [None], "c": None}


def test_images_named_by_digest_are_recognised():
    from kernels.images import is_digest_reference

    digest = "sha256:" + "0123456789abcdef" * 4
    assert is_digest_reference(digest) and is_digest_reference(f"registry.example.org/judge@{digest}")
    for image in (None, "", "python:3.11-slim", "sha256:abc", "judge@sha256:" + "G" * 64, digest + "0"):
        assert not is_digest_reference(image), image
