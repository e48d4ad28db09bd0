"""Charts of the statistics pages, drawn on the server as SVG with matplotlib.

Each chart is made from a statistics table (`app.statistics`): a title, axis
labels, the title again as the SVG's `<title>` and accessible name, and the
page shows the same table below it.  A table without rows is no chart: its
place says "No data yet".

Matplotlib is used without pyplot (a `Figure` of its own per chart, no global
state), one chart at a time, and each SVG is kept by a digest of the data it
shows: a page viewed again draws nothing.  Pages call `statistics_charts` off
the event loop (`run_blocking`).
"""
from __future__ import annotations

import datetime as dt
import hashlib
import io
import json
import re
import threading
from collections import OrderedDict
from typing import Any, Callable, Optional

from markupsafe import Markup, escape

NO_DATA = "No data yet"
# Colours of the submission statuses (colour-blind safe, after Okabe and Ito), in `Status.ALL` order.
STATUS_COLOURS = {"submitted": "#999999", "preparing": "#56B4E9", "running": "#0072B2", "scoring": "#009E73",
                  "finished": "#2e7d32", "failed": "#D55E00", "cancelled": "#E69F00"}
ACCENT = "#0b5cad"
SECOND = "#E69F00"
_KEPT = 128
_lock = threading.Lock()
_svgs: "OrderedDict[str, Markup]" = OrderedDict()


def no_data(title: str) -> Markup:
    return Markup('<p class="muted no-data" role="note">{}: {}.</p>').format(NO_DATA, title)


def chart(kind: str, title: str, data: dict[str, Any]) -> Markup:
    """The SVG of chart `kind` (see DRAWERS) of statistics table `data`; "No data yet" when it has no rows
    (a histogram: when every bucket is empty)."""
    rows = data.get("rows") or []
    if not rows or (kind == "histogram" and not any(value for row in rows for value in row[1:])):
        return no_data(title)
    digest = hashlib.sha256(json.dumps([kind, title, data], sort_keys=True, default=str).encode()).hexdigest()
    with _lock:
        kept = _svgs.get(digest)
        if kept is not None:
            _svgs.move_to_end(digest)
            return kept
        # One at a time: matplotlib's font and text caches are shared by every figure.
        svg = _draw(DRAWERS[kind], title, data)
        _svgs[digest] = svg
        while len(_svgs) > _KEPT:
            _svgs.popitem(last=False)
    return svg


def _draw(drawer: Callable[[Any, dict[str, Any]], None], title: str, data: dict[str, Any]) -> Markup:
    # Matplotlib costs about a second to import: only the pages that draw load it.
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7.5, 3.2), dpi=96, layout="constrained")
    axes = figure.subplots()
    drawer(axes, data)
    axes.set_title(title, fontsize=11, loc="left")
    axes.spines[["top", "right"]].set_visible(False)
    axes.grid(axis="y", alpha=0.3)
    out = io.StringIO()
    figure.savefig(out, format="svg", metadata={"Date": None})
    return _accessible(out.getvalue(), title)


def _accessible(svg: str, title: str) -> Markup:
    """The `<svg>` element alone (no XML prologue), named by its title for assistive technology."""
    svg = svg[svg.index("<svg"):]
    svg = re.sub(r"<svg\b", '<svg role="img" aria-label="{}"'.format(escape(title)), svg, count=1)
    end = svg.index(">") + 1
    return Markup(svg[:end] + "<title>{}</title>".format(escape(title)) + svg[end:])


