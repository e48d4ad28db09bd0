"""`compete worker` and `compete image build`: the commands of a machine that runs submissions.

They import nothing of the platform's server side (no database, no hub), so
that they run on a worker-only install (distributed, docker, papermill,
nbformat, cryptography, pyyaml, traitlets).
"""
from __future__ import annotations

import argparse
import sys

from kernels.build import DEFAULT_IMAGE, build_all, build_image

from .config import executor_settings, load_config


def cmd_worker(args: argparse.Namespace) -> int:
    # Start-up cost: distributed (and the executors) load only when the worker starts, not for `--help`.
    from dask_workers.attach import CredentialsError, main
    from dask_workers.executors import executor_class

    if args.worker_executor and args.worker_executor != "auto":
        try:
            executor_class(args.worker_executor)
        except ValueError as exc:
            print(f"error: --worker-executor: {exc}", file=sys.stderr)
            return 2
    # The machine's own executor settings (c.DockerExecutor.*, ...) from the one configuration loader.
    loaded = load_config(home=args.home)
    machine = executor_settings(loaded.config)
    # The machine's own cap on its dataset cache, when its configuration sets one (else each job's).
    cache_mb = loaded.config.Compete.get("dataset_cache_mb")
    try:
        return main(args.credentials, executor_config=machine, name=args.name, nthreads=args.nthreads,
                    gpus=args.gpus, executor=args.worker_executor, local_directory=args.local_directory,
                    listen_host=args.listen_host, dataset_cache_mb=int(cache_mb) if cache_mb else None)
    except CredentialsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2


def cmd_image_build(args: argparse.Namespace) -> int:
    if getattr(args, "all", False):
        if args.tag:
            print("error: --all builds every runtime under its own tag: leave out --tag", file=sys.stderr)
            return 2
        for tag, image_id in build_all().items():
            print(f"{tag} {image_id}")
        return 0
    image_id = build_image(args.tag or DEFAULT_IMAGE)
    print(image_id)
    return 0
