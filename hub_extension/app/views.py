"""Views for the adapters: plain data already cut to what the actor may see.

Pages, the REST API, the CLI and the widgets print these and hold no rule of
their own.  Each view reads in one session.
"""
from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, selectinload

from kernels.images import expected_image

from .. import models as m
from ..bundles.model import PageSpec
from ..bundles.refs import page_format
from ..bundles.sanitize import render_page, sanitize_html
from ..contract import StoreLayout
from ..convert import dataset_keys, spec_from_competition
from ..errors import Forbidden, NotFound, PlatformError
from .actors import Actor, is_organizer
from .context import Context
from .editor import program_version
from .names import shown_names
from .fact_sheets import answers_shown
from .records import (
    CHOOSING_RULES,
    competition_status,
    current_phase,
    find_participant,
    find_team,
    get_competition,
    get_phase,
    is_open,
    phase_number,
    phase_rule,
    phases_in_order,
    visible_competition,
)
from .probing import cut_error, cut_scores
from .routing import queue_of
from .queue_order import queue_plan, waiting_estimate
from .routing import queue_of
from .submissions import allowance
from .visibility import (
    ARTIFACT_SIDES,
    LOG_STREAMS,
    latest_runs,
    output_visibility,
    run_log,
    step_side,
    submission_context,
    visible_score_keys,
)

# The largest offset of a page of rows (a database integer holds it on every backend).
MAX_OFFSET = 2**31 - 1


def on_leaderboard(s: Session, sub: m.Submission, competition_id: int) -> Optional[bool]:
    """Whether the phase's leaderboards were ranked with the submission's result.

    None when there is nothing to wait for: it is not Finished, it is one task's
    part of a submission (its parent is what is ranked), or the competition has
    no leaderboard.  False while a board was last ranked before the result was
    recorded: ranking runs apart from recording (`refresher`), so a board read
    right after Finished may not show it yet.  True once every board of the
    phase was ranked since (where it stands then is the submission rule's call).
    """
    if sub.status != m.FINISHED or sub.parent_id is not None:
        return None
    boards = s.scalar(select(func.count(m.Leaderboard.id)).where(m.Leaderboard.competition_id == competition_id))
    if not boards:
        return None
    built, oldest = s.execute(select(func.count(), func.min(m.BoardState.built_at))
                              .where(m.BoardState.phase_id == sub.phase_id)).one()
    return built >= boards and oldest is not None and oldest >= sub.status_changed_at


def _waiting(s: Session, sub: m.Submission, queue: str) -> Optional[dict[str, Any]]:
    """Where a Submitted submission stands: its position and whether any worker can take it."""
    if sub.status != m.SUBMITTED:
        return None
    plan = queue_plan(s, queue)
    position = plan.positions.get(sub.id)
    estimate = waiting_estimate(s, plan, sub.id, m.utcnow())
    state = s.get(m.QueueState, queue)
    workers = list(state.workers or []) if state is not None else []
    if state is None:
        note = f"waiting on queue {queue!r} for the dispatcher"
    elif not state.connected:
        note = f"queue {queue!r} is not reachable: {state.note or 'its scheduler is down'}"
    elif not workers:
        note = f"no worker is attached to queue {queue!r}"
    else:
        note = f"waiting for a free worker of queue {queue!r} ({len(workers)} attached)"
    if sub.id in plan.order.held:
        note = ("held: the phase runs at most so many submissions of each participant or team at once; "
                "it goes when one of theirs ends")
    return {"position": position, "queue": queue, "workers": len(workers), "note": note,
            "estimated_start": estimate["estimated_start"], "held": sub.id in plan.order.held}


def queue_place(waiting: Optional[dict[str, Any]]) -> dict[str, Any]:
    """`queue_position` and `estimated_start` of a submission view (None when it does not wait)."""
    waiting = waiting or {}
    return {"queue_position": waiting.get("position"), "estimated_start": waiting.get("estimated_start")}


