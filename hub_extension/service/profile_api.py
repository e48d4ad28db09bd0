"""The profile API: `GET` and `PUT {prefix}api/v1/profile`, the logged-in user's own profile.

`PUT` takes `{"display_name": ..., "affiliation": ...}` (a field left out stays,
"" or null clears it) and answers the profile after; a refused field is a 400
that says what to fix, and nothing is saved.
"""
from __future__ import annotations

from .base import ApiHandler


class ProfileHandler(ApiHandler):
    async def get(self) -> None:
        actor = self.require_login()
        self.write_json(await self.run_blocking(self.platform.profile, actor))

    async def put(self) -> None:
        actor = self.require_login()
        body = self.json_body()
        self.write_json(await self.run_blocking(self.platform.save_profile, actor, body))
