"""The CodaLab v1.5 dialect of `competition.yaml`, both directions.

`read_codalab` turns the parsed YAML into a `CompetitionSpec`;
`codalab_document` turns a spec back into the YAML document that export
writes.  The two are kept side by side so that every key read is a key
written, which is what makes the round trip hold.

Readings chosen for this dialect (facts in docs/bundle-formats.md):
- phases are a mapping; a phase ends when the next one starts, the last one
  at the competition's `end_date`;
- `max_submissions_per_day: 0` means no submissions at all (model value 0);
- `is_scoring_only` defaults to true unless the phase has an ingestion
  program;
- each phase's data and programs become a task; phases with identical
  programs and data share one task;
- CodaLab 1.8 parallel phases: a parent (`is_parallel_parent`) and the
  phases naming it (`parent_phasenumber`) are one phase with the parent's
  settings and one task per child; export writes the parent and children
  back (docs/bundle-formats.md#codalab-18-parallel-phases);
- `force_submission_to_leaderboard` gives every board the rule `Force_Last`,
  otherwise `Add` (the participant chooses); a phase's
  `force_best_submission_to_leaderboard` overrides it with `Force_Best`;
- columns are linked to boards through YAML anchors, matched by identity
  first, then by label and rank;
- `computed: {operation: Avg}` is an average of ranks (`rank_avg`), with
  `weights` a weighted sum of ranks (`rank_weighted`), `MRR` is `mrr`;
- pages come in CodaLab's order: overview, evaluation, the other `html:`
  pages in the order of the YAML, data last (terms is the terms);
- every key CodaLab accepts is in `TOP_KEYS`, `PHASE_KEYS` or the leaderboard
  tables, honoured or reported at upload as accepted but not supported.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from .fields import (
    HONOURED,
    Issues,
    Known,
    Section,
    asks_falsy,
    asks_never,
    describe,
    jsonable,
    PUBLISHED_KEY,
    no_effect,
    read_published,
    stash as _stash,
    unsupported,
)
from .model import (
    PHASE_DATA_KINDS,
    TASK_DATA_KINDS,
    ColumnSpec,
    CompetitionSpec,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    TaskSpec,
)
from .codabench import SHARED_TOP_KEYS
from .fair_share import ALIAS as CONCURRENCY_ALIAS, KEY as CONCURRENCY_KEY, read_concurrency, write_concurrency
from .fact_sheet import board_columns_entry, fact_sheet_document, read_fact_sheet
from .refs import BundleFiles, ExportNames, page_format
from .probing import PROBING_KEYS, probing_entry, read_probing

# Every key CodaLab's importer accepts (apps/web/models.py: the Competition and
# CompetitionPhase fields, which it fills from the YAML as they are), plus the
# keys Codabench reads in a v1.5 bundle.  Honoured keys are read below; the
# others are kept for export and reported at upload when their value asks for
# what this platform does not do.  A new key is one line here.
TOP_KEYS: dict[str, Known] = {
    "version": HONOURED, "title": HONOURED, "description": HONOURED, "image": HONOURED,
    "has_registration": HONOURED, "end_date": HONOURED, "competition_docker_image": HONOURED,
    "enable_detailed_results": unsupported(
        "false keeps the scoring program's detailed results from participants; here a participant sees "
        "the detailed results page whenever the scoring program writes one; a blind phase hides it",
        asks=asks_falsy, keep=False),
    "force_submission_to_leaderboard": HONOURED, "admin_names": HONOURED, "html": HONOURED,
    "phases": HONOURED, "leaderboard": HONOURED, "queue": HONOURED,
    # Codabench's fact sheet, read in this dialect too so that any competition can ask one.
    "fact_sheet": HONOURED,
    "start_date": no_effect("CodaLab replaces it with the start of the first phase, as this platform does"),
    "allow_teams": HONOURED, "enable_teams": HONOURED,
    "require_team_approval": unsupported("would have organizers approve new teams; here a team exists as soon "
                                         "as a participant creates it", asks=asks_never),
    "anonymous_leaderboard": HONOURED,
    "disallow_leaderboard_modifying": unsupported(
        "would stop participants from changing which submission is on the leaderboard; here a participant "
        "can still choose another of their submissions when the board's rule lets them"),
    "enable_forum": HONOURED,
    "allow_public_submissions": unsupported(
        "would let participants share their submissions publicly; here only the submitter and the "
        "organizers see a submission"),
    "allow_organizer_teams": unsupported("would let organizers form teams; here organizers enter alone"),
    "hide_top_three": no_effect("hides CodaLab's top-three display; there is none here"),
    "hide_chart": unsupported("would hide the leaderboard's chart; here the best-score chart is shown"),
    "show_datasets_from_yaml": unsupported(
        "would list each phase's 'datasets' links on the data page; here they are not listed"),
    "reward": unsupported("would show the prize in the competition list; here it is not shown"),
    "url_redirect": unsupported("would send visitors to another address; here the competition page is shown"),
    "enable_medical_image_viewer": unsupported("would open results in CodaLab's medical image viewer; "
                                               "there is none here"),
    "enable_per_submission_metadata": unsupported(
        "would ask for a team name, method name and description with each submission; here it is not asked"),
    "published": PUBLISHED_KEY,
    "is_migrating": no_effect("CodaLab's own bookkeeping"),
    "is_migrating_delayed": no_effect("CodaLab's own bookkeeping"),
    "last_phase_migration": no_effect("CodaLab's own bookkeeping"),
    "secret_key": no_effect("CodaLab's own bookkeeping"),
    "image_url_base": no_effect("CodaLab's own bookkeeping"),
    "original_yaml_file": no_effect("CodaLab's own bookkeeping"),
    # Codabench's keys, read by Codabench in a v1.5 bundle too.
    **SHARED_TOP_KEYS,
}
PHASE_DATA = TASK_DATA_KINDS
PHASE_KEYS: dict[str, Known] = {
    **{key: HONOURED for key in (
        "phasenumber", "label", "description", "start_date", "max_submissions", "max_submissions_per_day",
        "is_scoring_only", "execution_time_limit", "color", "auto_migration", "leaderboard_management_mode",
        "force_best_submission_to_leaderboard", "public_data", "starting_kit",
        "ingestion_program_only_during_scoring", "scoring_program_docker_image",
        "ingestion_program_docker_image", *PHASE_DATA)},
    "datasets": unsupported("would list these links on the data page; here they are not listed"),
    "phase_never_ends": unsupported("would keep the phase open after the next phase starts and after the "
                                    "competition's end_date; here it closes then"),
    "default_docker_image": unsupported("would run participants' code in this image; here the competition's "
                                        "image (competition_docker_image) is used"),
    "disable_custom_docker_image": unsupported(
        "false would let participants pick their own image; here every submission runs in the "
        "competition's image", asks=asks_falsy),
    # CodaLab 1.8 parallel phases: read by _read_parallel.
    "is_parallel_parent": HONOURED, "parent_phasenumber": HONOURED,
    "parent": unsupported("would make this a child of a parallel parent phase (CodaLab's database field; "
                          "bundles name the parent with parent_phasenumber); here it is a phase of its own"),
    "is_migrated": no_effect("CodaLab's own bookkeeping"),
    "public_data_organizer_dataset": no_effect("CodaLab's own bookkeeping"),
    "starting_kit_organizer_dataset": no_effect("CodaLab's own bookkeeping"),
    "hide_output": HONOURED, "hide_prediction_output": HONOURED, "hide_score_output": HONOURED,
    # This platform's fair share (EvalAI's name too): read by read_concurrency.
    CONCURRENCY_KEY: HONOURED, CONCURRENCY_ALIAS: HONOURED,
}
# Jupyter Compete's own: participants may reproduce their submissions (`app.reproduce`).
PHASE_KEYS["allow_reproduce"] = HONOURED
BOARD_USED = {"label", "rank", "anonymous"}
BOARD_USED |= PROBING_KEYS
COLUMN_USED = {"leaderboard", "label", "rank", "sort", "numeric_format", "selection_default", "hidden",
               "computed"}
COLUMN_KEYS: dict[str, Known] = {
    **{key: HONOURED for key in COLUMN_USED},
    "column_group": unsupported("would put the column under a group heading; here columns have no groups"),
}
LEADERBOARD_KEYS: dict[str, Known] = {
    "leaderboards": HONOURED, "columns": HONOURED,
    "column_groups": unsupported("would group columns under headings; here columns have no groups"),
}
COMPUTED_OPERATIONS = {"Avg": "rank_avg", "MRR": "mrr", "Max": "max"}


def _page_title(name: str) -> str:
    return name.replace("_", " ").replace("-", " ").strip().title() or name


def read_codalab(doc: dict, files: BundleFiles, issues: Issues) -> CompetitionSpec:
    top = Section(issues, files.yaml_name, "", doc)
    spec = CompetitionSpec(
        title=top.text("title", "", required=True) or "",
        dialect="codalab",
        description=top.text("description", "") or "",
        docker_image=top.text("competition_docker_image"),
        queue=top.text("queue"),
        registration_auto_approve=not top.flag("has_registration", False),
        enable_detailed_results=top.flag("enable_detailed_results", False),
        published=read_published(top),
        anonymous_leaderboard=top.flag("anonymous_leaderboard", False),
    )
    spec.allow_teams = top.flag("allow_teams", False) or top.flag("enable_teams", False)
    spec.enable_forum = top.flag("enable_forum", False)  # CodaLab's default: no forum
    extra: dict = {}
    spec.admin_names = top.user_names("admin_names")
    if top.has("image"):
        spec.logo = files.image(top.raw("image"), "image")
        if spec.logo is not None and spec.logo.kind == "path":
            extra.setdefault("files", {})["logo"] = spec.logo.value

    _read_pages(top, files, spec, extra)
    _read_phases(top, files, spec, extra)
    _read_leaderboards(top, spec, extra)
    spec.fact_sheet = read_fact_sheet(top)
    for board in spec.leaderboards:  # no place for a board's own choice in this dialect
        board.fact_sheet_columns = [q["key"] for q in spec.fact_sheet or [] if q["is_on_leaderboard"]]

    if top.has("version") and str(top.raw("version")).strip() not in ("1", "1.5", "1.0"):
        top.error("version", f"must be 2 for a Codabench bundle or absent for CodaLab v1.5, "
                             f"got {describe(top.raw('version'))}")
    top.moment("start_date")  # not used (the first phase starts the competition), but must be a date
    kept = top.check_keys(TOP_KEYS)
    if kept:
        extra["competition"] = kept
    spec.extra = extra
    return spec


# CodaLab's page order: Overview, Evaluation (and Terms) first, the other pages
# in the order of the YAML, and Data last (its "Get Data" page sits under
# Participate, after the pages above).
PAGES_FIRST = ("overview", "evaluation")
PAGES_LAST = ("data",)


def _page_rank(position: int, name: str) -> tuple[int, int]:
    if name in PAGES_FIRST:
        return 0, PAGES_FIRST.index(name)
    if name in PAGES_LAST:
        return 2, PAGES_LAST.index(name)
    return 1, position


def _read_pages(top: Section, files: BundleFiles, spec: CompetitionSpec, extra: dict) -> None:
    html = top.section("html")
    pages: list[tuple[tuple[int, int], PageSpec]] = []
    for position, (name, value) in enumerate(html.data.items()):
        if value is None:
            continue
        found = files.text(value, html.key(name))
        if found is None:
            continue
        source, content = found
        if str(name) == "terms":
            spec.terms = content
            extra.setdefault("files", {})["terms"] = source
            continue
        page = PageSpec(name=str(name), title=_page_title(str(name)), content=content,
                        format=page_format(source), source=source)
        pages.append((_page_rank(position, str(name).lower()), page))
    spec.pages.extend(page for _, page in sorted(pages, key=lambda item: item[0]))


def _read_phases(top: Section, files: BundleFiles, spec: CompetitionSpec, extra: dict) -> None:
    raw = top.raw("phases")
    if raw is None:
        top.error("phases", "is required: at least one phase")
        return
    if isinstance(raw, list):
        top.error("phases", "must be a mapping of phase numbers to phases (CodaLab v1.5); "
                            "add 'version: 2' at the top for a Codabench bundle")
        return
    phases_section = top.section("phases")
    entries: list[tuple[int, Section]] = []
    for position, (name, value) in enumerate(phases_section.data.items()):
        section = Section(top.issues, top.file, f"phases[{name}]", value)
        fallback = name if isinstance(name, int) else position + 1
        number = section.integer("phasenumber", fallback)
        entries.append((number if number is not None else fallback, section))
    if not entries:
        top.error("phases", "is required: at least one phase")
        return
    entries.sort(key=lambda item: item[0])

    children = _parallel_children(entries)
    child_numbers = {number for kids in children.values() for number, _ in kids}
    task_by_content: dict[tuple, int] = {}
    seen_numbers: dict[int, str] = {}
    ordered: list[Section] = []  # the sections of the phases that are phases here
    for number, ph in entries:
        if number in seen_numbers:
            ph.error("phasenumber", f"{number} is also the number of {seen_numbers[number]}")
        seen_numbers[number] = ph.path
        if number in child_numbers or ph.has("parent_phasenumber"):
            continue  # read with its parent (or refused in _parallel_children)
        if number in children:
            phase = _phase_of(number, ph, files, results_only_default=True)
            _read_parallel(ph, phase, children[number], files, spec, extra)
        else:
            task = _task_of(ph, f"Phase {number}", files)
            phase = _phase_of(number, ph, files, results_only_default=task.ingestion_program is None)
            task.name = phase.name
            if task.scoring_program is None and not ph.has("scoring_program"):
                ph.warn("scoring_program", "missing: submissions to this phase cannot be scored")
            content = (task.scoring_program, task.ingestion_program, task.reference_data, task.input_data,
                       task.ingestion_only_during_scoring, task.scoring_docker_image, task.ingestion_docker_image)
            if content not in task_by_content:
                task.index = len(spec.tasks)
                task_by_content[content] = task.index
                spec.tasks.append(task)
            phase.task_indexes = [task_by_content[content]]
        _stash(extra, "phases", number, ph.check_keys(PHASE_KEYS))
        spec.phases.append(phase)
        ordered.append(ph)
    if not spec.phases:
        return

    # A CodaLab phase ends when the next one starts; the last at end_date.
    for ph, (prev, nxt) in zip(ordered[1:], zip(spec.phases, spec.phases[1:])):
        if prev.start and nxt.start and nxt.start <= prev.start:
            ph.error("start_date", f"must be after the start of phase {prev.index} ({prev.start:%Y-%m-%d %H:%M})")
        prev.end = nxt.start
    end = top.moment("end_date")
    last = spec.phases[-1]
    if end is not None and last.start is not None and end <= last.start:
        top.error("end_date", f"must be after the start of the last phase ({last.start:%Y-%m-%d %H:%M})")
    last.end = end


def _task_of(ph: Section, name: str, files: BundleFiles) -> TaskSpec:
    """The programs and data of a CodaLab phase, as a task (index set by the caller)."""
    return TaskSpec(
        index=0,
        name=name,
        scoring_program=files.data(ph.raw("scoring_program"), ph.key("scoring_program"), program=True),
        ingestion_program=files.data(ph.raw("ingestion_program"), ph.key("ingestion_program"), program=True),
        reference_data=files.data(ph.raw("reference_data"), ph.key("reference_data")),
        input_data=files.data(ph.raw("input_data"), ph.key("input_data")),
        ingestion_only_during_scoring=ph.flag("ingestion_program_only_during_scoring", False),
        scoring_docker_image=ph.text("scoring_program_docker_image"),
        ingestion_docker_image=ph.text("ingestion_program_docker_image"),
    )


def _phase_of(number: int, ph: Section, files: BundleFiles, *, results_only_default: bool) -> PhaseSpec:
    """The phase settings of a CodaLab phase (its tasks are set by the caller)."""
    return PhaseSpec(
        index=number,
        name=ph.text("label", f"Phase {number}") or f"Phase {number}",
        description=ph.text("description", "") or "",
        start=ph.moment("start_date", required=True),
        max_submissions=ph.integer("max_submissions", 100),
        max_submissions_per_day=ph.integer("max_submissions_per_day", 999),
        execution_time_limit=ph.integer("execution_time_limit", 300, minimum=1) or 300,
        auto_migrate=ph.flag("auto_migration", False),
        hide_results=ph.choice("leaderboard_management_mode", ("default", "hide_results"),
                               "default") == "hide_results",
        results_only=ph.flag("is_scoring_only", results_only_default),
        submission_rule="Force_Best" if ph.flag("force_best_submission_to_leaderboard", False) else None,
        starting_kit=files.data(ph.raw("starting_kit"), ph.key("starting_kit")),
        public_data=files.data(ph.raw("public_data"), ph.key("public_data")),
        color=ph.text("color"),
        hide_output=ph.flag("hide_output", False),
        hide_prediction_output=ph.flag("hide_prediction_output", False),
        hide_score_output=ph.flag("hide_score_output", False),
        max_concurrent_submissions=read_concurrency(ph),
        allow_reproduce=ph.flag("allow_reproduce", False),
    )


# -- CodaLab 1.8 parallel phases ---------------------------------------------------
# A parent phase (`is_parallel_parent: true`) and child phases naming it
# (`parent_phasenumber`) become one phase here: the parent's settings, and one
# task per child with the child's programs and data.  Facts and what differs
# from CodaLab: docs/bundle-formats.md#codalab-18-parallel-phases.

# Keys of a child phase that the parent decides here; the child's values are
# kept for export and named in the upload warning.
CHILD_UNUSED_KEYS = ("max_submissions", "max_submissions_per_day", "is_scoring_only", "execution_time_limit",
                     "color", "auto_migration", "leaderboard_management_mode",
                     "force_best_submission_to_leaderboard", "hide_output", "hide_prediction_output",
                     "hide_score_output")


def _parallel_children(entries: list[tuple[int, Section]]) -> dict[int, list[tuple[int, Section]]]:
    """Parent phase number -> its children (number, section), in number order; refusals recorded."""
    numbers = [number for number, _ in entries]
    is_parent = {number: ph.flag("is_parallel_parent", False) for number, ph in entries}
    children: dict[int, list[tuple[int, Section]]] = {}
    for number, ph in entries:
        if not ph.has("parent_phasenumber"):
            continue
        parent = ph.integer("parent_phasenumber", None, minimum=None)
        if parent is None:
            continue
        if parent == number:
            ph.error("parent_phasenumber", f"is this phase's own number ({number}); name the phase that has "
                                           "'is_parallel_parent: true'")
        elif parent not in numbers:
            listed = ", ".join(str(n) for n in numbers)
            ph.error("parent_phasenumber", f"names phase {parent}, which is not in phases (phase numbers: "
                                           f"{listed}); name the phase that has 'is_parallel_parent: true'")
        elif not is_parent[parent]:
            ph.error("parent_phasenumber", f"names phase {parent}, which is not a parallel parent: add "
                                           f"'is_parallel_parent: true' to phase {parent}, or remove "
                                           f"parent_phasenumber to make phase {number} a phase of its own")
        elif is_parent[number]:
            ph.error("is_parallel_parent", f"this phase is also a child of phase {parent} (parent_phasenumber); "
                                           "a parallel parent cannot be a child: remove one of the two keys")
        else:
            children.setdefault(parent, []).append((number, ph))
    for number, ph in entries:
        if is_parent[number] and number not in children and not ph.has("parent_phasenumber"):
            ph.warn("is_parallel_parent", "no phase names this one in parent_phasenumber: it is read as an "
                                          "ordinary phase with its own programs and data")
    return children


def _read_parallel(ph: Section, phase: PhaseSpec, kids: list[tuple[int, Section]], files: BundleFiles,
                   spec: CompetitionSpec, extra: dict) -> None:
    """A parallel parent's children as the phase's tasks, said in one warning on the parent."""
    became: list[str] = []
    takes_code: list[int] = []
    for number, child in kids:
        label = child.text("label", f"Phase {number}") or f"Phase {number}"
        task = _task_of(child, label, files)
        task.description = child.text("description", "") or ""
        task.index = len(spec.tasks)
        spec.tasks.append(task)
        phase.task_indexes.append(task.index)
        if not child.flag("is_scoring_only", task.ingestion_program is None):
            takes_code.append(number)
        if task.scoring_program is None and not child.has("scoring_program"):
            child.warn("scoring_program", "missing: this child's task cannot be scored")
        start = child.moment("start_date")
        if start is not None and phase.start is not None and start != phase.start:
            child.warn("start_date", f"is not the start of its parent, phase {phase.index} "
                                     f"({phase.start:%Y-%m-%d %H:%M}): here it runs with its parent, from then")
        unused = {key: jsonable(child.raw(key)) for key in CHILD_UNUSED_KEYS if child.has(key)}
        _stash(extra, "phases", number, {**unused, **child.check_keys(PHASE_KEYS)})
        notes = [f"{key}: {value}" for key, value in unused.items() if key != "is_scoring_only"]
        notes += [f"{key} (not exported)" for key in PHASE_DATA_KINDS if child.has(key)]
        became.append(f"phase {number} {label!r} became task {task.index}"
                      + (f" (its own {', '.join(notes)} not used)" if notes else ""))
    extra.setdefault("parallel", {})[str(phase.index)] = [number for number, _ in kids]

    if takes_code:
        listed = ", ".join(str(n) for n in takes_code)
        if phase.results_only and ph.has("is_scoring_only"):
            became.append(f"is_scoring_only is true on the parent, but phase {listed} runs participants' code: "
                          "the phase takes code submissions, as its children do")
        phase.results_only = False
    else:
        phase.results_only = True
    aggregation = _aggregation_task(ph, phase, files, spec)
    message = (
        f"parallel parent (CodaLab 1.8): a submission to phase {phase.index} {phase.name!r} runs on each child "
        f"phase's programs and data, one task per child with its own runs and outputs: {'; '.join(became)}. "
        f"The children are not phases of their own here: phase {phase.index}'s dates, submission limits, "
        "time limit and leaderboard apply to every task. Each child's own scores are kept per task and shown "
        "on the submission."
    )
    if aggregation is not None:
        numbers = ", ".join(f"res_{number}" for number, _ in kids)
        message += (
            f" As on CodaLab, the parent's own scoring program runs after the children, in the same run (the "
            f"step 'aggregation' of task {aggregation.index}), on each child's scoring output ({numbers} in "
            "its input folder, with the parent's reference data in ref): the scores it writes are the "
            "submission's and the leaderboard's."
        )
    else:
        message += (
            " The parent has no scoring program of its own, so the leaderboard takes the union of the scores "
            "the children's scoring programs write, under their own keys; when two children write the same key, "
            "the leaderboard takes the higher task's value (both stay in the scores per task and the submission "
            "says so): give each child keys of its own, or give the parent a scoring_program that reads "
            "input/res_<phasenumber> and writes the leaderboard's keys."
        )
    unused = [key for key in ("ingestion_program", "input_data") if ph.has(key)]
    if aggregation is None and ph.has("reference_data"):
        unused.append("reference_data")
    if unused:
        message += (f" The parent's own {', '.join(unused)} is not used and not exported: CodaLab runs no "
                    "ingestion for a parent" + (", and its reference data only goes to its scoring program"
                                                 if "reference_data" in unused else "") + ".")
    ph.warn("is_parallel_parent", message)


def _aggregation_task(ph: Section, phase: PhaseSpec, files: BundleFiles, spec: CompetitionSpec) -> Optional[TaskSpec]:
    """The parent's own scoring program and reference data as the phase's aggregation task, if it has one."""
    program = files.data(ph.raw("scoring_program"), ph.key("scoring_program"), program=True)
    if program is None:
        return None
    task = TaskSpec(
        index=len(spec.tasks),
        name=f"{phase.name}: parent's scoring",
        scoring_program=program,
        reference_data=files.data(ph.raw("reference_data"), ph.key("reference_data")),
        scoring_docker_image=ph.text("scoring_program_docker_image"),
    )
    spec.tasks.append(task)
    phase.aggregation_task = task.index
    return task


def _read_leaderboards(top: Section, spec: CompetitionSpec, extra: dict) -> None:
    if not top.has("leaderboard"):
        top.warn("leaderboard", "missing: the competition has no leaderboard")
        return
    lb = top.section("leaderboard")
    boards_section = lb.section("leaderboards")
    if not lb.has("leaderboards"):
        lb.error("leaderboards", "is required: at least one leaderboard")
    # (board YAML object, spec, rank, position) so columns can find their board.
    boards: list[tuple[Any, LeaderboardSpec, float, int]] = []
    rule = "Force_Last" if top.flag("force_submission_to_leaderboard", False) else "Add"
    for position, (key, value) in enumerate(boards_section.data.items()):
        bs = Section(top.issues, top.file, boards_section.key(key), value)
        rank = bs.integer("rank", None)
        board = LeaderboardSpec(key=str(key), title=bs.text("label", str(key)) or str(key), submission_rule=rule,
                                anonymous=bs.flag("anonymous", False) if bs.has("anonymous") else None)
        read_probing(bs, board)
        _stash(extra, "leaderboards", key, bs.leftovers(BOARD_USED))
        boards.append((value, board, math.inf if rank is None else rank, position))
    boards.sort(key=lambda item: (item[2], item[3]))
    for index, (_, board, _, _) in enumerate(boards):
        board.index = index

    columns_section = lb.section("columns")
    placed: dict[str, list[tuple[float, int, ColumnSpec, Section]]] = {b.key: [] for _, b, _, _ in boards}
    defaults: dict[str, list[str]] = {b.key: [] for _, b, _, _ in boards}
    computed: list[tuple[ColumnSpec, Section]] = []
    for position, (key, value) in enumerate(columns_section.data.items()):
        cs = Section(top.issues, top.file, columns_section.key(key), value)
        board = _board_of(cs, boards)
        rank = cs.integer("rank", None)
        column = ColumnSpec(
            key=str(key),
            title=cs.text("label", str(key)) or str(key),
            index=0,
            sorting=cs.choice("sort", ("asc", "desc"), "desc"),  # type: ignore[arg-type]
            precision=cs.integer("numeric_format", 2) if cs.has("numeric_format") else 2,
            hidden=cs.flag("hidden", False),
        )
        if cs.has("computed"):
            _read_computed(cs, column)
            computed.append((column, cs))
        if board is None:
            continue
        selection = cs.raw("selection_default")
        if isinstance(selection, (bool, int)) and selection:
            defaults[board.key].append(column.key)
        _stash(extra, "columns", f"{board.key}/{key}", cs.check_keys(COLUMN_KEYS))
        placed[board.key].append((math.inf if rank is None else rank, position, column, cs))

    all_keys = {str(k) for k in columns_section.data}
    for column, cs in computed:
        for source in column.source_keys:
            if source not in all_keys:
                cs.error("computed.fields", f"{source!r} is not a column in leaderboard.columns")

    for _, board, _, _ in boards:
        ordered = sorted(placed[board.key], key=lambda item: (item[0], item[1]))
        board.columns = [column for _, _, column, _ in ordered]
        for index, column in enumerate(board.columns):
            column.index = index
        chosen = defaults[board.key]
        if len(chosen) > 1:
            lb.warn("columns", f"several columns of leaderboard {board.key!r} have selection_default; "
                               f"using {chosen[0]!r}")
        board.primary_key = chosen[0] if chosen else (board.columns[0].key if board.columns else None)
        spec.leaderboards.append(board)
    kept = lb.check_keys(LEADERBOARD_KEYS)
    if kept:
        extra["leaderboard"] = kept


def _board_of(cs: Section, boards: list[tuple[Any, LeaderboardSpec, float, int]]) -> Optional[LeaderboardSpec]:
    ref = cs.raw("leaderboard")
    if ref is None:
        if len(boards) == 1:
            return boards[0][1]
        cs.error("leaderboard", "is required when there are several leaderboards (use *ANCHOR of one)")
        return None
    if isinstance(ref, dict):
        # An anchor resolves to the very dict of the board.
        for obj, board, _, _ in boards:
            if obj is ref:
                return board
        same = [b for obj, b, _, _ in boards
                if isinstance(obj, dict) and obj.get("label") == ref.get("label") and obj.get("rank") == ref.get("rank")]
        if len(same) == 1:
            return same[0]
        if len(same) > 1:
            cs.error("leaderboard", "matches several leaderboards; refer to one with its YAML anchor (*NAME)")
            return None
    elif isinstance(ref, str):
        for _, board, _, _ in boards:
            if board.key == ref:
                return board
    names = ", ".join(b.key for _, b, _, _ in boards) or "none defined"
    cs.error("leaderboard", f"is not one of leaderboard.leaderboards ({names})")
    return None


def _split(value: Any) -> list[str]:
    if isinstance(value, list):
        return [str(v).strip() for v in value if str(v).strip()]
    return [part.strip() for part in str(value).split(",") if part.strip()]


def _read_computed(cs: Section, column: ColumnSpec) -> None:
    comp = cs.section("computed")
    operation = comp.choice("operation", COMPUTED_OPERATIONS, None)
    fields = _split(comp.raw("fields", ""))
    if not fields:
        comp.error("fields", "is required: the columns to compute over, like 'a, b'")
    column.source_keys = fields
    if comp.has("weights"):
        try:
            weights = [float(w) for w in _split(comp.raw("weights"))]
        except ValueError:
            comp.error("weights", f"must be numbers like '1, 2', got {describe(comp.raw('weights'))}")
            weights = None
        if weights is not None and len(weights) != len(fields):
            comp.error("weights", f"has {len(weights)} values for {len(fields)} fields")
            weights = None
        column.weights = weights
    comp.leftovers({"operation", "fields", "weights"})
    if operation is None:
        if not comp.has("operation"):
            comp.error("operation", f"is required: one of {', '.join(COMPUTED_OPERATIONS)}")
        return
    column.computation = COMPUTED_OPERATIONS[operation]
    if column.weights is not None:
        if operation != "Avg":
            comp.error("weights", "only an Avg computation takes weights")
        column.computation = "rank_weighted"


# -- export -----------------------------------------------------------------------

def _format_number(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def codalab_document(spec: CompetitionSpec, names: ExportNames) -> tuple[dict, list[str]]:
    """The YAML document of `spec` in CodaLab v1.5 form, and what could not be expressed."""
    lost: list[str] = []
    extra = spec.extra or {}
    doc: dict = {"title": spec.title}
    doc["description"] = spec.description
    if spec.logo is not None:
        doc["image"] = names.logo()
    doc["has_registration"] = not spec.registration_auto_approve
    if spec.docker_image:
        doc["competition_docker_image"] = spec.docker_image
    if spec.queue:
        doc["queue"] = spec.queue
    doc["enable_detailed_results"] = spec.enable_detailed_results
    if spec.allow_teams:
        doc["enable_teams"] = doc["allow_teams"] = True
    if spec.anonymous_leaderboard:
        doc["anonymous_leaderboard"] = True
    doc["enable_forum"] = spec.enable_forum
    if spec.admin_names:
        doc["admin_names"] = ", ".join(spec.admin_names)
    doc["force_submission_to_leaderboard"] = any(b.submission_rule == "Force_Last" for b in spec.leaderboards)
    if spec.phases and spec.phases[-1].end is not None:
        doc["end_date"] = spec.phases[-1].end
    html = {page.name: names.page(page) for page in spec.pages}
    if spec.terms is not None:
        html["terms"] = names.terms()
    if html:
        doc["html"] = html

    tasks = {t.index: t for t in spec.tasks}
    phases: dict = {}
    children = _child_numbers(spec)
    for phase in spec.phases:
        entry: dict = {
            "phasenumber": phase.index,
            "label": phase.name,
            "description": phase.description,
            "start_date": phase.start,
            "max_submissions": phase.max_submissions,
            "max_submissions_per_day": phase.max_submissions_per_day,
            "is_scoring_only": phase.results_only,
            "execution_time_limit": phase.execution_time_limit,
            "auto_migration": phase.auto_migrate,
        }
        if phase.max_submissions is None:
            del entry["max_submissions"]
        if phase.max_submissions_per_day is None:
            del entry["max_submissions_per_day"]
            lost.append(f"phase {phase.index}: CodaLab has no unlimited daily submissions; default 999 used")
        if phase.color:
            entry["color"] = phase.color
        if phase.hide_results:
            entry["leaderboard_management_mode"] = "hide_results"
        for flag in ("hide_output", "hide_prediction_output", "hide_score_output"):
            if getattr(phase, flag):
                entry[flag] = True
        if phase.allow_reproduce:
            entry["allow_reproduce"] = True
        if phase.submission_rule == "Force_Best":
            entry["force_best_submission_to_leaderboard"] = True
        write_concurrency(entry, phase.max_concurrent_submissions)
        numbers = children.get(phase.index)
        if numbers is not None:
            entry["is_parallel_parent"] = True
            if phase.aggregation_task in tasks:
                _task_entry(entry, tasks[phase.aggregation_task], names)
        elif phase.task_indexes and phase.task_indexes[0] in tasks:
            _task_entry(entry, tasks[phase.task_indexes[0]], names)
        if phase.starting_kit is not None:
            entry["starting_kit"] = names.data(phase.starting_kit)
        if phase.public_data is not None:
            entry["public_data"] = names.data(phase.public_data)
        for key, value in extra.get("phases", {}).get(str(phase.index), {}).items():
            entry.setdefault(key, value)
        phases[phase.index] = entry
        # The tasks of a phase as child phases of a parallel parent (CodaLab 1.8).
        for number, index in zip(numbers or (), phase.task_indexes):
            task = tasks.get(index)
            if task is None:
                continue
            child: dict = {"phasenumber": number, "label": task.name, "description": task.description,
                           "start_date": phase.start, "parent_phasenumber": phase.index}
            _task_entry(child, task, names)
            for key, value in extra.get("phases", {}).get(str(number), {}).items():
                child.setdefault(key, value)
            phases[number] = child
        if numbers is not None and str(phase.index) not in extra.get("parallel", {}):
            lost.append(f"phase {phase.index}: its {len(phase.task_indexes)} tasks are written as child phases "
                        f"{', '.join(str(n) for n in numbers)} of a parallel parent (CodaLab 1.8)")
    doc["phases"] = phases
    for key, value in extra.get("competition", {}).items():
        doc.setdefault(key, value)

    if spec.leaderboards:
        boards: dict = {}
        columns: dict = {}
        for board in sorted(spec.leaderboards, key=lambda b: b.index):
            # The same dict object under the board and in each column makes
            # PyYAML write an anchor and aliases, as CodaLab bundles do.
            boards[board.key] = {"label": board.title, "rank": board.index + 1,
                                 **({"anonymous": board.anonymous} if board.anonymous is not None else {}),
                                 **probing_entry(board),
                                 **extra.get("leaderboards", {}).get(board.key, {})}
            for column in sorted(board.columns, key=lambda c: c.index):
                entry = {"leaderboard": boards[board.key], "label": column.title, "rank": column.index + 1,
                         "sort": column.sorting, "numeric_format": column.precision}
                if column.key == board.primary_key:
                    entry["selection_default"] = 1
                if column.hidden:
                    entry["hidden"] = True
                if column.computation:
                    entry["computed"] = _computed_entry(column, lost)
                entry.update(extra.get("columns", {}).get(f"{board.key}/{column.key}", {}))
                if column.key in columns:
                    lost.append(f"column {column.key!r} is on several boards; CodaLab keeps one")
                columns[column.key] = entry
        doc["leaderboard"] = {"leaderboards": boards, "columns": columns, **extra.get("leaderboard", {})}
    if spec.fact_sheet:
        doc["fact_sheet"] = fact_sheet_document(spec.fact_sheet)
    for board in spec.leaderboards:
        if board_columns_entry(spec.fact_sheet, board.fact_sheet_columns) is not None:
            lost.append(f"leaderboard {board.key!r}: its own choice of fact sheet columns has no CodaLab key; "
                        "the questions marked is_on_leaderboard are shown")
    return doc, lost


def _task_entry(entry: dict, task: TaskSpec, names: ExportNames) -> None:
    """A task's programs and data on a CodaLab phase entry."""
    for kind in PHASE_DATA:
        ref = getattr(task, kind)
        if ref is not None:
            entry[kind] = names.data(ref)
    if task.ingestion_only_during_scoring:
        entry["ingestion_program_only_during_scoring"] = True
    if task.scoring_docker_image:
        entry["scoring_program_docker_image"] = task.scoring_docker_image
    if task.ingestion_docker_image:
        entry["ingestion_program_docker_image"] = task.ingestion_docker_image


