"""Fact sheets: the questions a competition asks with each submission, and their answers.

The questions are the competition's (`competitions.fact_sheet`, read from the
bundle's `fact_sheet`, see `bundles.fact_sheet`); the answers are the
submission's (`submissions.fact_sheet`, by question key), checked here at
submission time: a required question answered, a select's answer one of its
choices, a checkbox true or false, a text at most `MAX_ANSWER_CHARS`.  The
organizers edit the questions (and which of them each board shows as
columns) through the editor's one way to save, see every answer on the
submission page, and take a phase's answers as CSV.
"""
from __future__ import annotations

import csv
import io
import json
import re
from typing import Any, Mapping, Optional

from sqlalchemy import select
from sqlalchemy.orm import Session

from .. import models as m
from ..bundles.fact_sheet import MAX_QUESTIONS
from ..bundles.model import CompetitionSpec
from ..errors import PlatformError
from .actors import Actor, require_organizer
from .context import Context
from .editor import Edit, Editor, board_of
from .records import get_competition, get_phase, phases_in_order, visible_competition

MAX_ANSWER_CHARS = 1000
# How the Submit page names a question's field.
FIELD_PREFIX = "fact_sheet."
_TRUE = ("true", "on", "yes", "1")
_FALSE = ("false", "off", "no", "0", "")


def _shown(username: str) -> str:
    """How a participant is named in the answers' CSV (one place to change it)."""
    return username


def _title(question: Mapping[str, Any]) -> str:
    return f"{question.get('title') or question['key']!r} ({question['key']})"


def _checked(question: Mapping[str, Any], value: Any) -> Any:
    """One answer as stored, or PlatformError saying what is wrong with it."""
    kind, name = question["type"], _title(question)
    if kind == "checkbox":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in _TRUE + _FALSE:
            return value.strip().lower() in _TRUE
        raise PlatformError(f"fact sheet: {name}: answer true or false, got {str(value)[:40]!r}")
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        raise PlatformError(f"fact sheet: {name}: answer with text, got {type(value).__name__}")
    text = str(value).strip()
    if kind == "select":
        choices = [c for c in question.get("selection") or [] if c.strip()]
        if text and text not in choices:
            raise PlatformError(f"fact sheet: {name}: {text[:40]!r} is not one of its choices: {', '.join(choices)}")
        return text
    if len(text) > MAX_ANSWER_CHARS:
        raise PlatformError(f"fact sheet: {name}: at most {MAX_ANSWER_CHARS} characters, got {len(text)}")
    return text


def check_answers(questions: Optional[list[Mapping[str, Any]]], answers: Optional[Mapping[str, Any]]) -> dict[str, Any]:
    """The answers to store with a submission, every question answered (an unanswered one: empty or false).

    Refused, with the question named: an answer to no question, a required
    question left empty (a required checkbox must be ticked), an answer of the
    wrong type or not among a select's choices, a text over the bound.
    """
    questions = list(questions or [])
    if answers is not None and not isinstance(answers, Mapping):
        raise PlatformError("fact sheet: send the answers as a mapping of question keys to answers")
    answers = dict(answers or {})
    keys = [q["key"] for q in questions]
    unknown = [str(k) for k in answers if k not in keys]
    if unknown:
        asked = f"its questions: {', '.join(keys)}" if keys else "this competition asks no fact sheet"
        raise PlatformError(f"fact sheet: no question {', '.join(map(repr, unknown))}; {asked}")
    stored: dict[str, Any] = {}
    for q in questions:
        value = _checked(q, answers[q["key"]]) if answers.get(q["key"]) is not None else \
            (False if q["type"] == "checkbox" else "")
        if q.get("is_required") and value in ("", False):
            what = "tick it" if q["type"] == "checkbox" else "answer it"
            raise PlatformError(f"fact sheet: {_title(q)} is required: {what} to submit")
        stored[q["key"]] = value
    return stored


def answers_from_fields(questions: Optional[list[Mapping[str, Any]]], field: Any) -> dict[str, Any]:
    """The answers of the Submit page's form: `field(name)` gives a field's text (None when not sent)."""
    found: dict[str, Any] = {}
    for q in questions or []:
        value = field(FIELD_PREFIX + q["key"])
        if q["type"] == "checkbox":
            found[q["key"]] = value is not None and value.strip().lower() in _TRUE
        elif value is not None:
            found[q["key"]] = value
    return found


def answers_from_json(text: Optional[str]) -> Optional[dict[str, Any]]:
    """The answers of an API request's `fact_sheet` (a JSON object); None when it has none."""
    if text is None or not text.strip():
        return None
    try:
        answers = json.loads(text)
    except ValueError:
        raise PlatformError("fact_sheet: must be a JSON object of question keys to answers") from None
    if not isinstance(answers, dict):
        raise PlatformError("fact_sheet: must be a JSON object of question keys to answers")
    return answers


def answers_shown(comp: m.Competition, sub: m.Submission) -> list[dict[str, Any]]:
    """A submission's answers, question by question, for the submission page."""
    answers = sub.fact_sheet or {}
    return [{"key": q["key"], "title": q.get("title") or q["key"], "type": q["type"],
             "answer": answers.get(q["key"])} for q in comp.fact_sheet or []]


