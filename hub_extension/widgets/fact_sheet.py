"""The fact sheet in the submit box: one field per question the competition asks with each submission.

The questions come from the competition API (`fact_sheet` of the
competition: `key`, `title`, `type` text|checkbox|select, `selection`,
`is_required`); the answers go with the submission (`CompeteClient.submit(...,
fact_sheet=...)`), where the service checks them.  A required question left
empty is said here, before anything is saved or uploaded.
"""
from __future__ import annotations

from typing import Any, Optional

import ipywidgets as widgets

MAX_ANSWER_CHARS = 1000  # the service's bound on a text answer


class FactSheetFields(widgets.VBox):
    """The questions as fields; `answers()` what is answered, `missing()` why it cannot be sent yet."""

    def __init__(self, questions: Optional[list[dict[str, Any]]] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.add_class("compete-fact-sheet")
        self.questions = [q for q in questions or [] if isinstance(q, dict) and q.get("key")]
        self.fields: dict[str, widgets.Widget] = {q["key"]: self._field(q) for q in self.questions}
        head = [widgets.HTML("<b>Fact sheet</b> <i>(the organizers see your answers)</i>")] if self.questions else []
        self.children = head + list(self.fields.values())
        self.layout.display = None if self.questions else "none"

    @staticmethod
    def _field(q: dict[str, Any]) -> widgets.Widget:
        label = str(q.get("title") or q["key"]) + (" *" if q.get("is_required") else "")
        style = {"description_width": "initial"}
        if q.get("type") == "checkbox":
            field: widgets.Widget = widgets.Checkbox(value=False, description=label, indent=False, style=style)
        elif q.get("type") == "select":
            choices = [str(c) for c in q.get("selection") or [] if str(c).strip()]
            field = widgets.Dropdown(options=[("\u2014", "")] + [(c, c) for c in choices], value="",
                                     description=label, style=style)
        else:
            field = widgets.Text(value="", description=label, style=style, layout=widgets.Layout(width="32em"))
        field.add_class("compete-fact-sheet-question")
        field.add_class(f"compete-fact-{q['key']}")
        return field

    def answers(self) -> dict[str, Any]:
        """The answers by question key (text stripped, a checkbox True or False, a select's choice or empty)."""
        found: dict[str, Any] = {}
        for key, field in self.fields.items():
            value = field.value
            found[key] = value.strip() if isinstance(value, str) else bool(value)
        return found

    def missing(self) -> Optional[str]:
        """Why the answers cannot be sent (a required question left empty, a text too long), or None."""
        answers = self.answers()
        for q in self.questions:
            value = answers.get(q["key"])
            name = f"{q.get('title') or q['key']!r} ({q['key']})"
            if q.get("is_required") and value in ("", False, None):
                what = "tick it" if q.get("type") == "checkbox" else "answer it"
                return f"fact sheet: {name} is required: {what} to submit. Nothing was submitted."
            if isinstance(value, str) and len(value) > MAX_ANSWER_CHARS:
                return f"fact sheet: {name}: at most {MAX_ANSWER_CHARS} characters, got {len(value)}"
        return None
