"""What organizers download of submissions: each one's files, as the entries of one zip, with a manifest.

For a submission (`submission_bundle`) or every submission of a phase
(`phase_bundle`), a `Bundle` lists the zip's entries: the file submitted, the
prediction output and the scoring output of each task (as the worker kept
them, `StoreLayout.step_output`), the logs of each step (stdout, stderr, the
task's run log) and the feedback files (executed notebook, detailed
results), each of the latest attempt.  Entries are listed lazily and open
their stored file only when the zip writer reaches them
(`service.zip_stream`), so a phase of thousands of submissions is never held
in memory; the writer adds `manifest.json` last, with the size and SHA-256 of
every entry it wrote and the submission, participant, status and scores it
belongs to.

Downloads are for the competition's organizers only: a participant reads
their own files on the submission page, cut to what the phase shows
(`visibility`); a bundle is the whole record.
"""
from __future__ import annotations

import datetime as dt
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator, Optional

from sqlalchemy import select
from sqlalchemy.orm import selectinload

from .. import models as m
from ..contract import StoreLayout
from ..errors import Forbidden, NotFound
from .actors import Actor, is_organizer
from .context import Context
from .records import get_competition, get_phase, phase_number
from .visibility import LOG_STREAMS, latest_runs

MANIFEST = "manifest.json"
_UNSAFE = re.compile(r"[^A-Za-z0-9._@+=-]+")
FEEDBACK_NAMES = {"executed_notebook": StoreLayout.EXECUTED_NOTEBOOK,
                  "executed_notebook_html": StoreLayout.EXECUTED_NOTEBOOK_HTML,
                  "detailed_results": StoreLayout.DETAILED_RESULTS}


def safe_part(text: str, default: str = "file") -> str:
    """One path component of a zip entry: letters, digits and `._@+=-`, never `.` or `..`."""
    cleaned = _UNSAFE.sub("_", text or "").strip("._") or default
    return cleaned[:120]


@dataclass
class Entry:
    """One file of the zip: where it goes, how to open it, and whose it is (for the manifest)."""

    path: str
    open: Callable[[], BinaryIO]
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Bundle:
    """A zip to stream: its file name, its entries (lazy), and the head of its manifest."""

    filename: str
    entries: Iterator[Entry]
    manifest: dict[str, Any]


@dataclass
class _Record:
    """What one submission contributes, read from the database (no file opened yet)."""

    id: int
    participant: str
    status: str
    kind: str
    filename: str
    file_key: Optional[str]
    submitted_at: Optional[str]
    parent: Optional[int]
    scores: dict[str, Any]
    runs: list[tuple[int, str, Optional[str]]]  # (task, step, log folder) of the latest attempt
    artifacts: dict[str, str]

    @property
    def folder(self) -> str:
        return f"submissions/{self.id}-{safe_part(self.participant, 'participant')}"

    def summary(self) -> dict[str, Any]:
        return {"id": self.id, "participant": self.participant, "status": self.status, "kind": self.kind,
                "filename": self.filename, "submitted_at": self.submitted_at, "parent": self.parent,
                "scores": self.scores, "folder": self.folder}


def _record(sub: m.Submission) -> _Record:
    return _Record(
        id=sub.id, participant=sub.participant.username, status=sub.status, kind=sub.kind,
        filename=sub.filename, file_key=sub.file_key,
        submitted_at=sub.submitted_at.isoformat() if sub.submitted_at else None, parent=sub.parent_id,
        scores={sc.key: sc.value for sc in sub.scores},
        runs=[(r.task_index, r.step, r.log_path) for r in latest_runs(sub)],
        artifacts={k: v for k, v in (sub.artifacts or {}).items()
                   if isinstance(v, str) and StoreLayout.is_own_path(sub.id, v)},
    )


def _opener(path: Path) -> Callable[[], BinaryIO]:
    def open_it() -> BinaryIO:
        # The store's files are written by the platform; a link there is refused all the same.
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
        return os.fdopen(fd, "rb")
    return open_it


