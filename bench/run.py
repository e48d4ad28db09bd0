#!/usr/bin/env python
"""Performance benchmark of the platform: latency, notebook overhead, throughput, Docker overhead.

    python bench/run.py [--quick] [--out bench/results.json]

Measures, in one run and against baselines taken in the same run:

(a) end-to-end latency of a trivial results submission, from `Platform.submit`
    to the submission being on the leaderboard, with a warm Dispatcher
    (median over N), on the process and the docker executor;
(b) notebook submissions end to end (`elapsed` of `Platform.submission`):
    the demo starting kit (trivial), the same with 50 cells, and the same
    predicting with scikit-learn; against `papermill` run by hand on the same
    notebook (median over N), as ratios: on the process executor against the
    `papermill` CLI of this machine, on the docker executor against
    `papermill` run in a new container of the same runtime image (what a
    participant would do by hand there);
(c) throughput of many small results submissions on the default queue (a
    Dispatcher with the default queue's process), in submissions per second;
(d) Docker overhead per step: the demo scoring step run by the docker and
    the process executor directly (no Dask), median difference in seconds;
    plus the same from the step times the platform recorded in (a).

Everything runs in a temporary COMPETE home, on a copy of the demo bundle
whose submission limits are raised; submissions rotate over several users.
The table goes to stdout, every figure (and the machine) to the JSON file.
"""
from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform as pyplatform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from hub_extension.app import LOCAL_ADMIN, Platform, zip_folder  # noqa: E402

DEMO = ROOT / "templates" / "demo"
NOTEBOOK = DEMO / "starting_kit" / "starting_kit.ipynb"
RESULTS_DIR = DEMO / "sample_submissions" / "petal_rule"
USERS = [f"bench{i:02d}" for i in range(12)]
TARGET_NOTEBOOK_RATIO = {"process": 0.35, "docker": 0.6}
NOTEBOOK_KINDS = ("trivial", "cells50", "sklearn")
TARGET_DOCKER_STEP_OVERHEAD = 1.0


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def median(values: list[float]) -> Optional[float]:
    values = [v for v in values if v is not None]
    return statistics.median(values) if values else None


def summary(values: list[float]) -> dict[str, Any]:
    values = [v for v in values if v is not None]
    if not values:
        return {"n": 0}
    return {
        "n": len(values),
        "median": round(statistics.median(values), 4),
        "min": round(min(values), 4),
        "max": round(max(values), 4),
        "mean": round(statistics.fmean(values), 4),
        "values": [round(v, 4) for v in values],
    }


# -- machine --------------------------------------------------------------------------------------

def machine() -> dict[str, Any]:
    info: dict[str, Any] = {
        "cpu_count": os.cpu_count(),
        "python": sys.version.split()[0],
        "platform": pyplatform.platform(),
    }
    try:
        sched = len(os.sched_getaffinity(0))
        info["cpus_usable"] = sched
    except AttributeError:
        pass
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                info["cpu_model"] = line.split(":", 1)[1].strip()
                break
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                info["memory_gb"] = round(int(line.split()[1]) / 1024 / 1024, 1)
                break
        info["loadavg_at_start"] = list(os.getloadavg())
    except OSError:
        pass
    try:
        import docker

        client = docker.from_env(timeout=10)
        version = client.version()
        info["docker_server_version"] = version.get("Version")
        info["docker_api_version"] = version.get("ApiVersion")
        client.close()
    except Exception as exc:  # noqa: BLE001
        info["docker_server_version"] = None
        info["docker_error"] = str(exc)
    for package in ("distributed", "papermill", "docker", "sqlalchemy"):
        try:
            from importlib.metadata import version as pkg_version

            info[f"{package}_version"] = pkg_version(package)
        except Exception:  # noqa: BLE001
            pass
    return info


# -- set-up ---------------------------------------------------------------------------------------

