"""Between the bundle model (`bundles.model.CompetitionSpec`) and the tables.

`competition_from_spec` builds the rows of a new competition from a spec whose
data references are all stored dataset keys; `spec_from_competition` reads a
competition back into a spec (for export, and for the round-trip check
`import(export(c)) == c`).
"""
from __future__ import annotations

from typing import Any, Optional

from . import models as m
from .bundles.model import (
    PHASE_DATA_KINDS,
    TASK_DATA_KINDS,
    ColumnSpec,
    CompetitionSpec,
    DataRef,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    SolutionSpec,
    TaskSpec,
)


# Fields with the same name and value in the spec and the row; the others are converted below.
COMPETITION_FIELDS = ("title", "dialect", "description", "docker_image", "queue", "registration_auto_approve",
                      "enable_detailed_results", "terms", "contact_email")
COMPETITION_FIELDS += ("allow_teams",)
COMPETITION_FIELDS += ("enable_forum",)
TASK_FIELDS = ("index", "name", "description", "ingestion_only_during_scoring", "scoring_docker_image",
               "ingestion_docker_image")
TASK_DATA = TASK_DATA_KINDS  # row: <name>_key
PHASE_FIELDS = ("index", "name", "description", "start", "end", "max_submissions", "max_submissions_per_day",
                "execution_time_limit", "auto_migrate", "hide_results", "hide_output", "hide_prediction_output",
                "hide_score_output", "results_only", "submission_rule", "color", "gpus", "allow_network", "queue",
                "aggregation_task", "max_concurrent_submissions", "allow_reproduce")
PHASE_DATA = PHASE_DATA_KINDS  # row: <name>_key
BOARD_FIELDS = ("index", "key", "title", "hidden", "submission_rule", "primary_key")
COLUMN_FIELDS = ("index", "key", "title", "sorting", "precision", "hidden", "computation")
COMPETITION_FIELDS += ("anonymous_leaderboard",)
BOARD_FIELDS += ("anonymous",)
BOARD_FIELDS += ("display_precision", "ladder", "ladder_step")
PAGE_FIELDS = ("name", "title", "content", "format", "source")
SOLUTION_FIELDS = ("index", "name", "description", "source")  # row: data_key, task_indexes


def _key(ref: Optional[DataRef]) -> Optional[str]:
    if ref is None:
        return None
    if ref.kind != "key":
        raise ValueError(f"data reference {ref.value!r} is not stored yet")
    return ref.value


def _ref(key: Optional[str]) -> Optional[DataRef]:
    return DataRef("key", key) if key else None


def dataset_keys(spec: CompetitionSpec) -> dict[str, str]:
    """Every stored dataset key the spec refers to, with its kind."""
    keys: dict[str, str] = {}
    if spec.logo:
        keys[_key(spec.logo)] = "logo"
    for t in spec.tasks:
        for kind in TASK_DATA:
            ref = getattr(t, kind)
            if ref:
                keys.setdefault(_key(ref), kind)
    for p in spec.phases:
        for kind in PHASE_DATA:
            ref = getattr(p, kind)
            if ref:
                keys.setdefault(_key(ref), kind)
    for solution in spec.solutions:
        keys.setdefault(_key(solution.data), "solution")
    return keys


def _fields(obj: object, names: tuple[str, ...]) -> dict[str, Any]:
    return {name: getattr(obj, name) for name in names}


def _keys(obj: object, names: tuple[str, ...]) -> dict[str, Optional[str]]:
    """A spec's data references as the row's `<name>_key` columns."""
    return {f"{name}_key": _key(getattr(obj, name)) for name in names}


def _refs(row: object, names: tuple[str, ...]) -> dict[str, Optional[DataRef]]:
    """A row's `<name>_key` columns as the spec's data references."""
    return {name: _ref(getattr(row, f"{name}_key")) for name in names}


def _weights(value: Optional[list]) -> Optional[list]:
    return list(value) if value is not None else None


def competition_from_spec(spec: CompetitionSpec, slug: str, created_by: Optional[str]) -> m.Competition:
    comp = m.Competition(
        slug=slug,
        **_fields(spec, COMPETITION_FIELDS),
        logo_key=_key(spec.logo),
        admin_names=list(spec.admin_names),
        fact_sheet=[dict(q) for q in spec.fact_sheet] if spec.fact_sheet else None,
        extra=dict(spec.extra),
        created_by=created_by,
        # As on CodaLab and Codabench, a competition is public only once published: a bundle
        # saying `published: true` is published at upload, any other starts as a draft.
        status=m.PUBLISHED if spec.published else m.DRAFT,
        status_changed_at=m.utcnow(),
    )
    comp.pages = [m.Page(position=i, **_fields(p, PAGE_FIELDS)) for i, p in enumerate(spec.pages)]
    comp.tasks = [
        m.Task(**_fields(t, TASK_FIELDS), **_keys(t, TASK_DATA), worker_data=dict(t.worker_data))
        for t in spec.tasks
    ]
    comp.phases = [
        m.Phase(**_fields(p, PHASE_FIELDS), **_keys(p, PHASE_DATA), task_indexes=list(p.task_indexes),
                solution_indexes=list(p.solution_indexes))
        for p in spec.phases
    ]
    comp.solutions = [
        m.Solution(**_fields(sol, SOLUTION_FIELDS), data_key=_key(sol.data), task_indexes=list(sol.task_indexes))
        for sol in spec.solutions
    ]
    comp.leaderboards = [
        m.Leaderboard(
            **_fields(b, BOARD_FIELDS),
            columns=[
                m.Column(**_fields(c, COLUMN_FIELDS), source_keys=list(c.source_keys), weights=_weights(c.weights))
                for c in b.columns
            ],
            fact_sheet_columns=list(b.fact_sheet_columns),
        )
        for b in spec.leaderboards
    ]
    return comp


def spec_from_competition(comp: m.Competition) -> CompetitionSpec:
    return CompetitionSpec(
        **_fields(comp, COMPETITION_FIELDS),
        logo=_ref(comp.logo_key),
        admin_names=list(comp.admin_names or []),
        pages=[PageSpec(**_fields(p, PAGE_FIELDS)) for p in comp.pages],
        tasks=[
            TaskSpec(**_fields(t, TASK_FIELDS), **_refs(t, TASK_DATA), worker_data=dict(t.worker_data or {}))
            for t in comp.tasks
        ],
        phases=[
            PhaseSpec(**_fields(p, PHASE_FIELDS), **_refs(p, PHASE_DATA), task_indexes=list(p.task_indexes or []),
                      solution_indexes=list(p.solution_indexes or []))
            for p in comp.phases
        ],
        solutions=[
            SolutionSpec(**_fields(sol, SOLUTION_FIELDS), data=DataRef("key", sol.data_key),
                         task_indexes=list(sol.task_indexes or []))
            for sol in comp.solutions
        ],
        leaderboards=[
            LeaderboardSpec(
                **_fields(b, BOARD_FIELDS),
                columns=[
                    ColumnSpec(**_fields(c, COLUMN_FIELDS), source_keys=list(c.source_keys or []),
                               weights=_weights(c.weights))
                    for c in b.columns
                ],
                fact_sheet_columns=list(b.fact_sheet_columns or []),
            )
            for b in comp.leaderboards
        ],
        extra=dict(comp.extra or {}),
        fact_sheet=[dict(q) for q in comp.fact_sheet] if comp.fact_sheet else None,
    )
