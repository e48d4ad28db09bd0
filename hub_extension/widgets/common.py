"""What the notebook widgets share: formatting, the client they talk through, open leaderboards.

Participant side: imports the standard library, ipywidgets, the wire contract
and `hub_extension.client`, never a server module.
"""
from __future__ import annotations

import datetime as dt
import html
import logging
import time
import weakref
from typing import Any, Optional

import ipywidgets as widgets

from ..client import CompeteClient, CompeteError
from ..contract import Status

log = logging.getLogger("compete.widgets")

STEPS = Status.STEPS
TERMINAL = Status.TERMINAL
MISSING = "\u2014"  # an em dash where there is no value

# Open leaderboards, so that a finished submission refreshes them at once.
OPEN_BOARDS: "weakref.WeakSet[Any]" = weakref.WeakSet()


def refresh_open_boards(competition: str) -> None:
    """A submission to `competition` finished: the open leaderboards of that competition refresh now."""
    for board in list(OPEN_BOARDS):
        if board.state.competition == competition:
            board._poke()


def _esc(value: Any) -> str:
    return html.escape("" if value is None else str(value), quote=True)


def _describe(exc: BaseException) -> str:
    return str(exc) if isinstance(exc, CompeteError) else f"{type(exc).__name__}: {exc}"


def _fmt_score(value: Any, precision: Optional[int] = None) -> str:
    if value is None or isinstance(value, bool):
        return MISSING
    try:
        number = float(value)
    except (TypeError, ValueError):
        return MISSING
    if number != number:
        return MISSING
    return f"{number:.{precision if precision is not None else 4}f}"


def _fmt_time(iso: Optional[str]) -> str:
    if not iso:
        return MISSING
    try:
        moment = dt.datetime.fromisoformat(str(iso).replace("Z", "+00:00"))
    except ValueError:
        return str(iso)
    return moment.strftime("%Y-%m-%d %H:%M")


def _clock(moment: Optional[float]) -> str:
    return time.strftime("%H:%M:%S", time.localtime(moment)) if moment else MISSING


def _text_table(header: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(h), *(len(r[i]) for r in rows)) if rows else len(h) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths)).rstrip()]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines)


def _widget_bundle(widget: widgets.Widget, **kwargs: Any) -> dict[str, Any]:
    """The widget's own mime bundle (its view), or {} once it is closed."""
    try:
        bundle = widgets.VBox._repr_mimebundle_(widget, **kwargs)
    except Exception:  # noqa: BLE001 - a closed widget has no model to show
        return {}
    if isinstance(bundle, tuple):
        bundle = bundle[0]
    return dict(bundle or {})


def _make_client(client: Optional[CompeteClient]) -> tuple[Optional[CompeteClient], Optional[str]]:
    if client is not None:
        return client, None
    try:
        return CompeteClient(), None
    except CompeteError as exc:
        return None, str(exc)