def bench_bundle(tmp: Path) -> Path:
    """A copy of the demo bundle whose limits never stop a benchmark."""
    bundle = tmp / "bundle"
    shutil.copytree(DEMO, bundle)
    spec = (bundle / "competition.yaml").read_text()
    spec = spec.replace("title: \"Demo: flower species\"", "title: \"Bench: flower species\"")
    spec = spec.replace("max_submissions: 100\n", "max_submissions: 1000000\n")
    spec = spec.replace("max_submissions_per_day: 20\n", "max_submissions_per_day: 1000000\n")
    (bundle / "competition.yaml").write_text(spec)
    return bundle


def write_notebooks(tmp: Path) -> dict[str, Path]:
    """The three notebooks of (b): the starting kit, with 50 cells, and predicting with scikit-learn."""
    import nbformat

    base = nbformat.read(str(NOTEBOOK), as_version=4)
    made = {"trivial": tmp / "nb-trivial" / "starting_kit.ipynb"}
    cells50 = nbformat.from_dict(base)
    extra = 50 - len(cells50.cells)
    cells50.cells += [nbformat.v4.new_code_cell(f"step_{i} = {i} * 2\nstep_{i}") for i in range(extra)]
    sklearn = nbformat.from_dict(base)
    at = next(i for i, c in enumerate(sklearn.cells) if "predictions = pd.DataFrame" in "".join(c.source))
    sklearn.cells.insert(at, nbformat.v4.new_code_cell(
        "from sklearn.linear_model import LogisticRegression\n"
        "from sklearn.pipeline import make_pipeline\n"
        "from sklearn.preprocessing import StandardScaler\n\n"
        "model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))\n"
        "model.fit(train[features], train['species'])\n\n\n"
        "def predict(frame):\n"
        "    return pd.Series(model.predict(frame[features]), index=frame.index)\n\n\n"
        "print(f\"accuracy on the training flowers: {model.score(train[features], train['species']):.3f}\")"))
    for name, nb in (("cells50", cells50), ("sklearn", sklearn)):
        made[name] = tmp / f"nb-{name}" / "starting_kit.ipynb"
    for name, path in made.items():
        path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(NOTEBOOK, made["trivial"])
    nbformat.write(cells50, str(made["cells50"]))
    nbformat.write(sklearn, str(made["sklearn"]))
    return made


class Bench:
    def __init__(self, tmp: Path):
        self.tmp = tmp
        self.platform = Platform(home=str(tmp / "home"))
        self.slug, _ = self.platform.create_competition(bench_bundle(tmp), LOCAL_ADMIN)
        for user in USERS:
            self.platform.register(self.slug, user, LOCAL_ADMIN)
        self.results_zip = tmp / "petal_rule.zip"
        zip_folder(RESULTS_DIR, self.results_zip)
        self.notebook = tmp / "starting_kit.ipynb"
        shutil.copyfile(NOTEBOOK, self.notebook)
        self.notebooks = write_notebooks(tmp)
        self._n = 0

    def next_user(self) -> str:
        self._n += 1
        return USERS[self._n % len(USERS)]

    def submit(self, path: Path) -> int:
        return self.platform.submit(self.slug, path, username=self.next_user(), actor=LOCAL_ADMIN)

    def on_leaderboard(self, sid: int) -> bool:
        board = self.platform.leaderboard(self.slug)
        return any(row["submission"] == sid for row in board["rows"])

    def phases(self, sid: int) -> dict[str, float]:
        """Seconds spent between status changes, from the submission's history."""
        info = self.platform.submission(sid)
        history = info["history"]
        out: dict[str, float] = {}
        for before, after in zip(history, history[1:]):
            t0 = dt.datetime.fromisoformat(before["at"])
            t1 = dt.datetime.fromisoformat(after["at"])
            key = f"{before['status']}->{after['status']}"
            out[key] = out.get(key, 0.0) + (t1 - t0).total_seconds()
        return out

    def step_elapsed(self, sid: int) -> dict[str, float]:
        from hub_extension import models as m
        from sqlalchemy import select

        with self.platform.db.session() as s:
            runs = s.scalars(select(m.Run).where(m.Run.submission_id == sid)).all()
            return {run.step: run.elapsed for run in runs if run.elapsed is not None}


def phase_medians(phase_dicts: list[dict[str, float]]) -> dict[str, float]:
    keys = sorted({k for d in phase_dicts for k in d})
    return {k: round(median([d[k] for d in phase_dicts if k in d]), 4) for k in keys}


