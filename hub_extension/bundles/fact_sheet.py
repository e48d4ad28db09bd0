"""Fact sheets in `competition.yaml`: the questions a competition asks with each submission.

Codabench's `fact_sheet` is a mapping of questions by name, each with `key`
(the name again), `type` (text, checkbox or select), `title`, `selection`
(a select's choices), `is_required` and `is_on_leaderboard` (true or false,
or Codabench's own "true"/"false" text).  Here a competition keeps them as a
list of plain mappings in that order (`competitions.fact_sheet`), written
back in Codabench's form on export.  A leaderboard's `fact_sheet_columns`
(this platform's key) names the questions it shows as columns when they are
not the ones marked `is_on_leaderboard`.
"""
from __future__ import annotations

import re
from typing import Any, Optional

from .fields import Section, describe

QUESTION_TYPES = ("text", "checkbox", "select")
QUESTION_KEYS = ("key", "type", "title", "selection", "is_required", "is_on_leaderboard")
MAX_QUESTIONS = 50
MAX_CHOICES = 100
# A question's key names a form field and a CSV column.
KEY_PATTERN = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")


def flag_text(value: bool) -> str:
    """Codabench's spelling of a question's flags (its own fact sheets say "true" and "false")."""
    return "true" if value else "false"


def read_fact_sheet(top: Section) -> Optional[list[dict[str, Any]]]:
    """The `fact_sheet` of a bundle as a list of questions; None when it has none."""
    if not top.has("fact_sheet"):
        return None
    raw = top.raw("fact_sheet")
    if not isinstance(raw, dict):
        top.error("fact_sheet", f"must map each question's key to the question, got {describe(raw)}")
        return None
    if len(raw) > MAX_QUESTIONS:
        top.error("fact_sheet", f"has {len(raw)} questions; at most {MAX_QUESTIONS}")
        return None
    questions = [read_question(top.section("fact_sheet").section(str(name)), str(name)) for name in raw]
    return [q for q in questions if q is not None] or None


def read_question(qs: Section, name: str) -> Optional[dict[str, Any]]:
    """One question (`fact_sheet.<name>`), or None when it has a problem (recorded)."""
    if not qs.valid:
        return None
    before = len(qs.issues.problems)
    if not KEY_PATTERN.fullmatch(name):
        qs.issues.error(qs.file, qs.path, "a question's key is letters, digits, _ . or - (at most 64, not "
                                          "starting with . or -)")
    if qs.has("key") and str(qs.raw("key")) != name:
        qs.error("key", f"{describe(qs.raw('key'))} does not match the question's name {name!r}; write the same "
                        "key in both places")
    kind = qs.choice("type", QUESTION_TYPES)
    if not qs.has("type"):
        qs.error("type", f"is required: one of {', '.join(QUESTION_TYPES)}")
    title = qs.text("title", required=True) or ""
    choices = _choices(qs) if kind == "select" else []
    question = {"key": name, "type": kind, "title": title, "selection": choices,
                "is_required": qs.flag("is_required", False), "is_on_leaderboard": qs.flag("is_on_leaderboard", False)}
    qs.leftovers(QUESTION_KEYS)
    return question if len(qs.issues.problems) == before else None


def _choices(qs: Section) -> list[str]:
    raw = qs.raw("selection")
    if not isinstance(raw, list) or any(isinstance(c, (dict, list)) or c is None for c in raw):
        qs.error("selection", f"a select question needs its choices as a list of text, got {describe(raw)}")
        return []
    choices = [str(c) for c in raw]
    if not any(c.strip() for c in choices):
        qs.error("selection", "a select question needs at least one choice that is not empty")
    elif len(choices) > MAX_CHOICES:
        qs.error("selection", f"has {len(choices)} choices; at most {MAX_CHOICES}")
    elif len(set(choices)) != len(choices):
        qs.error("selection", "lists a choice twice")
    return choices


def read_board_columns(bs: Section, questions: Optional[list[dict[str, Any]]]) -> list[str]:
    """A board's fact sheet columns: its `fact_sheet_columns`, else the questions marked `is_on_leaderboard`."""
    keys = [q["key"] for q in questions or []]
    if not bs.has("fact_sheet_columns"):
        return [q["key"] for q in questions or [] if q["is_on_leaderboard"]]
    chosen = []
    for value in bs.listing("fact_sheet_columns"):
        if str(value) not in keys:
            bs.error("fact_sheet_columns", f"no fact sheet question {describe(value)}; questions: "
                                           f"{', '.join(keys) or 'none'}")
        elif str(value) not in chosen:
            chosen.append(str(value))
    return chosen


def fact_sheet_document(questions: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The questions in Codabench's form, by key."""
    doc = {}
    for q in questions:
        selection: Any = list(q.get("selection") or [])
        if q["type"] == "checkbox":
            selection = [True, False]
        elif q["type"] == "text":
            selection = ""
        doc[q["key"]] = {"key": q["key"], "type": q["type"], "title": q["title"], "selection": selection,
                         "is_required": flag_text(bool(q.get("is_required"))),
                         "is_on_leaderboard": flag_text(bool(q.get("is_on_leaderboard")))}
    return doc


def board_columns_entry(questions: Optional[list[dict[str, Any]]], columns: list[str]) -> Optional[list[str]]:
    """A board's `fact_sheet_columns` to write: only when it is not the questions marked `is_on_leaderboard`."""
    marked = [q["key"] for q in questions or [] if q.get("is_on_leaderboard")]
    return None if list(columns) == marked else list(columns)
