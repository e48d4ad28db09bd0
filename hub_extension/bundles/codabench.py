"""The Codabench v2 dialect of `competition.yaml`, both directions.

`read_codabench` turns the parsed YAML (`version: 2`) into a
`CompetitionSpec`; `codabench_document` writes a spec back.  Readings chosen
for this dialect (facts in docs/bundle-formats.md):
- dates are month-day-year (`1-31-2026`) or ISO; phases must not overlap and
  only the last one may leave out its `end`;
- `max_submissions_per_day: 0` means unlimited (model None); defaults are
  100 submissions, 5 a day and 600 seconds per step;
- a column's `computation` works on values (sum, avg, min, max) over the
  columns named by `computation_indexes`;
- `solutions` (example submissions) are stored like any dataset, with the
  tasks they solve; a phase's `solutions` lists the ones it holds (without
  it, the solutions of its tasks).  Organizers run them as baselines; a
  solution with only a `key` (stored on another server) is refused, one with
  a `key` and a `path` is built from the path;
- a date is the moment written (offsets honoured), and a warning says when
  Codabench would make another of it (it drops the time of an unquoted
  date-time and ignores offsets);
- a task with both a `key` and its files is built from the files;
- `forum_enabled` (or CodaLab's `enable_forum`) is true unless it says false, as on Codabench;
- every key Codabench reads is in `TOP_KEYS`, `TASK_KEYS`, `SOLUTION_KEYS` or `PHASE_KEYS`,
  honoured or reported at upload as accepted but not supported.
"""
from __future__ import annotations

import re
from datetime import datetime
from typing import Optional

from .fields import (
    HONOURED,
    Issues,
    Known,
    Section,
    WrittenDate,
    asks_falsy,
    codabench_date,
    describe,
    PUBLISHED_KEY,
    no_effect,
    read_published,
    stash as _stash,
    unsupported,
)
from .model import (
    TASK_DATA_KINDS,
    SUBMISSION_RULES,
    VALUE_COMPUTATIONS,
    ColumnSpec,
    CompetitionSpec,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    SolutionSpec,
    TaskSpec,
)
from .fair_share import ALIAS as CONCURRENCY_ALIAS, KEY as CONCURRENCY_KEY, read_concurrency, write_concurrency
from .fact_sheet import board_columns_entry, fact_sheet_document, read_board_columns, read_fact_sheet
from .refs import BundleFiles, ExportNames, page_format
from .probing import PROBING_KEYS, probing_entry, read_probing