# -- (a), (b): one submission at a time on a warm Dispatcher -----------------------------------------

def run_one(bench: Bench, dispatcher, path: Path, timeout: float = 600) -> dict[str, Any]:
    t0 = time.perf_counter()
    sid = bench.submit(path)
    dispatcher.dispatch(sid)
    info = dispatcher.wait(sid, timeout)
    # The boards are ranked again just after the result is recorded: wait for the row.
    on_board = bench.on_leaderboard(sid)
    deadline = time.perf_counter() + 10
    while not on_board and info["status"] == "Finished" and time.perf_counter() < deadline:
        time.sleep(0.005)
        on_board = bench.on_leaderboard(sid)
    wall = time.perf_counter() - t0
    if info["status"] != "Finished":
        raise RuntimeError(f"submission {sid} ended {info['status']}: {info['error']}")
    if not on_board:
        raise RuntimeError(f"submission {sid} finished but is not on the leaderboard")
    return {"id": sid, "wall": wall, "elapsed": info["elapsed"], "phases": bench.phases(sid),
            "steps": bench.step_elapsed(sid)}


def series(bench: Bench, dispatcher, path: Path, n: int, gap: float, label: str) -> list[dict[str, Any]]:
    runs = []
    for i in range(n):
        time.sleep(gap)  # a warm dispatcher is idle between submissions (warm kernel refills)
        runs.append(run_one(bench, dispatcher, path))
        log(f"  {label} {i + 1}/{n}: wall {runs[-1]['wall']:.3f} s, elapsed {runs[-1]['elapsed']:.3f} s")
    return runs


def throughput(bench: Bench, dispatcher, path: Path, n: int) -> dict[str, Any]:
    t0 = time.perf_counter()
    ids = []
    for _ in range(n):
        sid = bench.submit(path)
        dispatcher.dispatch(sid)
        ids.append(sid)
    t_submitted = time.perf_counter() - t0
    statuses: dict[str, int] = {}
    for sid in ids:
        info = dispatcher.wait(sid, 1800)
        statuses[info["status"]] = statuses.get(info["status"], 0) + 1
    total = time.perf_counter() - t0
    return {
        "n": n,
        "seconds": round(total, 3),
        "per_second": round(n / total, 3),
        "submit_and_dispatch_seconds": round(t_submitted, 3),
        "statuses": statuses,
    }


