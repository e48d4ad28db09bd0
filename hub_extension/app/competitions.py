"""Competitions as bundles: validate, create, export, list, and read their `competition.yaml`.

A competition comes in as a bundle (CodaLab v1.5 or Codabench v2) and goes out
as one; in between it lives as rows (`convert` maps one to the other).  Also
here: what a competition gives out as files (its logo, a phase's starting kit
and public data).
"""
from __future__ import annotations

import datetime as dt
import re
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Optional

from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from .. import models as m
from ..bundles import export_bundle, load_bundle, store_bundle_data
from ..bundles.images import upload_warnings
from ..bundles.model import CompetitionSpec
from ..convert import competition_from_spec, dataset_keys, spec_from_competition
from ..errors import NotFound, PlatformError
from .actors import LOCAL_ADMIN, Actor, is_organizer, may_name_organizers, require_organizer, require_organizer_role
from .context import Context
from .records import (
    COMPETITION_STATUSES,
    competition_status,
    get_competition,
    get_phase,
    phases_in_order,
    require_active,
    visible_competition,
)
from .registrations import require_approved
from .routing import queue_names
from .standings import refresh_competition


def slugify(title: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    return slug[:80] or "competition"


def queue_warnings(s: Session, spec: CompetitionSpec, slug: str) -> list[str]:
    """One sentence per queue the spec names that does not exist here."""
    existing = queue_names(s)
    named = [spec.queue] + [p.queue for p in spec.phases]
    return [f"competition.yaml: queue: no queue {queue!r} here, so its runs go to the default queue until an "
            f"organizer creates it (compete queue create {queue} --competition {slug})"
            for queue in dict.fromkeys(q for q in named if q and q not in existing)]


class Competitions:
    """Bundles in and out, the list of competitions, the yaml text, the files a competition gives out."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- bundles ----------------------------------------------------------------------------------
    def validate_bundle(self, path: str | Path) -> tuple[CompetitionSpec, list[str]]:
        """Read a bundle without storing anything; raises BundleError with every problem."""
        with load_bundle(path, limits=self.ctx.unpack_limits(), dataset_exists=self.ctx.dataset_exists) as bundle:
            return bundle.spec, list(bundle.warnings) + upload_warnings(bundle, self.ctx.config)

    def create_competition(self, path: str | Path, actor: Actor = LOCAL_ADMIN) -> tuple[str, list[str]]:
        """Create a competition from a bundle; returns (slug, warnings).

        All or nothing: a bundle with any problem creates no row (datasets are
        content-addressed, so bytes stored before a failed insert are shared,
        never half a competition).
        """
        require_organizer_role(actor)
        with load_bundle(path, limits=self.ctx.unpack_limits(), dataset_exists=self.ctx.dataset_exists) as bundle:
            # Which images the steps will run in, and program code no runtime here can run (Python 2).
            warnings = list(bundle.warnings) + upload_warnings(bundle, self.ctx.config)
            stored = store_bundle_data(bundle, self.ctx.store)
        slug = self.insert_competition(stored, actor)
        with self.ctx.db.session() as s:
            warnings += queue_warnings(s, stored, slug)
        return slug, warnings

    def insert_competition(self, spec: CompetitionSpec, actor: Actor) -> str:
        """The rows of a stored spec under a new slug (no permission check: callers make it)."""
        with self.ctx.db.session() as s:
            self._record_datasets(s, spec, actor)
            base = slugify(spec.title)
            taken = set(s.scalars(select(m.Competition.slug).where(m.Competition.slug.like(f"{base}%"))))
            slug, n = base, 2
            while slug in taken:
                slug, n = f"{base}-{n}", n + 1
            comp = competition_from_spec(spec, slug, actor.username)
            s.add(comp)
            s.flush()
            refresh_competition(s, comp.id)  # its boards, empty
        return slug

    def _record_datasets(self, s: Session, spec: CompetitionSpec, actor: Actor) -> None:
        for key, kind in dataset_keys(spec).items():
            if s.get(m.Dataset, key) is None:
                s.add(m.Dataset(key=key, kind=kind, size=self.ctx.store.dataset_size(key), created_by=actor.username))

    def competition_spec(self, slug: str) -> CompetitionSpec:
        with self.ctx.db.session() as s:
            return spec_from_competition(get_competition(s, slug, full=True))

    def export_competition(self, slug: str, out: str | Path, *, light: bool = False, actor: Actor = LOCAL_ADMIN) -> Path:
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            spec = spec_from_competition(comp)
        out = Path(out)
        out.parent.mkdir(parents=True, exist_ok=True)
        export_bundle(spec, self.ctx.store, out, light=light)
        return out

    # -- the list ---------------------------------------------------------------------------------
    def list_competitions(self, now: Optional[dt.datetime] = None, search: Optional[str] = None,
                          status: Optional[str] = None, *, actor: Actor = LOCAL_ADMIN) -> list[dict[str, Any]]:
        """The competitions listed to the actor, filtered by words in the title or description and by status.

        Published and archived ones are listed to everyone; drafts and private
        ones to their organizers only (`lifecycle` says which), never to anyone
        else, even their participants: a private competition is reached by its link.
        """
        now = now or m.utcnow()
        if status is not None and status not in COMPETITION_STATUSES:
            raise PlatformError(f"unknown status {status!r}; one of {', '.join(COMPETITION_STATUSES)}")
        words = (search or "").lower().split()
        with self.ctx.db.session() as s:
            comps = s.scalars(
                select(m.Competition).options(selectinload(m.Competition.phases)).order_by(m.Competition.id)
            ).all()
            found = []
            for c in comps:
                haystack = f"{c.slug} {c.title} {c.description or ''}".lower()
                state = competition_status(c.phases, now)
                if any(w not in haystack for w in words) or (status is not None and state != status):
                    continue
                if c.status in (m.DRAFT, m.PRIVATE) and not is_organizer(actor, c):
                    continue
                found.append({
                    "slug": c.slug,
                    "title": c.title,
                    "dialect": c.dialect,
                    "status": state,
                    "phases": len(c.phases),
                    "created_at": c.created_at.isoformat(),
                    "logo": c.logo_key is not None,
                    "lifecycle": c.status,
                })
            return found

    def organized_competitions(self, actor: Actor) -> list[dict[str, str]]:
        """`{"slug", "title"}` of the competitions the actor organizes, by title."""
        if actor.is_anonymous:
            return []
        with self.ctx.db.session() as s:
            comps = s.scalars(select(m.Competition).order_by(m.Competition.title))
            return [{"slug": c.slug, "title": c.title} for c in comps if is_organizer(actor, c)]

    # -- files a competition gives out ------------------------------------------------------------
    def competition_logo(self, slug: str, actor: Actor = LOCAL_ADMIN) -> Path:
        """The logo file (to whoever may see the competition page)."""
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            if comp.logo_key is None:
                raise NotFound(f"competition {slug!r} has no logo")
            return self.ctx.store.dataset_path(comp.logo_key)

    def phase_download(self, slug: str, number: int, what: str, actor: Actor) -> tuple[Path, str]:
        """(file, download name) of a phase's starting kit or public data.

        Organizers and approved participants only: data is given out with the
        terms accepted, as on CodaLab and Codabench.  Reference data has no route
        out at all.
        """
        if what not in ("starting_kit", "public_data"):
            raise NotFound(f"no download {what!r}; choose starting_kit or public_data")
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor, full=True)
            ph = get_phase(comp, number)
            if not is_organizer(actor, comp):
                require_approved(s, comp, actor)
            key = ph.starting_kit_key if what == "starting_kit" else ph.public_data_key
            if key is None:
                raise NotFound(f"phase {number} of {slug!r} has no {what.replace('_', ' ')}")
            return self.ctx.store.dataset_path(key), f"{comp.slug}-phase{number}-{what.replace('_', '-')}.zip"

    # -- competition.yaml in the browser ----------------------------------------------------------
    def light_bundle_folder(self, comp: m.Competition, folder: Path) -> Path:
        """The competition as a light bundle (datasets by key) unpacked in `folder`."""
        archive = folder / "light.zip"
        export_bundle(spec_from_competition(comp), self.ctx.store, archive, light=True)
        root = folder / "bundle"
        with zipfile.ZipFile(archive) as zf:
            zf.extractall(root)
        archive.unlink()
        return root

    def competition_yaml(self, slug: str, actor: Actor) -> str:
        """`competition.yaml` as it would be exported light (datasets named by their keys)."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            require_organizer(actor, comp)
            with tempfile.TemporaryDirectory(prefix="compete-yaml-") as tmp:
                root = self.light_bundle_folder(comp, Path(tmp))
                return (root / "competition.yaml").read_text(encoding="utf-8")

    def apply_spec(self, s: Session, comp: m.Competition, spec: CompetitionSpec, actor: Actor) -> list[str]:
        """Bring a competition's rows to `spec` in place (the editor's one way to save; see `editor`).

        Phases are matched by their index in the bundle, so a kept phase keeps
        its id, its submissions and its clock marks.
        """
        fresh = competition_from_spec(spec, comp.slug, comp.created_by)
        old_phases = {ph.index: ph for ph in comp.phases}
        new_phases = {ph.index: ph for ph in fresh.phases}
        numbers = {ph.id: n for n, ph in enumerate(phases_in_order(comp), start=1)}
        problems = []
        if list(spec.admin_names) != list(comp.admin_names or []) and not may_name_organizers(actor, comp):
            problems.append(f"competition.yaml: admin_names: only the creator ({comp.created_by}) and the admins "
                            "choose the co-organizers; leave the list as it is")
        for index, ph in sorted(old_phases.items()):
            if index in new_phases:
                continue
            used = s.scalar(select(func.count(m.Submission.id)).where(m.Submission.phase_id == ph.id))
            if used:
                problems.append(f"competition.yaml: phases: phase {numbers[ph.id]} ({ph.name!r}) has {used} "
                                "submission(s) and cannot be removed")
        if problems:
            return problems
        self._record_datasets(s, spec, actor)
        for name in ("title", "dialect", "description", "logo_key", "docker_image", "queue",
                     "registration_auto_approve", "enable_detailed_results", "terms", "contact_email",
                     "admin_names", "extra",
                     "enable_forum"):
            setattr(comp, name, getattr(fresh, name))
        comp.allow_teams = fresh.allow_teams
        comp.anonymous_leaderboard = fresh.anonymous_leaderboard
        comp.fact_sheet = fresh.fact_sheet
        new_pages, new_tasks, new_boards = list(fresh.pages), list(fresh.tasks), list(fresh.leaderboards)
        new_solutions = list(fresh.solutions)
        fresh.pages, fresh.tasks, fresh.leaderboards, fresh.phases, fresh.solutions = [], [], [], [], []
        comp.pages.clear()
        comp.tasks.clear()
        comp.leaderboards.clear()
        comp.solutions.clear()
        for index, ph in old_phases.items():
            if index not in new_phases:
                comp.phases.remove(ph)
        s.flush()  # deletes first: tasks and boards are unique per competition by index and key
        comp.pages.extend(new_pages)
        comp.tasks.extend(new_tasks)
        comp.leaderboards.extend(new_boards)
        comp.solutions.extend(new_solutions)
        kept = {"id", "competition_id", "opened_at", "migrated_at"}
        columns = [c for c in m.Phase.__table__.columns if c.key not in kept]
        for index, new in sorted(new_phases.items()):
            if index in old_phases:
                for column in columns:
                    value = getattr(new, column.key)
                    if value is None and not column.nullable:
                        continue  # a column the spec does not carry keeps its value
                    setattr(old_phases[index], column.key, value)
            else:
                comp.phases.append(new)
        s.flush()
        refresh_competition(s, comp.id)  # boards ranked again by the new definition
        return []
