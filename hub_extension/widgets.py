"""Notebook widgets for participants: the leaderboard and the submit box (ipywidgets 8).

    from hub_extension.widgets import Leaderboard, Submit
    Submit("demo-flower-species")          # submit this notebook, watch it run, see its scores
    Leaderboard("demo-flower-species")     # refreshed every 30 s while it is open

Both render in JupyterLab 4 and Notebook 7, and show a readable HTML table or
text where widgets are not rendered (an exported notebook, a terminal).  They
talk to the service through `hub_extension.client.CompeteClient` and show only
what it answers: hidden columns, hidden boards and the scores of a blind phase
are never sent to a participant, so they cannot be shown.

The logic lives in plain classes that need no front end: `LeaderboardState`
(phases, boards, sorting, the cached leaderboard, errors), `SubmitState`
(what is being submitted and how far it got), and `Refresher` (a timer thread
that stops for good on `stop()`).  The widgets render them and wire buttons.

Refreshing: `Leaderboard` asks again every `refresh` seconds (at least
`Leaderboard.min_refresh`) with `If-None-Match`; an unchanged leaderboard is a
304 and nothing is redrawn.  A failed refresh keeps the last table, says why
under it, and retries less often (up to 8 times the interval).  `close()`
stops the timer before it returns: no request is made after it.  A finished
submission from a `Submit` box refreshes the open leaderboards of its
competition at once.

"This notebook, saved first" (the default choice of `Submit`): a kernel
cannot save a notebook, only the front end holds its unsaved state.  When
Submit is clicked, the widget puts a small script into a hidden Output widget
of its own (outputs there are trusted, so JupyterLab 4 and Notebook 7 run it):

1. with `window.jupyterapp` (the server option `expose_app_in_browser`:
   `--LabApp.expose_app_in_browser=True`, `--JupyterNotebookApp.expose_app_in_browser=True`),
   it finds the document whose page holds the widget and awaits its
   `context.save()`;
2. otherwise it sends the front end's own save shortcut (Ctrl+S, Cmd+S on a
   Mac) from inside the notebook, which runs `docmanager:save` on it;

then it answers the kernel through a hidden text field of the widget (class
`compete-save-reply`) with a one-time token.  The kernel submits once the
notebook file on disk has changed since the click (case 2) or at once
(case 1).  No answer within `Submit.save_timeout` seconds (a front end that
runs no script: VS Code, an old notebook, an untrusted output), or a file that
did not change, stops with a clear message: save (Ctrl+S), choose "This
notebook, as last saved" and submit again.  Nothing is submitted unsaved.
Both ways were checked in headless Chromium on JupyterLab 4.6 and Notebook
7.6, with and without `expose_app_in_browser`, an unsaved edit included.
(A scripted click on the toolbar's save button is reported not to save,
jupyter/notebook#7225; with real-time collaboration the server could save,
but it is not installed.)

In a browser (an end-to-end test), after running the cell with `Submit(...)`:
optionally edit a cell without saving; click the button `.compete-submit-button`
("Submit"); `.compete-submit-status` goes through "Saving the notebook",
"Uploading", "Submitted" (with the queue position), "Preparing", "Running",
"Scoring", and ends on `[data-status="Finished"]` with a table of scores
(`.compete-scores`), or `[data-status="Failed"]` with the failing cell
(`.compete-submit-error`) and its traceback (`.compete-traceback`).  The
submitted file (`GET api/v1/submissions/<id>/file`) holds the unsaved edit.
The leaderboard is `table.compete-leaderboard`, one `tr[data-participant=NAME]`
per row, the viewer's own row with class `compete-own-row`.
"""
from __future__ import annotations

import datetime as dt
import html
import json
import logging
import os
import threading
import time
import uuid
import weakref
from pathlib import Path
from typing import Any, Callable, Optional
from urllib.parse import quote

import ipywidgets as widgets

from .client import (
    SKIPPED_FOLDERS,
    CompeteClient,
    CompeteError,
    current_notebook_path,
)

__all__ = ["Leaderboard", "LeaderboardState", "Refresher", "Submit", "SubmitState"]

log = logging.getLogger("compete.widgets")

STEPS = ("Submitted", "Preparing", "Running", "Scoring")
TERMINAL = ("Finished", "Failed", "Cancelled")
MISSING = "\u2014"  # an em dash where there is no value
OWN_ROW_STYLE = "background: rgba(255, 200, 0, 0.25); font-weight: bold;"
MAX_BACKOFF = 8

# Open leaderboards, so that a finished submission refreshes them at once.
_OPEN_BOARDS: "weakref.WeakSet[Leaderboard]" = weakref.WeakSet()


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


# -- a timer that stops ---------------------------------------------------------------------------
class Refresher:
    """Calls `callback()` every `interval` seconds on a daemon thread until `stop()`.

    A callback that returns False (or raises) counts as a failure: the next
    call waits twice as long, up to `MAX_BACKOFF` times the interval.
    `trigger()` calls it at once.  `stop()` returns once no call is running
    and none will start.
    """

    def __init__(self, callback: Callable[[], Any], interval: float, *, name: str = "compete-refresh"):
        if interval <= 0:
            raise ValueError("the refresh interval must be positive")
        self.callback = callback
        self.interval = float(interval)
        self.name = name
        self.failures = 0
        self.calls = 0
        self._stopped = threading.Event()
        self._wake = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive() and not self._stopped.is_set()

    @property
    def delay(self) -> float:
        return self.interval * min(2 ** self.failures, MAX_BACKOFF)

    def start(self) -> "Refresher":
        if self._thread is None and not self._stopped.is_set():
            self._thread = threading.Thread(target=self._run, name=self.name, daemon=True)
            self._thread.start()
        return self

    def trigger(self) -> None:
        self._wake.set()

    def stop(self, timeout: float = 65.0) -> None:
        self._stopped.set()
        self._wake.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)

    def _run(self) -> None:
        while not self._stopped.is_set():
            self._wake.wait(self.delay)
            self._wake.clear()
            if self._stopped.is_set():
                return
            self.calls += 1
            try:
                ok = self.callback() is not False
            except Exception:  # noqa: BLE001 - a refresh must never kill the timer
                log.exception("%s: the refresh failed", self.name)
                ok = False
            self.failures = 0 if ok else min(self.failures + 1, 8)