def _child_numbers(spec: CompetitionSpec) -> dict[int, list[int]]:
    """Phase number -> the child phase numbers its tasks are written as, for the phases written as parents.

    A phase read from a parallel parent gets its children's numbers back; a
    phase with several tasks otherwise (CodaLab phases run one) gets new ones.
    A number another phase or child already holds is replaced by a free one.
    """
    parallel = (spec.extra or {}).get("parallel", {})
    taken = {phase.index for phase in spec.phases}
    numbered: dict[int, list[int]] = {}
    for phase in spec.phases:
        if str(phase.index) not in parallel and len(phase.task_indexes) < 2:
            continue
        wanted = [n for n in parallel.get(str(phase.index), []) if isinstance(n, int)]
        numbers = []
        for position in range(len(phase.task_indexes)):
            number = wanted[position] if position < len(wanted) else None
            if number is None or number in taken:
                number = max(taken) + 1
            taken.add(number)
            numbers.append(number)
        numbered[phase.index] = numbers
    return numbered


def _computed_entry(column: ColumnSpec, lost: list[str]) -> dict:
    by_computation = {v: k for k, v in COMPUTED_OPERATIONS.items()}
    entry: dict = {"operation": by_computation.get(column.computation or "", "Avg"),
                   "fields": ", ".join(column.source_keys)}
    if column.computation == "rank_weighted":
        entry["operation"] = "Avg"
        entry["weights"] = ", ".join(_format_number(w) for w in column.weights or [])
    elif column.computation not in by_computation:
        lost.append(f"column {column.key!r}: CodaLab has no {column.computation!r}; written as Avg")
    return entry