def _days(axes: Any, rows: list[list[Any]]) -> list[int]:
    """The x of each row: days since the first row's day, on an axis labelled with dates (gaps stay gaps)."""
    days = [dt.date.fromisoformat(str(row[0])[:10]) for row in rows]
    first = days[0]
    xs = [(day - first).days for day in days]
    span = max(xs[-1], 6)  # at least a week wide: one day's bar stays a bar, not the whole chart
    step = max(1, -(-span // 8))
    ticks = list(range(0, span + 1, step))
    axes.set_xticks(ticks, [(first + dt.timedelta(days=x)).strftime("%d %b\n%Y" if i == 0 else "%d %b")
                            for i, x in enumerate(ticks)], fontsize=8)
    axes.set_xlim(-0.7, span + 0.7)
    axes.set_xlabel("day (UTC)")
    return xs


def _legend(axes: Any) -> None:
    # Beside the plot, never over its bars.
    axes.legend(fontsize=8, frameon=False, loc="upper left", bbox_to_anchor=(1.0, 1.0))


def _per_day(axes: Any, data: dict[str, Any]) -> None:
    """Stacked bars: submissions of each day by status."""
    columns, rows = data["columns"], data["rows"]
    xs = _days(axes, rows)
    bottom = [0] * len(rows)
    for status in columns[1:-1]:
        i = columns.index(status)
        counts = [row[i] for row in rows]
        if any(counts):
            axes.bar(xs, counts, bottom=bottom, label=status, color=STATUS_COLOURS.get(status, ACCENT), width=0.8)
            bottom = [b + c for b, c in zip(bottom, counts)]
    _legend(axes)
    axes.set_ylabel("submissions")
    _integers(axes.yaxis)


def _participants(axes: Any, data: dict[str, Any]) -> None:
    """Registrations so far (a step line) and who submitted each day (bars)."""
    columns, rows = data["columns"], data["rows"]
    xs = _days(axes, rows)
    axes.bar(xs, [row[columns.index("submitting")] for row in rows], color=SECOND, width=0.8,
             label="submitting that day")
    axes.step(xs, [row[columns.index("registered_total")] for row in rows], where="post", color=ACCENT,
              linewidth=2, marker="o", markersize=4, label="registered so far")
    _legend(axes)
    axes.set_ylabel("participants")
    _integers(axes.yaxis)


def _failures(axes: Any, data: dict[str, Any]) -> None:
    """Horizontal bars: the most common failure reasons, the most common on top."""
    rows = list(reversed(data["rows"]))
    labels = [_short(str(row[0]), 48) for row in rows]
    axes.barh(range(len(rows)), [row[1] for row in rows], color=STATUS_COLOURS["failed"])
    axes.set_yticks(range(len(rows)), labels, fontsize=8)
    axes.set_xlabel("failed submissions")
    _integers(axes.xaxis)
    axes.grid(axis="x", alpha=0.3)


def _histogram(axes: Any, data: dict[str, Any]) -> None:
    """Grouped bars: how many submissions waited, and ran, for how long."""
    rows = data["rows"]
    xs = range(len(rows))
    axes.bar([x - 0.2 for x in xs], [row[1] for row in rows], width=0.4, color=SECOND, label="waiting in the queue")
    axes.bar([x + 0.2 for x in xs], [row[2] for row in rows], width=0.4, color=ACCENT, label="running")
    axes.set_xticks(list(xs), [str(row[0]) for row in rows], fontsize=8)
    axes.set_xlabel("time")
    axes.set_ylabel("submissions")
    _integers(axes.yaxis)
    _legend(axes)


def _queues(axes: Any, data: dict[str, Any]) -> None:
    """Bars: each queue's workers now, beside its submissions waiting."""
    columns, rows = data["columns"], data["rows"]
    xs = range(len(rows))
    axes.bar([x - 0.2 for x in xs], [row[columns.index("workers")] for row in rows], width=0.4, color=ACCENT,
             label="workers")
    axes.bar([x + 0.2 for x in xs], [row[columns.index("waiting")] for row in rows], width=0.4, color=SECOND,
             label="submissions waiting")
    axes.set_xticks(list(xs), [_short(str(row[0]), 20) for row in rows], fontsize=8)
    axes.set_xlabel("queue")
    axes.set_ylabel("count")
    _integers(axes.yaxis)
    _legend(axes)


def _short(text: str, width: int) -> str:
    """A label of at most `width` characters, shown as written: a `$` in it is no mathtext."""
    text = text if len(text) <= width else text[: width - 1] + "…"
    return text.replace("$", r"\$")


DRAWERS: dict[str, Callable[[Any, dict[str, Any]], None]] = {
    "per_day": _per_day,
    "participants": _participants,
    "failures": _failures,
    "histogram": _histogram,
    "queues": _queues,
}


def _integers(axis: Any) -> None:
    from matplotlib.ticker import MaxNLocator  # with the figure: see _draw

    axis.set_major_locator(MaxNLocator(integer=True))
# The chart of each table a statistics page draws, with its title.
TITLES = {
    "per_day": "Submissions per day, by status now",
    "participants": "Participants over time",
    "failures": "Most common failure reasons",
    "histogram": "Time waiting in the queue and running",
    "queues": "Workers and waiting submissions per queue",
}


# The sections of a statistics page: (chart, the tables below it); a section shows when its tables are there.
SECTIONS = (
    ("per_day", ("per_day",)),
    ("participants", ("participants",)),
    ("failures", ("failures",)),
    ("histogram", ("durations", "histogram")),
    ("queues", ("queues",)),
    (None, ("competitions",)),
)
# Column headers of the tables, for people (the CSV and JSON keep the names).
COLUMN_TITLES = {
    "day": "Day (UTC)", "total": "Total", "registered": "Registered", "registered_total": "Registered so far",
    "submitting": "Submitting", "reason": "Reason", "count": "Count", "share": "Share of failures",
    "latest_submission": "Latest", "measure": "Measure", "mean_s": "Mean (s)", "p50_s": "Median (s)",
    "p90_s": "90th percentile (s)", "p99_s": "99th percentile (s)", "max_s": "Longest (s)", "bucket": "Time",
    "waiting": "Waiting", "running": "Running", "queue": "Queue", "connected": "Connected", "workers": "Workers",
    "seen_at": "Seen at", "competition": "Competition", "title": "Title", "status": "Status",
    "participants": "Participants", "submissions": "Submissions", "failed": "Failed",
    "last_submission": "Last submission",
}
TABLE_TITLES = {"durations": "Waiting and run time", "competitions": "Competitions"}


def statistics_charts(stats: dict[str, Any], names: Optional[tuple[str, ...]] = None) -> dict[str, Markup]:
    """The charts of a statistics answer, by table name."""
    wanted = names or tuple(name for name in TITLES if name in stats)
    return {name: chart(name, TITLES[name], stats[name]) for name in wanted}
