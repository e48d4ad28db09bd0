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
(phases, boards, sorting, the cached leaderboard, errors; `leaderboard.py`),
`SubmitState` (what is being submitted and how far it got; `submit.py`), and
`Refresher` (a timer thread that stops for good on `stop()`; `refresher.py`).
The widgets render them and wire buttons; `common.py` holds what they share.

Refreshing: `Leaderboard` asks again every `refresh` seconds (at least
`Leaderboard.min_refresh`) with `If-None-Match`; an unchanged leaderboard is a
304 and nothing is redrawn.  A failed refresh keeps the last table, says why
under it, and retries less often (up to 8 times the interval).  `close()`
stops the timer before it returns: no request is made after it.  A finished
submission from a `Submit` box refreshes the open leaderboards of its
competition at once.

"This notebook, saved first" (the default choice of `Submit`): a kernel
cannot save a notebook, only the front end holds its unsaved state.  When
Submit is clicked, the widget puts a small script (`save_notebook.js`) into a
hidden Output widget of its own (outputs there are trusted, so JupyterLab 4 and Notebook 7 run it):

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

from .leaderboard import Leaderboard, LeaderboardState
from .refresher import Refresher
from .submit import Submit, SubmitState

__all__ = ["Leaderboard", "LeaderboardState", "Refresher", "Submit", "SubmitState"]
