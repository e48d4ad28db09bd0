"""`compete kernel`: the judge's environment as a Jupyter kernel (install, list, remove).

A judge kernel spec runs `kernels.judge_kernel` with this environment's
Python: each kernel is an IPython kernel in a container of a runtime image,
with the judge's limits (kernels/judge_kernel.py says how).  Installing one
checks what it will need at every start, so that a participant never picks a
kernel that cannot start: a Docker engine that answers, the image on this
machine, and ipykernel in that image.

The platform installs judge kernels for its users' servers too
(`install_for_servers`, called at the embedded default's start): one per
runtime image on the machine, named after the image and its digest
("Judge: jupyter-compete/runtime:py3 (sha256:abcd1234)"), in a folder of the
platform's home that the servers find through JUPYTER_PATH, next to a state
file saying what was installed or why nothing was (no Docker for the
servers).  The service reads that file (`read_servers_state`) to say on the
competition page which environment a participant's notebooks get, and to set
the kernelspec of the notebooks it delivers.

`compete kernel install --local-packages` is the other way round: the default
runtime's package list (kernels/requirements-py3.txt, pinned: the versions the
image is built with) pip-installed into this environment, for servers without
Docker; scripts/bootstrap.sh does it for the project's environment.  The state
says, per runtime image, how the servers' Python differs from it
(`runtime_differences`), so that the page can say whether notebooks without a
judge kernel still have the judge's packages.
"""
from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any, Optional, Sequence

from kernels.build import DEFAULT_IMAGE, RUNTIMES, cache_dir
from kernels.images import docker_client
from kernels.kernelspec import FILES, TEMPLATE_DIR

from .config import load_config
from .judge_specs import (LAUNCHER_MODULE, SERVERS_STATE, SPEC_KIND, judge_kernels, notebook_kernelspec,
                          read_servers_state, servers_folder, short_digest)

README_SECTION = "README, \"The judge's environment as a kernel\""
# In the platform's home: the kernels installed for users' servers (a JUPYTER_PATH entry) and what was done.
# Image id -> the Python version its IPython kernel probe found (the probe starts a container).
PROBE_CACHE = "judge-kernel-probes.json"


class KernelSetupError(RuntimeError):
    """A judge kernel cannot be installed here; the message says what to do."""


def default_kernel_name(image: str) -> str:
    """`judge` for the default runtime, `judge-<image>` (lowercase, [a-z0-9._-]) for another."""
    if image == DEFAULT_IMAGE:
        return "judge"
    slug = re.sub(r"[^a-z0-9._-]+", "-", image.lower()).strip("-.")
    return f"judge-{slug}" if slug else "judge"


def display_name(image: str) -> str:
    return f"Judge environment ({image})"


def kernel_spec(image: str, *, python: str, memory_mb: int, cpus: float, pids: int,
                mounts: Sequence[str] = (), name_shown: Optional[str] = None) -> dict[str, Any]:
    """The `kernel.json` of a judge kernel: the template with this installation's argv."""
    spec = json.loads((TEMPLATE_DIR / "kernel.json").read_text())
    argv = [python, "-m", LAUNCHER_MODULE, "--image", image,
            "--memory-mb", str(int(memory_mb)), "--cpus", f"{float(cpus):g}", "--pids", str(int(pids))]
    for mount in mounts:
        argv += ["--mount", str(Path(mount).resolve())]
    spec["argv"] = argv + ["-f", "{connection_file}"]
    spec["display_name"] = name_shown or display_name(image)
    spec["metadata"]["jupyter_compete"] = {
        "kind": SPEC_KIND, "image": image,
        "limits": {"memory_mb": int(memory_mb), "cpus": float(cpus), "pids": int(pids)},
    }
    return spec


# -- what a judge kernel needs ------------------------------------------------------------


