"""What run provenance costs a worker: the image's package list (once per image digest) and the machine facts.

    python bench/provenance.py [--runs 5]

Lists the Python packages of the default runtime image `--runs` times with the
in-process cache cleared (a short container each time), then once cached, and
reads the machine facts (CPU model, GPUs); prints one JSON line.  Needs a
Docker engine and the runtime image (`compete image build`).
"""
from __future__ import annotations

import argparse
import json
import statistics
import time

from dask_workers import provenance
from dask_workers.executors.docker import DockerExecutor
from kernels.build import DEFAULT_IMAGE
from kernels.images import image_digest


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    executor = DockerExecutor(worker_id="bench-provenance")
    try:
        digest = image_digest(DEFAULT_IMAGE, executor.client)
        if digest is None:
            raise SystemExit(f"no image {DEFAULT_IMAGE} here: build it with `compete image build`")
        cold = []
        for _ in range(args.runs):
            provenance._packages.clear()
            start = time.monotonic()
            facts = provenance.package_list_sha256(executor, digest)
            cold.append(time.monotonic() - start)
        start = time.monotonic()
        provenance.package_list_sha256(executor, digest)
        cached = time.monotonic() - start
        provenance._machine = None
        start = time.monotonic()
        provenance.machine_facts()
        machine = time.monotonic() - start
    finally:
        executor.close()
    print(json.dumps({"image": DEFAULT_IMAGE, "packages": facts.get("count"), "runs": args.runs,
                      "first_median_s": round(statistics.median(cold), 3), "first_min_s": round(min(cold), 3),
                      "first_max_s": round(max(cold), 3), "cached_us": round(cached * 1e6, 1),
                      "machine_facts_ms": round(machine * 1e3, 2)}))


if __name__ == "__main__":
    main()
