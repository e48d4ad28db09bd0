"""The REST API of probing-resistant boards: `PUT .../leaderboards/{board}/probing` (organizers).

Sets what the public board shows (`app.probing`): `{"display_precision": 3,
"ladder": "fixed", "ladder_step": 0.01}` (null or absent: off), saved as every
edit is (`editor_api.EditHandler`) and the boards rebuilt with it.
"""
from __future__ import annotations

from typing import Any

from ..app import PlatformError
from .editor_api import EditHandler

FIELDS = ("display_precision", "ladder", "ladder_step")


class ProbingHandler(EditHandler):
    async def put(self, slug: str, board: str) -> None:
        body = self.json_body()
        unknown = sorted(set(body) - set(FIELDS))
        if unknown:
            raise PlatformError(f"unknown field(s) {', '.join(unknown)}: send {{\"display_precision\": 3, "
                                f"\"ladder\": \"fixed\" or \"parameter_free\" or null, \"ladder_step\": 0.01}}")
        self.write_edit(await self.run_blocking(self.platform.set_probing, slug, board, self.require_login(),
                                                **{name: body.get(name) for name in FIELDS}))


def probing_api_routes(comp: str) -> list[Any]:
    """The routes under a competition's API path `comp`."""
    return [(rf"{comp}/leaderboards/(?P<board>[A-Za-z0-9_.-]{{1,120}})/probing", ProbingHandler)]