def executor_phase(bench: Bench, executor: str, n_results: int, n_notebook: int, n_throughput: int,
                   gap: float) -> dict[str, Any]:
    from hub_extension.dispatch import Dispatcher

    log(f"executor {executor}: starting the Dispatcher (and the default queue's process)")
    bench.platform.config.executor = executor
    t0 = time.perf_counter()
    dispatcher = Dispatcher(bench.platform)
    startup = time.perf_counter() - t0
    out: dict[str, Any] = {"dispatcher_start_seconds": round(startup, 3)}
    try:
        # Warm-up: the first results and notebook submissions pay for imports, the
        # executor's creation (orphan clean-up, warm kernel) and the first container.
        t0 = time.perf_counter()
        first = run_one(bench, dispatcher, bench.results_zip)
        out["first_results_wall"] = round(time.perf_counter() - t0, 3)
        first_nb = run_one(bench, dispatcher, bench.notebook)
        out["first_notebook_wall"] = round(first_nb["wall"], 3)
        out["first_notebook_elapsed"] = round(first_nb["elapsed"], 3)
        log(f"  warm-up done (first results {first['wall']:.2f} s, first notebook {first_nb['wall']:.2f} s)")

        runs = series(bench, dispatcher, bench.results_zip, n_results, gap, "results")
        out["results_latency"] = summary([r["wall"] for r in runs])
        out["results_elapsed"] = summary([r["elapsed"] for r in runs])
        out["results_phases_median"] = phase_medians([r["phases"] for r in runs])
        out["results_scoring_step"] = summary([r["steps"].get("scoring") for r in runs])

        runs = series(bench, dispatcher, bench.notebook, n_notebook, gap, "notebook")
        out["notebook_elapsed"] = summary([r["elapsed"] for r in runs])
        out["notebook_wall"] = summary([r["wall"] for r in runs])
        out["notebook_phases_median"] = phase_medians([r["phases"] for r in runs])
        out["notebook_prediction_step"] = summary([r["steps"].get("prediction") for r in runs])
        out["notebook_scoring_step"] = summary([r["steps"].get("scoring") for r in runs])

        # The same without idle time between submissions: a warm kernel or
        # container may not have been refilled yet when the next one arrives.
        runs = series(bench, dispatcher, bench.notebook, n_notebook, 0.0, "notebook back-to-back")
        out["notebook_back_to_back_elapsed"] = summary([r["elapsed"] for r in runs])

        out["notebooks"] = {}
        for kind, path in bench.notebooks.items():
            runs = series(bench, dispatcher, path, n_notebook, gap, f"notebook {kind}")
            out["notebooks"][kind] = {
                "elapsed": summary([r["elapsed"] for r in runs]),
                "prediction_step": summary([r["steps"].get("prediction") for r in runs]),
                "scoring_step": summary([r["steps"].get("scoring") for r in runs]),
            }

        if n_throughput:
            log(f"  throughput: {n_throughput} results submissions")
            time.sleep(gap)
            out["throughput"] = throughput(bench, dispatcher, bench.results_zip, n_throughput)
            log(f"  throughput: {out['throughput']['per_second']:.2f} submissions/s")
    finally:
        t0 = time.perf_counter()
        dispatcher.close()
        out["dispatcher_close_seconds"] = round(time.perf_counter() - t0, 3)
    return out


# -- baselines -------------------------------------------------------------------------------------

def papermill_cli(tmp: Path, n: int, notebook: Path = NOTEBOOK) -> list[float]:
    papermill = shutil.which("papermill") or str(Path(sys.executable).with_name("papermill"))
    times = []
    for i in range(n):
        work = tmp / f"papermill-{i}-{time.time_ns()}"
        out_dir = work / "predictions"
        out_dir.mkdir(parents=True)
        cmd = [papermill, str(notebook), str(work / "out.ipynb"),
               "-p", "input_dir", str(DEMO / "input_data"), "-p", "output_dir", str(out_dir)]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0 or not (out_dir / "predictions.csv").is_file():
            raise RuntimeError(f"papermill CLI failed: {proc.stderr[-2000:]}")
        log(f"  papermill CLI {i + 1}/{n}: {times[-1]:.3f} s")
        shutil.rmtree(work, ignore_errors=True)
    return times


def papermill_in_image(tmp: Path, n: int, image: str, notebook: Path = NOTEBOOK) -> list[float]:
    """`papermill` run by hand in a new container of the runtime image (the docker executor's baseline).

    `docker run --rm` with the notebook's folder and the input data mounted
    read-only and an output folder, as the participant's uid, no network.
    """
    times = []
    for i in range(n):
        out_dir = tmp / f"papermill-image-{i}-{time.time_ns()}"
        out_dir.mkdir(parents=True)
        out_dir.chmod(0o777)
        cmd = ["docker", "run", "--rm", "--network", "none", "--user", "1000:1000", "-e", "HOME=/tmp",
               "-v", f"{notebook.parent}:/nb:ro", "-v", f"{DEMO / 'input_data'}:/data:ro", "-v", f"{out_dir}:/out",
               image, "papermill", f"/nb/{notebook.name}", "/out/out.ipynb",
               "-p", "input_dir", "/data", "-p", "output_dir", "/out"]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0 or not (out_dir / "predictions.csv").is_file():
            raise RuntimeError(f"papermill in {image} failed: {proc.stderr[-2000:]}")
        log(f"  papermill in the image {i + 1}/{n}: {times[-1]:.3f} s")
        shutil.rmtree(out_dir, ignore_errors=True)
    return times


def timed_cmd(cmd: list[str], n: int) -> list[float]:
    times = []
    for _ in range(n):
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True)
        times.append(time.perf_counter() - t0)
        if proc.returncode != 0:
            raise RuntimeError(f"{cmd[0]} exited {proc.returncode}: {proc.stderr.strip()[-300:]}")
    return times