def board_columns(s: Session, competition_id: int, board_id: int,
                  rows: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(the board's fact sheet columns, `rows` with each row's answers to them), in two statements."""
    found = s.execute(select(m.Leaderboard.fact_sheet_columns, m.Competition.fact_sheet)
                      .join(m.Competition, m.Competition.id == m.Leaderboard.competition_id)
                      .where(m.Leaderboard.id == board_id, m.Competition.id == competition_id)).first()
    if found is None or not found[0] or not found[1]:
        return [], rows
    by_key = {q["key"]: q for q in found[1]}
    columns = [{"key": k, "title": by_key[k].get("title") or k, "type": by_key[k]["type"]}
               for k in found[0] if k in by_key]
    ids = [r["submission"] for r in rows if r.get("submission") is not None]
    answers = {sid: fact for sid, fact in s.execute(select(m.Submission.id, m.Submission.fact_sheet)
                                                    .where(m.Submission.id.in_(ids)))} if ids else {}
    keys = [c["key"] for c in columns]
    # New dicts: a page of rows may be shared between readers.
    return columns, [dict(r, fact_sheet={k: (answers.get(r.get("submission")) or {}).get(k) for k in keys})
                     for r in rows]


def _form_question(raw: Mapping[str, Any], position: int, problems: list[str]) -> Optional[dict[str, Any]]:
    """A question of the editor's form as the model holds it (the bundle reader checks the rest)."""
    if not isinstance(raw, Mapping):
        problems.append(f"fact sheet: question {position + 1}: must be a mapping")
        return None
    key = str(raw.get("key") or "").strip()
    if not key:
        return None  # an empty row of the form
    kind = str(raw.get("type") or "text").strip().lower()
    selection = raw.get("selection") or []
    if isinstance(selection, str):
        selection = [c.strip() for c in re.split(r"[\r\n]+", selection) if c.strip()]
    flag = (lambda name: raw.get(name) in (True, "1", "true", "on", "yes", 1))
    return {"key": key, "type": kind, "title": str(raw.get("title") or "").strip(),
            "selection": [str(c) for c in selection] if kind == "select" else [],
            "is_required": flag("is_required"), "is_on_leaderboard": flag("is_on_leaderboard")}


class FactSheets:
    """The questions (read, edited), the answers (checked, shown, as CSV)."""

    def __init__(self, ctx: Context, editor: Editor):
        self.ctx = ctx
        self.editor = editor

    def fact_sheet(self, slug: str, actor: Actor) -> list[dict[str, Any]]:
        """The competition's questions (to whoever sees the competition)."""
        with self.ctx.db.session() as s:
            return [dict(q) for q in visible_competition(s, slug, actor).fact_sheet or []]

    def save_fact_sheet(self, slug: str, questions: Any, actor: Actor) -> Edit:
        """Replace the questions (organizers); boards keep the columns of questions that remain."""
        if not isinstance(questions, list):
            return Edit(["fact sheet: send the questions as a list"])
        if len(questions) > MAX_QUESTIONS:
            return Edit([f"fact sheet: {len(questions)} questions; at most {MAX_QUESTIONS}"])

        def change(spec: CompetitionSpec) -> list[str]:
            problems: list[str] = []
            made = [q for i, raw in enumerate(questions) if (q := _form_question(raw, i, problems)) is not None]
            keys = [q["key"] for q in made]
            if len(set(keys)) != len(keys):
                problems.append("fact sheet: two questions have the same key; each needs its own")
            marked_before = [q["key"] for q in spec.fact_sheet or [] if q.get("is_on_leaderboard")]
            marked = [q["key"] for q in made if q["is_on_leaderboard"]]
            for board in spec.leaderboards:
                if list(board.fact_sheet_columns) == marked_before:
                    board.fact_sheet_columns = list(marked)
                else:
                    board.fact_sheet_columns = [k for k in board.fact_sheet_columns if k in keys]
            spec.fact_sheet = made or None
            return problems

        return self.editor.save_spec(slug, actor, change)

    def save_fact_sheet_columns(self, slug: str, board_key: str, keys: Any, actor: Actor) -> Edit:
        """Which questions a board shows as columns, in order (organizers)."""
        if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
            return Edit(["fact sheet columns: send the question keys as a list of text"])

        def change(spec: CompetitionSpec) -> list[str]:
            board = board_of(spec, slug, board_key)
            asked = [q["key"] for q in spec.fact_sheet or []]
            unknown = [k for k in keys if k not in asked]
            if unknown:
                return [f"leaderboard {board_key!r}: no fact sheet question {', '.join(map(repr, unknown))}; "
                        f"questions: {', '.join(asked) or 'none'}"]
            board.fact_sheet_columns = list(dict.fromkeys(keys))
            return []

        return self.editor.save_spec(slug, actor, change)

    def fact_sheet_csv(self, slug: str, number: int, actor: Actor) -> tuple[str, str]:
        """(file name, CSV) of a phase's answers: one row per submission, one column per question (organizers)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            ph = get_phase(comp, number)
            questions = comp.fact_sheet or []
            out = io.StringIO()
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["submission", "participant", "submitted_at", "status", *[q["key"] for q in questions]])
            rows = s.execute(select(m.Submission.id, m.Participant.username, m.Submission.submitted_at,
                                    m.Submission.status, m.Submission.fact_sheet)
                             .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                             .where(m.Submission.phase_id == ph.id).order_by(m.Submission.id))
            for sid, username, at, status, answers in rows:
                answers = answers or {}
                writer.writerow([sid, _shown(username), at.isoformat(), status,
                                 *[answer_cell(answers.get(q["key"])) for q in questions]])
            n = phases_in_order(comp).index(ph) + 1
            return f"{comp.slug}-phase{n}-fact-sheets.csv", out.getvalue()


def answer_cell(value: Any) -> str:
    """An answer as one CSV cell, safe to open in a spreadsheet."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    text = str(value)
    # A participant's text must not run as a formula in the organizer's spreadsheet.
    return "'" + text if text[:1] in ("=", "+", "-", "@") else text