# Every key Codabench's importer reads (src/apps/competitions/unpackers/v2.py
# and the competition fields its export writes).  Honoured keys are read
# below; the others are kept for export and reported at upload when their value
# asks for what this platform does not do.  A new key is one line here.
# Codabench's competition keys that Codabench reads in a CodaLab v1.5 bundle too.
SHARED_TOP_KEYS: dict[str, Known] = {
    "show_detailed_results_in_submission_panel": unsupported(
        "false would keep detailed results out of the submission list; here they are shown with the "
        "submission", asks=asks_falsy),
    "show_detailed_results_in_leaderboard": unsupported(
        "would link each leaderboard row to its detailed results; here they are shown with the submission "
        "only"),
    "auto_run_submissions": unsupported("false would hold submissions until an organizer runs them; here "
                                        "every submission runs at once", asks=asks_falsy),
    "make_programs_available": unsupported("would let participants download the programs; here they cannot"),
    "make_input_data_available": unsupported("would let participants download the input data; here they "
                                             "cannot"),
}
TOP_KEYS: dict[str, Known] = {
    **{key: HONOURED for key in (
        "version", "title", "description", "image", "terms", "pages", "registration_auto_approve",
        "docker_image", "queue", "contact_email", "tasks", "solutions", "phases", "leaderboards")},
    "enable_detailed_results": unsupported(
        "false keeps the scoring program's detailed results from participants; here a participant sees "
        "the detailed results page whenever the scoring program writes one; hide_score_output hides it",
        asks=asks_falsy, keep=False),
    **SHARED_TOP_KEYS,
    # Not Codabench's (it names collaborators in its editor only): CodaLab's co-organizers, read in both dialects
    # so that an exported competition keeps its co-organizers.
    "admin_names": HONOURED,
    "published": PUBLISHED_KEY,
    "can_participants_make_submissions_public": unsupported(
        "would let participants make their submissions public; here only the submitter and the organizers "
        "see a submission"),
    "fact_sheet": HONOURED,
    "reward": unsupported("would show the prize on the competition page; here it is not shown"),
    "forum_enabled": HONOURED,
    "competition_type": unsupported("'benchmark' would show the competition as a benchmark; here every "
                                    "competition is shown the same way",
                                    asks=lambda value: str(value).strip().lower() != "competition"),
    "report": unsupported("would link the competition's report; here it is not shown"),
    "whitelist_emails": unsupported("would approve these e-mail addresses' registrations at once; here "
                                    "registration follows registration_auto_approve"),
    "allow_robot_submissions": unsupported("would let robot accounts submit through the API; there are no "
                                           "robot accounts here"),
    "enable_forum": HONOURED,  # CodaLab's name, found in Codabench bundles written from CodaLab's
    "anonymous_leaderboard": HONOURED,
    "allow_teams": HONOURED,
}
TASK_DATA = TASK_DATA_KINDS
WORKER_DATA = ("reference_data", "input_data")
TASK_KEYS: dict[str, Known] = {
    **{key: HONOURED for key in ("index", "name", "description", "ingestion_only_during_scoring", "key",
                                 "worker_data", *TASK_DATA)},
    "is_public": unsupported("would share the task with every Codabench user; here tasks belong to their "
                             "competition"),
    "created_by": no_effect("Codabench's own bookkeeping"),
}
PHASE_KEYS: dict[str, Known] = {
    **{key: HONOURED for key in (
        "index", "name", "description", "start", "end", "tasks", "max_submissions", "max_submissions_per_person",
        "max_submissions_per_day", "execution_time_limit", "auto_migrate_to_this_phase", "hide_output",
        "hide_prediction_output", "hide_score_output", "starting_kit", "public_data", "solutions")},
    "is_final_phase": no_effect("Codabench's own bookkeeping"),
    "status": no_effect("Codabench's own bookkeeping (set from the dates)"),
    "public_data_organizer_dataset": no_effect("Codabench's own bookkeeping"),
    "execution_time_limit_ms": unsupported("was read by early Codabench versions as the time limit; here the "
                                           "limit is execution_time_limit, in seconds"),
    # This platform's fair share (EvalAI's name too): read by read_concurrency.
    CONCURRENCY_KEY: HONOURED, CONCURRENCY_ALIAS: HONOURED,
}
# Jupyter Compete's own: participants may reproduce their submissions (`app.reproduce`).
PHASE_KEYS["allow_reproduce"] = HONOURED
# A solution of Codabench's unpacker (`_unpack_solutions`) and export.
SOLUTION_KEYS: dict[str, Known] = {
    **{key: HONOURED for key in ("index", "tasks", "path", "name", "description", "key")},
}
BOARD_USED = {"index", "title", "key", "hidden", "submission_rule", "primary_index", "columns", "anonymous",
              "fact_sheet_columns"}
BOARD_USED |= PROBING_KEYS
COLUMN_USED = {"title", "key", "index", "sorting", "computation", "computation_indexes", "precision", "hidden"}


def _forum_flag(top: Section) -> bool:
    """`forum_enabled` (Codabench's name; every Codabench competition has a forum unless it says false),
    else CodaLab's `enable_forum`; both given and different is a problem."""
    ours, theirs = top.flag("forum_enabled", True), top.flag("enable_forum", True)
    if top.has("forum_enabled") and top.has("enable_forum") and ours != theirs:
        top.error("enable_forum", f"says {theirs} but forum_enabled says {ours}: keep one of them")
    return ours if top.has("forum_enabled") else theirs


