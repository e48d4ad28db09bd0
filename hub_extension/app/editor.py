"""The competition editor: the YAML view and the forms, over one model, saved through one path.

Every edit (the `competition.yaml` text, a page, a board's columns, a phase,
the overview, a new program or dataset for a task) ends as a light bundle
folder: `competition.yaml` naming stored datasets by key, the pages and terms
as files, a new upload as a file beside them.  That folder is read by the
same `load_bundle` an uploaded bundle goes through, so there is one
validation: every problem at once, the upload's warnings kept and returned.
A form reads the competition's model from its rows, changes it, and writes it
as such a folder: what a form saves is what the YAML view then shows, and
saving that YAML again changes nothing (forms and YAML are equivalent by
construction).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
import tempfile
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import models as m
from ..bundles import export_bundle, load_bundle, store_bundle_data
from ..bundles.images import upload_warnings
from ..bundles.model import (
    COMPUTATIONS,
    PHASE_DATA_KINDS,
    TASK_DATA_KINDS,
    VALUE_COMPUTATIONS,
    BundleError,
    ColumnSpec,
    CompetitionSpec,
    DataRef,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
)
from ..bundles.refs import page_format
from ..bundles.sanitize import render_page
from ..convert import spec_from_competition
from ..errors import NotFound, PlatformError
from .actors import Actor, require_organizer
from .competitions import Competitions, queue_warnings
from .context import Context
from .records import get_competition, require_active

# A page preview is rendered from text the organizer is typing: bounded like a page file.
MAX_PAGE_CHARS = 1_000_000
# Where an upload sits in the light bundle folder (no exported name starts so).
UPLOADS = "_editor_uploads"
# The computations a form offers per dialect (export keeps only these).
DIALECT_COMPUTATIONS = {"codabench": VALUE_COMPUTATIONS, "codalab": ("rank_avg", "rank_weighted", "mrr", "max")}
# A column's key as a scoring program writes it and as it appears in a column's address.
COLUMN_KEY = re.compile(r"[A-Za-z0-9_.-]{1,120}")
# Phase fields a form may set, with their type (see `PhaseSpec`).
PHASE_FORM_FIELDS: dict[str, str] = {
    "name": "text", "description": "text", "start": "datetime", "end": "datetime",
    "max_submissions": "int", "max_submissions_per_day": "int", "execution_time_limit": "int",
    "gpus": "int", "color": "text", "queue": "text", "submission_rule": "text",
    "auto_migrate": "flag", "hide_results": "flag", "hide_output": "flag", "hide_prediction_output": "flag",
    "hide_score_output": "flag", "results_only": "flag", "allow_network": "flag",
    "max_concurrent_submissions": "int",
}
OVERVIEW_FORM_FIELDS: dict[str, str] = {
    "title": "text", "description": "text", "docker_image": "text", "queue": "text", "contact_email": "text",
    "registration_auto_approve": "flag", "enable_detailed_results": "flag", "admin_names": "names",
    "terms": "page",
    "allow_teams": "flag",
    "enable_forum": "flag",
}
OVERVIEW_FORM_FIELDS["anonymous_leaderboard"] = "flag"
# A board's own anonymity: "on", "off", or "" for its competition's setting.
BOARD_ANONYMITY = {"": None, "default": None, "on": True, "off": False}
TASK_FORM_FIELDS: dict[str, str] = {"name": "text", "description": "text", "scoring_docker_image": "text",
                                    "ingestion_docker_image": "text"}


@dataclass
class Edit:
    """What a save answered: `problems` (nothing saved when any) and the upload's `warnings`."""

    problems: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    @property
    def saved(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        return {"saved": self.saved, "problems": list(self.problems), "warnings": list(self.warnings)}


def codalab_page_name(title: str) -> str:
    """The `html:` key of a CodaLab page titled `title` (CodaLab titles a page by its key)."""
    return re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_") or "page"


def codabench_page_name(title: str) -> str:
    """The name the Codabench reader gives a page titled `title`."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "page"


def page_name(dialect: str, title: str) -> str:
    return codalab_page_name(title) if dialect == "codalab" else codabench_page_name(title)


def preview_html(text: str, fmt: str) -> str:
    """A page as participants would see it: rendered and sanitized as an uploaded page is."""
    if fmt not in ("markdown", "html"):
        raise PlatformError(f"format must be markdown or html, got {fmt!r}")
    if not isinstance(text, str):
        raise PlatformError("send the page's text as a string")
    if len(text) > MAX_PAGE_CHARS:
        raise PlatformError(f"the page is {len(text)} characters; at most {MAX_PAGE_CHARS}")
    return render_page(PageSpec(name="preview", title="preview", content=text, format=fmt))  # type: ignore[arg-type]


# -- reading a form's values ------------------------------------------------------------------------
def form_value(kind: str, raw: Any, label: str, problems: list[str]) -> Any:
    """A form value as the model holds it; a value that cannot be read adds a problem."""
    if kind == "flag":
        return raw in (True, "1", "true", "on", "yes", 1)
    # Browsers send a textarea's lines ending in CRLF.
    text = "" if raw is None else str(raw).replace("\r\n", "\n").strip()
    if kind == "text":
        return text or None
    if kind == "page":  # kept as typed (Markdown's leading spaces mean something); blank is none
        if len(text) > MAX_PAGE_CHARS:
            problems.append(f"{label}: must be text of at most {MAX_PAGE_CHARS} characters")
            return None
        return str(raw).replace("\r\n", "\n") if text else None
    if kind == "names":
        return [n.strip() for n in re.split(r"[,\s]+", text) if n.strip()]
    if kind == "datetime":
        if not text:
            return None
        try:
            parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            problems.append(f"{label}: not a date and time: {text[:40]!r} (use YYYY-MM-DD HH:MM, UTC)")
            return None
        return parsed.astimezone(dt.timezone.utc).replace(tzinfo=None) if parsed.tzinfo else parsed
    if kind == "int":
        try:
            return int(text)
        except ValueError:
            return text  # the bundle reader says what is wrong with it, with the other problems
    raise ValueError(f"unknown form field kind {kind!r}")


def apply_fields(target: Any, values: dict[str, Any], kinds: dict[str, str], label: str) -> list[str]:
    """Set the fields named in `values` (only those) on a model object; the problems of reading them."""
    problems: list[str] = []
    unknown = sorted(set(values) - set(kinds))
    if unknown:
        problems.append(f"{label}: unknown field(s) {', '.join(unknown)}; known: {', '.join(kinds)}")
    for name, kind in kinds.items():
        if name not in values:
            continue
        before = len(problems)
        value = form_value(kind, values[name], f"{label}: {name}", problems)
        if len(problems) > before:
            continue
        if name in ("title", "name") and not value:
            problems.append(f"{label}: {name}: is required")
            continue
        if name == "description" and value is None:
            value = ""
        setattr(target, name, value)
    return problems


class Editor:
    """Edits of a competition through forms and the YAML view, saved as a light bundle is read."""

    def __init__(self, ctx: Context, competitions: Competitions):
        self.ctx = ctx
        self.competitions = competitions

    # -- reading -----------------------------------------------------------------------------------
    def editable_spec(self, slug: str, actor: Actor) -> CompetitionSpec:
        """The competition's model as the forms edit it (organizers only)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            return spec_from_competition(comp)

    def dataset_info(self, keys: list[str]) -> dict[str, dict[str, Any]]:
        """Name, size, kind and upload time of stored datasets, by key."""
        wanted = sorted({k for k in keys if k})
        if not wanted:
            return {}
        with self.ctx.db.session() as s:
            rows = s.scalars(select(m.Dataset).where(m.Dataset.key.in_(wanted))).all()
            return {d.key: {"key": d.key, "short": d.key[:12], "name": d.name or "", "kind": d.kind,
                            "size": d.size, "created_by": d.created_by,
                            "created_at": d.created_at.isoformat() if d.created_at else None} for d in rows}

    def current_warnings(self, slug: str, actor: Actor) -> list[str]:
        """What an upload of the competition as it stands would warn about (kept in view while editing)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            with tempfile.TemporaryDirectory(prefix="compete-edit-") as tmp:
                root = self.competitions.light_bundle_folder(comp, Path(tmp))
                try:
                    with load_bundle(root, limits=self.ctx.unpack_limits(),
                                     dataset_exists=self.ctx.dataset_exists) as bundle:
                        return list(bundle.warnings) + upload_warnings(bundle, self.ctx.config)
                except BundleError as exc:  # rows that no longer read back: say so rather than hide it
                    return [f"the competition as stored does not read back: {p}" for p in exc.problems]

    # -- the YAML view -----------------------------------------------------------------------------
    def save_competition_yaml(self, slug: str, text: str, actor: Actor) -> Edit:
        """Replace the competition's definition by `text`, checked as a bundle upload is."""
        if not isinstance(text, str) or not text.strip():
            return Edit(["competition.yaml: (file): is empty"])
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            require_active(comp, "editing")
            with tempfile.TemporaryDirectory(prefix="compete-edit-") as tmp:
                root = self.competitions.light_bundle_folder(comp, Path(tmp))
                (root / "competition.yaml").write_text(text, encoding="utf-8")
                return self._save_folder(s, comp, root, actor)

    def update_competition_yaml(self, slug: str, text: str, actor: Actor) -> list[str]:
        """The problems of saving `text` as the competition's yaml (empty: saved)."""
        return self.save_competition_yaml(slug, text, actor).problems

    # -- the forms ---------------------------------------------------------------------------------
    def save_spec(self, slug: str, actor: Actor, change: Callable[[CompetitionSpec], list[str]],
                  files: Optional[dict[str, Path]] = None) -> Edit:
        """Change the competition's model with `change` and save it through the bundle reader.

        `change` edits the model in place and returns the problems of the form
        itself (a date that is not a date, a title left empty), which leave the
        field as it was; the model is read back in either case, so the reader's
        problems come with them.  A number that is not one is left as the text
        typed, for the reader to refuse.  `files` are put in the bundle folder
        under the paths the changed model names.
        """
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            require_active(comp, "editing")
            spec = spec_from_competition(comp)
            before = flatten(spec)
            # The form's own problems, and then the bundle reader's, so that all are said at once.
            problems = change(spec)
            wanted = {path: value for path, value in flatten(spec).items() if before.get(path, _ABSENT) != value}
            with tempfile.TemporaryDirectory(prefix="compete-edit-") as tmp:
                root = self._write_folder(spec, Path(tmp))
                for rel, source in (files or {}).items():
                    (root / rel).parent.mkdir(parents=True, exist_ok=True)
                    shutil.copyfile(source, root / rel)
                return self._save_folder(s, comp, root, actor, problems, wanted)

    def _write_folder(self, spec: CompetitionSpec, folder: Path) -> Path:
        archive = folder / "light.zip"
        export_bundle(spec, self.ctx.store, archive, light=True, paths=True)
        root = folder / "bundle"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root)
        archive.unlink()
        return root

    def _save_folder(self, s: Session, comp: m.Competition, root: Path, actor: Actor,
                     form_problems: Optional[list[str]] = None, wanted: Optional[dict[str, Any]] = None) -> Edit:
        """Read the folder as an upload is read; with no problem (the form's included), bring the rows to it.

        `wanted`: the values a form set (by `flatten` path); one that does not
        read back is a problem (the dialect has no key for it), never dropped.
        """
        form_problems = list(form_problems or [])
        try:
            with load_bundle(root, limits=self.ctx.unpack_limits(), dataset_exists=self.ctx.dataset_exists) as bundle:
                warnings = list(bundle.warnings) + upload_warnings(bundle, self.ctx.config)
                if wanted and not form_problems:
                    form_problems = unsaid(wanted, flatten(bundle.spec), comp.dialect)
                if form_problems:
                    return Edit(form_problems, warnings)
                spec = store_bundle_data(bundle, self.ctx.store)
        except BundleError as exc:
            return Edit(form_problems + [str(p) for p in exc.problems])
        problems = self.competitions.apply_spec(s, comp, spec, actor)
        if problems:
            return Edit(problems, warnings)
        return Edit([], warnings + queue_warnings(s, spec, comp.slug))

    # -- pages -------------------------------------------------------------------------------------
    def save_page(self, slug: str, name: Optional[str], actor: Actor, *, title: str, content: str,
                  fmt: str = "markdown") -> Edit:
        """Write a page (a new one when `name` is None or not a page yet)."""
        title = (title or "").strip()
        if isinstance(content, str):
            content = content.replace("\r\n", "\n")  # as browsers send a textarea's lines

        def change(spec: CompetitionSpec) -> list[str]:
            problems = []
            if not title:
                problems.append("page: title: is required")
            if fmt not in ("markdown", "html"):
                problems.append(f"page: format: must be markdown or html, got {fmt!r}")
            if not isinstance(content, str) or len(content) > MAX_PAGE_CHARS:
                problems.append(f"page: content: must be text of at most {MAX_PAGE_CHARS} characters")
            if problems:
                return problems
            page = next((p for p in spec.pages if p.name == name), None) if name else None
            new_name = page_name(spec.dialect, title)
            if spec.dialect == "codalab" and new_name == "terms":
                return ["page: title: 'terms' is the competition's terms in a CodaLab bundle; choose another title"]
            if any(p.name == new_name for p in spec.pages if p is not page):
                return [f"page: title: another page is already named {new_name!r}; choose another title"]
            if page is None:
                page = PageSpec(name=new_name, title=title, content="", format=fmt)  # type: ignore[arg-type]
                spec.pages.append(page)
            if page.format != fmt:
                page.format, page.source = fmt, None  # type: ignore[assignment]  # a file named for its format
            # CodaLab titles a page by its key.
            shown = new_name.replace("_", " ").strip().title() if spec.dialect == "codalab" else title
            page.name, page.title, page.content = new_name, shown, content
            return []

        return self.save_spec(slug, actor, change)

    def delete_page(self, slug: str, name: str, actor: Actor) -> Edit:
        def change(spec: CompetitionSpec) -> list[str]:
            kept = [p for p in spec.pages if p.name != name]
            if len(kept) == len(spec.pages):
                return [f"page {name!r}: no such page"]
            spec.pages = kept
            return []

        return self.save_spec(slug, actor, change)

    def move_page(self, slug: str, name: str, offset: int, actor: Actor) -> Edit:
        """Move a page `offset` places up (negative) or down in the order pages are shown."""
        def change(spec: CompetitionSpec) -> list[str]:
            names = [p.name for p in spec.pages]
            if name not in names:
                return [f"page {name!r}: no such page"]
            i = names.index(name)
            j = max(0, min(len(names) - 1, i + offset))
            spec.pages.insert(j, spec.pages.pop(i))
            return []

        return self.save_spec(slug, actor, change)

    def terms_format(self, spec: CompetitionSpec) -> str:
        """How the terms are read: by their file's name in the bundle (an HTML file when there is none yet)."""
        return page_format(str((spec.extra or {}).get("files", {}).get("terms") or "terms.html"))

    def preview_page(self, slug: str, text: str, fmt: str, actor: Actor) -> str:
        with self.ctx.db.session() as s:
            require_organizer(actor, get_competition(s, slug))
        return preview_html(text, fmt)

    # -- overview, phases, tasks, columns -----------------------------------------------------------
    def save_overview(self, slug: str, values: dict[str, Any], actor: Actor) -> Edit:
        return self.save_spec(slug, actor, lambda spec: apply_fields(spec, values, OVERVIEW_FORM_FIELDS, "overview"))

    def save_phase(self, slug: str, number: int, values: dict[str, Any], actor: Actor) -> Edit:
        """Set fields of phase `number` (1-based, in phase order)."""
        def change(spec: CompetitionSpec) -> list[str]:
            phase = phase_of(spec, number)
            problems = apply_fields(phase, values, PHASE_FORM_FIELDS, f"phase {number}")
            if spec.dialect == "codabench" and phase.max_submissions_per_day == 0:
                phase.max_submissions_per_day = None  # what Codabench's 0 a day means
            return problems

        return self.save_spec(slug, actor, change)

    def save_task(self, slug: str, index: int, values: dict[str, Any], actor: Actor) -> Edit:
        def change(spec: CompetitionSpec) -> list[str]:
            task = next((t for t in spec.tasks if t.index == index), None)
            if task is None:
                raise NotFound(f"competition {slug!r} has no task {index}")
            return apply_fields(task, values, TASK_FORM_FIELDS, f"task {index}")

        return self.save_spec(slug, actor, change)

    def save_columns(self, slug: str, board_key: str, columns: list[dict[str, Any]], actor: Actor) -> Edit:
        """Set titles, sorting, precision, hidden and computations of a board's columns (by column key)."""
        def change(spec: CompetitionSpec) -> list[str]:
            board = board_of(spec, slug, board_key)
            by_key = {c.key: c for c in board.columns}
            problems: list[str] = []
            offered = DIALECT_COMPUTATIONS.get(spec.dialect, COMPUTATIONS)
            for values in columns:
                key = str(values.get("key", ""))
                column = by_key.get(key)
                label = f"leaderboard {board_key!r}: column {key!r}"
                if column is None:
                    problems.append(f"{label}: no such column; add it first")
                    continue
                problems += apply_fields(column, {k: v for k, v in values.items()
                                                  if k in ("title", "hidden")}, {"title": "text", "hidden": "flag"},
                                         label)
                if "sorting" in values:
                    column.sorting = values["sorting"]  # the reader checks it: one of asc, desc
                if "precision" in values:
                    column.precision = form_value("int", values["precision"], f"{label}: precision", problems)
                if "computation" in values:
                    computation = form_value("text", values["computation"], label, problems)
                    if computation is not None and computation not in offered:
                        problems.append(f"{label}: computation: must be one of {', '.join(offered)} in a "
                                        f"{spec.dialect} bundle, got {computation!r}")
                    column.computation = computation
                    if computation != "rank_weighted":
                        column.weights = None
                if "source_keys" in values:
                    raw = values["source_keys"]
                    keys = raw if isinstance(raw, list) else re.split(r"[,\s]+", str(raw or ""))
                    column.source_keys = [str(k).strip() for k in keys if str(k).strip()]
                if column.computation is None:
                    column.source_keys = []
            return problems

        return self.save_spec(slug, actor, change)

    def add_column(self, slug: str, board_key: str, values: dict[str, Any], actor: Actor) -> Edit:
        """Add a column (key, title, sorting, precision) at the end of a board; the reader checks its key."""
        key = str(values.get("key") or "").strip()
        title = str(values.get("title") or "").strip() or key

        def change(spec: CompetitionSpec) -> list[str]:
            board = board_of(spec, slug, board_key)
            label = f"leaderboard {board_key!r}: new column"
            if not key:
                return [f"{label}: key: is required (the name the scoring program writes)"]
            if not COLUMN_KEY.fullmatch(key):
                return [f"{label}: key: {key[:60]!r} must be letters, digits, '_', '-' or '.' (at most 120), "
                        "as the scoring program writes it in scores.txt"]
            if any(c.key == key for c in board.columns):
                return [f"{label}: key: the board already has a column {key!r}"]
            problems: list[str] = []
            precision = form_value("int", values.get("precision", 2) or 2, f"{label}: precision", problems)
            board.columns.append(ColumnSpec(key=key, title=title, index=1 + max((c.index for c in board.columns),
                                                                                    default=-1),
                                            sorting=values.get("sorting") or "desc", precision=precision))
            return problems

        return self.save_spec(slug, actor, change)

    def remove_column(self, slug: str, board_key: str, column_key: str, actor: Actor) -> Edit:
        """Remove a board's column; refused for its only column or one a computed column reads."""
        def change(spec: CompetitionSpec) -> list[str]:
            board = board_of(spec, slug, board_key)
            label = f"leaderboard {board_key!r}: column {column_key!r}"
            if not any(c.key == column_key for c in board.columns):
                raise NotFound(f"{label}: no such column")
            if len(board.columns) == 1:
                return [f"{label}: is the board's only column; add another before removing it"]
            readers = [c.key for c in board.columns if column_key in (c.source_keys or [])]
            if readers:
                return [f"{label}: computed column(s) {', '.join(readers)} read it; change their inputs first"]
            board.columns = [c for c in board.columns if c.key != column_key]
            if board.primary_key == column_key:
                board.primary_key = board.columns[0].key  # the board is ranked by its first column now
            return []

        return self.save_spec(slug, actor, change)

    def save_board_anonymity(self, slug: str, board_key: str, anonymous: Any, actor: Actor) -> Edit:
        """Whether a board hides names (True, False), or follows its competition's `anonymous_leaderboard`
        (None, "default")."""
        def change(spec: CompetitionSpec) -> list[str]:
            board = board_of(spec, slug, board_key)
            if isinstance(anonymous, bool) or anonymous is None:
                board.anonymous = anonymous
            elif isinstance(anonymous, str) and anonymous.strip().lower() in BOARD_ANONYMITY:
                board.anonymous = BOARD_ANONYMITY[anonymous.strip().lower()]
            else:
                return [f"leaderboard {board_key!r}: anonymous: must be true, false or null (the competition's "
                        f"setting), got {anonymous!r}"]
            return []

        return self.save_spec(slug, actor, change)

    def add_phase(self, slug: str, values: dict[str, Any], actor: Actor) -> Edit:
        """Add a phase after the last (name, start), with the last phase's tasks and limits; an
        open-ended last phase then ends when the new one starts."""
        def change(spec: CompetitionSpec) -> list[str]:
            phases = sorted(spec.phases, key=lambda p: p.index)
            problems: list[str] = []
            name = form_value("text", values.get("name"), "new phase: name", problems)
            start = form_value("datetime", values.get("start"), "new phase: start", problems)
            if not name:
                problems.append("new phase: name: is required")
            if start is None and not problems:
                problems.append("new phase: start: is required (YYYY-MM-DD HH:MM, UTC)")
            if problems:
                return problems
            last = phases[-1]
            if last.end is None:
                last.end = start  # only the last phase may be open-ended: the one before ends as it opens
            spec.phases.append(PhaseSpec(
                index=last.index + 1, name=name, start=start, task_indexes=list(last.task_indexes),
                max_submissions=last.max_submissions, max_submissions_per_day=last.max_submissions_per_day,
                execution_time_limit=last.execution_time_limit))
            return []

        return self.save_spec(slug, actor, change)

    def remove_phase(self, slug: str, number: int, actor: Actor) -> Edit:
        """Remove phase `number` (1-based); the save refuses a phase that has submissions."""
        def change(spec: CompetitionSpec) -> list[str]:
            if len(spec.phases) == 1:
                return [f"phase {number}: is the competition's only phase; add another before removing it"]
            phase = phase_of(spec, number)
            spec.phases = [p for p in spec.phases if p is not phase]
            return []

        return self.save_spec(slug, actor, change)

    # -- programs and data -------------------------------------------------------------------------
    def replace_data(self, slug: str, owner: str, number: int, what: str, upload: Path, filename: str,
                     actor: Actor) -> Edit:
        """A new program or dataset for a task (`owner` "task", `number` its index) or a phase
        (`owner` "phase", `number` 1-based): read and stored as an uploaded bundle's, the old
        version kept for the runs it made."""
        kinds = TASK_DATA_KINDS if owner == "task" else PHASE_DATA_KINDS
        if what not in kinds:
            raise NotFound(f"a {owner} has no {what!r}; one of {', '.join(kinds)}")
        rel = f"{UPLOADS}/{what}.zip"

        def change(spec: CompetitionSpec) -> list[str]:
            if owner == "task":
                target: Any = next((t for t in spec.tasks if t.index == number), None)
                if target is None:
                    raise NotFound(f"competition {slug!r} has no task {number}")
            else:
                target = phase_of(spec, number)
            setattr(target, what, DataRef("path", rel))
            return []

        label = f"{owner} {number}: {what.replace('_', ' ')} {filename!r}"
        if not zipfile.is_zipfile(upload):
            return Edit([f"{label}: must be a .zip file (zip the folder of the {what.replace('_', ' ')})"])
        done = self.save_spec(slug, actor, change, files={rel: upload})
        if done.saved:
            self._name_dataset(slug, owner, number, what, filename)
        # The reader names the upload by its place in the folder: say the file the organizer sent.
        done.problems = [p.replace(rel, filename) for p in done.problems]
        done.warnings = [w.replace(rel, filename) for w in done.warnings]
        return done

    def _name_dataset(self, slug: str, owner: str, number: int, what: str, filename: str) -> None:
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            spec = spec_from_competition(comp)
            target: Any = (next(t for t in spec.tasks if t.index == number) if owner == "task"
                           else phase_of(spec, number))
            ref = getattr(target, what)
            row = s.get(m.Dataset, ref.value) if ref is not None else None
            if row is not None and not row.name:
                row.name = filename[:300]


