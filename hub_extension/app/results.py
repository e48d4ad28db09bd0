"""A worker's result reduced to the plain, bounded shape the platform records.

A result comes from a machine the platform does not control (an organizer's
queue, say): `_clean_result` checks every field of it before the runs ledger
writes anything.
"""
from __future__ import annotations

import re
from typing import Any, Iterable, Optional

from .. import models as m

RESULT_FILES_MAX_BYTES = 64 * 1024 * 1024
RESULT_WARNINGS_MAX = 100
_TEMP_WORK = re.compile(r"(?:/[\w.@+-]+)*/jupyter-compete[\w.-]*(?:/[^\s'\"`<>|;,)\]]*)?")


def _no_host_paths(text: Optional[str], roots: Iterable[Any] = ()) -> Optional[str]:
    """`text` with the host paths it names reduced to their last component.

    Paths under the platform's home and store, and work folders of workers
    (`.../jupyter-compete*/...`, on the platform's machine or an organizer's),
    say where things live on a host: a participant sees `…/predictions.csv`.
    """
    if not text:
        return text

    def short(match: re.Match) -> str:
        tail = match.group(0).rstrip("/").rsplit("/", 1)[-1]
        return f"…/{tail}" if tail else "…"

    for root in sorted({str(r).rstrip("/") for r in roots if r and str(r).strip("/")}, key=len, reverse=True):
        text = re.sub(re.escape(root) + r"(?![\w.-])(?:/[^\s'\"`<>|;,)\]]*)?", short, text)
    return _TEMP_WORK.sub(short, text)


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f} MB"


def _file_label(submission_id: int, rel: str) -> str:
    """The name an organizer knows a result file by: its path inside the run's attempt."""
    parts = rel.split("/")
    return "/".join(parts[3:]) if len(parts) > 3 and parts[:2] == ["submissions", str(submission_id)] else parts[-1]


def _text(value: Any, limit: int) -> Optional[str]:
    return None if value is None else str(value)[:limit]


def _number(value: Any) -> Optional[float]:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return float(value)


def _own_path(submission_id: int, value: Any) -> Optional[str]:
    """A store path of this submission's files, or None: a worker cannot point elsewhere."""
    if not isinstance(value, str):
        return None
    parts = value.split("/")
    if parts[:2] != ["submissions", str(submission_id)] or any(p in ("", ".", "..") for p in parts) \
            or "\\" in value or len(value) > 500:
        return None
    return value


def _clean_result(submission_id: int, result: Any, host_roots: Iterable[Any] = ()) -> dict[str, Any]:
    """Reduce a worker's result to the plain, bounded shape the platform records.

    A result comes from a machine the platform does not control: every field is
    checked for its type, strings are bounded, paths must stay inside the
    submission's own files, and inline files are capped (what fits is kept,
    each file left out is listed in `dropped` and said in `warnings`).  Host
    paths (under `host_roots`, or a worker's work folders) are taken out of
    every message a participant or organizer reads.
    """
    if not isinstance(result, dict):
        return {"status": m.FAILED, "error": "the worker returned no result", "warnings": [], "dropped": [],
                "artifacts": {}, "files": {}, "tasks": []}
    roots = tuple(host_roots)

    def message(value: Any, limit: int) -> Optional[str]:
        return _no_host_paths(_text(value, limit), roots)

    clean: dict[str, Any] = {
        "status": result.get("status") if isinstance(result.get("status"), str) else None,
        "scores": result.get("scores") if isinstance(result.get("scores"), dict) else {},
        "error": message(result.get("error"), 20000),
        "worker": _text(result.get("worker"), 300),
    }
    raw_warnings = result.get("warnings")
    clean["warnings"] = [
        message(w, 1000) for w in (raw_warnings if isinstance(raw_warnings, list) else [])[:RESULT_WARNINGS_MAX]
        if isinstance(w, str) and w.strip()
    ]
    raw_dropped = result.get("dropped")
    clean["dropped"] = [
        {"name": message(d.get("name"), 300) or "?",
         "bytes": d["bytes"] if isinstance(d.get("bytes"), int) and not isinstance(d.get("bytes"), bool) else None,
         "reason": message(d.get("reason"), 500) or ""}
        for d in (raw_dropped if isinstance(raw_dropped, list) else [])[:RESULT_WARNINGS_MAX] if isinstance(d, dict)
    ]
    tasks = []
    for task in result.get("tasks") or []:
        if not isinstance(task, dict):
            continue
        steps = []
        for step in task.get("steps") or []:
            if not isinstance(step, dict):
                continue
            exit_code = step.get("exit_code")
            steps.append({
                "step": _text(step.get("step"), 20) or "?",
                "exit_code": exit_code if isinstance(exit_code, int) and not isinstance(exit_code, bool) else None,
                "elapsed": _number(step.get("elapsed")),
                "image": _text(step.get("image"), 300),
                "image_digest": _text(step.get("image_digest"), 300),
                "error": message(step.get("error"), 20000),
                "log_path": _own_path(submission_id, step.get("log_path")),
            })
        index = task.get("task_index")
        tasks.append({"task_index": index if isinstance(index, int) else 0, "steps": steps})
    clean["tasks"] = tasks
    artifacts = result.get("artifacts")
    clean["artifacts"] = {
        str(k)[:100]: path for k, v in (artifacts.items() if isinstance(artifacts, dict) else [])
        if (path := _own_path(submission_id, v))
    }
    files: dict[str, bytes] = {}
    total = 0
    raw_files = result.get("files")
    for rel, data in (raw_files.items() if isinstance(raw_files, dict) else []):
        path = _own_path(submission_id, rel)
        if path is None or not isinstance(data, (bytes, bytearray)):
            continue
        if total + len(data) > RESULT_FILES_MAX_BYTES:
            # Keep what fits: a later, smaller file may still.
            name = _file_label(submission_id, path)
            reason = f"the files of one result are kept up to {_megabytes(RESULT_FILES_MAX_BYTES)} in all"
            clean["dropped"].append({"name": name, "bytes": len(data), "reason": reason})
            clean["warnings"].append(f"{name} ({_megabytes(len(data))}) was not kept: {reason}")
            continue
        total += len(data)
        files[path] = bytes(data)
    clean["files"] = files
    return clean