def _slug(title: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-") or "page"


def read_codabench(doc: dict, files: BundleFiles, issues: Issues) -> CompetitionSpec:
    top = Section(issues, files.yaml_name, "", doc)
    spec = CompetitionSpec(
        title=top.text("title", "", required=True) or "",
        dialect="codabench",
        description=top.text("description", "") or "",
        docker_image=top.text("docker_image"),
        queue=top.text("queue"),
        registration_auto_approve=top.flag("registration_auto_approve", False),
        enable_detailed_results=top.flag("enable_detailed_results", False),
        contact_email=top.text("contact_email"),
        published=read_published(top),
        anonymous_leaderboard=top.flag("anonymous_leaderboard", False),
    )
    spec.enable_forum = _forum_flag(top)
    spec.admin_names = top.user_names("admin_names")
    spec.allow_teams = top.flag("allow_teams", False)
    extra: dict = {}
    if top.has("image"):
        spec.logo = files.image(top.raw("image"), "image")
        if spec.logo is not None and spec.logo.kind == "path":
            extra.setdefault("files", {})["logo"] = spec.logo.value
    if top.has("terms"):
        found = files.text(top.raw("terms"), "terms")
        if found is not None:
            extra.setdefault("files", {})["terms"] = found[0]
            spec.terms = found[1]
    names: set[str] = set()
    for ps in top.sections("pages"):
        title = ps.text("title", required=True) or ""
        found = files.text(ps.raw("file"), ps.key("file")) if ps.has("file") else None
        if not ps.has("file"):
            ps.error("file", "is required: the page's HTML or Markdown file in the bundle")
        ps.leftovers({"title", "file"})
        if found is None:
            continue
        name, n = _slug(title), 2
        while name in names:
            name, n = f"{_slug(title)}-{n}", n + 1
        names.add(name)
        spec.pages.append(PageSpec(name=name, title=title, content=found[1], format=page_format(found[0]),
                                   source=found[0]))

    spec.fact_sheet = read_fact_sheet(top)
    _read_tasks(top, files, spec, extra)
    declared = _read_solutions(top, files, spec)
    _read_phases(top, files, spec, extra, declared)
    _read_leaderboards(top, spec, extra)
    kept = top.check_keys(TOP_KEYS)
    if kept:
        extra["competition"] = kept
    spec.extra = extra
    return spec


def _read_tasks(top: Section, files: BundleFiles, spec: CompetitionSpec, extra: dict) -> None:
    seen: set[int] = set()
    for position, ts in enumerate(top.sections("tasks", required=True)):
        index = ts.integer("index", position)
        if index is None:
            index = position
        if index in seen:
            ts.error("index", f"{index} is used by another task")
        seen.add(index)
        if ts.has("key"):
            if any(ts.has(kind) for kind in TASK_DATA):
                ts.warn("key", f"{describe(ts.raw('key'))} names a task stored on the server this bundle came "
                               "from; Codabench would use that stored task, here the task is built from the "
                               "programs and data given beside the key")
            else:
                ts.error("key", "refers to a task stored on another server; include the task's programs "
                                "and data in the bundle instead")
        task = TaskSpec(
            index=index,
            name=ts.text("name", f"Task {index}") or f"Task {index}",
            description=ts.text("description", "") or "",
            ingestion_only_during_scoring=ts.flag("ingestion_only_during_scoring", False),
        )
        for kind in TASK_DATA:
            program = kind.endswith("_program")
            setattr(task, kind, files.data(ts.raw(kind), ts.key(kind), program=program))
        if ts.has("worker_data"):
            _read_worker_data(ts, task)
        if task.scoring_program is None and not ts.has("scoring_program") and not ts.has("key"):
            ts.warn("scoring_program", "missing: submissions to this task cannot be scored")
        _stash(extra, "tasks", index, ts.check_keys(TASK_KEYS))
        spec.tasks.append(task)


def _indexes(section: Section, name: str, known: set[int], what: str, *, required: bool = False) -> list[int]:
    """A list of task or solution indexes, each one checked against those the bundle defines."""
    found: list[int] = []
    for i, value in enumerate(section.listing(name, required=required)):
        key = f"{section.key(name)}[{i}]"
        if not isinstance(value, int) or isinstance(value, bool):
            section.issues.error(section.file, key, f"must be a {what} index, got {describe(value)}")
        elif value not in known:
            listed = ", ".join(str(t) for t in sorted(known)) or "none"
            section.issues.error(section.file, key, f"no {what} with index {value} ({what}s: {listed})")
        else:
            found.append(value)
    return found


def _read_solutions(top: Section, files: BundleFiles, spec: CompetitionSpec) -> set[int]:
    """`solutions`: example submissions, each a folder or zip of the bundle, for some tasks.

    Returns the indexes the bundle declares (a solution whose files are
    missing is an error of its own, not of the phases that name it).
    """
    task_indexes = {t.index for t in spec.tasks}
    seen: set[int] = set()
    for position, ss in enumerate(top.sections("solutions")):
        index = ss.integer("index", position)
        if index is None:
            index = position
        if index in seen:
            ss.error("index", f"{index} is used by another solution")
        seen.add(index)
        if ss.has("key"):
            if ss.has("path"):
                ss.warn("key", f"{describe(ss.raw('key'))} names a solution stored on the server this bundle came "
                               "from; Codabench would use that stored solution, here the solution is built from "
                               "its path")
            else:
                ss.error("key", "refers to a solution stored on another server; put the solution's folder or zip "
                                "in the bundle and name it with path")
        elif not ss.has("path"):
            ss.error("path", "is required: the solution's folder or zip in the bundle")
        tasks = _indexes(ss, "tasks", task_indexes, "task", required=True)
        if ss.valid and ss.has("tasks") and not ss.listing("tasks") and isinstance(ss.raw("tasks"), list):
            ss.error("tasks", "must name at least one task index")
        name = ss.text("name", f"Solution {index}") or f"Solution {index}"
        description = ss.text("description", "") or ""
        ss.check_keys(SOLUTION_KEYS)
        data = files.data(ss.raw("path"), ss.key("path")) if ss.has("path") else None
        if data is None:
            continue
        spec.solutions.append(SolutionSpec(index=index, data=data, task_indexes=tasks, name=name,
                                           description=description, source=data.value))
    return seen


def _moment(ps: Section, name: str, *, required: bool = False) -> Optional[datetime]:
    """A phase date; says so when Codabench would have made another moment of it."""
    written = ps.written_date(name, required=required)
    if written is None:
        return None
    theirs = codabench_date(written)
    if theirs != written.moment:
        ps.warn(name, f"Codabench would read this as {theirs:%Y-%m-%d %H:%M} UTC ({_why(written)}); "
                      f"here it is {written.moment:%Y-%m-%d %H:%M} UTC, as written")
    return written.moment


def _why(written: WrittenDate) -> str:
    if written.yaml_datetime:
        return "it keeps only the day of a date-time written without quotes"
    return "it ignores the offset"


def _read_worker_data(ts: Section, task: TaskSpec) -> None:
    """`worker_data`: data that stays on the organizer's workers (absolute paths there)."""
    raw = ts.raw("worker_data")
    if not isinstance(raw, dict):
        ts.error("worker_data", "must map reference_data and/or input_data to absolute paths on the queue's workers")
        return
    for kind, path in raw.items():
        if kind not in WORKER_DATA:
            ts.error("worker_data", f"{kind}: only reference_data and input_data can stay on the workers")
        elif not isinstance(path, str) or not path.startswith("/"):
            ts.error("worker_data", f"{kind}: must be an absolute path on the workers, got {path!r}")
        elif ts.has(kind):
            ts.error("worker_data", f"{kind}: is given both in the bundle and on the workers; keep one")
        else:
            task.worker_data[kind] = path
    if task.worker_data:
        ts.warn("worker_data", "this task runs only on a queue whose workers hold "
                + ", ".join(task.worker_data.values()) + "; name that queue with `queue:`")


def _read_phases(top: Section, files: BundleFiles, spec: CompetitionSpec, extra: dict, declared: set[int]) -> None:
    task_indexes = {t.index for t in spec.tasks}
    solutions = {s.index: s for s in spec.solutions}
    solution_indexes = set(declared)
    sections = top.sections("phases", required=True)
    if top.has("phases") and not sections and isinstance(top.raw("phases"), list):
        top.error("phases", "is required: at least one phase")
    seen: set[int] = set()
    entries: list[tuple[PhaseSpec, Section]] = []
    for position, ps in enumerate(sections):
        index = ps.integer("index", position)
        if index is None:
            index = position
        if index in seen:
            ps.error("index", f"{index} is used by another phase")
        seen.add(index)
        per_day = ps.integer("max_submissions_per_day", 5)
        if ps.has("max_submissions"):
            max_total = ps.integer("max_submissions", 100)
        else:
            max_total = ps.integer("max_submissions_per_person", 100)
        phase = PhaseSpec(
            index=index,
            name=ps.text("name", f"Phase {index + 1}") or f"Phase {index + 1}",
            description=ps.text("description", "") or "",
            start=_moment(ps, "start", required=True),
            end=_moment(ps, "end"),
            max_submissions=max_total,
            max_submissions_per_day=None if per_day == 0 else per_day,
            execution_time_limit=ps.integer("execution_time_limit", 600, minimum=1) or 600,
            auto_migrate=ps.flag("auto_migrate_to_this_phase", False),
            hide_output=ps.flag("hide_output", False),
            hide_prediction_output=ps.flag("hide_prediction_output", False),
            hide_score_output=ps.flag("hide_score_output", False),
            starting_kit=files.data(ps.raw("starting_kit"), ps.key("starting_kit")),
            public_data=files.data(ps.raw("public_data"), ps.key("public_data")),
        )
        phase.max_concurrent_submissions = read_concurrency(ps)
        phase.allow_reproduce = ps.flag("allow_reproduce", False)
        phase.task_indexes = _indexes(ps, "tasks", task_indexes, "task", required=True)
        phase.solution_indexes = _indexes(ps, "solutions", solution_indexes, "solution")
        for index_ in phase.solution_indexes:
            solved = solutions[index_].task_indexes if index_ in solutions else []
            if phase.task_indexes and solved and not set(solved) & set(phase.task_indexes):
                ps.warn("solutions", f"solution {index_} is for task(s) {', '.join(map(str, solved))}, none of "
                                     "which this phase runs; as a baseline it runs on this phase's tasks all the "
                                     "same")
        if ps.valid and ps.has("tasks") and not ps.listing("tasks") and isinstance(ps.raw("tasks"), list):
            ps.error("tasks", "must name at least one task index")
        if phase.start and phase.end and phase.end <= phase.start:
            ps.error("end", f"must be after the phase's start ({phase.start:%Y-%m-%d %H:%M})")
        _stash(extra, "phases", index, ps.check_keys(PHASE_KEYS))
        entries.append((phase, ps))

    entries.sort(key=lambda item: item[0].index)
    for (prev, prev_section), (nxt, next_section) in zip(entries, entries[1:]):
        if prev.end is None:
            prev_section.error("end", "is required: only the last phase may leave out its end")
        elif nxt.start is not None and nxt.start < prev.end:
            next_section.error("start", f"{nxt.start:%Y-%m-%d %H:%M} is before the end of phase "
                                        f"{prev.name!r} ({prev.end:%Y-%m-%d %H:%M}); phases must not overlap")
    spec.phases = [phase for phase, _ in entries]


def _read_leaderboards(top: Section, spec: CompetitionSpec, extra: dict) -> None:
    if not top.has("leaderboards"):
        top.warn("leaderboards", "missing: the competition has no leaderboard")
    keys: set[str] = set()
    for position, bs in enumerate(top.sections("leaderboards")):
        key = bs.text("key", required=True) or f"leaderboard-{position}"
        if key in keys:
            bs.error("key", f"{key!r} is used by another leaderboard")
        keys.add(key)
        board = LeaderboardSpec(
            key=key,
            title=bs.text("title", key) or key,
            index=bs.integer("index", position) if bs.has("index") else position,
            hidden=bs.flag("hidden", False),
            submission_rule=bs.choice("submission_rule", SUBMISSION_RULES, "Add") or "Add",
            anonymous=bs.flag("anonymous", False) if bs.has("anonymous") else None,
        )
        read_probing(bs, board)
        by_index: dict[int, ColumnSpec] = {}
        pending: list[tuple[ColumnSpec, Section, list]] = []
        for cpos, cs in enumerate(bs.sections("columns", required=True)):
            ckey = cs.text("key", required=True) or f"column-{cpos}"
            index = cs.integer("index", cpos)
            index = cpos if index is None else index
            column = ColumnSpec(
                key=ckey,
                title=cs.text("title", ckey) or ckey,
                index=index,
                sorting=cs.choice("sorting", ("asc", "desc"), "desc"),  # type: ignore[arg-type]
                precision=cs.integer("precision", 2) if cs.has("precision") else 2,
                hidden=cs.flag("hidden", False),
                computation=cs.choice("computation", VALUE_COMPUTATIONS, None),
            )
            if index in by_index:
                cs.error("index", f"{index} is used by column {by_index[index].key!r}")
            elif any(c.key == ckey for c in by_index.values()):
                cs.error("key", f"{ckey!r} is used by another column of this leaderboard")
            by_index[index] = column
            raw_indexes = cs.raw("computation_indexes")
            if isinstance(raw_indexes, str):
                raw_indexes = [p.strip() for p in raw_indexes.split(",") if p.strip()]
            if raw_indexes is not None and not isinstance(raw_indexes, list):
                cs.error("computation_indexes", f"must be a list of column indexes, got {describe(raw_indexes)}")
                raw_indexes = None
            pending.append((column, cs, raw_indexes or []))
            cs.leftovers(COLUMN_USED)
        for column, cs, raw_indexes in pending:
            if column.computation and not raw_indexes:
                cs.error("computation_indexes", f"is required with computation {column.computation!r}")
            if raw_indexes and not column.computation:
                cs.error("computation", "is required with computation_indexes: one of "
                                        + ", ".join(VALUE_COMPUTATIONS))
            for raw in raw_indexes:
                try:
                    source = int(raw)
                except (TypeError, ValueError):
                    cs.error("computation_indexes", f"must hold column indexes, got {describe(raw)}")
                    continue
                if source not in by_index or by_index[source] is column:
                    cs.error("computation_indexes", f"no other column with index {source} in leaderboard {key!r}")
                    continue
                column.source_keys.append(by_index[source].key)
        board.columns = sorted(by_index.values(), key=lambda c: c.index)
        board.fact_sheet_columns = read_board_columns(bs, spec.fact_sheet)
        if bs.has("primary_index"):
            primary = bs.integer("primary_index", 0)
            if primary in by_index:
                board.primary_key = by_index[primary].key
            elif board.columns:
                bs.error("primary_index", f"no column with index {primary} in leaderboard {key!r}")
        elif board.columns:
            board.primary_key = board.columns[0].key
        _stash(extra, "leaderboards", key, bs.leftovers(BOARD_USED))
        spec.leaderboards.append(board)


# -- export -----------------------------------------------------------------------

def format_date(moment: Optional[datetime]) -> Optional[str]:
    if moment is None:
        return None
    if moment == datetime(moment.year, moment.month, moment.day):
        return f"{moment.month}-{moment.day}-{moment.year}"
    return moment.isoformat(sep=" ")


def codabench_document(spec: CompetitionSpec, names: ExportNames) -> tuple[dict, list[str]]:
    """The YAML document of `spec` in Codabench v2 form, and what could not be expressed."""
    lost: list[str] = []
    extra = spec.extra or {}
    doc: dict = {"version": 2, "title": spec.title}
    doc["description"] = spec.description
    if spec.logo is not None:
        doc["image"] = names.logo()
    doc["registration_auto_approve"] = spec.registration_auto_approve
    doc["enable_detailed_results"] = spec.enable_detailed_results
    if spec.allow_teams:
        doc["allow_teams"] = True
    if spec.anonymous_leaderboard:
        doc["anonymous_leaderboard"] = True
    doc["forum_enabled"] = spec.enable_forum
    for key in ("docker_image", "queue", "contact_email"):
        if getattr(spec, key):
            doc[key] = getattr(spec, key)
    if spec.admin_names:
        doc["admin_names"] = ", ".join(spec.admin_names)
    if spec.terms is not None:
        doc["terms"] = names.terms()
    if spec.pages:
        doc["pages"] = [{"title": page.title, "file": names.page(page)} for page in spec.pages]
    tasks = []
    for task in spec.tasks:
        entry: dict = {"index": task.index, "name": task.name, "description": task.description}
        for kind in TASK_DATA:
            ref = getattr(task, kind)
            if ref is not None:
                entry[kind] = names.data(ref)
        entry["ingestion_only_during_scoring"] = task.ingestion_only_during_scoring
        if task.worker_data:
            entry["worker_data"] = dict(task.worker_data)
        entry.update(extra.get("tasks", {}).get(str(task.index), {}))
        tasks.append(entry)
    doc["tasks"] = tasks
    if spec.solutions:
        doc["solutions"] = [
            {"index": solution.index, "name": solution.name, "description": solution.description,
             "tasks": list(solution.task_indexes), "path": names.solution(solution)}
            for solution in spec.solutions
        ]
    phases = []
    for phase in spec.phases:
        entry = {
            "index": phase.index,
            "name": phase.name,
            "description": phase.description,
            "start": format_date(phase.start),
            "end": format_date(phase.end),
            "tasks": list(phase.task_indexes),
            "max_submissions": phase.max_submissions,
            "max_submissions_per_day": 0 if phase.max_submissions_per_day is None else phase.max_submissions_per_day,
            "execution_time_limit": phase.execution_time_limit,
            "auto_migrate_to_this_phase": phase.auto_migrate,
            "hide_output": phase.hide_output,
            "hide_prediction_output": phase.hide_prediction_output,
            "hide_score_output": phase.hide_score_output,
        }
        if phase.end is None:
            del entry["end"]
        if phase.max_submissions is None:
            del entry["max_submissions"]
        if phase.max_submissions_per_day == 0:
            lost.append(f"phase {phase.index}: Codabench reads 0 a day as unlimited")
        write_concurrency(entry, phase.max_concurrent_submissions)
        if phase.starting_kit is not None:
            entry["starting_kit"] = names.data(phase.starting_kit)
        if phase.public_data is not None:
            entry["public_data"] = names.data(phase.public_data)
        if phase.solution_indexes:
            entry["solutions"] = list(phase.solution_indexes)
        if phase.allow_reproduce:
            entry["allow_reproduce"] = True
        if phase.hide_results or phase.submission_rule or phase.results_only:
            lost.append(f"phase {phase.index}: hide_results, results_only and a phase submission rule "
                        "have no Codabench key")
        entry.update(extra.get("phases", {}).get(str(phase.index), {}))
        phases.append(entry)
    doc["phases"] = phases
    boards = []
    for board in spec.leaderboards:
        by_key = {c.key: c for c in board.columns}
        columns = []
        for column in board.columns:
            computation = column.computation
            if computation and computation not in VALUE_COMPUTATIONS:
                lost.append(f"column {column.key!r}: Codabench has no {computation!r} computation")
                computation = None
            columns.append({
                "title": column.title, "key": column.key, "index": column.index, "sorting": column.sorting,
                "computation": computation,
                "computation_indexes": [by_key[k].index for k in column.source_keys if k in by_key]
                if computation else None,
                "precision": column.precision, "hidden": column.hidden,
            })
        entry = {"index": board.index, "title": board.title, "key": board.key, "hidden": board.hidden,
                 "submission_rule": board.submission_rule}
        if board.primary_key in by_key:
            entry["primary_index"] = by_key[board.primary_key].index
        if board.anonymous is not None:
            entry["anonymous"] = board.anonymous
        entry.update(probing_entry(board))
        entry["columns"] = columns
        shown = board_columns_entry(spec.fact_sheet, board.fact_sheet_columns)
        if shown is not None:
            entry["fact_sheet_columns"] = shown
        entry.update(extra.get("leaderboards", {}).get(board.key, {}))
        boards.append(entry)
    doc["leaderboards"] = boards
    if spec.fact_sheet:
        doc["fact_sheet"] = fact_sheet_document(spec.fact_sheet)
    for key, value in extra.get("competition", {}).items():
        doc.setdefault(key, value)
    return doc, lost