_ABSENT = object()
# Where a file was read from is a name, not part of what a form edits.
_NOT_COMPARED = ("source",)


def flatten(value: Any, path: str = "") -> dict[str, Any]:
    """A model as {"phases[0].name": "Development", ...} (pages by name, other lists by position)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, DataRef):
        found: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            if f.name not in _NOT_COMPARED:
                found.update(flatten(getattr(value, f.name), f"{path}.{f.name}" if path else f.name))
        return found
    if isinstance(value, list) and value and all(isinstance(v, PageSpec) for v in value):
        found = {}
        for page in value:
            found.update(flatten(page, f"{path}[{page.name!r}]"))
        return found
    if isinstance(value, list) and any(dataclasses.is_dataclass(v) for v in value):
        found = {}
        for i, item in enumerate(value):
            found.update(flatten(item, f"{path}[{i}]"))
        return found
    return {path: value}


def unsaid(wanted: dict[str, Any], read: dict[str, Any], dialect: str) -> list[str]:
    """A problem for each value a form set that the bundle does not read back."""
    return [f"{path}: a {dialect} competition.yaml has no way to say {value!r} here (it reads back as "
            f"{read.get(path)!r}); change it in another way or leave it"
            for path, value in wanted.items() if read.get(path, _ABSENT) != value]


def board_of(spec: CompetitionSpec, slug: str, key: str) -> LeaderboardSpec:
    board = next((b for b in spec.leaderboards if b.key == key), None)
    if board is None:
        raise NotFound(f"competition {slug!r} has no leaderboard {key!r}")
    return board


def phase_of(spec: CompetitionSpec, number: int) -> PhaseSpec:
    phases = sorted(spec.phases, key=lambda p: p.index)
    if not 1 <= number <= len(phases):
        raise NotFound(f"the competition has phases 1 to {len(phases)}, not {number}")
    return phases[number - 1]


def program_version(s: Session, comp: m.Competition, run: m.Run) -> Optional[dict[str, Any]]:
    """Which version of its program a run ran: key, file name, when stored, and whether still current."""
    if not run.program_key:
        return None
    row = s.get(m.Dataset, run.program_key)
    task = next((t for t in comp.tasks if t.index == run.task_index), None)
    current = {task.scoring_program_key, task.ingestion_program_key} if task is not None else set()
    return {"key": run.program_key, "short": run.program_key[:12], "name": row.name if row else "",
            "stored_at": row.created_at.isoformat() if row and row.created_at else None,
            "current": run.program_key in current}
