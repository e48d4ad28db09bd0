"""The profile page, `{prefix}profile`: the logged-in user sets the display name and affiliation others see.

Linked from the header of every page for logged-in users.  A refused value
shows the form again as typed, with what to fix; nothing is saved then.
"""
from __future__ import annotations

from typing import Any

from ..app import PlatformError
from ..app.profiles import AFFILIATION_MAX, DISPLAY_NAME_MAX
from .pages import PageHandler


class ProfilePageHandler(PageHandler):
    def context(self, profile: dict[str, Any]) -> dict[str, Any]:
        return {"profile": profile, "display_name_max": DISPLAY_NAME_MAX, "affiliation_max": AFFILIATION_MAX}

    def get(self) -> None:
        actor = self.require_login()
        self.show("profile.html", **self.context(self.platform.profile(actor)))

    async def post(self) -> None:
        actor = self.require_login()
        changes = {"display_name": self.get_body_argument("display_name", ""),
                   "affiliation": self.get_body_argument("affiliation", "")}
        try:
            await self.run_blocking(self.platform.save_profile, actor, changes)
        except PlatformError as exc:
            self.set_status(exc.status)
            typed = dict(self.platform.profile(actor), **changes)
            self.render_page("profile.html", notices=[{"kind": "error", "text": str(exc)}], **self.context(typed))
            return
        self.notice("Profile saved.")
        self.redirect(f"{self.prefix}profile")


def profile_page_routes(prefix: str) -> list[tuple[str, type]]:
    return [(rf"{prefix}profile", ProfilePageHandler)]
