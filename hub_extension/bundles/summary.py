"""The one-screen summary `compete bundle validate` prints for a bundle.

It is what an organizer checks before uploading: title and dialect, then the
phases with their dates, limits and tasks, the tasks with what they hold, the
solutions (run as baselines), and the leaderboards with their columns.
"""
from __future__ import annotations

from datetime import datetime
from typing import Optional

from .model import CompetitionSpec, DataRef


def _when(moment: Optional[datetime]) -> str:
    return moment.strftime("%Y-%m-%d %H:%M") if moment else "open"


def _ref(ref: Optional[DataRef]) -> str:
    if ref is None:
        return "-"
    return f"key {ref.value[:12]}" if ref.kind == "key" else ref.value


def _limit(value: Optional[int]) -> str:
    if value == 0:
        return "0 (closed)"
    return "unlimited" if value is None else str(value)


def summarize(spec: CompetitionSpec) -> str:
    dialect = {"codalab": "CodaLab v1.5", "codabench": "Codabench v2"}.get(spec.dialect, spec.dialect)
    lines = [f"{spec.title}  ({dialect} bundle)"]
    if spec.pages or spec.terms is not None:
        pages = [p.title for p in spec.pages] + (["Terms"] if spec.terms is not None else [])
        lines.append(f"pages: {', '.join(pages)}")
    lines.append("")
    lines.append(f"phases ({len(spec.phases)}):")
    for phase in spec.phases:
        flags = [name for name, on in (("results only", phase.results_only), ("blind", phase.hide_results),
                                       ("auto-migrate", phase.auto_migrate)) if on]
        if phase.submission_rule:
            flags.append(phase.submission_rule)
        lines.append(
            f"  [{phase.index}] {phase.name}: {_when(phase.start)} -> {_when(phase.end)}; "
            f"max {_limit(phase.max_submissions)} submissions, {_limit(phase.max_submissions_per_day)}/day, "
            f"{phase.execution_time_limit}s per step; tasks {', '.join(map(str, phase.task_indexes)) or '-'}"
            + (f" ({', '.join(flags)})" if flags else ""))
    lines.append(f"tasks ({len(spec.tasks)}):")
    for task in spec.tasks:
        lines.append(f"  [{task.index}] {task.name}: scoring {_ref(task.scoring_program)}, "
                     f"ingestion {_ref(task.ingestion_program)}, reference {_ref(task.reference_data)}, "
                     f"input {_ref(task.input_data)}"
                     + (" (ingestion only during scoring)" if task.ingestion_only_during_scoring else ""))
    if spec.solutions:
        lines.append(f"solutions ({len(spec.solutions)}, run as baselines by `compete baseline run`):")
        for solution in spec.solutions:
            lines.append(f"  [{solution.index}] {solution.name or '-'}: {_ref(solution.data)}; "
                         f"tasks {', '.join(map(str, solution.task_indexes)) or '-'}")
    lines.append(f"leaderboards ({len(spec.leaderboards)}):")
    for board in spec.leaderboards:
        lines.append(f"  {board.title} [{board.key}]: {board.submission_rule}"
                     + (", hidden" if board.hidden else "")
                     + (f", ordered by {board.primary_key}" if board.primary_key else ""))
        for column in board.columns:
            computed = ""
            if column.computation:
                computed = f", {column.computation}({', '.join(column.source_keys)})"
                if column.weights:
                    computed += f" weights {', '.join(f'{w:g}' for w in column.weights)}"
            lines.append(f"    {column.index}. {column.key} \"{column.title}\": {column.sorting}"
                         f"{computed}{', hidden' if column.hidden else ''}")
    return "\n".join(lines)
