"""Open in JupyterLab as a use case: which files of a phase the actor may have, delivered to their server.

Organizers and approved participants get a phase's starting kit and public
data, as for the downloads; the delivery itself (the manifest, what is kept,
what is offered as an update, the hub and the contents API) is
`hub_extension.starting_kit`.

Which environment the phase's notebooks get is said, never guessed: the
judge's kernel for the image the phase runs in (its notebooks delivered with
that kernelspec), when the platform installed one for users' servers
(`hub_extension.cli_kernel.install_for_servers`, at the hub's start); else the
servers' own Python, whether it has the image's packages at their versions,
and why (`Lab.environment`).
"""
from __future__ import annotations

import logging
from typing import Any, Optional
from urllib.parse import quote

from kernels.images import expected_image

from ..judge_specs import notebook_kernelspec, read_servers_state, short_digest
from ..errors import Forbidden, NotFound
from ..starting_kit import (
    COMPETITIONS_FOLDER,
    KitFile,
    LabAccess,
    LabServer,
    deliver,
    files_of_zip,
    front_file,
    lay_out,
    main_notebook,
    with_kernelspec,
)
from .actors import Actor
from .competitions import Competitions
from .records import get_competition, get_phase
from .views import Views

log = logging.getLogger("compete.starting_kit")


