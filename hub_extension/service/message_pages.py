"""Pages of announcements and mail: a competition's Announcements tab, the user's Messages, mail choices,
one-click unsubscribe, and the admins' view of the kept mail.

- `competitions/<slug>/announcements`: participants read what was announced to
  them; organizers also send (to everyone, a phase's participants or a team)
  and see what became of each message's mail;
- `messages`, `messages/<id>`: the user's own messages;
- `messages/settings`: the user's mail address and the kinds they get by mail;
- `unsubscribe/<token>/<kind>`: no login (the token is the proof): GET asks,
  POST stops that kind (a mail client's one-click POST, RFC 8058, too);
- `admin/mail`: the Maildir the embedded default keeps without SMTP (admins).

Everything is the application's (`app.messages`); these handlers ask and show.
"""
from __future__ import annotations

from typing import Any

from ..errors import PlatformError
from .pages import PageHandler

PAGE_SIZE = 50


def _offset(handler: PageHandler) -> int:
    return max(0, handler.query_int("offset") or 0)


class AnnouncementsPage(PageHandler):
    """`competitions/<slug>/announcements`: the tab; POST sends one (organizers)."""

    async def get(self, slug: str) -> None:
        actor = self.require_login()
        comp = self.platform.competition_detail(slug, actor)
        offset = _offset(self)
        listing = await self.run_blocking(self.platform.announcements, slug, actor, offset=offset, limit=PAGE_SIZE)
        audiences = (await self.run_blocking(self.platform.audiences, slug, actor)) if listing["organizer"] else None
        self.show("messages_announcements.html", comp=comp, listing=listing, audiences=audiences, offset=offset,
                  page_size=PAGE_SIZE, nav="announcements")

    async def post(self, slug: str) -> None:
        actor = self.require_login()
        to = self.get_body_argument("to", "all")
        kind, _, ref = to.partition(":")
        subject, body = self.get_body_argument("subject", ""), self.get_body_argument("body", "")
        try:
            sent = await self.run_blocking(self.platform.send_announcement, slug, subject, body, actor,
                                           phase=ref if kind == "phase" else None,
                                           team=ref if kind == "team" else None)
        except PlatformError as exc:
            if exc.status in (401, 403, 404):
                raise
            self.notice(f"The announcement was not sent: {exc}", "error")
            self.redirect(self.competition_url(slug, "/announcements"))
            return
        mail = sent["mail"]
        self.notice(f"Announcement sent to {sent['to']} ({sent['recipients']} recipient"
                    f"{'' if sent['recipients'] == 1 else 's'}): {mail['queued']} mail queued, "
                    f"{mail['no_address']} without a mail address, {mail['unsubscribed']} unsubscribed; "
                    "everyone sees it on this tab.")
        self.redirect(self.competition_url(slug, "/announcements"))


class InboxPage(PageHandler):
    """`messages`: the user's messages, newest first."""

    async def get(self) -> None:
        actor = self.require_login()
        offset = _offset(self)
        listing = await self.run_blocking(self.platform.inbox, actor, offset=offset, limit=PAGE_SIZE)
        self.show("messages.html", listing=listing, offset=offset, page_size=PAGE_SIZE)


class MessagePage(PageHandler):
    """`messages/<id>`: one of the user's messages."""

    async def get(self, message_id: str) -> None:
        actor = self.require_login()
        msg = await self.run_blocking(self.platform.read_message, int(message_id), actor)
        self.show("message.html", msg=msg)


class MailSettingsPage(PageHandler):
    """`messages/settings`: the mail address and the kinds of mail wanted."""

    async def get(self) -> None:
        actor = self.require_login()
        settings = await self.run_blocking(self.platform.mail_settings, actor)
        self.show("messages_settings.html", settings=settings)

    async def post(self) -> None:
        actor = self.require_login()
        settings = await self.run_blocking(self.platform.mail_settings, actor)
        chosen = {k["kind"]: self.get_body_argument(f"mail-{k['kind']}", "") == "on" for k in settings["kinds"]}
        try:
            await self.run_blocking(self.platform.save_mail_settings, actor,
                                    email=self.get_body_argument("email", ""), mail=chosen)
        except PlatformError as exc:
            self.notice(str(exc), "error")
        else:
            self.notice("Your mail settings are saved.")
        self.redirect(f"{self.prefix}messages/settings")


class UnsubscribePage(PageHandler):
    """`unsubscribe/<token>/<kind>`: GET asks, POST stops that kind of mail (no login needed)."""

    follows_hub_session = False

    def check_xsrf_cookie(self) -> None:
        # The unsubscribe token is the proof; a mail client's one-click POST carries no cookie.
        return

    def get(self, token: str, kind: str) -> None:
        label = self.platform.unsubscribe_kind_label(kind)
        self.show("messages_unsubscribe.html", token=token, kind=kind, label=label, done=None)

    def post(self, token: str, kind: str) -> None:
        done = self.platform.unsubscribe(token, kind)
        self.show("messages_unsubscribe.html", token=token, kind=kind, label=done["label"], done=done)


class KeptMailPage(PageHandler):
    """`admin/mail`: the mail kept in the Maildir (admins)."""

    async def get(self) -> None:
        actor = self.require_login()
        offset = _offset(self)
        kept = await self.run_blocking(self.platform.mailbox, actor, offset=offset, limit=PAGE_SIZE)
        self.show("messages_admin.html", kept=kept, offset=offset, page_size=PAGE_SIZE)


def message_page_routes(prefix: str) -> list[tuple[str, Any]]:
    """The routes of these pages under `prefix` (which ends with a slash)."""
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)"
    return [
        (rf"{comp}/announcements", AnnouncementsPage),
        (rf"{prefix}messages", InboxPage),
        (rf"{prefix}messages/([0-9]{{1,18}})", MessagePage),
        (rf"{prefix}messages/settings", MailSettingsPage),
        (rf"{prefix}unsubscribe/([A-Za-z0-9_-]{{1,64}})/([a-z_]{{1,40}})", UnsubscribePage),
        (rf"{prefix}admin/mail", KeptMailPage),
    ]