def probe(cmd: list[str], n: int) -> dict[str, Any]:
    try:
        return summary(timed_cmd(cmd, n))
    except Exception as exc:  # noqa: BLE001 - a probe only explains; never lose the run for it
        return {"n": 0, "error": str(exc)}


def profile_parts(n: int, image: str, docker_ok: bool) -> dict[str, Any]:
    """Small probes that explain where time goes (process start, imports, kernel, container)."""
    py = sys.executable
    parts: dict[str, Any] = {
        "python_start": probe([py, "-c", "pass"], n),
        "python_import_papermill": probe([py, "-c", "import papermill, nbclient"], n),
        "python_kernel_start_stop": probe([py, "-c", (
            "from jupyter_client.manager import start_new_kernel as s\n"
            "km, kc = s(kernel_name='python3'); kc.stop_channels(); km.shutdown_kernel(now=True)")], n),
    }
    if docker_ok:
        parts["docker_run_true"] = probe(
            ["docker", "run", "--rm", "--network", "none", image, "true"], n)
        parts["docker_run_python_import_papermill"] = probe(
            ["docker", "run", "--rm", "--network", "none", image, "python3", "-c", "import papermill, nbclient"], n)
        parts["docker_run_kernel_start_stop"] = probe(
            ["docker", "run", "--rm", "--network", "none", "-e", "HOME=/tmp", image, "python3", "-c", (
                "from jupyter_client.manager import start_new_kernel as s\n"
                "km, kc = s(kernel_name='python3'); kc.stop_channels(); km.shutdown_kernel(now=True)")], n)
    return parts


# -- (d): the same scoring step, executors called directly -------------------------------------------

def scoring_workdir(tmp: Path, name: str) -> tuple[Path, Path]:
    from dask_workers.workdir import populate

    work = tmp / name
    (work / "input" / "res").mkdir(parents=True)
    populate(DEMO / "reference_data", work / "input" / "ref")
    shutil.copyfile(RESULTS_DIR / "predictions.csv", work / "input" / "res" / "predictions.csv")
    (work / "output").mkdir()
    os.chmod(work, 0o777)
    for path in work.rglob("*"):
        os.chmod(path, 0o777 if path.is_dir() else 0o666)
    program = tmp / "scoring_program"
    if not program.exists():
        shutil.copytree(DEMO / "scoring_program", program)
    return work, program


def step_overhead(tmp: Path, n: int, image: str) -> dict[str, Any]:
    from dask_workers.executors.docker import DockerExecutor
    from dask_workers.executors.process import UnsafeProcessExecutor
    from dask_workers.spec import Limits, StepSpec

    command = (DEMO / "scoring_program" / "metadata").read_text().split("command:", 1)[1].strip()
    executors = {
        "process": UnsafeProcessExecutor(warm_kernel=False),
        "docker": DockerExecutor(default_image=image, worker_id=f"bench-{os.getpid()}"),
    }
    walls: dict[str, list[float]] = {name: [] for name in executors}
    reported: dict[str, list[float]] = {name: [] for name in executors}
    # One untimed run each: the first docker call opens the connection pool.
    for i in range(n + 1):
        for name, executor in executors.items():
            work, program = scoring_workdir(tmp, f"step-{name}-{i}")
            spec = StepSpec(submission_id=900000 + i, task_index=0, step="scoring", image=image,
                            program_dir=str(program), command=command, input_dir=str(work / "input"),
                            output_dir=str(work / "output"), limits=Limits(time_limit=120))
            t0 = time.perf_counter()
            result = executor.run_step(spec)
            wall = time.perf_counter() - t0
            if not result.ok or not (work / "output" / "scores.json").is_file():
                raise RuntimeError(f"{name} scoring step failed: {result.error} {result.stderr[-1000:]}")
            if i > 0:
                walls[name].append(wall)
                reported[name].append(result.elapsed)
            shutil.rmtree(work, ignore_errors=True)
        if i > 0:
            log(f"  step {i}/{n}: process {walls['process'][-1]:.3f} s, docker {walls['docker'][-1]:.3f} s")
    executors["process"].close()
    diffs = [d - p for d, p in zip(walls["docker"], walls["process"])]
    return {
        "process_wall": summary(walls["process"]),
        "docker_wall": summary(walls["docker"]),
        "process_reported_elapsed": summary(reported["process"]),
        "docker_reported_elapsed": summary(reported["docker"]),
        "paired_difference": summary(diffs),
        "overhead_seconds": round(median(diffs), 4),
    }


