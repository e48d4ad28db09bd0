"""Between the bundle model (`bundles.model.CompetitionSpec`) and the tables.

`competition_from_spec` builds the rows of a new competition from a spec whose
data references are all stored dataset keys; `spec_from_competition` reads a
competition back into a spec (for export, and for the round-trip check
`import(export(c)) == c`).
"""
from __future__ import annotations

from typing import Optional

from . import models as m
from .bundles.model import (
    ColumnSpec,
    CompetitionSpec,
    DataRef,
    LeaderboardSpec,
    PageSpec,
    PhaseSpec,
    TaskSpec,
)


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
        for kind in ("scoring_program", "ingestion_program", "reference_data", "input_data"):
            ref = getattr(t, kind)
            if ref:
                keys.setdefault(_key(ref), kind)
    for p in spec.phases:
        for kind in ("starting_kit", "public_data"):
            ref = getattr(p, kind)
            if ref:
                keys.setdefault(_key(ref), kind)
    return keys


def competition_from_spec(spec: CompetitionSpec, slug: str, created_by: Optional[str]) -> m.Competition:
    comp = m.Competition(
        slug=slug,
        title=spec.title,
        dialect=spec.dialect,
        description=spec.description,
        logo_key=_key(spec.logo),
        docker_image=spec.docker_image,
        queue=spec.queue,
        registration_auto_approve=spec.registration_auto_approve,
        enable_detailed_results=spec.enable_detailed_results,
        terms=spec.terms,
        contact_email=spec.contact_email,
        admin_names=list(spec.admin_names),
        extra=dict(spec.extra),
        created_by=created_by,
    )
    comp.pages = [
        m.Page(position=i, name=p.name, title=p.title, content=p.content, format=p.format, source=p.source)
        for i, p in enumerate(spec.pages)
    ]
    comp.tasks = [
        m.Task(
            index=t.index,
            name=t.name,
            description=t.description,
            scoring_program_key=_key(t.scoring_program),
            ingestion_program_key=_key(t.ingestion_program),
            reference_data_key=_key(t.reference_data),
            input_data_key=_key(t.input_data),
            ingestion_only_during_scoring=t.ingestion_only_during_scoring,
            scoring_docker_image=t.scoring_docker_image,
            ingestion_docker_image=t.ingestion_docker_image,
            worker_data=dict(t.worker_data),
        )
        for t in spec.tasks
    ]
    comp.phases = [
        m.Phase(
            index=p.index,
            name=p.name,
            description=p.description,
            start=p.start,
            end=p.end,
            task_indexes=list(p.task_indexes),
            max_submissions=p.max_submissions,
            max_submissions_per_day=p.max_submissions_per_day,
            execution_time_limit=p.execution_time_limit,
            auto_migrate=p.auto_migrate,
            hide_results=p.hide_results,
            hide_output=p.hide_output,
            hide_prediction_output=p.hide_prediction_output,
            hide_score_output=p.hide_score_output,
            results_only=p.results_only,
            submission_rule=p.submission_rule,
            starting_kit_key=_key(p.starting_kit),
            public_data_key=_key(p.public_data),
            color=p.color,
            gpus=p.gpus,
            allow_network=p.allow_network,
            queue=p.queue,
        )
        for p in spec.phases
    ]
    comp.leaderboards = [
        m.Leaderboard(
            index=b.index,
            key=b.key,
            title=b.title,
            hidden=b.hidden,
            submission_rule=b.submission_rule,
            primary_key=b.primary_key,
            columns=[
                m.Column(
                    index=c.index,
                    key=c.key,
                    title=c.title,
                    sorting=c.sorting,
                    precision=c.precision,
                    hidden=c.hidden,
                    computation=c.computation,
                    source_keys=list(c.source_keys),
                    weights=list(c.weights) if c.weights is not None else None,
                )
                for c in b.columns
            ],
        )
        for b in spec.leaderboards
    ]
    return comp


def spec_from_competition(comp: m.Competition) -> CompetitionSpec:
    return CompetitionSpec(
        title=comp.title,
        dialect=comp.dialect,  # type: ignore[arg-type]
        description=comp.description,
        logo=_ref(comp.logo_key),
        docker_image=comp.docker_image,
        queue=comp.queue,
        registration_auto_approve=comp.registration_auto_approve,
        enable_detailed_results=comp.enable_detailed_results,
        terms=comp.terms,
        contact_email=comp.contact_email,
        admin_names=list(comp.admin_names or []),
        pages=[
            PageSpec(name=p.name, title=p.title, content=p.content, format=p.format, source=p.source)  # type: ignore[arg-type]
            for p in comp.pages
        ],
        tasks=[
            TaskSpec(
                index=t.index,
                name=t.name,
                description=t.description,
                scoring_program=_ref(t.scoring_program_key),
                ingestion_program=_ref(t.ingestion_program_key),
                reference_data=_ref(t.reference_data_key),
                input_data=_ref(t.input_data_key),
                ingestion_only_during_scoring=t.ingestion_only_during_scoring,
                scoring_docker_image=t.scoring_docker_image,
                ingestion_docker_image=t.ingestion_docker_image,
                worker_data=dict(t.worker_data or {}),
            )
            for t in comp.tasks
        ],
        phases=[
            PhaseSpec(
                index=p.index,
                name=p.name,
                description=p.description,
                start=p.start,
                end=p.end,
                task_indexes=list(p.task_indexes or []),
                max_submissions=p.max_submissions,
                max_submissions_per_day=p.max_submissions_per_day,
                execution_time_limit=p.execution_time_limit,
                auto_migrate=p.auto_migrate,
                hide_results=p.hide_results,
                hide_output=p.hide_output,
                hide_prediction_output=p.hide_prediction_output,
                hide_score_output=p.hide_score_output,
                results_only=p.results_only,
                submission_rule=p.submission_rule,
                starting_kit=_ref(p.starting_kit_key),
                public_data=_ref(p.public_data_key),
                color=p.color,
                gpus=p.gpus,
                allow_network=p.allow_network,
                queue=p.queue,
            )
            for p in comp.phases
        ],
        leaderboards=[
            LeaderboardSpec(
                key=b.key,
                title=b.title,
                index=b.index,
                hidden=b.hidden,
                submission_rule=b.submission_rule,
                primary_key=b.primary_key,
                columns=[
                    ColumnSpec(
                        key=c.key,
                        title=c.title,
                        index=c.index,
                        sorting=c.sorting,  # type: ignore[arg-type]
                        precision=c.precision,
                        hidden=c.hidden,
                        computation=c.computation,
                        source_keys=list(c.source_keys or []),
                        weights=list(c.weights) if c.weights is not None else None,
                    )
                    for c in b.columns
                ],
            )
            for b in comp.leaderboards
        ],
        extra=dict(comp.extra or {}),
    )