def _phase_view(s: Session, comp: m.Competition, ph: m.Phase, number: int, now: dt.datetime,
                current: Optional[m.Phase], organizer: bool) -> dict[str, Any]:
    open_now = is_open(ph, now)
    if ph is current and open_now:
        state = "current"
    elif ph.start is not None and now < ph.start:
        state = "future"
    else:
        state = "past"
    rule = phase_rule(comp, ph)
    view = {
        "number": number,
        "name": ph.name,
        "description": ph.description,
        "start": ph.start.isoformat() if ph.start else None,
        "end": ph.end.isoformat() if ph.end else None,
        "state": state,
        "open": open_now,
        "max_submissions": ph.max_submissions,
        "max_submissions_per_day": ph.max_submissions_per_day,
        "max_concurrent_submissions": ph.max_concurrent_submissions,
        "execution_time_limit": ph.execution_time_limit,
        "has_starting_kit": ph.starting_kit_key is not None,
        "has_public_data": ph.public_data_key is not None,
        "gpus": ph.gpus,
        "queue": queue_of(s, comp, ph),
        "results_only": ph.results_only,
        # What the service takes in this phase (the rule `Submissions.submit` applies).
        "accepts": ["results"] if ph.results_only else ["results", "code", "notebook"],
        "hide_results": ph.hide_results,
        "auto_migrate": ph.auto_migrate,
        "submission_rule": rule,
        "participant_chooses": rule in CHOOSING_RULES,
        "color": ph.color,
    }
    view["allow_reproduce"] = bool(ph.allow_reproduce)  # its participants may reproduce their submissions
    if organizer:
        view["opened_at"] = ph.opened_at.isoformat() if ph.opened_at else None
        view["migrated_at"] = ph.migrated_at.isoformat() if ph.migrated_at else None
    return view


def _judge_image(comp: m.Competition, ph: m.Phase, config: Any) -> str:
    """The image a submission's prediction step runs in (the phase's first task; the platform's aliases applied)."""
    tasks = {t.index: t for t in comp.tasks}
    first = tasks.get((ph.task_indexes or sorted(tasks) or [None])[0])
    requested = (first.ingestion_docker_image if first is not None else None) or comp.docker_image
    return expected_image(requested, dict(config.image_aliases), config.default_image).used


def _submission_summary(sub: m.Submission, part: m.Participant, ph: m.Phase, comp: m.Competition,
                        organizer: bool, now: dt.datetime) -> dict[str, Any]:
    sides = output_visibility(ph, organizer)
    results_hidden = not organizer and ph.hide_results
    if results_hidden:
        scores: dict[str, Optional[float]] = {}
    elif organizer:
        scores = {sc.key: sc.value for sc in sub.scores}
    else:
        visible = visible_score_keys(comp)
        scores = {sc.key: sc.value for sc in sub.scores if sc.key in visible}
    # A Ladder board's columns are withheld from participants, a precision board's rounded (`probing`).
    scores, withheld = (scores, False) if organizer else cut_scores(comp, scores)
    running = None
    if sub.started_at is not None:
        running = ((sub.finished_at or now) - sub.started_at).total_seconds()
    elapsed = (sub.finished_at - sub.submitted_at).total_seconds() if sub.finished_at else None
    rule = phase_rule(comp, ph)
    summary = {
        "id": sub.id,
        "competition": comp.slug,
        "phase": phase_number(comp, ph),
        "phase_name": ph.name,
        "participant": part.username,
        "team": sub.team_id,
        "kind": sub.kind,
        "baseline": bool(sub.baseline),
        "filename": sub.filename,
        "description": sub.description,
        "status": sub.status,
        "submitted_at": sub.submitted_at.isoformat(),
        "started_at": sub.started_at.isoformat() if sub.started_at else None,
        "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
        "elapsed": elapsed,
        "running_time": running,
        "error": sub.error,
        "selected": sub.selected,
        "hidden": sub.hidden,
        "parent": sub.parent_id,
        "scores": scores,
        "scores_withheld": withheld,
        "results_hidden": results_hidden,
        "outputs_hidden": not (sides["prediction"] and sides["scoring"]),
        "participant_chooses": rule in CHOOSING_RULES,
        "terminal": sub.status in m.TERMINAL_STATUSES,
    }
    if results_hidden:
        # A scoring error can quote scores or reference values.
        summary["error"] = "the results of this phase are hidden" if sub.status == m.FAILED else None
    elif not organizer:
        summary["error"] = cut_error(comp, summary["error"])
    return summary