# -- report ----------------------------------------------------------------------------------------

def fmt(value: Optional[float], unit: str = "s") -> str:
    if value is None:
        return "-"
    return f"{value:.3f} {unit}".strip()


def verdict(ok: Optional[bool]) -> str:
    return "-" if ok is None else ("met" if ok else "MISSED")


def build_summary(res: dict[str, Any]) -> list[tuple[str, str, str, str]]:
    rows: list[tuple[str, str, str, str]] = []
    ex = res["executors"]
    cli = res["papermill_cli"]["median"]
    for name in ex:
        e = ex[name]
        if "error" in e:
            rows.append((f"{name}: failed", e["error"][:60], "", ""))
            continue
        rows.append((f"(a) results latency, {name}", fmt(e["results_latency"]["median"]),
                     f"n={e['results_latency']['n']}, min {fmt(e['results_latency']['min'])}", ""))
    baselines = res.get("papermill_baselines", {})
    for name in ex:
        e = ex[name]
        if "error" in e:
            continue
        which = "image" if name == "docker" else "cli"
        said = "papermill in the image" if name == "docker" else "papermill CLI"
        target = TARGET_NOTEBOOK_RATIO.get(name)
        for kind, figures in e.get("notebooks", {}).items():
            nb = figures["elapsed"]["median"]
            base = baselines.get(which, {}).get(kind, {}).get("median")
            if base is None:
                rows.append((f"(b) notebook {kind} elapsed, {name}", fmt(nb), "no baseline", ""))
                continue
            ratio = nb / base
            rows.append((f"(b) notebook {kind} elapsed, {name}", fmt(nb),
                         f"{said} {fmt(base)}; ratio {ratio:.2f} (target <= {target})",
                         verdict(ratio <= target) if target else ""))
        b2b = e.get("notebook_back_to_back_elapsed", {}).get("median")
        base = baselines.get(which, {}).get("trivial", {}).get("median") or cli
        if b2b is not None:
            rows.append((f"(b') notebook trivial back-to-back, {name}", fmt(b2b),
                         f"no idle gap; ratio {b2b / base:.2f}", ""))
    for name in ex:
        e = ex[name]
        if "throughput" in e:
            t = e["throughput"]
            rows.append((f"(c) throughput, {name}", f"{t['per_second']:.2f} /s",
                         f"{t['n']} submissions in {t['seconds']:.1f} s; {t['statuses']}", ""))
    if "step_overhead" in res:
        d = res["step_overhead"]
        rows.append(("(d) docker overhead per step", fmt(d["overhead_seconds"]),
                     f"docker {fmt(d['docker_wall']['median'])} vs process {fmt(d['process_wall']['median'])} "
                     f"(target <= {TARGET_DOCKER_STEP_OVERHEAD:g} s)",
                     verdict(d["overhead_seconds"] <= TARGET_DOCKER_STEP_OVERHEAD)))
    if all("results_scoring_step" in ex.get(k, {}) for k in ("process", "docker")):
        p = ex["process"]["results_scoring_step"]["median"]
        d = ex["docker"]["results_scoring_step"]["median"]
        rows.append(("(d') scoring step as recorded", fmt(d - p),
                     f"Run.elapsed docker {fmt(d)} vs process {fmt(p)} (from (a))", ""))
    return rows