def check_docker_engine() -> None:
    """Raise KernelSetupError unless a Docker engine answers."""
    try:
        client = docker_client(timeout=5)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
        reason = str(getattr(exc, "explanation", None) or exc).strip().splitlines()
        raise KernelSetupError(
            f"no Docker engine answers at {where} ({reason[0][:200] if reason else type(exc).__name__}). "
            "The judge's environment runs each kernel in a container, so it is offered only where "
            "Docker runs: start an engine (as root: `bash scripts/ensure_docker.sh`) and install again. "
            f"Without Docker, see {README_SECTION}.") from None


def check_image(image: str, python: str = "python3") -> str:
    """Raise KernelSetupError unless `image` is here with ipykernel; returns its Python version."""
    # Start-up cost: the Docker client library loads only when an image is checked.
    import docker

    client = docker_client(timeout=120)
    try:
        try:
            client.images.get(image)
        except docker.errors.ImageNotFound:
            how = "`compete image build`" if image == DEFAULT_IMAGE else f"`docker pull {image}` (or build it)"
            raise KernelSetupError(f"the image {image} is not on this machine: get it with {how}, "
                                   "then install the kernel again") from None
        probe = "import sys, ipykernel; print('%d.%d.%d' % sys.version_info[:3])"
        try:
            output = client.containers.run(image, [python, "-c", probe], entrypoint=[], remove=True,
                                           network_mode="none", stderr=True,
                                           user=f"{os.getuid()}:{os.getgid()}")  # as the kernel will run
        except docker.errors.ContainerError as exc:
            detail = (exc.stderr or b"").decode("utf-8", "replace").strip().splitlines()
            raise KernelSetupError(
                f"the image {image} cannot run an IPython kernel: `{python} -c 'import ipykernel'` failed "
                f"({detail[-1] if detail else exc.exit_status}); add ipykernel to the image") from None
        except docker.errors.APIError as exc:
            raise KernelSetupError(f"the image {image} could not be started: {exc.explanation or exc}") from None
        return output.decode().strip().splitlines()[-1]
    finally:
        client.close()


def _limits_from_config(home: Optional[str] = None) -> tuple[int, float, int]:
    """The judge's per-step limits (`c.Compete.step_*`) from the platform's configuration file."""
    config = load_config(home=home).compete
    return config.step_memory_mb, config.step_cpus, config.step_pids


# -- install, list, remove ------------------------------------------------------------------


