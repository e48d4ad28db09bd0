"""Pages of announcements and mail: the Announcements tab and its send form, Messages, mail settings,
one-click unsubscribe, and the admins' page of the kept mail (the embedded default without SMTP)."""
from __future__ import annotations

import re

from tests.support.service_harness import PREFIX, ok


def test_an_organizer_announces_and_participants_read_it_on_the_tab_and_in_their_messages(world_server):
    server, world = world_server
    ann, olga = server.browser("ann"), server.browser("olga")
    settings = ok(ann.get("messages/settings")).text
    assert 'id="mail-email"' in settings and 'id="mail-submission_failed"' in settings
    saved = ann.post("messages/settings", {"email": "ann@example.org", "mail-announcement": "on"})
    assert saved.status_code == 302
    assert 'value="ann@example.org"' in ok(ann.follow(saved)).text

    tab = ok(olga.get(f"competitions/{world.slug}/announcements")).text
    # The send form says where mail goes: no SMTP here, so the Maildir.
    assert 'id="announce-send"' in tab and "Maildir" in re.search(r'id="mail-transport">(.*?)</p>', tab, re.S).group(1)
    assert 'id="announce-send"' not in ok(ann.get(f"competitions/{world.slug}/announcements")).text
    sent = olga.post(f"competitions/{world.slug}/announcements",
                     {"to": "all", "subject": "Kick-off", "body": "Welcome **all**<script>x()</script>"})
    assert sent.status_code == 302
    assert "Announcement sent to all participants (2 recipients): 1 mail queued" in ok(olga.follow(sent)).text
    refused = olga.post(f"competitions/{world.slug}/announcements", {"to": "all", "subject": "", "body": ""})
    assert "The announcement was not sent: subject: write a subject" in ok(olga.follow(refused)).text
    assert ann.post(f"competitions/{world.slug}/announcements",
                    {"to": "all", "subject": "x", "body": "y"}).status_code == 403

    page = ok(ann.get(f"competitions/{world.slug}/announcements")).text
    assert "Kick-off" in page and "<strong>all</strong>" in page and "<script>x()" not in page
    inbox = ok(ann.get("messages")).text
    message_id = re.search(r'<tr data-message="(\d+)" class="unread">', inbox).group(1)
    assert "Kick-off" in ok(ann.get(f"messages/{message_id}")).text
    assert 'class="unread"' not in ok(ann.get("messages")).text
    assert server.browser("oscar").get(f"messages/{message_id}").status_code == 404
    assert server.browser("root").get(f"messages/{message_id}").status_code == 404

    # The mail thread's pass keeps it in the Maildir; admins read it there, nobody else.
    assert server.platform.send_queued() == {"sent": 1}
    for user in ("olga", "ann"):
        assert server.browser(user).get("admin/mail").status_code == 403, user
    kept = ok(server.browser("root").get("admin/mail")).text
    assert "Kick-off" in kept and "ann@example.org" in kept and "No SMTP server is configured" in kept
    link = re.search(rf"{re.escape(PREFIX)}unsubscribe/[A-Za-z0-9_-]+/announcement", kept).group(0)

    # One click, no login: a GET asks, a POST (as a mail client's one-click) stops that kind.
    assert 'id="mail-announcement" checked' in ok(ann.get("messages/settings")).text
    anonymous = server.browser()
    assert 'id="unsubscribe"' in ok(anonymous.get(link[len(PREFIX):])).text
    done = anonymous.post(link[len(PREFIX):], {"List-Unsubscribe": "One-Click"}, xsrf=False)
    assert done.status_code == 200 and 'id="unsubscribed"' in done.text
    assert 'id="mail-announcement" checked' not in ok(ann.get("messages/settings")).text
    assert anonymous.post(f"unsubscribe/{'x' * 30}/announcement", {}, xsrf=False).status_code == 404
