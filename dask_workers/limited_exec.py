"""Start a program under resource limits: the launcher of the process executor.

The process executor runs every step (a `sh -c` command or a Jupyter kernel)
through this small script: it sets the rlimits of the step, changes to the
working directory, optionally redirects stdout/stderr to files, and then
replaces itself with the program (`exec`), so the program keeps this process
id and process group.  Limits are set here rather than with `preexec_fn`
because the worker is multi-threaded and `preexec_fn` is not safe there.

It imports nothing of this project and only the standard library, and it is
run with `python -I -S` so that it starts in a few milliseconds.

    python3 -I -S limited_exec.py [--as BYTES] [--cpu SECONDS] [--fsize BYTES]
        [--nproc N] [--cwd DIR] [--stdout FILE] [--stderr FILE] -- PROGRAM ARGS...
"""
from __future__ import annotations

import argparse
import os
import resource
import sys


def _own_process_count() -> int:
    """How many processes the real user already has (RLIMIT_NPROC counts them all)."""
    uid = os.getuid()
    count = 0
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    count += 1
            except OSError:
                continue
    return count


def _set(limit: int, value: int | None) -> None:
    if value is None or value <= 0:
        return
    _, hard = resource.getrlimit(limit)
    if hard != resource.RLIM_INFINITY:
        value = min(value, hard)
    resource.setrlimit(limit, (value, value))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="limited_exec")
    parser.add_argument("--as", dest="address_space", type=int)
    parser.add_argument("--cpu", type=int)
    parser.add_argument("--fsize", type=int)
    parser.add_argument("--nproc", type=int)
    parser.add_argument("--cwd")
    parser.add_argument("--stdout")
    parser.add_argument("--stderr")
    parser.add_argument("program", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    program = args.program[1:] if args.program[:1] == ["--"] else args.program
    if not program:
        parser.error("no program given after --")

    _set(resource.RLIMIT_AS, args.address_space)
    _set(resource.RLIMIT_CPU, args.cpu)
    _set(resource.RLIMIT_FSIZE, args.fsize)
    if args.nproc and os.getuid() != 0:
        # root is exempt from RLIMIT_NPROC; for other users the count covers
        # every process they own, so the budget comes on top of those.
        _set(resource.RLIMIT_NPROC, _own_process_count() + args.nproc)
    # Address-space limits count reserved, not used, memory; glibc reserves
    # up to 64 MiB per thread arena, which would eat a small budget.
    os.environ.setdefault("MALLOC_ARENA_MAX", "2")
    if args.cwd:
        os.chdir(args.cwd)
    for path, fd in ((args.stdout, 1), (args.stderr, 2)):
        if path:
            target = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            os.dup2(target, fd)
            os.close(target)
    try:
        os.execvp(program[0], program)
    except OSError as error:
        print(f"cannot start {program[0]!r}: {error.strerror}", file=sys.stderr)
        return 127


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