def install(image: str = DEFAULT_IMAGE, name: Optional[str] = None, *, user: bool = False,
            prefix: Optional[str] = None, memory_mb: Optional[int] = None, cpus: Optional[float] = None,
            pids: Optional[int] = None, mounts: Sequence[str] = (), name_shown: Optional[str] = None,
            python: Optional[str] = None, home: Optional[str] = None) -> tuple[str, str]:
    """Check, then install a judge kernel spec; returns (its folder, the image's Python version).

    Limits not given come from the configuration file of the platform's `home` (default: as `compete` finds it).
    """
    # Start-up cost: jupyter_client takes over half a second to import; only kernel commands need it.
    from jupyter_client.kernelspec import KernelSpecManager

    name = name or default_kernel_name(image)
    if not re.fullmatch(r"[a-z0-9._-]+", name, flags=re.IGNORECASE):
        raise KernelSetupError(f"kernel name {name!r}: use letters, digits, '.', '_' and '-' only")
    check_docker_engine()
    version = check_image(image)
    if memory_mb is None or cpus is None or pids is None:
        config_memory, config_cpus, config_pids = _limits_from_config(home)
        memory_mb = config_memory if memory_mb is None else memory_mb
        cpus = config_cpus if cpus is None else cpus
        pids = config_pids if pids is None else pids
    spec = kernel_spec(image, python=python or sys.executable, memory_mb=memory_mb, cpus=cpus, pids=pids,
                       mounts=mounts, name_shown=name_shown)
    with tempfile.TemporaryDirectory(prefix="judge-kernel-") as tmp:
        source = Path(tmp) / name
        source.mkdir()
        for file in FILES:
            if file != "kernel.json":
                shutil.copy(TEMPLATE_DIR / file, source / file)
        (source / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
        try:
            path = KernelSpecManager().install_kernel_spec(str(source), kernel_name=name, user=user, prefix=prefix)
        except PermissionError as exc:
            raise KernelSetupError(f"cannot write the kernel spec ({exc.strerror}: {exc.filename}): "
                                   "install it for yourself with --user, or into this environment "
                                   "with --sys-prefix") from None
    return path, version



def remove(name: str) -> str:
    # Start-up cost: jupyter_client takes over half a second to import; only kernel commands need it.
    from jupyter_client.kernelspec import KernelSpecManager

    names = {k["name"]: k for k in judge_kernels()}
    if name not in names:
        known = ", ".join(sorted(names)) or "none is installed"
        raise KernelSetupError(f"no judge kernel named {name!r} (judge kernels: {known})")
    try:
        return KernelSpecManager().remove_kernel_spec(name)
    except PermissionError as exc:
        raise KernelSetupError(f"cannot remove {exc.filename}: {exc.strerror}") from None


# -- judge kernels for users' servers ---------------------------------------------------------


def pinned_kernel_name(image: str, digest: str) -> str:
    """`judge-<image>-<8 hex of its digest>`, lowercase [a-z0-9._-]."""
    slug = re.sub(r"[^a-z0-9._-]+", "-", image.lower()).strip("-.")
    return f"judge-{slug}-{short_digest(digest).partition(':')[2]}"


def pinned_display_name(image: str, digest: str) -> str:
    return f"Judge: {image} ({short_digest(digest)})"


def _probe_image(image, name: str) -> str:
    """The image's Python version, once per image id (cached: the probe starts a container)."""
    path = cache_dir() / PROBE_CACHE
    try:
        cache = json.loads(path.read_text())
    except (OSError, ValueError):
        cache = {}
    if image.id in cache:
        return cache[image.id]
    version = check_image(name)
    cache[image.id] = version
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    tmp.write_text(json.dumps(cache, indent=1))
    os.replace(tmp, path)
    return version


def runtime_differences(image: str) -> Optional[list[str]]:
    """How this environment's packages differ from those the runtime `image` is built with.

    [] when every package of its list is here at its version; None when the
    platform has no list for `image` (an organizer's own image).
    """
    runtime = RUNTIMES.get(image)
    if runtime is None:
        return None
    differs = []
    for requirement in runtime.packages:
        name, _, wanted = requirement.partition("==")
        try:
            here = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            differs.append(f"{name} is missing (the image has {wanted or 'it'})")
            continue
        if wanted and here != wanted:
            differs.append(f"{name} {here} here, {wanted} in the image")
    return differs


def install_for_servers(home: str | os.PathLike, images: Sequence[str], *, docker: Optional[bool] = None,
                        python: Optional[str] = None, memory_mb: int, cpus: float, pids: int,
                        docker_setting: str = "", reason: Optional[str] = None) -> dict[str, Any]:
    """Install a judge kernel per image of `images` on this machine for users' servers; returns the state.

    `docker`: whether users' servers can use this machine's Docker engine
    (None: they can when it answers); `docker_setting` names the setting that
    said no, for the state's reason (or `reason` says why, whole).  Kernels are written to
    `servers_folder(home)/kernels`, where those of images no longer here (or
    of an older digest) are removed; the state goes to `SERVERS_STATE` next to
    them.  Fast when nothing changed: a ping, one lookup per image, and the
    kernel probe only for an image id not seen before.
    """
    folder = servers_folder(home)
    kernels_dir = folder / "kernels"
    kernels_dir.mkdir(parents=True, exist_ok=True)
    state: dict[str, Any] = {"docker": False, "reason": None, "kernels": {}, "missing": {},
                             # The servers' own Python (this one, on the embedded default) against each runtime.
                             "python": python or sys.executable,
                             "packages": {image: runtime_differences(image) for image in dict.fromkeys(images)}
                             if python in (None, sys.executable) else {}}
    if docker is False:
        said = f"the hub's setting {docker_setting}" if docker_setting else "the hub's settings"
        state["reason"] = reason or f"{said} says users' servers have no Docker engine"
    else:
        try:
            check_docker_engine()
            state["docker"] = True
        except KernelSetupError as exc:
            state["reason"] = str(exc)
    if state["docker"]:
        # Optional dependency: the docker SDK loads only when an engine is used (hosts without Docker import this module).
        import docker as docker_sdk

        client = docker_client(timeout=120)
        try:
            for image in dict.fromkeys(images):
                try:
                    found = client.images.get(image)
                except docker_sdk.errors.ImageNotFound:
                    how = "`compete image build --all`" if image in RUNTIMES else f"`docker pull {image}`"
                    state["missing"][image] = f"the image {image} is not on this machine (get it with {how})"
                    continue
                try:
                    version = _probe_image(found, image)
                except KernelSetupError as exc:
                    state["missing"][image] = str(exc)
                    continue
                digests = found.attrs.get("RepoDigests") or []
                digest = digests[0].rpartition("@")[2] if digests else found.id
                name = pinned_kernel_name(image, digest)
                spec = kernel_spec(image, python=python or sys.executable, memory_mb=memory_mb, cpus=cpus,
                                   pids=pids, name_shown=pinned_display_name(image, digest))
                spec["metadata"]["jupyter_compete"].update({"digest": digest, "python_version": version})
                target = kernels_dir / name
                target.mkdir(exist_ok=True)
                for file in FILES:
                    if file != "kernel.json":
                        shutil.copy(TEMPLATE_DIR / file, target / file)
                (target / "kernel.json").write_text(json.dumps(spec, indent=2) + "\n")
                state["kernels"][image] = {"name": name, "display_name": spec["display_name"],
                                           "language": spec["language"], "digest": digest,
                                           "python_version": version}
        finally:
            client.close()
    current = {entry["name"] for entry in state["kernels"].values()}
    for old in kernels_dir.glob("judge-*"):
        if old.name not in current:
            shutil.rmtree(old, ignore_errors=True)
    tmp = folder / f".{SERVERS_STATE}.{os.getpid()}"
    tmp.write_text(json.dumps(state, indent=1) + "\n")
    os.replace(tmp, folder / SERVERS_STATE)
    return state


def install_local_packages(image: str = DEFAULT_IMAGE, *, python: Optional[str] = None) -> list[str]:
    """pip-install the package list of the runtime `image` into this environment; returns the list."""
    runtime = RUNTIMES.get(image)
    if runtime is None:
        known = ", ".join(RUNTIMES)
        raise KernelSetupError(f"no package list for {image}: the platform's runtimes are {known}")
    proc = subprocess.run([python or sys.executable, "-m", "pip", "install", "--disable-pip-version-check",
                           *runtime.packages])
    if proc.returncode != 0:
        raise KernelSetupError(f"pip could not install the packages of {image} (exit code {proc.returncode})")
    return list(runtime.packages)


# -- the command line ------------------------------------------------------------------------


def cmd_kernel_install(args: argparse.Namespace) -> int:
    if args.local_packages:
        try:
            packages = install_local_packages(args.image)
        except KernelSetupError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
        print(f"installed the packages of {args.image} into {sys.prefix}: {' '.join(packages)}")
        print("  their versions are pip's choice here, not the image's; the kernel is this environment's Python")
        return 0
    prefix = sys.prefix if args.sys_prefix else args.prefix
    try:
        path, version = install(args.image, args.name, user=args.user, prefix=prefix, memory_mb=args.memory_mb,
                                cpus=args.cpus, pids=args.pids, mounts=args.mount, name_shown=args.display_name,
                                home=getattr(args, "home", None))
    except KernelSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    spec = json.loads((Path(path) / "kernel.json").read_text())
    limits = spec["metadata"]["jupyter_compete"]["limits"]
    print(f"installed kernel {Path(path).name!r} in {path}")
    print(f"  {spec['display_name']}: Python {version}, memory {limits['memory_mb']} MB, "
          f"{limits['cpus']:g} CPU, {limits['pids']} processes")
    return 0


def cmd_kernel_list(args: argparse.Namespace) -> int:
    kernels = judge_kernels()
    if args.json:
        print(json.dumps(kernels))
        return 0
    if not kernels:
        print("no judge kernel installed: `compete kernel install` installs one")
        return 0
    width = max(len(k["name"]) for k in kernels)
    for k in kernels:
        note = f"  ({k['problem']})" if k["problem"] else ""
        print(f"{k['name']:<{width}}  {k['image']}  {k['path']}{note}")
    return 0


def cmd_kernel_remove(args: argparse.Namespace) -> int:
    try:
        path = remove(args.name)
    except KernelSetupError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"removed {path}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Adds `kernel install|list|remove` to the `compete` command."""
    kernel = sub.add_parser(
        "kernel", help="the judge's environment as a Jupyter kernel (needs Docker)",
    ).add_subparsers(dest="kernel_command", metavar="ACTION")
    kernel.required = True

    p = kernel.add_parser("install", help="install a kernel spec that runs IPython inside a runtime image")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--user", action="store_true", help="for the current user (~/.local/share/jupyter)")
    where.add_argument("--sys-prefix", action="store_true",
                       help=f"into this Python environment ({sys.prefix}/share/jupyter)")
    where.add_argument("--prefix", default=None, help="into PREFIX/share/jupyter (default: system-wide)")
    p.add_argument("--image", default=DEFAULT_IMAGE, help=f"the competition's runtime image (default {DEFAULT_IMAGE})")
    p.add_argument("--name", default=None, help="kernel name (default: judge, or judge-<image>)")
    p.add_argument("--display-name", default=None, help="name shown in JupyterLab (default: Judge environment (IMAGE))")
    p.add_argument("--memory-mb", type=int, default=None, help="memory limit (default: c.Compete.step_memory_mb)")
    p.add_argument("--cpus", type=float, default=None, help="CPU limit, 0 for none (default: c.Compete.step_cpus)")
    p.add_argument("--pids", type=int, default=None, help="process limit (default: c.Compete.step_pids)")
    p.add_argument("--mount", action="append", default=[],
                   help="a folder mounted in every kernel, at the same path (repeatable; default: the "
                        "Jupyter server's root, else the notebook's folder)")
    p.add_argument("--local-packages", action="store_true",
                   help="instead of a kernel: pip-install the runtime's package list (kernels/build.py) into "
                        "this environment, for servers without Docker")
    p.set_defaults(func=cmd_kernel_install)

    p = kernel.add_parser("list", help="the judge kernels installed, with problems that would stop them")
    p.add_argument("--json", action="store_true")
    p.set_defaults(func=cmd_kernel_list)

    p = kernel.add_parser("remove", help="remove a judge kernel spec")
    p.add_argument("name")
    p.set_defaults(func=cmd_kernel_remove)


def main(argv: Optional[Sequence[str]] = None) -> int:
    """`python -m hub_extension.cli_kernel kernel ...`, the same as `compete kernel ...`."""
    parser = argparse.ArgumentParser(prog="compete")
    add_commands(parser.add_subparsers(dest="command", metavar="COMMAND"))
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    return args.func(args)


__all__ = ["KernelSetupError", "add_commands", "install", "install_for_servers", "install_local_packages",
           "judge_kernels", "kernel_spec", "notebook_kernelspec", "pinned_display_name", "pinned_kernel_name",
           "read_servers_state", "remove", "servers_folder", "short_digest"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