def score_columns(comp: m.Competition, organizer: bool, keys: Any) -> list[dict[str, Any]]:
    """How pages head and format the scores `keys`: each as {key, title, precision}.

    Keys that are leaderboard columns the viewer may see come first, in the boards' order,
    with the column's title and precision; other keys (a scoring program's extra
    outputs) follow by name, headed by the key itself, at the default precision (None).
    """
    wanted = set(keys)
    visible = None if organizer else visible_score_keys(comp)
    found: dict[str, dict[str, Any]] = {}
    for board in comp.leaderboards:
        for c in board.columns:
            if c.key in wanted and c.key not in found and (visible is None or c.key in visible):
                found[c.key] = {"key": c.key, "title": c.title or c.key, "precision": c.precision}
    return list(found.values()) + [{"key": k, "title": k, "precision": None} for k in sorted(wanted - set(found))]


def _task_scores(sub: m.Submission, comp: m.Competition, organizer: bool, results_hidden: bool,
                 outputs_shown: bool = True) -> list[dict]:
    """Each task's own scores ([{task, name, scores}]): all of them for organizers.  A participant
    gets none while the phase hides its results, never the keys of hidden columns, and keys that are
    no column only where the scoring output (which holds them) is shown to them."""
    if results_hidden:
        return []
    names = {t.index: t.name for t in comp.tasks}
    visible = visible_score_keys(comp)
    columns = {c.key for b in comp.leaderboards for c in b.columns}

    def shown(key: str) -> bool:
        return organizer or key in visible or (outputs_shown and key not in columns)

    return [{"task": entry.get("task"), "name": names.get(entry.get("task"), ""),
             "scores": {k: v for k, v in (entry.get("scores") or {}).items() if shown(k)}}
            for entry in sub.task_scores or [] if isinstance(entry, dict)]


