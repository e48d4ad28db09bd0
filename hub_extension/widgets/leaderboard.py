"""The leaderboard widget: `LeaderboardState` (no front end) and `Leaderboard` (ipywidgets).

In a phase where participants choose what the leaderboard shows (the
submission rules `Add`, `Add_And_Delete`, `Add_And_Delete_Multiple`), a
finished submission is not on the board until its author puts it there.  The
widget says so, and lists the viewer's own finished submissions that are not
shown, each with a button that puts it on the board (the API's
`PUT submissions/<id>/selected`).
"""
from __future__ import annotations

import os
import threading
import time
from typing import Any, Optional
from urllib.parse import quote

import ipywidgets as widgets

from ..client import CompeteClient, CompeteError
from .common import (
    MISSING,
    OPEN_BOARDS,
    _clock,
    _describe,
    _esc,
    _fmt_score,
    _fmt_time,
    _make_client,
    _text_table,
    _widget_bundle,
)
from .refresher import Refresher

OWN_ROW_STYLE = "background: rgba(255, 200, 0, 0.25); font-weight: bold;"
# The widget shows the board's first rows (and the participant's own row wherever it is).
PAGE_ROWS = 50
# Rules under which the participant chooses what the board shows (as the service's phase view says).
CHOOSING_RULES = frozenset({"Add", "Add_And_Delete", "Add_And_Delete_Multiple"})


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
        # The viewer's own finished submissions of the phase not on the board, where they choose what it shows.
        self.choices: list[dict[str, Any]] = []
        self.chosen_note: Optional[str] = None  # what the last choice did, or why it failed
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
            self.phases = [{"number": p.get("number"), "name": p.get("name"), "state": p.get("state"),
                            "submission_rule": p.get("submission_rule"),
                            "chooses": bool(p.get("participant_chooses"))
                            or p.get("submission_rule") in CHOOSING_RULES}
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
                    f"competitions/{quote(self.competition, safe='')}/leaderboard",
                    {"phase": self.phase, "board": self.board, "limit": PAGE_ROWS})
            except CompeteError as exc:
                self.error = _describe(exc)
                return self.error != before
            self.error = None
            self.updated_at = time.time()
            if changed or data is not self.data:
                self.data = data
                if self.phase is None:
                    self.phase = data.get("phase")
                self._load_choices()
                return True
            chose = self._load_choices()
            return before is not None or chose

    # -- choosing what the board shows -------------------------------------------------------
    @property
    def rule(self) -> Optional[str]:
        phase = next((p for p in self.phases if p["number"] == self.phase), None)
        return phase.get("submission_rule") if phase else None

    @property
    def chooses(self) -> bool:
        """Whether, in this phase, the participant puts submissions on the board themselves."""
        phase = next((p for p in self.phases if p["number"] == self.phase), None)
        return bool(phase and phase.get("chooses"))

    def _load_choices(self) -> bool:
        """Ask for the viewer's finished submissions not on the board; True when that list changed."""
        before = [c["id"] for c in self.choices]
        if not self.chooses or self.client is None or not self.username:
            self.choices = []
            return bool(before)
        try:
            mine = self.client.submissions(self.competition, self.phase, status="Finished")
        except CompeteError as exc:
            self.error = _describe(exc)
            return True
        shown = {r.get("submission") for r in (self.data or {}).get("rows") or []}
        self.choices = [s for s in mine if s.get("participant") == self.username and not s.get("baseline")
                        and not s.get("selected") and s.get("id") not in shown]
        return [c["id"] for c in self.choices] != before

    def choose(self, submission_id: int) -> bool:
        """Put the viewer's submission `submission_id` on the board; True when the service did."""
        if self.client is None:
            return False
        with self._lock:
            try:
                self.client.select(int(submission_id))
            except CompeteError as exc:
                self.chosen_note = f"Submission {submission_id} could not be put on the leaderboard: {_describe(exc)}"
                return False
            self.chosen_note = f"Submission {submission_id} is on the leaderboard now."
            self.data = None  # the next refresh draws the board with it
            self.refresh()
            return True

    def how_to_show(self) -> str:
        """What a participant does to be on the board, in a phase where they choose; "" elsewhere."""
        if not self.chooses:
            return ""
        text = (f"In this phase (submission rule {self.rule}) the leaderboard shows only the submissions "
                "participants put there: a finished submission is not on it until you choose it.")
        if self.rule == "Add":
            text += " Once on it, a submission cannot be taken off; you may put another one there instead."
        if self.choices:
            text += " Choose one of your finished submissions below (or on the competition page)."
        else:
            text += " Your finished submissions will be listed here, each with a button that puts it there."
        return text

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
        rows = (self.data or {}).get("rows") or []
        marked = next((row for row in rows if row.get("own")), None)  # the service marks it (and sends it)
        if marked is not None:
            return marked
        for row in rows:
            if self.username and row.get("participant") == self.username and not row.get("baseline"):
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
                       f'of {self.data.get("total", len(rows))}</p>')
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
        facts = list(self.data.get("fact_sheet_columns") or [])  # answers, after the scores
        out += [f'<th data-fact-sheet="{_esc(f.get("key"))}" style="text-align: left; padding: 2px 8px;">'
                f'{_esc(f.get("title") or f.get("key"))}</th>' for f in facts]
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
                + "".join(f'<td data-fact-sheet="{_esc(f.get("key"))}" style="padding: 2px 8px;">'
                          f'{_esc(_answer((row.get("fact_sheet") or {}).get(f.get("key"))))}</td>' for f in facts)
                + "</tr>")
        out.append("</tbody></table>")
        if not rows and not self.data.get("note"):
            empty = "No submission is on the leaderboard yet." if self.chooses else "No finished submission yet."
            out.append(f'<p class="compete-leaderboard-empty">{empty}</p>')
        if self.chooses:
            out.append(f'<p class="compete-leaderboard-how">{_esc(self.how_to_show())}</p>')
            if self.choices:
                out.append('<ul class="compete-leaderboard-choices">')
                for sub in self.choices:
                    out.append(f'<li data-submission="{_esc(sub.get("id"))}">{_esc(self.describe_choice(sub))}</li>')
                out.append("</ul>")
        if self.chosen_note:
            out.append(f'<p class="compete-leaderboard-chosen">{_esc(self.chosen_note)}</p>')
        if self.data.get("note"):
            out.append(f'<p class="compete-leaderboard-note"><i>{_esc(self.data["note"])}</i></p>')
        if (self.data.get("probing") or {}).get("note"):  # a probing-resistant board (`scoring.probing`)
            out.append(f'<p class="compete-leaderboard-probing"><i>{_esc(self.data["probing"]["note"])}</i></p>')
        if self.error:
            out.append(f'<p class="compete-leaderboard-error" style="color: #b00020;">Could not refresh: '
                       f'{_esc(self.error)} (showing the leaderboard of {_clock(self.updated_at)})</p>')
        out.append("</div>")
        return "".join(out)

    def describe_choice(self, sub: dict[str, Any]) -> str:
        """One of the viewer's submissions, as offered: its number, time and scores."""
        scores = sub.get("scores") or {}
        shown = [f"{c.get('title') or c['key']} {_fmt_score(scores.get(c['key']), c.get('precision'))}"
                 for c in self.columns if c["key"] in scores]
        return f"Submission {sub.get('id')} ({_fmt_time(sub.get('finished_at') or sub.get('submitted_at'))})" + (
            ": " + ", ".join(shown) if shown else "")

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
        empty = "(no submission is on the leaderboard yet)" if self.chooses else "(no finished submission yet)"
        lines.append(_text_table(header, body) if body else empty)
        if self.chooses:
            lines.append(self.how_to_show())
            lines += [f"  {self.describe_choice(sub)}: CompeteClient().select({sub.get('id')})"
                      for sub in self.choices]
        if self.data.get("note"):
            lines.append(str(self.data["note"]))
        if (self.data.get("probing") or {}).get("note"):
            lines.append(str(self.data["probing"]["note"]))
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
        self._choices = widgets.VBox()
        self._choices.add_class("compete-leaderboard-choose")
        self.choice_buttons: dict[int, widgets.Button] = {}
        self.children = [widgets.HBox([self._phase, self._board, self._sort, self._reverse, self._reload]),
                         self._table, self._choices, self._status]
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
        OPEN_BOARDS.add(self)
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
        OPEN_BOARDS.discard(self)
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
            self._render_choices()
            self.renders += 1
        self._render_status()

    def _render_choices(self) -> None:
        """One button per own finished submission not on the board (phases where participants choose)."""
        wanted = [int(s["id"]) for s in self.state.choices]
        if wanted == list(self.choice_buttons):
            return
        buttons: dict[int, widgets.Button] = {}
        rows = []
        for sub in self.state.choices:
            sid = int(sub["id"])
            button = self.choice_buttons.get(sid) or widgets.Button(
                description="Put on the leaderboard", icon="check", button_style="primary",
                tooltip=f"Show submission {sid} on the leaderboard", layout=widgets.Layout(width="auto"))
            if sid not in self.choice_buttons:
                button.on_click(lambda _, sid=sid: self.choose(sid))
            button.add_class("compete-leaderboard-choose-button")
            buttons[sid] = button
            rows.append(widgets.HBox([widgets.Label(self.state.describe_choice(sub)), button]))
        self.choice_buttons = buttons
        self._choices.children = rows

    def choose(self, submission_id: int) -> bool:
        """Put the viewer's submission on the board (what its button does); True when the service did."""
        if self._closed:
            return False
        with self._lock:
            for button in self.choice_buttons.values():
                button.disabled = True
            try:
                done = self.state.choose(submission_id)
            finally:
                for button in self.choice_buttons.values():
                    button.disabled = False
            self._render(table=True)
            return done

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


def _answer(value: Any) -> str:
    """A fact sheet answer in a board's cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value)