# -- the leaderboard ------------------------------------------------------------------------------
class LeaderboardState:
    """What the leaderboard widget shows, with no front end: a tested, plain object.

    `load()` reads the competition (its phases and the boards this viewer may
    see) and who the viewer is; `refresh()` asks for the leaderboard (with
    `If-None-Match`) and says whether the table must be redrawn.  Neither
    raises: errors land in `error`, and the last good table stays.
    """

    def __init__(self, client: Optional[CompeteClient], competition: str, phase: Optional[int] = None, *,
                 board: Optional[str] = None):
        self.client = client
        self.competition = competition
        self.phase = phase
        self.board = board
        self.title = competition
        self.phases: list[dict[str, Any]] = []
        self.boards: list[dict[str, Any]] = []
        self.username: Optional[str] = None
        self.data: Optional[dict[str, Any]] = None
        self.error: Optional[str] = None
        self.updated_at: Optional[float] = None
        self.sort_key = "rank"
        self.reverse = False
        self._lock = threading.RLock()

    # -- asking the service ----------------------------------------------------------------
    def load(self) -> bool:
        if self.client is None:
            return False
        with self._lock:
            try:
                detail = self.client.competition(self.competition)
            except CompeteError as exc:
                self.error = _describe(exc)
                return False
            self.title = detail.get("title") or self.competition
            self.phases = [{"number": p.get("number"), "name": p.get("name"), "state": p.get("state")}
                           for p in detail.get("phases") or []]
            # The service lists hidden boards to organizers only.
            self.boards = [{"key": b.get("key"), "title": b.get("title")} for b in detail.get("leaderboards") or []]
            if self.phase is None:
                self.phase = detail.get("current_phase") or (self.phases[-1]["number"] if self.phases else None)
            try:
                self.username = self.client.username
            except CompeteError:
                self.username = os.environ.get("JUPYTERHUB_USER") or None
            return True

    def refresh(self) -> bool:
        """Ask for the leaderboard; True when what is shown changed (new rows, an error came or went)."""
        if self.client is None:
            return False
        with self._lock:
            before = self.error
            try:
                data, changed = self.client.get_cached(
                    f"competitions/{quote(self.competition, safe='')}/leaderboard", {"phase": self.phase, "board": self.board})
            except CompeteError as exc:
                self.error = _describe(exc)
                return self.error != before
            self.error = None
            self.updated_at = time.time()
            if changed or data is not self.data:
                self.data = data
                if self.phase is None:
                    self.phase = data.get("phase")
                return True
            return before is not None

    def select_phase(self, number: Optional[int]) -> None:
        with self._lock:
            if number != self.phase:
                self.phase, self.data = number, None

    def select_board(self, key: Optional[str]) -> None:
        with self._lock:
            if key != self.board:
                self.board, self.data = key, None

    def sort_by(self, key: str, reverse: Optional[bool] = None) -> None:
        """Sort by `rank`, `participant`, `submitted_at` or a column key; `reverse` flips the natural order."""
        if key not in {k for _, k in self.sort_options()}:
            raise ValueError(f"cannot sort by {key!r}; choose one of {[k for _, k in self.sort_options()]}")
        self.sort_key = key
        if reverse is not None:
            self.reverse = bool(reverse)

    # -- what is shown ----------------------------------------------------------------------
    @property
    def columns(self) -> list[dict[str, Any]]:
        return list((self.data or {}).get("columns") or [])

    def sort_options(self) -> list[tuple[str, str]]:
        options = [("Rank", "rank"), ("Participant", "participant")]
        options += [(str(c.get("title") or c["key"]), str(c["key"])) for c in self.columns]
        options.append(("Submitted", "submitted_at"))
        return options

    def rows(self) -> list[dict[str, Any]]:
        """The rows in the chosen order; rows without the value sorted on come last."""
        rows = list((self.data or {}).get("rows") or [])
        key = self.sort_key
        columns = {c["key"]: c for c in self.columns}

        def value(row: dict[str, Any]) -> Any:
            if key == "rank":
                return row.get("rank")
            if key == "participant":
                return str(row.get("participant") or "").lower()
            if key == "submitted_at":
                return row.get("submitted_at")
            got = (row.get("scores") or {}).get(key)
            return None if got is None or got != got else got

        present = [r for r in rows if value(r) is not None]
        absent = [r for r in rows if value(r) is None]
        descending = key == "submitted_at" or (key in columns and columns[key].get("sorting") == "desc")
        present.sort(key=value, reverse=descending != self.reverse)
        return present + absent

    def own_row(self) -> Optional[dict[str, Any]]:
        for row in (self.data or {}).get("rows") or []:
            if self.username and row.get("participant") == self.username:
                return row
        return None

    def heading(self) -> str:
        parts = [self.title]
        phase = next((p for p in self.phases if p["number"] == self.phase), None)
        if phase is not None:
            parts.append(f"phase {phase['number']} ({phase['name']})")
        elif self.phase is not None:
            parts.append(f"phase {self.phase}")
        if self.data and len(self.boards) > 1:
            parts.append(f"board {self.data.get('title') or self.data.get('board')}")
        return " \u2014 ".join(parts)

    def to_html(self) -> str:
        """The leaderboard as an HTML fragment (no script; inline styles only)."""
        out = [f'<div class="compete-leaderboard-box" data-competition="{_esc(self.competition)}">',
               f'<p class="compete-leaderboard-heading"><b>{_esc(self.heading())}</b></p>']
        if self.data is None:
            if self.error:
                out.append(f'<p class="compete-leaderboard-error" style="color: #b00020;">{_esc(self.error)}</p>')
            else:
                out.append('<p class="compete-leaderboard-empty">Loading the leaderboard\u2026</p>')
            out.append("</div>")
            return "".join(out)
        own = self.own_row()
        rows = self.rows()
        if own is not None:
            out.append(f'<p class="compete-leaderboard-me">Your rank: <b>{_esc(own.get("rank"))}</b> '
                       f'of {len(rows)}</p>')
        columns = self.columns
        out.append(f'<table class="compete-leaderboard" data-phase="{_esc(self.data.get("phase"))}" '
                   f'data-board="{_esc(self.data.get("board"))}" style="border-collapse: collapse;">')
        heads = [("rank", "#", ""), ("participant", "Participant", "")]
        heads += [(c["key"], c.get("title") or c["key"],
                   "higher is better" if c.get("sorting") == "desc" else "lower is better") for c in columns]
        heads.append(("submitted_at", "Submitted", ""))
        out.append("<thead><tr>")
        for key, title, hint in heads:
            mark = (" \u25b4" if self.reverse else " \u25be") if key == self.sort_key else ""
            out.append(f'<th data-sort-key="{_esc(key)}" title="{_esc(hint)}" '
                       f'style="text-align: left; padding: 2px 8px;">{_esc(title)}{mark}</th>')
        out.append("</tr></thead><tbody>")
        for row in rows:
            mine = own is not None and row is own
            attrs = f' data-participant="{_esc(row.get("participant"))}" data-rank="{_esc(row.get("rank"))}"'
            if mine:
                attrs += f' class="compete-own-row" style="{OWN_ROW_STYLE}"'
            cells = [_esc(row.get("rank")), _esc(row.get("participant"))]
            scores = row.get("scores") or {}
            cells += [_esc(_fmt_score(scores.get(c["key"]), c.get("precision"))) for c in columns]
            cells.append(_esc(_fmt_time(row.get("submitted_at"))))
            keys = ["rank", "participant", *(c["key"] for c in columns), "submitted_at"]
            out.append(f"<tr{attrs}>" + "".join(
                f'<td data-column="{_esc(k)}" style="padding: 2px 8px;">{v}</td>' for k, v in zip(keys, cells))
                + "</tr>")
        out.append("</tbody></table>")
        if not rows and not self.data.get("note"):
            out.append('<p class="compete-leaderboard-empty">No finished submission yet.</p>')
        if self.data.get("note"):
            out.append(f'<p class="compete-leaderboard-note"><i>{_esc(self.data["note"])}</i></p>')
        if self.error:
            out.append(f'<p class="compete-leaderboard-error" style="color: #b00020;">Could not refresh: '
                       f'{_esc(self.error)} (showing the leaderboard of {_clock(self.updated_at)})</p>')
        out.append("</div>")
        return "".join(out)

    def to_text(self) -> str:
        """The leaderboard as plain text; the viewer's own row starts with `>`."""
        lines = [self.heading()]
        if self.data is None:
            lines.append(self.error or "(not loaded)")
            return "\n".join(lines)
        own = self.own_row()
        columns = self.columns
        header = ["", "#", "participant", *[str(c.get("title") or c["key"]) for c in columns]]
        body = []
        for row in self.rows():
            scores = row.get("scores") or {}
            body.append([">" if own is not None and row is own else "", str(row.get("rank") or MISSING),
                         str(row.get("participant") or ""),
                         *[_fmt_score(scores.get(c["key"]), c.get("precision")) for c in columns]])
        lines.append(_text_table(header, body) if body else "(no finished submission yet)")
        if self.data.get("note"):
            lines.append(str(self.data["note"]))
        if self.error:
            lines.append(f"could not refresh: {self.error}")
        return "\n".join(lines)


