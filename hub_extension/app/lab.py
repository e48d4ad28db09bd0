"""Open in JupyterLab as a use case: which files of a phase the actor may have, delivered to their server.

Organizers and approved participants get a phase's starting kit and public
data, as for the downloads; the delivery itself (the manifest, what is kept,
what is offered as an update, the hub and the contents API) is
`hub_extension.starting_kit`.
"""
from __future__ import annotations

import logging
from typing import Any, Optional
from urllib.parse import quote

from ..errors import Forbidden, NotFound
from ..starting_kit import (
    COMPETITIONS_FOLDER,
    DATA_FOLDER,
    KitFile,
    LabAccess,
    LabServer,
    deliver,
    files_of_zip,
    main_notebook,
)
from .actors import Actor
from .competitions import Competitions
from .views import Views

log = logging.getLogger("compete.starting_kit")


class Lab:
    """Kits into users' JupyterLab, with the competition's views and downloads deciding who gets what."""

    def __init__(self, views: Views, competitions: Competitions):
        self.views = views
        self.competitions = competitions

    def phase_files(self, slug: str, number: int, actor: Actor) -> tuple[dict[str, Any], list[KitFile]]:
        """(the competition as `actor` sees it, the `KitFile`s to deliver) for phase `number`.

        Organizers and approved participants only, as for the downloads.
        """
        detail = self.views.competition_detail(slug, actor)
        phase = next((p for p in detail["phases"] if p["number"] == number), None)
        if phase is None:
            raise NotFound(f"competition {slug!r} has phases 1 to {len(detail['phases'])}, not {number}")
        files: list[KitFile] = []
        wanted = [("starting_kit", "", phase["has_starting_kit"]),
                  ("public_data", DATA_FOLDER, phase["has_public_data"])]
        for what, prefix, present in wanted:
            if not present:
                continue
            archive, _ = self.competitions.phase_download(slug, number, what, actor)  # checks who may have it
            files += files_of_zip(archive, prefix=prefix, source=what)
        if not (phase["has_starting_kit"] or phase["has_public_data"]):
            # Who may not download is told so first, as for the downloads themselves.
            try:
                self.competitions.phase_download(slug, number, "starting_kit", actor)
            except NotFound:
                pass
        if not files:
            raise NotFound(f"phase {number} of {slug!r} has no starting kit and no public data to open")
        return detail, files

    def open_in_lab(self, slug: str, number: int, actor: Actor, access: Optional[LabAccess] = None,
                    *, page: str = "") -> dict[str, Any]:
        """Put phase `number`'s starting kit and public data into `actor`'s server; where to open it.

        Returns `{"url", "folder", "notebook", "written", "kept", "updated", "update_copies", "note"}`;
        `url` opens the kit's notebook (or the folder) in JupyterLab; `page` (the
        competition page's address) is kept in the manifest for the participant.
        `access` (a `LabAccess`) defaults to the hub's environment, read after the permission checks.
        """
        if actor.is_anonymous:
            raise Forbidden("log in first")
        detail, files = self.phase_files(slug, number, actor)
        access = access or LabAccess.from_environment()
        server = LabServer(access, actor.username)
        server_url = server.ensure_running()
        folder = f"{COMPETITIONS_FOLDER}/{slug}"
        result = deliver(server, folder, files, slug=slug, title=detail["title"], phase=number, page=page)
        notebook = main_notebook(files)
        target = f"{folder}/{notebook}" if notebook else folder
        log.info("%s opened phase %s of %s in JupyterLab: %d written, %d kept, %d updates offered",
                 actor.username, number, slug, len(result["written"]), len(result["kept"]), len(result["updated"]))
        return {"url": f"{server_url}lab/tree/{quote(target)}", "folder": folder, "notebook": notebook, **result}