class Views:
    """The actor-cut views of competitions and submissions, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- competitions -----------------------------------------------------------------------------
    def competition_detail(self, slug: str, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """A competition as its page shows it, to whoever may see it (`actors.may_see`)."""
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor, full=True)
            organizer = is_organizer(actor, comp)
            phases = phases_in_order(comp)
            current = current_phase(phases, now) if phases else None
            part = find_participant(s, comp, actor.username) if actor.username else None
            terms = None
            if comp.terms is not None:
                source = (comp.extra or {}).get("files", {}).get("terms") or "terms.html"
                terms = render_page(PageSpec(name="terms", title="Terms", content=comp.terms,
                                             format=page_format(str(source))))  # type: ignore[arg-type]
            boards = [b for b in comp.leaderboards if organizer or not b.hidden]
            detail = {
                "slug": comp.slug,
                "title": comp.title,
                "dialect": comp.dialect,
                "description": sanitize_html(comp.description or ""),
                "status": competition_status(phases, now),
                "lifecycle": comp.status,
                "logo": comp.logo_key is not None,
                "contact_email": comp.contact_email,
                "pages": [
                    {"name": p.name, "title": p.title,
                     "html": render_page(PageSpec(name=p.name, title=p.title, content=p.content,
                                                  format=p.format))}  # type: ignore[arg-type]
                    for p in comp.pages
                ],
                "phases": [{**_phase_view(s, comp, ph, n, now, current, organizer),
                            "image": _judge_image(comp, ph, self.ctx.config)}
                           for n, ph in enumerate(phases, start=1)],
                "current_phase": phase_number(comp, current) if current is not None else None,
                "registration": part.status if part is not None else "none",
                "registration_auto_approve": comp.registration_auto_approve,
                "terms": terms,
                "is_organizer": organizer,
                "leaderboards": [{"key": b.key, "title": b.title, "hidden": b.hidden} for b in boards],
                "enable_detailed_results": comp.enable_detailed_results,
                "enable_forum": comp.enable_forum,
                "submissions_left": None,
                "allow_teams": comp.allow_teams,
                "team": None,
                "fact_sheet": [dict(q) for q in comp.fact_sheet or []],
            }
            team = find_team(s, comp.id, actor.username) if comp.allow_teams else None
            if team is not None:
                detail["team"] = {"id": team.id, "name": team.name, "owner": team.owner}
            if organizer:
                detail["organizers"] = sorted({n for n in [comp.created_by, *(comp.admin_names or [])] if n})
                detail["created_at"] = comp.created_at.isoformat()
                detail["lifecycle_changed_at"] = (comp.status_changed_at.isoformat()
                                                  if comp.status_changed_at else None)
                detail["secret"] = comp.secret if comp.status == m.PRIVATE else None
            if part is not None and part.status == m.APPROVED and current is not None:
                detail["submissions_left"] = allowance(s, comp, current, part, now)
        return detail

    def phases_view(self, slug: str, actor: Actor, *, now: Optional[dt.datetime] = None) -> list[dict[str, Any]]:
        return self.competition_detail(slug, actor, now=now)["phases"]

    # -- submissions ------------------------------------------------------------------------------
    def _submission(self, s: Session, sub: m.Submission) -> dict[str, Any]:
        part = s.get(m.Participant, sub.participant_id)
        ph = s.get(m.Phase, sub.phase_id)
        comp = s.get(m.Competition, part.competition_id)
        elapsed = None
        if sub.finished_at is not None:
            elapsed = (sub.finished_at - sub.submitted_at).total_seconds()
        queue = sub.queue or queue_of(s, comp, ph)
        return {
            "id": sub.id,
            "competition": comp.slug,
            "phase": phase_number(comp, ph),
            "participant": part.username,
            "kind": sub.kind,
            "filename": sub.filename,
            "status": sub.status,
            "submitted_at": sub.submitted_at.isoformat(),
            "finished_at": sub.finished_at.isoformat() if sub.finished_at else None,
            "elapsed": elapsed,
            "error": sub.error,
            "selected": sub.selected,
            "scores": {sc.key: sc.value for sc in sub.scores},
            "task_scores": _task_scores(sub, comp, True, False),
            "score_columns": score_columns(comp, True, {sc.key for sc in sub.scores}),
            "artifacts": dict(sub.artifacts or {}),
            "warnings": list(sub.warnings or []),
            "dropped": list(sub.dropped or []),
            "history": [{"status": h.status, "at": h.at.isoformat(), "note": h.note} for h in sub.history],
            "queue": queue,
            "worker": sub.worker,
            "waiting": (waiting := _waiting(s, sub, queue)),
            **queue_place(waiting),
            "on_leaderboard": on_leaderboard(s, sub, comp.id),
        }

    def submission(self, submission_id: int) -> dict[str, Any]:
        """A submission in full (no cut: the CLI's local admin view)."""
        with self.ctx.db.session() as s:
            sub = s.get(m.Submission, submission_id)
            if sub is None:
                raise NotFound(f"no submission {submission_id}")
            return self._submission(s, sub)

    def submissions_of(self, slug: str, username: str) -> list[dict[str, Any]]:
        """A participant's submissions in a competition, oldest first."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            subs = s.scalars(
                select(m.Submission)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id, m.Participant.username == username,
                       m.Submission.reproduces_id.is_(None))
                .order_by(m.Submission.id)
            ).all()
            return [self._submission(s, sub) for sub in subs]

    def submissions_view(
        self,
        slug: str,
        actor: Actor,
        *,
        username: Optional[str] = None,
        phase: Optional[int] = None,
        status: Optional[str] = None,
        offset: int = 0,
        limit: int = 50,
        now: Optional[dt.datetime] = None,
    ) -> dict[str, Any]:
        """A page of submissions, newest first: a participant's own, or everyone's for organizers."""
        now = now or m.utcnow()
        if actor.username is None:
            raise Forbidden("log in to see submissions")
        if status is not None and status not in m.STATUSES:
            raise PlatformError(f"unknown status {status!r}; one of {', '.join(m.STATUSES)}")
        offset, limit = int(offset), int(limit)
        if not 0 <= offset <= MAX_OFFSET:
            raise PlatformError(f"offset must be between 0 and {MAX_OFFSET}, got {offset}")
        limit = max(1, min(limit, 200))
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor, full=True)
            organizer = is_organizer(actor, comp)
            team = None
            if not organizer:
                # A participant's own, and their team's (made by any member).
                username = actor.username
                team = find_team(s, comp.id, username)
            q = (
                select(m.Submission, m.Participant)
                .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                .where(m.Participant.competition_id == comp.id)
            )
            if not organizer:
                q = q.where(m.Submission.reproduces_id.is_(None))  # reproductions are the organizers' checks
            if team is not None:
                q = q.where(or_(m.Participant.username == username, m.Submission.team_id == team.id))
            elif username is not None:
                q = q.where(m.Participant.username == username)
            if phase is not None:
                q = q.where(m.Submission.phase_id == get_phase(comp, phase).id)
            if status is not None:
                q = q.where(m.Submission.status == status)
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.execute(
                q.order_by(m.Submission.id.desc()).offset(offset).limit(limit)
                .options(selectinload(m.Submission.scores))
            ).all()
            phases = {p.id: p for p in comp.phases}
            items = [_submission_summary(sub, part, phases[sub.phase_id], comp, organizer, now)
                     for sub, part in rows]
            shown = shown_names(s, {item["participant"] for item in items})
            for item in items:
                item["participant_name"] = shown.get(item["participant"], item["participant"])
            shown = {key for item in items for key in item["scores"]}
            return {"items": items, "total": total, "offset": offset, "limit": limit,
                    "score_columns": score_columns(comp, organizer, shown)}

    def submission_view(self, submission_id: int, actor: Actor, *, now: Optional[dt.datetime] = None) -> dict[str, Any]:
        """One submission with its history, logs and files, as the actor may see it."""
        now = now or m.utcnow()
        with self.ctx.db.session() as s:
            sub, part, ph, comp, organizer = submission_context(s, submission_id, actor)
            if sub.reproduces_id is not None and not organizer and not ph.allow_reproduce:
                raise Forbidden(f"submission {submission_id} is a reproduction the organizers ran")
            view = _submission_summary(sub, part, ph, comp, organizer, now)
            view["participant_name"] = shown_names(s, [part.username]).get(part.username, part.username)
            sides = output_visibility(ph, organizer)
            view["task_scores"] = _task_scores(sub, comp, organizer, view["results_hidden"], sides["scoring"])
            if not organizer:
                for entry in view["task_scores"]:
                    entry["scores"], cut = cut_scores(comp, entry["scores"])
                    view["scores_withheld"] = view["scores_withheld"] or cut
            task_keys = {key for entry in view["task_scores"] for key in entry["scores"]}
            view["score_columns"] = score_columns(comp, organizer, set(view["scores"]) | task_keys)
            view["history"] = [{"status": h.status, "at": h.at.isoformat(),
                                "note": h.note if organizer else None} for h in sub.history]
            # The image the bundle names for each task's steps, shown beside the one a run used.
            named_images = {(t.index, scoring): (t.scoring_docker_image if scoring else t.ingestion_docker_image)
                            or comp.docker_image for t in comp.tasks for scoring in (True, False)}
            view["runs"] = [
                {"task": r.task_index, "step": r.step, "status": r.status, "exit_code": r.exit_code,
                 "elapsed": r.elapsed, "attempt": r.attempt,
                 "logs": [stream for stream in LOG_STREAMS
                          if run_log(self.ctx.store, r, stream) is not None]
                 if sides[step_side(r.step)] else [],
                 **({"image": r.image, "image_digest": r.image_digest, "worker": r.worker, "error": r.error,
                     "requested_image": named_images.get((r.task_index, r.step == "scoring")),
                     "program": program_version(s, comp, r), "provenance": dict(r.provenance or {})}
                    if organizer else {})}
                for r in latest_runs(sub)
            ]
            view["artifacts"] = sorted(
                name for name in (sub.artifacts or {}) if sides[ARTIFACT_SIDES.get(name, "scoring")]
            )
            queue = sub.queue or queue_of(s, comp, ph)
            if organizer:
                view["queue"] = queue
                view["worker"] = sub.worker
                view["dispatch_count"] = sub.dispatch_count
            # What the run did not keep, and why (sentences, and name/bytes/reason rows): the
            # organizers always; the participant when the phase shows them both sides of the run,
            # since a warning can name a file of the scoring output.
            if organizer or (sides["prediction"] and sides["scoring"]):
                view["warnings"] = list(sub.warnings or [])
                view["dropped"] = list(sub.dropped or [])
            view["waiting"] = _waiting(s, sub, queue)
            view.update(queue_place(view["waiting"]))
            view["on_leaderboard"] = on_leaderboard(s, sub, comp.id)
            view["fact_sheet"] = answers_shown(comp, sub)
            view["reproduces"] = sub.reproduces_id
            if organizer or ph.allow_reproduce:
                view["reproductions"] = list(s.scalars(select(m.Submission.id).where(
                    m.Submission.reproduces_id == sub.id).order_by(m.Submission.id)))
        return view

    # -- administration ---------------------------------------------------------------------------
    def storage_use(self, actor: Actor) -> dict[str, Any]:
        """Bytes used by datasets, submissions and outputs, and per competition (admins).

        Per competition: its bundle's datasets and programs (`data_bytes`), the files its
        submissions sent (`submission_bytes`, each stored file once) and their runs' logs
        and outputs (`output_bytes`).  Sizes come from the `datasets` rows where the platform
        recorded them, else from the store; outputs from one walk of the submissions' folders.
        """
        if not actor.is_admin:
            raise Forbidden("only hub admins may see the storage use")

        def tree_bytes(path: Path) -> tuple[int, int]:
            files = [p for p in path.rglob("*") if p.is_file()] if path.exists() else []
            return len(files), sum(p.stat().st_size for p in files)

        store, db = self.ctx.store, self.ctx.db
        # An object store has no folder: what this machine caches of it is counted.
        root = store.root if store.root is not None else store.cache_dir
        datasets = tree_bytes(root / "datasets")
        outputs = tree_bytes(root / "files")
        db_bytes = None
        if db.dialect == "sqlite":
            db_file = Path(db.engine.url.database or "")
            db_bytes = sum(p.stat().st_size for p in db_file.parent.glob(db_file.name + "*") if p.is_file())
        run_bytes = store.folder_bytes(StoreLayout.SUBMISSIONS)
        with db.session() as s:
            submitted: dict[int, set[str]] = {}
            outputs_of: dict[int, int] = {}
            counts: dict[int, int] = {}
            for comp_id, sub_id, key in s.execute(
                select(m.Participant.competition_id, m.Submission.id, m.Submission.file_key)
                .join(m.Submission, m.Submission.participant_id == m.Participant.id)
            ):
                counts[comp_id] = counts.get(comp_id, 0) + 1
                if key:
                    submitted.setdefault(comp_id, set()).add(key)
                outputs_of[comp_id] = outputs_of.get(comp_id, 0) + run_bytes.get(str(sub_id), 0)
            data_keys = {}
            for comp in s.scalars(select(m.Competition).order_by(m.Competition.id)).all():
                full = get_competition(s, comp.slug, full=True)
                data_keys[comp.id] = (comp.slug, comp.title, set(dataset_keys(spec_from_competition(full))))
            sizes = _key_sizes(s, store, set().union(*submitted.values(), *(k for *_, k in data_keys.values())))
        competitions = [
            {"slug": slug, "title": title, "data_bytes": sum(sizes.get(k, 0) for k in keys),
             "submissions": counts.get(comp_id, 0),
             "submission_bytes": sum(sizes.get(k, 0) for k in submitted.get(comp_id, ())),
             "output_bytes": outputs_of.get(comp_id, 0)}
            for comp_id, (slug, title, keys) in data_keys.items()
        ]
        return {
            "store": str(root),
            "total_bytes": datasets[1] + outputs[1],
            "datasets": {"files": datasets[0], "bytes": datasets[1]},
            "outputs": {"files": outputs[0], "bytes": outputs[1]},
            "database_bytes": db_bytes,
            "competitions": competitions,
        }


# Keys asked about in one query (well under every backend's bound on parameters).
_KEYS_PER_QUERY = 500


def _key_sizes(s: Session, store: Any, keys: set[str]) -> dict[str, int]:
    """The size of each stored dataset key: as recorded in `datasets`, else as the store says (0: not stored)."""
    ordered = sorted(keys)
    sizes: dict[str, int] = {}
    for start in range(0, len(ordered), _KEYS_PER_QUERY):
        chunk = ordered[start:start + _KEYS_PER_QUERY]
        sizes.update(s.execute(select(m.Dataset.key, m.Dataset.size).where(m.Dataset.key.in_(chunk))).all())
    for key in ordered:
        if not sizes.get(key) and store.has_dataset(key):
            sizes[key] = store.dataset_size(key)
    return sizes