class Leaderboard(widgets.VBox):
    """A competition's leaderboard in a notebook, refreshed every `refresh` seconds until closed.

    `phase` defaults to the phase open now; `refresh=0` (or None) never
    refreshes by itself (the Refresh button still does).  `client` defaults to
    `CompeteClient()`, which needs no set-up in a hub-spawned JupyterLab.
    """

    min_refresh = 5.0

    def __init__(self, competition: str, phase: Optional[int] = None, *, refresh: Optional[float] = 30,
                 client: Optional[CompeteClient] = None, board: Optional[str] = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.add_class("compete-leaderboard-widget")
        self.client, problem = _make_client(client)
        self.state = LeaderboardState(self.client, competition, phase, board=board)
        if problem:
            self.state.error = problem
        self.renders = 0
        self._syncing = False
        self._closed = False
        self._lock = threading.RLock()
        self._phase = widgets.Dropdown(description="Phase", options=[], layout=widgets.Layout(width="auto"))
        self._board = widgets.Dropdown(description="Board", options=[], layout=widgets.Layout(width="auto"))
        self._sort = widgets.Dropdown(description="Sort by", options=[("Rank", "rank")], value="rank",
                                      layout=widgets.Layout(width="auto"))
        self._reverse = widgets.ToggleButton(description="Reverse", icon="sort", value=False,
                                             tooltip="Reverse the order", layout=widgets.Layout(width="auto"))
        self._reload = widgets.Button(description="Refresh", icon="refresh", tooltip="Ask for the leaderboard now",
                                      layout=widgets.Layout(width="auto"))
        self._table = widgets.HTML()
        self._table.add_class("compete-leaderboard-view")
        self._status = widgets.HTML()
        self._status.add_class("compete-leaderboard-status")
        self.children = [widgets.HBox([self._phase, self._board, self._sort, self._reverse, self._reload]),
                         self._table, self._status]
        if self.client is not None:
            self.state.load()
            self.state.refresh()
        self._render(table=True)
        self._phase.observe(self._on_phase, names="value")
        self._board.observe(self._on_board, names="value")
        self._sort.observe(self._on_sort, names="value")
        self._reverse.observe(self._on_sort, names="value")
        self._reload.on_click(lambda _: self.refresh_now())
        interval = float(refresh or 0)
        self.refresh_interval = max(interval, self.min_refresh) if interval > 0 else 0.0
        self._refresher: Optional[Refresher] = None
        if self.refresh_interval and self.client is not None:
            self._refresher = Refresher(self._tick, self.refresh_interval, name=f"compete-leaderboard-{competition}")
            self._refresher.start()
        _OPEN_BOARDS.add(self)
        self._render_status()

    # -- life -------------------------------------------------------------------------------
    @property
    def refreshing(self) -> bool:
        return self._refresher is not None and self._refresher.running

    def close(self) -> None:
        """Stop refreshing (no request is made after this returns), then close the widget."""
        self._closed = True
        if self._refresher is not None:
            self._refresher.stop()
        _OPEN_BOARDS.discard(self)
        self._render_status()
        super().close()

    def refresh_now(self) -> bool:
        """Ask for the leaderboard now; True if the table changed."""
        if self._closed:
            return False
        with self._lock:
            changed = self.state.refresh()
            self._render(table=changed)
            return changed

    def _tick(self) -> bool:
        if self._closed:
            return True
        self.refresh_now()
        return self.state.error is None

    def _poke(self) -> None:
        """A submission finished: refresh at once (on the timer's thread when there is one)."""
        if self._refresher is not None and self._refresher.running:
            self._refresher.trigger()
        else:
            self.refresh_now()

    # -- controls ---------------------------------------------------------------------------
    def _on_phase(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        with self._lock:
            self.state.select_phase(int(change["new"]))
            self.state.refresh()
            self._render(table=True)

    def _on_board(self, change: dict[str, Any]) -> None:
        if self._syncing or change["new"] is None:
            return
        with self._lock:
            self.state.select_board(change["new"])
            self.state.refresh()
            self._render(table=True)

    def _on_sort(self, _change: dict[str, Any]) -> None:
        if self._syncing:
            return
        with self._lock:
            key = self._sort.value or "rank"
            if key in {k for _, k in self.state.sort_options()}:
                self.state.sort_by(key, self._reverse.value)
            self._render(table=True)

    def _sync_controls(self) -> None:
        state = self.state
        self._syncing = True
        try:
            phase_options = [(f"{p['number']}: {p['name']}", p["number"]) for p in state.phases]
            if state.phase is not None and state.phase not in [v for _, v in phase_options]:
                phase_options.append((f"{state.phase}", state.phase))
            if list(self._phase.options) != phase_options:
                self._phase.options = phase_options
            self._phase.value = state.phase if phase_options else None
            self._phase.layout.display = None if len(phase_options) > 1 else "none"
            board_options = [(str(b["title"] or b["key"]), b["key"]) for b in state.boards]
            if list(self._board.options) != board_options:
                self._board.options = board_options
            current_board = state.board or (state.data or {}).get("board")
            self._board.value = current_board if current_board in [k for _, k in board_options] else None
            self._board.layout.display = None if len(board_options) > 1 else "none"
            sort_options = state.sort_options()
            if list(self._sort.options) != sort_options:
                self._sort.options = sort_options
            self._sort.value = state.sort_key if state.sort_key in [k for _, k in sort_options] else "rank"
            self._reverse.value = state.reverse
        finally:
            self._syncing = False

    # -- drawing ----------------------------------------------------------------------------
    def _render(self, *, table: bool) -> None:
        if table:
            self._sync_controls()
            self._table.value = self.state.to_html()
            self.renders += 1
        self._render_status()

    def _render_status(self) -> None:
        if self._closed:
            text = "Closed: not refreshed any more."
        elif self.state.error and self.state.data is not None:
            text = f"Could not refresh at {_clock(time.time())}; retrying."
        elif self.state.updated_at:
            every = getattr(self, "refresh_interval", 0)
            text = f"Updated {_clock(self.state.updated_at)}" + (f" \u00b7 refreshed every {every:g} s" if every else "")
        else:
            text = ""
        self._status.value = f'<span style="font-size: smaller; opacity: 0.7;">{_esc(text)}</span>' if text else ""

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = _widget_bundle(self, **kwargs)
        bundle["text/html"] = self.state.to_html()
        bundle["text/plain"] = self.state.to_text()
        return bundle

    def _repr_html_(self) -> str:
        return self.state.to_html()

    def __repr__(self) -> str:
        rows = len((self.state.data or {}).get("rows") or [])
        return f"<Leaderboard {self.state.competition} phase {self.state.phase}: {rows} rows>"


# -- submitting -----------------------------------------------------------------------------------
class SubmitState:
    """A submission from the widget, with no front end: a tested, plain object.

    `stage` is `ready`, `saving`, `uploading`, then the submission's status
    (Submitted, Preparing, Running, Scoring, and Finished, Failed or
    Cancelled), or `error` when the client refused or could not reach the
    service.  `stages` lists every stage seen, in order.  `listeners` are
    called after each change.
    """

    def __init__(self, client: Optional[CompeteClient], competition: str, phase: Optional[int] = None):
        self.client = client
        self.competition = competition
        self.phase = phase
        self.title = competition
        self.phase_name: Optional[str] = None
        self.registration: Optional[str] = None
        self.columns: dict[str, dict[str, Any]] = {}
        self.stage = "ready"
        self.stages: list[str] = []
        self.info: Optional[dict[str, Any]] = None
        self.error: Optional[str] = None
        self.note: Optional[str] = None
        self.target: Optional[str] = None
        self.left: Optional[dict[str, Any]] = None
        self.closed_phase: Optional[str] = None
        self.last_submission: Optional[dict[str, Any]] = None
        self.interval = 1.0
        self.stop_event = threading.Event()
        self.listeners: list[Callable[["SubmitState"], None]] = []
        self._lock = threading.RLock()

    @property
    def busy(self) -> bool:
        return self.stage in ("saving", "uploading", *STEPS)

    def _changed(self) -> None:
        for listener in list(self.listeners):
            try:
                listener(self)
            except Exception:  # noqa: BLE001 - drawing must not break the submission
                log.exception("a submit listener failed")

    def set_stage(self, stage: str, *, note: Optional[str] = None) -> None:
        with self._lock:
            self.stage = stage
            self.note = note
            if stage != "error":
                self.error = None
            if not self.stages or self.stages[-1] != stage:
                self.stages.append(stage)
        self._changed()

    def fail(self, problem: Any) -> None:
        with self._lock:
            self.error = _describe(problem) if isinstance(problem, BaseException) else str(problem)
            self.stage = "error"
            self.stages.append("error")
        self._changed()

    def load(self) -> None:
        """The competition's title, the phase, your registration and the submissions you have left."""
        if self.client is None:
            return
        try:
            detail = self.client.competition(self.competition)
        except CompeteError as exc:
            self.fail(exc)
            return
        self.title = detail.get("title") or self.competition
        self.registration = detail.get("registration")
        number = self.phase or detail.get("current_phase")
        phase = next((p for p in detail.get("phases") or [] if p.get("number") == number), None)
        self.phase_name = phase.get("name") if phase else None
        self.closed_phase = None
        if phase is None:
            upcoming = [p for p in detail.get("phases") or [] if p.get("state") == "future"]
            self.closed_phase = "no phase is open for submissions now"
            if upcoming:
                self.closed_phase += (f"; phase {upcoming[0]['number']} ({upcoming[0]['name']}) opens "
                                      f"{_fmt_time(upcoming[0].get('start'))} UTC")
        elif not phase.get("open"):
            name = f"phase {number} ({phase.get('name')})"
            if phase.get("state") == "future":
                self.closed_phase = f"{name} opens {_fmt_time(phase.get('start'))} UTC"
            else:
                self.closed_phase = f"{name} is closed" + (f" since {_fmt_time(phase['end'])} UTC"
                                                           if phase.get("end") else "")
        try:
            board = self.client.leaderboard_json(self.competition, self.phase)
            self.columns = {c["key"]: c for c in board.get("columns") or []}
        except CompeteError:
            self.columns = {}
        self.refresh_left()

    def refresh_left(self) -> None:
        if self.client is None or self.registration not in ("approved", None):
            self.left = None
        else:
            try:
                self.left = self.client.submissions_left(self.competition, self.phase)
            except CompeteError:
                self.left = None
        self._changed()

    def update(self, info: dict[str, Any]) -> None:
        """A fresh answer about the submission (from `CompeteClient.follow`)."""
        with self._lock:
            self.info = info
            status = str(info.get("status") or "Submitted")
            self.stage = status
            if not self.stages or self.stages[-1] != status:
                self.stages.append(status)
            if status in TERMINAL:
                self.last_submission = info
        self._changed()

    def run(self, path: Path, description: str = "") -> Optional[dict[str, Any]]:
        """Upload `path`, then follow the submission to its end; returns the final answer (or None)."""
        if self.client is None:
            self.fail("no competition service to submit to")
            return None
        self.stop_event.clear()
        with self._lock:
            self.info = None
            self.target = Path(path).name
        self.set_stage("uploading")
        try:
            info = self.client.submit(self.competition, path, phase=self.phase, description=description)
            self.update(info)
            self.refresh_left()  # one fewer left, shown while it runs
            if info.get("status") in TERMINAL:
                return info
            final = self.client.follow(info["id"], interval=self.interval, on_change=self.update,
                                       stop=self.stop_event)
            self.update(final)
            return final
        except CompeteError as exc:
            self.fail(exc)
            return None
        finally:
            self.refresh_left()

    # -- what is shown ----------------------------------------------------------------------
    def left_text(self) -> str:
        if self.closed_phase:
            return self.closed_phase[0].upper() + self.closed_phase[1:] + "."
        if self.registration == "none":
            return f"You are not registered to {self.title} yet: register on the competition page first."
        if self.registration in ("pending", "denied", "removed"):
            return f"Your registration to {self.title} is {self.registration}."
        if self.left is None:
            return ""
        today, total = self.left.get("today"), self.left.get("total")
        if today is None and total is None:
            return "No limit on submissions in this phase."
        parts = []
        if today is not None:
            parts.append(f"{today} today")
        if total is not None:
            parts.append(f"{total} in total")
        return "Submissions left: " + ", ".join(parts) + "."

    def _failed_step(self) -> Optional[str]:
        for status in reversed([h.get("status") for h in (self.info or {}).get("history") or []]):
            if status in STEPS:
                return status
        for stage in reversed(self.stages):
            if stage in STEPS:
                return stage
        return None

    def _detail(self) -> str:
        info = self.info or {}
        status = self.stage
        if status == "Submitted":
            waiting = info.get("waiting") or {}
            if waiting.get("position"):
                note = f" \u2014 {waiting['note']}" if waiting.get("note") else ""
                return f"Waiting in the queue: position {waiting['position']}{note}."
            return "Waiting to be sent to a worker."
        if status == "Preparing":
            return "A worker is preparing the run."
        if status == "Running":
            running = info.get("running_time")
            return f"Running ({running:.0f} s so far)." if isinstance(running, (int, float)) else "Running."
        if status == "Scoring":
            return "Computing the scores."
        return ""

    def to_html(self, prefix: str = "") -> str:
        """The status box as an HTML fragment: progress, then scores or the failure."""
        stage = self.stage
        out = [f'<div class="compete-submit-progress" data-status="{_esc(stage)}">']
        if stage == "ready":
            out.append("<p>Choose what to submit, then click <b>Submit</b>.</p>")
        elif stage == "saving":
            out.append("<p>Saving the notebook\u2026</p>")
        elif stage == "uploading":
            out.append(f"<p>Uploading {_esc(self.target)}\u2026</p>")
        elif stage == "error":
            out.append(f'<p class="compete-submit-error" style="color: #b00020;">{_esc(self.error)}</p>')
        else:
            out.append(self._steps_html())
            detail = self._detail()
            if detail:
                out.append(f'<p class="compete-submit-detail">{_esc(detail)}</p>')
            if stage == "Finished":
                out.append(self._scores_html())
            elif stage in ("Failed", "Cancelled"):
                out.append(self._failure_html())
        if self.note:
            out.append(f'<p class="compete-submit-note"><i>{_esc(self.note)}</i></p>')
        info = self.info or {}
        if info.get("id") is not None and prefix:
            out.append(f'<p><a href="{_esc(prefix)}submissions/{int(info["id"])}" target="_blank" '
                       f'rel="noopener">Submission {int(info["id"])}: details, logs and the executed notebook</a></p>')
        out.append("</div>")
        return "".join(out)

    def _steps_html(self) -> str:
        stage = self.stage
        failed_at = self._failed_step() if stage in ("Failed", "Cancelled") else None
        reached = set(self.stages) | {h.get("status") for h in (self.info or {}).get("history") or []}
        cells = []
        for step in (*STEPS, "Finished" if stage not in ("Failed", "Cancelled") else stage):
            if step == stage and stage in TERMINAL:
                mark, style = ("\u2713", "color: #1b7f3b; font-weight: bold;") if stage == "Finished" else \
                    ("\u2717", "color: #b00020; font-weight: bold;")
            elif step == stage:
                mark, style = "\u25cf", "font-weight: bold;"
            elif step == failed_at:
                mark, style = "\u2717", "color: #b00020;"
            elif step in reached or stage in TERMINAL and stage == "Finished":
                mark, style = "\u2713", "opacity: 0.8;"
            else:
                mark, style = "\u25cb", "opacity: 0.5;"
            if step == "Submitted" and stage == "Submitted":
                position = ((self.info or {}).get("waiting") or {}).get("position")
                label = f"Submitted (#{position} in queue)" if position else "Submitted"
            else:
                label = step
            cells.append(f'<span class="compete-step" data-step="{_esc(step)}" style="{style}">{mark} {_esc(label)}</span>')
        return '<p class="compete-steps">' + " \u2192 ".join(cells) + "</p>"

    def _scores_html(self) -> str:
        info = self.info or {}
        if info.get("results_hidden"):
            return ('<p class="compete-scores-hidden">Finished. The scores of this phase are hidden: the organizers '
                    'publish them later.</p>')
        scores = info.get("scores") or {}
        if not scores:
            return '<p class="compete-scores-hidden">Finished, with no score you may see.</p>'
        elapsed = info.get("elapsed")
        head = f"<p>Finished in {elapsed:.1f} s.</p>" if isinstance(elapsed, (int, float)) else ""
        rows = []
        ordered = [k for k in self.columns if k in scores] + sorted(k for k in scores if k not in self.columns)
        for key in ordered:
            column = self.columns.get(key, {})
            rows.append(f'<tr data-score="{_esc(key)}"><td style="padding: 2px 8px;">{_esc(column.get("title") or key)}'
                        f'</td><td style="padding: 2px 8px;"><b>{_esc(_fmt_score(scores[key], column.get("precision")))}'
                        f"</b></td></tr>")
        return head + '<table class="compete-scores">' + "".join(rows) + "</table>"

    def _failure_html(self) -> str:
        error = str((self.info or {}).get("error") or ("cancelled" if self.stage == "Cancelled" else "no reason given"))
        first, _, rest = error.partition("\n")
        out = [f'<p class="compete-submit-error" style="color: #b00020;"><b>{_esc(self.stage)}</b>: {_esc(first)}</p>']
        if rest.strip():
            out.append(f'<pre class="compete-traceback" style="white-space: pre-wrap; max-height: 24em; '
                       f'overflow: auto;">{_esc(rest.strip())}</pre>')
        return "".join(out)

    def to_text(self) -> str:
        lines = [f"Submit to {self.title}" + (f", phase {self.phase_name}" if self.phase_name else "")]
        if self.left_text():
            lines.append(self.left_text())
        info = self.info or {}
        if self.stage == "error":
            lines.append(f"error: {self.error}")
        elif self.stage in TERMINAL:
            lines.append(f"submission {info.get('id')}: {self.stage}")
            if self.stage == "Finished":
                for key, value in (info.get("scores") or {}).items():
                    column = self.columns.get(key, {})
                    lines.append(f"  {column.get('title') or key}: {_fmt_score(value, column.get('precision'))}")
                if info.get("results_hidden"):
                    lines.append("  (the scores of this phase are hidden)")
            else:
                lines.append(str(info.get("error") or ""))
        elif self.stage != "ready":
            lines.append(f"{self.stage}: {self._detail()}".rstrip(": "))
        return "\n".join(lines)


SAVE_SCRIPT = """
(async function (element) {
  var token = %(token)s, issued = %(issued)d;
  if (Math.abs(Date.now() - issued) > 600000) { return; }  // replayed from a saved notebook: do nothing
  // The output is rendered before it is attached to the page: wait until it is.
  for (var i = 0; i < 200 && element && !element.isConnected; i++) {
    await new Promise(function (resolve) { setTimeout(resolve, 25); });
  }
  var box = element && element.closest ? element.closest('.compete-submit') : null;
  function reply(status, detail) {
    var input = box ? box.querySelector('.compete-save-reply input') : null;
    if (!input) { return; }
    input.value = JSON.stringify({token: token, status: status, detail: String(detail || '')});
    input.dispatchEvent(new Event('input', {bubbles: true}));
  }
  try {
    var app = window.jupyterapp;
    if (app && app.shell && typeof app.shell.widgets === 'function') {
      for (const w of app.shell.widgets('main')) {
        if (w && w.node && w.node.contains(element) && w.context && typeof w.context.save === 'function') {
          await w.context.save();
          reply('saved', w.context.path);
          return;
        }
      }
    }
    var mac = /Mac|iPhone|iPad/.test(navigator.platform || '');
    var init = {key: 's', code: 'KeyS', ctrlKey: !mac, metaKey: mac, bubbles: true, cancelable: true, composed: true};
    var target = box || element;
    ['keydown', 'keyup'].forEach(function (type) {
      var ev = new KeyboardEvent(type, init);
      Object.defineProperty(ev, 'keyCode', {get: function () { return 83; }});
      Object.defineProperty(ev, 'which', {get: function () { return 83; }});
      target.dispatchEvent(ev);
    });
    reply('requested', 'shortcut');
  } catch (err) {
    reply('failed', err && err.message ? err.message : err);
  }
})(element);
"""


def _mtime(path: Path) -> Optional[int]:
    try:
        return path.stat().st_mtime_ns
    except OSError:
        return None


class Submit(widgets.VBox):
    """Submit to a competition from a notebook and watch the submission to its end.

    What to submit: this notebook (saved first, the default), this notebook as
    last saved, or a zip, notebook or folder next to it; `path` preselects
    one.  Shows the submissions left, then the progress (queue position,
    Preparing, Running, Scoring) and the scores or the failing cell with its
    traceback.  `last_submission` is the final answer of the last submission.
    """

    save_timeout = 20.0   # seconds for the front end to answer the save request
    save_settle = 10.0    # seconds for a save by shortcut to reach the disk
    follow_interval = 1.0

    def __init__(self, competition: str, *, phase: Optional[int] = None, client: Optional[CompeteClient] = None,
                 path: Optional[str | os.PathLike] = None, description: str = "", **kwargs: Any):
        super().__init__(**kwargs)
        self.add_class("compete-submit")
        self.client, problem = _make_client(client)
        self.state = SubmitState(self.client, competition, phase)
        self.state.interval = self.follow_interval
        self._closed = False
        self._pending: Optional[dict[str, Any]] = None
        self._timer: Optional[threading.Timer] = None
        self._worker: Optional[threading.Thread] = None
        try:
            self.notebook: Optional[Path] = current_notebook_path()
        except CompeteError:
            self.notebook = None
        self._title = widgets.HTML()
        self._left = widgets.HTML()
        self._left.add_class("compete-submissions-left")
        options = self._choices(path)
        self._what = widgets.Dropdown(description="What", options=options,
                                      layout=widgets.Layout(width="auto"), style={"description_width": "initial"})
        listed = path is not None and f"path:{Path(path)}" in [value for _, value in options]
        self._path = widgets.Text(placeholder="or a path: predictions.zip, my_code/, other.ipynb",
                                  value=str(path) if path is not None and not listed else "",
                                  layout=widgets.Layout(width="32em"))
        self._description = widgets.Text(placeholder="a note for yourself (optional)", value=description,
                                         layout=widgets.Layout(width="32em"))
        self._button = widgets.Button(description="Submit", button_style="primary", icon="upload",
                                      tooltip="Submit to the competition")
        self._button.add_class("compete-submit-button")
        self._status = widgets.HTML()
        self._status.add_class("compete-submit-status")
        # Hidden: the front end's answer to a save request, and where the save script runs.
        self._reply = widgets.Text(layout=widgets.Layout(display="none"))
        self._reply.add_class("compete-save-reply")
        self._script = widgets.Output(layout=widgets.Layout(display="none"))
        self._script.add_class("compete-save-script")
        self.children = [self._title, self._left, self._what, self._path, self._description, self._button,
                         self._status, self._reply, self._script]
        self.state.listeners.append(lambda _state: self._render())
        if problem:
            self.state.fail(problem)
        else:
            self.state.load()
        self._button.on_click(self._on_click)
        self._reply.observe(self._on_reply, names="value")
        self._render()

    # -- what to submit ------------------------------------------------------------------------
    def _choices(self, preselect: Any = None) -> list[tuple[str, str]]:
        options: list[tuple[str, str]] = []
        if self.notebook is not None:
            options.append((f"This notebook ({self.notebook.name}), saved first", "notebook"))
            options.append((f"This notebook ({self.notebook.name}), as last saved", "notebook-disk"))
        folder = self.notebook.parent if self.notebook is not None else Path.cwd()
        found: list[tuple[str, str]] = []
        try:
            entries = sorted(folder.iterdir(), key=lambda p: p.name.lower())
        except OSError:
            entries = []
        for entry in entries:
            if entry.name.startswith(".") or entry.name in SKIPPED_FOLDERS:
                continue
            if self.notebook is not None and entry.resolve() == self.notebook:
                continue
            if entry.is_dir():
                found.append((f"{entry.name}/ (folder, zipped)", f"path:{entry.name}"))
            elif entry.suffix in (".zip", ".ipynb"):
                found.append((entry.name, f"path:{entry.name}"))
        options += found[:50]
        if preselect is not None:
            wanted = f"path:{Path(preselect)}"
            listed = [o for o in options if o[1] == wanted]
            if listed:
                options.remove(listed[0])
                options.insert(0, listed[0])
        if not options:
            options.append(("(type a path below)", "none"))
        return options

    def _choice(self) -> tuple[str, Any]:
        typed = self._path.value.strip()
        base = self.notebook.parent if self.notebook is not None else Path.cwd()
        if typed:
            path = Path(typed).expanduser()
            return "path", path if path.is_absolute() else base / path
        value = self._what.value
        if value in ("notebook", "notebook-disk"):
            if self.notebook is None:
                return "error", "cannot tell which notebook this is: type its path"
            return ("save", self.notebook) if value == "notebook" else ("path", self.notebook)
        if value and value.startswith("path:"):
            return "path", base / value[len("path:"):]
        return "error", "choose what to submit, or type a path"

    # -- clicking ------------------------------------------------------------------------------
    def _on_click(self, _button: Any = None) -> None:
        if self.state.busy or self._closed:
            return
        kind, target = self._choice()
        if self.client is None:
            self.state.fail(self.state.error or "no competition service to submit to")
        elif kind == "error":
            self.state.fail(target)
        elif kind == "save":
            self._request_save(target)
        else:
            self._start(target)

    def _request_save(self, notebook: Path) -> None:
        token = uuid.uuid4().hex
        self._pending = {"token": token, "path": notebook, "mtime": _mtime(notebook)}
        self.state.set_stage("saving")
        script = SAVE_SCRIPT % {"token": json.dumps(token), "issued": int(time.time() * 1000)}
        from IPython.display import Javascript

        self._script.outputs = ()
        self._script.append_display_data(Javascript(script))
        self._timer = threading.Timer(self.save_timeout, self._save_timed_out, args=(token,))
        self._timer.daemon = True
        self._timer.start()

    def _on_reply(self, change: dict[str, Any]) -> None:
        try:
            answer = json.loads(change["new"] or "{}")
        except ValueError:
            return
        pending = self._pending
        if not isinstance(answer, dict) or pending is None or answer.get("token") != pending["token"]:
            return
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
        self._script.outputs = ()
        status = answer.get("status")
        if status == "saved":
            self._start(pending["path"])
        elif status == "requested":
            self._start(pending["path"], settle=pending["mtime"])
        else:
            self.state.fail(f"the notebook could not be saved ({answer.get('detail') or 'no reason given'}): "
                            "save it (Ctrl+S), choose \"as last saved\" and click Submit again")

    def _save_timed_out(self, token: str) -> None:
        if self._pending is None or self._pending["token"] != token:
            return
        self._pending = None
        self._script.outputs = ()
        self.state.fail("the notebook was not saved: this front end did not run the save request. Save the "
                        "notebook (Ctrl+S or File > Save), choose \"as last saved\" and click Submit again")

    def _start(self, path: Path, *, settle: Optional[int] = -1) -> None:
        """Submit `path` on a thread; with `settle`, first wait for the file's mtime to move past it."""
        self._button.disabled = True
        self.state.set_stage("saving" if settle != -1 else "uploading")
        self._worker = threading.Thread(target=self._run, args=(Path(path), settle), daemon=True,
                                        name="compete-submit")
        self._worker.start()

    def _run(self, path: Path, settle: Optional[int]) -> None:
        try:
            if settle != -1:
                deadline = time.monotonic() + self.save_settle
                while _mtime(path) == settle and time.monotonic() < deadline and not self._closed:
                    time.sleep(0.1)
                if self._closed:
                    return
                if _mtime(path) == settle:
                    self.state.fail("the notebook was not saved (its file did not change): save it (Ctrl+S), "
                                    "choose \"as last saved\" and click Submit again")
                    return
            final = self.state.run(path, self._description.value.strip())
            if final is not None and final.get("status") == "Finished":
                for board in list(_OPEN_BOARDS):
                    if board.state.competition == self.state.competition:
                        board._poke()
        finally:
            self._button.disabled = self._closed
            if not self._closed:
                self._refresh_choices()

    def _refresh_choices(self) -> None:
        current = self._what.value
        options = self._choices()
        if list(self._what.options) != options:
            self._what.options = options
            if current in [v for _, v in options]:
                self._what.value = current

    # -- life -------------------------------------------------------------------------------
    @property
    def last_submission(self) -> Optional[dict[str, Any]]:
        """The final answer about the last submission made here (None before one ends)."""
        return self.state.last_submission

    def wait(self, timeout: Optional[float] = None) -> Optional[dict[str, Any]]:
        """Block until the running submission (if any) ends; returns `last_submission`."""
        worker = self._worker
        if worker is not None:
            worker.join(timeout)
        return self.last_submission

    def close(self) -> None:
        """Stop following (the submission itself goes on), then close the widget."""
        self._closed = True
        self._pending = None
        if self._timer is not None:
            self._timer.cancel()
        self.state.stop_event.set()
        worker = self._worker
        if worker is not None and worker is not threading.current_thread():
            worker.join(10)
        super().close()

    # -- drawing -----------------------------------------------------------------------------
    def _render(self) -> None:
        state = self.state
        phase = f" \u2014 phase {state.phase_name}" if state.phase_name else ""
        self._title.value = f"<b>Submit to {_esc(state.title)}</b>{_esc(phase)}"
        left = state.left_text()
        if state.registration == "none" and self.client is not None:
            link = f"{self.client.prefix}competitions/{state.competition}"
            self._left.value = (f'<span>{_esc(left)} <a href="{_esc(link)}" target="_blank" rel="noopener">'
                                "Open the competition page</a></span>")
        else:
            self._left.value = f"<span>{_esc(left)}</span>" if left else ""
        self._button.disabled = state.busy or self._closed
        prefix = self.client.prefix if self.client is not None else ""
        self._status.value = state.to_html(prefix)

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        bundle = _widget_bundle(self, **kwargs)
        prefix = self.client.prefix if self.client is not None else ""
        left = self.state.left_text()
        bundle["text/html"] = (f"<div><b>Submit to {_esc(self.state.title)}</b>"
                               + (f"<p>{_esc(left)}</p>" if left else "")
                               + self.state.to_html(prefix) + "</div>")
        bundle["text/plain"] = self.state.to_text()
        return bundle

    def __repr__(self) -> str:
        return f"<Submit {self.state.competition}: {self.state.stage}>"
