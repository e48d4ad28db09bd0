"""What the submission page shows of provenance and reproductions, as its viewer may see it.

`reproduction_context` gives the submission page (`pages.SubmissionHandler`)
what its "Provenance" table and "Reproduction" section show: organizers see
each run's provenance and the comparison with the latest reproduction once it
is done; participants see none of it (the owner of a submission in a phase
that allows reproductions sees the comparison of scores only).
"""
from __future__ import annotations

from typing import Any

from ..app import Actor, Forbidden, NotFound
from ..app.provenance import provenance_rows


def reproduction_context(platform: Any, sub: dict[str, Any], actor: Actor, organizer: bool,
                         phase: Any) -> dict[str, Any]:
    """What the submission page shows of provenance and reproductions, as `actor` may see it."""
    allowed = organizer or bool(phase and phase.get("allow_reproduce") and sub.get("participant") == actor.username)
    context: dict[str, Any] = {"provenance_rows": provenance_rows(sub.get("runs") or []) if organizer else [],
                               "may_reproduce": allowed and sub.get("status") == "Finished"
                               and not sub.get("reproduces"),
                               "comparison": None}
    if allowed and (sub.get("reproduces") or sub.get("reproductions")):
        try:
            context["comparison"] = platform.reproduction_comparison(sub["id"], actor)
        except (NotFound, Forbidden):
            pass
    return context