def print_table(rows: list[tuple[str, str, str, str]]) -> None:
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    header = ("measure", "value", "details", "target")
    widths = [max(w, len(h)) for w, h in zip(widths, header)]
    line = "  ".join(h.ljust(w) for h, w in zip(header, widths))
    print(line)
    print("-" * len(line))
    for r in rows:
        print("  ".join(c.ljust(w) for c, w in zip(r, widths)))


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, 40 throughput submissions")
    parser.add_argument("--out", default=str(ROOT / "bench" / "results.json"))
    parser.add_argument("--executors", default="process,docker", help="comma-separated: process,docker")
    parser.add_argument("--throughput-executors", default="process,docker",
                        help="executors on which to measure (c); empty for none")
    parser.add_argument("--gap", type=float, default=1.0,
                        help="idle seconds before each timed submission (the warm kernel refills)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary COMPETE home")
    args = parser.parse_args(argv)

    n = 3 if args.quick else 20
    n_nb = 3 if args.quick else 10
    n_cli = 4 if args.quick else 10
    n_tp = 40 if args.quick else 200
    n_step = 3 if args.quick else 10
    executors = [e for e in args.executors.split(",") if e]
    tp_executors = set(e for e in args.throughput_executors.split(",") if e)

    info = machine()
    docker_ok = bool(info.get("docker_server_version"))
    image = "jupyter-compete/runtime:py3"
    if not docker_ok and "docker" in executors:
        log("no Docker engine: the docker executor is skipped")
        executors.remove("docker")
    started = time.time()
    tmp = Path(tempfile.mkdtemp(prefix="compete-bench-"))
    os.environ["COMPETE_HOME"] = str(tmp / "home")
    res: dict[str, Any] = {
        "command": " ".join(["python", "bench/run.py", *(argv if argv is not None else sys.argv[1:])]),
        "started_at": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": info,
        "settings": {"n_results": n, "n_notebook": n_nb, "n_papermill_cli": n_cli, "n_throughput": n_tp,
                     "n_step": n_step, "gap_seconds": args.gap, "executors": executors,
                     "throughput_executors": sorted(tp_executors & set(executors)), "image": image,
                     "home": str(tmp / "home")},
        "executors": {},
    }
    try:
        bench = Bench(tmp)
        log(f"home {tmp / 'home'}, competition {bench.slug}")
        with_image = docker_ok and "docker" in executors
        cli_runs: dict[str, list[float]] = {kind: [] for kind in bench.notebooks}
        image_runs: dict[str, list[float]] = {kind: [] for kind in bench.notebooks}

        def baselines(count: int) -> None:
            for kind, path in bench.notebooks.items():
                log(f"papermill baselines: {kind}")
                cli_runs[kind] += papermill_cli(tmp, count, path)
                if with_image:
                    image_runs[kind] += papermill_in_image(tmp, count, image, path)

        log("papermill baselines (first half)")
        baselines(n_cli // 2)
        for name in executors:
            try:
                res["executors"][name] = executor_phase(
                    bench, name, n, n_nb, n_tp if name in tp_executors else 0, args.gap)
            except Exception as exc:  # noqa: BLE001 - report what failed, keep the other figures
                log(f"executor {name} failed: {exc}")
                res["executors"][name] = {"error": f"{type(exc).__name__}: {exc}"}
        log("papermill baselines (second half)")
        baselines(n_cli - n_cli // 2)
        res["papermill_cli"] = summary(cli_runs["trivial"])
        res["papermill_baselines"] = {"cli": {kind: summary(v) for kind, v in cli_runs.items()}}
        if with_image:
            res["papermill_baselines"]["image"] = {kind: summary(v) for kind, v in image_runs.items()}
        if docker_ok and "docker" in executors:
            log("(d) the scoring step on each executor, called directly")
            res["step_overhead"] = step_overhead(tmp, n_step, image)
        log("profile probes")
        res["profile"] = profile_parts(3 if args.quick else 5, image, docker_ok)
        bench.platform.close()
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)
    res["duration_seconds"] = round(time.time() - started, 1)
    res["machine"]["loadavg_at_end"] = list(os.getloadavg())
    res["summary"] = [dict(zip(("measure", "value", "details", "target"), r)) for r in build_summary(res)]
    print_table(build_summary(res))
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(res, indent=1, default=str))
    print(f"\nwritten to {out} ({res['duration_seconds']:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