def _files_below(root: Path) -> Iterator[tuple[str, Path]]:
    """(relative path, path) of the regular files below `root`, sorted; links are neither followed nor listed."""
    if not root.is_dir() or root.is_symlink():
        return
    stack = [(root, "")]
    found: list[tuple[str, Path]] = []
    while stack:
        folder, prefix = stack.pop()
        with os.scandir(folder) as listing:
            for item in listing:
                st = item.stat(follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    stack.append((Path(item.path), f"{prefix}{item.name}/"))
                elif stat.S_ISREG(st.st_mode):
                    found.append((f"{prefix}{item.name}", Path(item.path)))
    yield from sorted(found)


class Downloads:
    """Bundles of submissions' files for the organizers, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    def _file(self, rel: str) -> Optional[Path]:
        try:
            path = self.ctx.store.file_path(rel)
        except ValueError:
            return None
        return path if path.is_file() and not path.is_symlink() else None

    def _folder(self, rel: str) -> Optional[Path]:
        try:
            path = self.ctx.store.file_path(rel)
        except ValueError:
            return None
        return path if path.is_dir() and not path.is_symlink() else None

    def _entries_of(self, rec: _Record) -> Iterator[Entry]:
        meta = {"submission": rec.id, "participant": rec.participant, "status": rec.status, "scores": rec.scores}
        store = self.ctx.store
        if rec.file_key and store.has_dataset(rec.file_key):
            path = store.dataset_path(rec.file_key)
            yield Entry(f"{rec.folder}/submitted/{safe_part(rec.filename, 'submission')}", _opener(path),
                        {**meta, "kind": "submitted"})
        attempts: dict[int, str] = {}
        for task, step, log_path in rec.runs:
            if not log_path:
                continue
            attempts.setdefault(task, StoreLayout.attempt_of(log_path))
            for stream in LOG_STREAMS:
                path = self._file(f"{log_path}/{stream}.txt")
                if path is not None:
                    yield Entry(f"{rec.folder}/logs/task-{task}/{safe_part(step)}/{stream}.txt", _opener(path),
                                {**meta, "kind": "log"})
        for task, attempt in sorted(attempts.items()):
            path = self._file(StoreLayout.task_run_log(attempt, task))
            if path is not None:
                yield Entry(f"{rec.folder}/logs/task-{task}/{StoreLayout.RUN_LOG}", _opener(path),
                            {**meta, "kind": "log"})
            for side in StoreLayout.OUTPUT_SIDES:
                folder = self._folder(StoreLayout.step_output(attempt, task, side))
                for rel, path in _files_below(folder) if folder is not None else ():
                    parts = "/".join(safe_part(p) for p in rel.split("/"))
                    yield Entry(f"{rec.folder}/{side}_output/task-{task}/{parts}", _opener(path),
                                {**meta, "kind": f"{side}_output"})
        for name, rel in sorted(rec.artifacts.items()):
            path = self._file(rel)
            if path is not None:
                target = FEEDBACK_NAMES.get(name, safe_part(name))
                yield Entry(f"{rec.folder}/feedback/{target}", _opener(path), {**meta, "kind": "feedback"})

    def _entries(self, records: list[_Record]) -> Iterator[Entry]:
        for rec in records:
            yield from self._entries_of(rec)

    @staticmethod
    def _head(comp: m.Competition, number: Optional[int], records: list[_Record]) -> dict[str, Any]:
        return {"competition": comp.slug, "phase": number,
                "created_at": dt.datetime.now(dt.timezone.utc).replace(tzinfo=None).isoformat(timespec="seconds"),
                "submissions": [r.summary() for r in records]}

    def submission_bundle(self, submission_id: int, actor: Actor) -> Bundle:
        """The zip of one submission's files (the competition's organizers)."""
        with self.ctx.db.session() as s:
            sub = s.get(m.Submission, submission_id, options=[selectinload(m.Submission.scores),
                                                               selectinload(m.Submission.runs)])
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            ph = s.get(m.Phase, sub.phase_id)
            comp = get_competition(s, s.get(m.Competition, ph.competition_id).slug, full=True)
            if not is_organizer(actor, comp):
                raise Forbidden(f"only the organizers of {comp.slug!r} may download a submission's bundle")
            records = [_record(sub)]
            head = self._head(comp, phase_number(comp, ph), records)
        return Bundle(f"{comp.slug}-submission-{submission_id}.zip", self._entries(records), head)

    def phase_bundle(self, slug: str, number: int, actor: Actor) -> Bundle:
        """The zip of every submission of a phase, oldest first (the competition's organizers)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            if not is_organizer(actor, comp):
                raise Forbidden(f"only the organizers of {slug!r} may download the submissions of a phase")
            ph = get_phase(comp, int(number))
            subs = s.scalars(
                select(m.Submission).where(m.Submission.phase_id == ph.id)
                .options(selectinload(m.Submission.scores), selectinload(m.Submission.runs),
                         selectinload(m.Submission.participant))
                .order_by(m.Submission.submitted_at, m.Submission.id)
            ).all()
            records = [_record(sub) for sub in subs]
            head = self._head(comp, int(number), records)
        return Bundle(f"{slug}-phase{int(number)}-submissions.zip", self._entries(records), head)