class Lab:
    """Kits into users' JupyterLab, with the competition's views and downloads deciding who gets what."""

    def __init__(self, views: Views, competitions: Competitions):
        self.views = views
        self.competitions = competitions

    def phase_files(self, slug: str, number: int, actor: Actor) -> tuple[dict[str, Any], list[KitFile]]:
        """(the competition as `actor` sees it, the `KitFile`s to deliver at their places) for phase `number`.

        Organizers and approved participants only, as for the downloads.
        """
        detail, files = self.phase_archives(slug, number, actor)
        return detail, lay_out(*_by_source(files))[1]

    def phase_archives(self, slug: str, number: int, actor: Actor) -> tuple[dict[str, Any], list[KitFile]]:
        """(the competition as `actor` sees it, the files of phase `number`'s archives by their names there).

        Where they go is `starting_kit.lay_out`'s decision.
        """
        detail = self.views.competition_detail(slug, actor)
        phase = next((p for p in detail["phases"] if p["number"] == number), None)
        if phase is None:
            raise NotFound(f"competition {slug!r} has phases 1 to {len(detail['phases'])}, not {number}")
        files: list[KitFile] = []
        wanted = [("starting_kit", phase["has_starting_kit"]), ("public_data", phase["has_public_data"])]
        for what, present in wanted:
            if not present:
                continue
            archive, _ = self.competitions.phase_download(slug, number, what, actor)  # checks who may have it
            files += files_of_zip(archive, source=what)
        if not (phase["has_starting_kit"] or phase["has_public_data"]):
            # Who may not download is told so first, as for the downloads themselves.
            try:
                self.competitions.phase_download(slug, number, "starting_kit", actor)
            except NotFound:
                pass
        if not files:
            raise NotFound(f"phase {number} of {slug!r} has no starting kit and no public data to open")
        return detail, files

    def phase_image(self, slug: str, number: int) -> str:
        """The runtime image the judge runs phase `number` in, as this platform maps the bundle's image.

        The image of the step that runs the participant's code: the first
        task's ingestion program when it has one, else its scoring program;
        the competition's image when the task names none.
        """
        config = self.views.ctx.config
        with self.views.ctx.db.session() as s:
            comp = get_competition(s, slug, full=True)
            ph = get_phase(comp, number)
            wanted = {str(i) for i in (ph.task_indexes or [])}
            tasks = sorted((t for t in comp.tasks if not wanted or str(t.index) in wanted), key=lambda t: t.index)
            requested = comp.docker_image
            if tasks:
                task = tasks[0]
                own = task.ingestion_docker_image if task.ingestion_program_key else task.scoring_docker_image
                requested = own or comp.docker_image
        return expected_image(requested, dict(config.image_aliases), config.default_image).used

    def environment(self, slug: str, number: int) -> dict[str, Any]:
        """What a participant's notebooks of phase `number` run in, in their JupyterLab.

        `{"kind": "judge" | "server", "image", "digest", "kernelspec", "reason", "text"}`:
        "judge" with the kernelspec of the judge's kernel for the phase's image,
        else "server" (the server's own Python) with the reason, and
        `packages`: "same" (the image's packages at its versions), "differ"
        or "unknown" (an image the platform has no package list for).
        """
        image = self.phase_image(slug, number)
        state = read_servers_state(self.views.ctx.config.home)
        entry = (state or {}).get("kernels", {}).get(image) if state and state.get("docker") else None
        if entry:
            digest = short_digest(entry["digest"])
            return {"kind": "judge", "image": image, "digest": entry["digest"], "kernelspec": notebook_kernelspec(entry),
                    "reason": None,
                    "text": f"Your notebooks run in the judge's environment: the kernel {entry['display_name']}, "
                            f"in the image {image}@{digest}, with the judge's packages and limits."}
        if state is None:
            reason = "the hub installed no judge kernels for users' servers"
        elif not state.get("docker"):
            reason = state.get("reason") or "users' servers have no Docker engine"
        else:
            reason = (state.get("missing") or {}).get(image) or f"there is no judge kernel for {image} here"
        differs = ((state or {}).get("packages") or {}).get(image)
        if differs == []:
            # The servers' Python has the packages the image is built with, at the same versions.
            packages = "same"
            what = (f"this server's Python, with the packages of the judge's image {image} at the same "
                    f"versions but not its limits ({reason})")
        elif differs:
            packages = "differ"
            what = (f"this server's Python, whose packages differ from those of the judge's image {image}: "
                    f"{'; '.join(differs)} ({reason})")
        else:
            packages = "unknown"
            what = f"this server's Python, without the packages of the judge's image {image} ({reason})"
        return {"kind": "server", "image": image, "digest": None, "kernelspec": None, "reason": reason,
                "packages": packages,
                "text": f"Your notebooks run in {what}; a test submission tells how they run in the judge."}

    def open_in_lab(self, slug: str, number: int, actor: Actor, access: Optional[LabAccess] = None,
                    *, page: str = "") -> dict[str, Any]:
        """Put phase `number`'s starting kit and public data into `actor`'s server; where to open it.

        Returns `{"url", "folder", "notebook", "opened", "written", "kept", "updated", "update_copies", "note",
        "moved", "layout", "environment"}` (`environment`: what the notebooks run in, as `environment` says);
        `url` opens the kit's notebook (else its README, else its folder) in JupyterLab; `page` (the
        competition page's address) is kept in the manifest for the participant.
        `access` (a `LabAccess`) defaults to the hub's environment, read after the permission checks.
        """
        if actor.is_anonymous:
            raise Forbidden("log in first")
        detail, raw = self.phase_archives(slug, number, actor)
        access = access or LabAccess.from_environment()
        server = LabServer(access, actor.username)
        server_url = server.ensure_running()
        folder = f"{COMPETITIONS_FOLDER}/{slug}"
        environment = self.environment(slug, number)
        kit, data = _by_source(with_kernelspec(raw, environment["kernelspec"]))
        layout, files = lay_out(kit, data)
        result = deliver(server, folder, files, slug=slug, title=detail["title"], phase=number, page=page,
                         layout=layout)
        notebook = main_notebook(files)
        # In front: the kit's notebook, else its README; the folder only when the kit has neither.
        front = front_file(files)
        target = f"{folder}/{front}" if front else f"{folder}/{layout.kit}".rstrip("/")
        log.info("%s opened phase %s of %s in JupyterLab: %d written, %d kept, %d updates offered",
                 actor.username, number, slug, len(result["written"]), len(result["kept"]), len(result["updated"]))
        return {"url": f"{server_url}lab/tree/{quote(target)}", "folder": folder, "notebook": notebook,
                "opened": target, **result, "environment": environment}


def _by_source(files: list[KitFile]) -> tuple[list[KitFile], list[KitFile]]:
    """(the starting kit's files, the public data's files)."""
    return ([f for f in files if f.source == "starting_kit"], [f for f in files if f.source == "public_data"])
