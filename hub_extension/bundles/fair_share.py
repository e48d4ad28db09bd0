"""A phase's fair-share key, read and written the same way in both dialects.

`max_concurrent_submissions` (a whole number, at least 1) caps how many
submissions of one participant, or of one team, run at once in the phase;
further ones wait (`hub_extension.app.fairness`).  EvalAI names it
`max_concurrent_submissions_allowed`, read here as an alias.  Neither
CodaLab nor Codabench has the key: it is this platform's, kept on export.
"""
from __future__ import annotations

from typing import Any, Optional

from .fields import Section

KEY = "max_concurrent_submissions"
ALIAS = "max_concurrent_submissions_allowed"  # EvalAI's name


def read_concurrency(section: Section) -> Optional[int]:
    """The phase's limit of submissions running at once per participant or team (None: no limit)."""
    if section.has(KEY) and section.has(ALIAS):
        section.error(ALIAS, f"gives the same limit as {KEY}; keep one of the two")
        return None
    name = ALIAS if section.has(ALIAS) else KEY
    if not section.has(name):
        return None
    return section.integer(name, None, minimum=1)


def write_concurrency(entry: dict[str, Any], limit: Optional[int]) -> None:
    """Add the limit to a phase's exported entry (nothing when there is none)."""
    if limit is not None:
        entry[KEY] = limit
