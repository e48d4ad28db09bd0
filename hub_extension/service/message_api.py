"""The REST API of announcements, the user's messages and mail choices (`app.messages`).

- `competitions/{slug}/announcements`: GET the Announcements (organizers all,
  a participant theirs); POST `{"subject", "body", "phase"?, "team"?}` sends
  one (organizers), answered 201 with its recipients and their mail status;
- `messages`, `messages/{id}`: the caller's own messages (reading one marks it read);
- `me/mail`: GET and PUT `{"email", "mail": {kind: bool}}` the caller's mail choices;
- `admin/mail`: the mail kept in the Maildir when no SMTP server is configured (admins).

The routes are listed in `api.api_routes` and documented in `openapi.yaml`.
Nothing here waits for mail: sending is the mail thread's (`service.__main__`).
"""
from __future__ import annotations

from typing import Any

from .base import ApiHandler


class AnnouncementsHandler(ApiHandler):
    async def get(self, slug: str) -> None:
        offset, limit = self.paging()
        answer = await self.run_blocking(self.platform.announcements, slug, self.require_login(),
                                         offset=offset, limit=limit)
        self.write_json({**answer, "offset": offset, "limit": limit})

    async def post(self, slug: str) -> None:
        actor = self.require_login()
        body = self.json_body()
        sent = await self.run_blocking(self.platform.send_announcement, slug, body.get("subject"), body.get("body"),
                                       actor, phase=body.get("phase"), team=body.get("team"))
        self.write_json(sent, 201)


class MessagesHandler(ApiHandler):
    async def get(self) -> None:
        offset, limit = self.paging()
        answer = await self.run_blocking(self.platform.inbox, self.require_login(), offset=offset, limit=limit)
        self.write_json({**answer, "offset": offset, "limit": limit})


class MessageHandler(ApiHandler):
    async def get(self, message_id: str) -> None:
        self.write_json(await self.run_blocking(self.platform.read_message, int(message_id), self.require_login()))


class MailSettingsHandler(ApiHandler):
    async def get(self) -> None:
        self.write_json(await self.run_blocking(self.platform.mail_settings, self.require_login()))

    async def put(self) -> None:
        actor = self.require_login()
        body = self.json_body()
        self.write_json(await self.run_blocking(self.platform.save_mail_settings, actor, email=body.get("email"),
                                                mail=body.get("mail")))


class KeptMailHandler(ApiHandler):
    async def get(self) -> None:
        offset, limit = self.paging()
        answer = await self.run_blocking(self.platform.mailbox, self.require_login(), offset=offset, limit=limit)
        self.write_json({**answer, "offset": offset, "limit": limit})


def message_api_routes(api: str, comp: str) -> list[Any]:
    """The routes under the API root `api` and a competition's API path `comp`."""
    return [
        (rf"{comp}/announcements", AnnouncementsHandler),
        (rf"{api}/messages", MessagesHandler),
        (rf"{api}/messages/(?P<message_id>[0-9]{{1,18}})", MessageHandler),
        (rf"{api}/me/mail", MailSettingsHandler),
        (rf"{api}/admin/mail", KeptMailHandler),
    ]
