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
- `force_submission_to_leaderboard` gives every board the rule `Force_Last`,
  otherwise `Add` (the participant chooses); a phase's
  `force_best_submission_to_leaderboard` overrides it with `Force_Best`;
- columns are linked to boards through YAML anchors, matched by identity
  first, then by label and rank;
- `computed: {operation: Avg}` is an average of ranks (`rank_avg`), with
  `weights` a weighted sum of ranks (`rank_weighted`), `MRR` is `mrr`.
"""
from __future__ import annotations

import math
from typing import Any, Optional

from .fields import Issues, Section, describe, stash as _stash
from .model import (
    TASK_DATA_KINDS,
    ColumnSpec,
    CompetitionSpec,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    TaskSpec,
)
from .refs import BundleFiles, ExportNames, page_format

TOP_USED = {
    "title", "description", "image", "has_registration", "end_date", "competition_docker_image",
    "enable_detailed_results", "force_submission_to_leaderboard", "admin_names", "html", "phases",
    "leaderboard", "version",
}
TOP_KEPT = {
    "start_date", "allow_teams", "enable_teams", "anonymous_leaderboard", "disallow_leaderboard_modifying",
    "enable_forum", "allow_public_submissions", "allow_organizer_teams", "require_team_approval",
    "hide_top_three", "hide_chart", "show_datasets_from_yaml", "reward", "url_redirect",
    "enable_medical_image_viewer", "enable_per_submission_metadata", "published", "is_migrating",
    "queue",
}
PHASE_DATA = TASK_DATA_KINDS
PHASE_USED = {
    "phasenumber", "label", "description", "start_date", "max_submissions", "max_submissions_per_day",
    "is_scoring_only", "execution_time_limit", "color", "auto_migration", "leaderboard_management_mode",
    "force_best_submission_to_leaderboard", "public_data", "starting_kit",
    "ingestion_program_only_during_scoring", "scoring_program_docker_image",
    "ingestion_program_docker_image", *PHASE_DATA,
}
PHASE_KEPT = {
    "datasets", "default_docker_image", "disable_custom_docker_image", "phase_never_ends",
    "is_parallel_parent", "parent", "public_data_organizer_dataset", "starting_kit_organizer_dataset",
}
BOARD_USED = {"label", "rank"}
COLUMN_USED = {"leaderboard", "label", "rank", "sort", "numeric_format", "selection_default", "hidden",
               "computed"}
COLUMN_KEPT = {"column_group"}
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
        registration_auto_approve=not top.flag("has_registration", False),
        enable_detailed_results=top.flag("enable_detailed_results", False),
    )
    extra: dict = {}
    admins = top.raw("admin_names")
    if isinstance(admins, str):
        spec.admin_names = [a.strip() for a in admins.split(",") if a.strip()]
    elif isinstance(admins, list):
        spec.admin_names = [str(a).strip() for a in admins if str(a).strip()]
    elif admins is not None:
        top.error("admin_names", f"must be a comma-separated list of user names, got {describe(admins)}")
    if top.has("image"):
        spec.logo = files.image(top.raw("image"), "image")
        if spec.logo is not None and spec.logo.kind == "path":
            extra.setdefault("files", {})["logo"] = spec.logo.value

    _read_pages(top, files, spec, extra)
    _read_phases(top, files, spec, extra)
    _read_leaderboards(top, spec, extra)

    if top.has("version") and str(top.raw("version")).strip() not in ("1", "1.5", "1.0"):
        top.error("version", f"must be 2 for a Codabench bundle or absent for CodaLab v1.5, "
                             f"got {describe(top.raw('version'))}")
    kept = top.leftovers(TOP_USED, TOP_KEPT)
    if kept:
        extra["competition"] = kept
    spec.extra = extra
    return spec


def _read_pages(top: Section, files: BundleFiles, spec: CompetitionSpec, extra: dict) -> None:
    html = top.section("html")
    for name, value in html.data.items():
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
        spec.pages.append(PageSpec(name=str(name), title=_page_title(str(name)), content=content,
                                   format=page_format(source), source=source))


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

    task_by_content: dict[tuple, int] = {}
    seen_numbers: dict[int, str] = {}
    for number, ph in entries:
        if number in seen_numbers:
            ph.error("phasenumber", f"{number} is also the number of {seen_numbers[number]}")
        seen_numbers[number] = ph.path
        ingestion = files.data(ph.raw("ingestion_program"), ph.key("ingestion_program"), program=True)
        per_day = ph.integer("max_submissions_per_day", 999)
        phase = PhaseSpec(
            index=number,
            name=ph.text("label", f"Phase {number}") or f"Phase {number}",
            description=ph.text("description", "") or "",
            start=ph.moment("start_date", required=True),
            max_submissions=ph.integer("max_submissions", 100),
            max_submissions_per_day=per_day,
            execution_time_limit=ph.integer("execution_time_limit", 300, minimum=1) or 300,
            auto_migrate=ph.flag("auto_migration", False),
            hide_results=ph.choice("leaderboard_management_mode", ("default", "hide_results"),
                                   "default") == "hide_results",
            results_only=ph.flag("is_scoring_only", ingestion is None),
            submission_rule="Force_Best" if ph.flag("force_best_submission_to_leaderboard", False) else None,
            starting_kit=files.data(ph.raw("starting_kit"), ph.key("starting_kit")),
            public_data=files.data(ph.raw("public_data"), ph.key("public_data")),
            color=ph.text("color"),
        )
        task = TaskSpec(
            index=0,
            name=phase.name,
            scoring_program=files.data(ph.raw("scoring_program"), ph.key("scoring_program"), program=True),
            ingestion_program=ingestion,
            reference_data=files.data(ph.raw("reference_data"), ph.key("reference_data")),
            input_data=files.data(ph.raw("input_data"), ph.key("input_data")),
            ingestion_only_during_scoring=ph.flag("ingestion_program_only_during_scoring", False),
            scoring_docker_image=ph.text("scoring_program_docker_image"),
            ingestion_docker_image=ph.text("ingestion_program_docker_image"),
        )
        if task.scoring_program is None and not ph.has("scoring_program"):
            ph.warn("scoring_program", "missing: submissions to this phase cannot be scored")
        content = (task.scoring_program, task.ingestion_program, task.reference_data, task.input_data,
                   task.ingestion_only_during_scoring, task.scoring_docker_image, task.ingestion_docker_image)
        if content not in task_by_content:
            task.index = len(spec.tasks)
            task_by_content[content] = task.index
            spec.tasks.append(task)
        phase.task_indexes = [task_by_content[content]]
        _stash(extra, "phases", number, ph.leftovers(PHASE_USED, PHASE_KEPT))
        spec.phases.append(phase)

    # A CodaLab phase ends when the next one starts; the last at end_date.
    for (_, ph), (prev, nxt) in zip(entries[1:], zip(spec.phases, spec.phases[1:])):
        if prev.start and nxt.start and nxt.start <= prev.start:
            ph.error("start_date", f"must be after the start of phase {prev.index} ({prev.start:%Y-%m-%d %H:%M})")
        prev.end = nxt.start
    end = top.moment("end_date")
    last = spec.phases[-1]
    if end is not None and last.start is not None and end <= last.start:
        top.error("end_date", f"must be after the start of the last phase ({last.start:%Y-%m-%d %H:%M})")
    last.end = end


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
        board = LeaderboardSpec(key=str(key), title=bs.text("label", str(key)) or str(key), submission_rule=rule)
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
        _stash(extra, "columns", f"{board.key}/{key}", cs.leftovers(COLUMN_USED, COLUMN_KEPT))
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
    kept = lb.leftovers({"leaderboards", "columns"}, {"column_groups"})
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
    doc["enable_detailed_results"] = spec.enable_detailed_results
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
        if phase.submission_rule == "Force_Best":
            entry["force_best_submission_to_leaderboard"] = True
        if len(phase.task_indexes) > 1:
            lost.append(f"phase {phase.index}: CodaLab phases run one task; only the first is exported")
        task = tasks.get(phase.task_indexes[0]) if phase.task_indexes else None
        if task is not None:
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
        if phase.starting_kit is not None:
            entry["starting_kit"] = names.data(phase.starting_kit)
        if phase.public_data is not None:
            entry["public_data"] = names.data(phase.public_data)
        for key, value in extra.get("phases", {}).get(str(phase.index), {}).items():
            entry.setdefault(key, value)
        phases[phase.index] = entry
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
    return doc, lost


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
