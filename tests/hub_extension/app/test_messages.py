"""Announcements and notices: who receives them, what is kept, and mail through a real SMTP server or the Maildir."""
from __future__ import annotations

import datetime as dt
import mailbox
import urllib.parse

import pytest

from hub_extension import models as m
from hub_extension.app import Forbidden, NotFound, Platform, PlatformError
from hub_extension.app.actors import Actor
from tests.support.builders import ADMIN, ANN, BEN, ORGANIZER, finish, results_zip

CARL = Actor("carl")


def emails(platform, **addresses: str) -> None:
    for name, address in addresses.items():
        platform.save_mail_settings(Actor(name), email=address)


def statuses(platform, message_id: int) -> dict[str, str]:
    with platform.db.session() as s:
        return {r.username: r.mail_status for r in s.get(m.Message, message_id).recipients}


@pytest.fixture
def smtp_platform(tmp_path, smtp_server):
    p = Platform(home=str(tmp_path / "smtp-home"))
    p.config.smtp_host, p.config.smtp_port = smtp_server.host, smtp_server.port
    p.config.mail_site_url = "https://hub.example.org/services/competitions/"
    yield p
    p.close()


def test_an_announcement_reaches_every_approved_participant_by_smtp_and_is_kept(smtp_platform, smtp_server, tmp_path):
    from tests.support.builders import build_world

    world = build_world(smtp_platform, tmp_path)
    emails(smtp_platform, ann="ann@example.org")
    smtp_platform.save_mail_settings(BEN, mail={"announcement": False}, email="ben@example.org")
    sent = smtp_platform.send_announcement(world.slug, "Deadline moved", "The end is **next week**.\n\n<script>x()</script>",
                                           ORGANIZER)
    assert sent["recipients"] == 2 and sent["mail"]["queued"] == 1 and sent["mail"]["unsubscribed"] == 1
    assert "<strong>next week</strong>" in sent["html"] and "<script" not in sent["html"]
    # Nothing is sent by the request: the mail thread's pass does it.
    assert statuses(smtp_platform, sent["id"]) == {"ann": "queued", "ben": "unsubscribed"}
    assert smtp_platform.send_queued() == {"sent": 1}
    msg = smtp_server.wait_for(lambda rcpt, msg: msg["Subject"] == "Deadline moved" and rcpt == ["ann@example.org"])
    assert statuses(smtp_platform, sent["id"]) == {"ann": "sent", "ben": "unsubscribed"}
    unsubscribe = msg["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("https://hub.example.org/services/competitions/unsubscribe/")
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text = msg.get_body(preferencelist=("plain",)).get_content()
    assert "The end is **next week**." in text and unsubscribe in text
    assert f"https://hub.example.org/services/competitions/messages/{sent['id']}" in text
    # Both see it on the tab and in their messages, mail or not.
    for actor in (ANN, BEN):
        tab = smtp_platform.announcements(world.slug, actor)
        assert [i["subject"] for i in tab["items"]] == ["Deadline moved"]
        assert smtp_platform.inbox(actor)["unread"] >= 1
    assert smtp_platform.read_message(sent["id"], BEN)["subject"] == "Deadline moved"
    organizer_view = smtp_platform.announcements(world.slug, ORGANIZER)
    assert organizer_view["items"][0]["mail"]["sent"] == 1
    # One click stops that kind: later announcements are not mailed to ann.
    token, kind = urllib.parse.urlparse(unsubscribe).path.split("/")[-2:]
    assert smtp_platform.unsubscribe(token, kind)["username"] == "ann"
    again = smtp_platform.send_announcement(world.slug, "Again", "text", ORGANIZER)
    assert statuses(smtp_platform, again["id"]) == {"ann": "unsubscribed", "ben": "unsubscribed"}


def test_sending_is_for_organizers_and_messages_for_their_recipients(platform, world):
    with pytest.raises(Forbidden):
        platform.send_announcement(world.slug, "Hi", "text", ANN)
    with pytest.raises(Forbidden):
        platform.mailbox(ORGANIZER)
    sent = platform.send_announcement(world.slug, "Hi", "text", ORGANIZER)
    with pytest.raises(NotFound):
        platform.read_message(sent["id"], CARL)
    with pytest.raises(NotFound):
        platform.read_message(sent["id"], ADMIN)
    with pytest.raises(Forbidden):
        platform.announcements(world.slug, CARL)
    with pytest.raises(PlatformError, match="subject: write a subject; body: write the message"):
        platform.send_announcement(world.slug, " ", "", ORGANIZER)
    with pytest.raises(PlatformError, match="phase: phase 9 .* does not exist"):
        platform.send_announcement(world.slug, "Hi", "text", ORGANIZER, phase=9)


def test_a_phase_announcement_goes_to_who_submitted_in_it(platform, world, tmp_path):
    platform.register(world.slug, "carl", CARL, accept_terms=True)
    sent = platform.send_announcement(world.slug, "Phase news", "text", ORGANIZER, phase=1)
    assert sorted(statuses(platform, sent["id"])) == ["ann", "ben"]
    assert sent["to"].startswith("the participants of phase")
    everyone = platform.send_announcement(world.slug, "All", "text", ORGANIZER)
    assert sorted(statuses(platform, everyone["id"])) == ["ann", "ben", "carl"]


def test_a_team_announcement_goes_to_its_members(platform, world):
    with platform.db.session() as s:
        comp = s.query(m.Competition).filter_by(slug=world.slug).one()
        team = m.Team(competition_id=comp.id, name="Owls", owner="ann")
        team.members = [m.TeamMember(competition_id=comp.id, username="ann", status=m.MEMBER),
                        m.TeamMember(competition_id=comp.id, username="ben", status=m.INVITED)]
        s.add(team)
        s.flush()
        team_id = team.id
    sent = platform.send_announcement(world.slug, "Owls", "text", ORGANIZER, team=team_id)
    assert list(statuses(platform, sent["id"])) == ["ann"] and sent["to"] == "the members of team Owls"
    assert [t["name"] for t in platform.audiences(world.slug, ORGANIZER)["teams"]] == ["Owls"]


def test_without_smtp_mail_is_kept_in_a_maildir_that_admins_read(platform, world):
    emails(platform, ann="ann@example.org")
    sent = platform.send_announcement(world.slug, "Kept", "In the *Maildir*.", ORGANIZER)
    assert platform.send_queued() == {"sent": 1}
    box = mailbox.Maildir(f"{platform.config.home}/mail", create=False)
    assert [msg["Subject"] for msg in box] == ["Kept"]
    kept = platform.mailbox(ADMIN)
    assert kept["smtp"] is False and "Maildir" in kept["mail"]
    assert kept["items"][0]["to"] == "ann@example.org" and "In the *Maildir*." in kept["items"][0]["text"]
    assert kept["statuses"]["sent"] == 1 and statuses(platform, sent["id"])["ben"] == "no_address"
    assert "Maildir" in platform.audiences(world.slug, ORGANIZER)["mail"]


def test_a_server_away_is_retried_then_given_up_and_a_refused_address_fails_at_once(smtp_platform, smtp_server,
                                                                                        tmp_path):
    from tests.support.builders import build_world

    world = build_world(smtp_platform, tmp_path)
    emails(smtp_platform, ann="ann@example.org", ben="nobody@example.org")
    smtp_server.recorder.refuse.add("nobody@example.org")
    port = smtp_platform.config.smtp_port
    smtp_platform.config.smtp_port = 1  # nothing listens there
    sent = smtp_platform.send_announcement(world.slug, "Retry", "text", ORGANIZER)
    assert smtp_platform.send_queued() == {"retry": 2}
    with smtp_platform.db.session() as s:
        errors = [r.error for r in s.get(m.Message, sent["id"]).recipients]
    assert all(e for e in errors)
    # Not tried again before the retry delay.
    assert smtp_platform.send_queued() == {}
    smtp_platform.config.smtp_port = port
    later = m.utcnow() + dt.timedelta(seconds=smtp_platform.config.mail_retry_seconds + 1)
    assert smtp_platform.send_queued(later) == {"sent": 1, "failed": 1}
    assert statuses(smtp_platform, sent["id"]) == {"ann": "sent", "ben": "failed"}
    # A server away past the give-up time: failed.
    smtp_platform.config.smtp_port = 1
    old = smtp_platform.send_announcement(world.slug, "Old", "text", ORGANIZER)
    much_later = m.utcnow() + dt.timedelta(hours=smtp_platform.config.mail_give_up_hours + 1)
    assert smtp_platform.send_queued(much_later) == {"failed": 2}
    assert statuses(smtp_platform, old["id"])["ann"] == "failed"


def test_notices_of_approval_phases_and_submissions(platform, world, tmp_path):
    with platform.db.session() as s:
        s.query(m.Competition).filter_by(slug=world.slug).one().registration_auto_approve = False
    assert platform.register(world.slug, "carl", CARL, accept_terms=True) == m.PENDING
    platform.set_registration(world.slug, "carl", m.APPROVED, ORGANIZER)
    kinds = [i["kind"] for i in platform.inbox(CARL)["items"]]
    assert kinds == ["approved"]
    # Submission notices only for who asked for them.
    platform.save_mail_settings(ANN, mail={"submission_finished": True, "submission_failed": True})
    sid = platform.submit(world.slug, results_zip(tmp_path), username="ann", actor=ANN)
    finish(platform, sid, {"accuracy": 0.5, "secret": 0.5, "private_score": 0.1})
    assert [i["subject"] for i in platform.inbox(ANN)["items"]][0].endswith(f"submission {sid} finished")
    sid = platform.submit(world.slug, results_zip(tmp_path), username="ben", actor=BEN)
    finish(platform, sid, {"accuracy": 0.5, "secret": 0.5, "private_score": 0.1})
    assert platform.inbox(BEN)["total"] == 0
    # The phase clock tells everyone once when a phase opens and when it closes.
    with platform.db.session() as s:
        comp = s.query(m.Competition).filter_by(slug=world.slug).one()
        phase = sorted(comp.phases, key=lambda p: p.index)[0]
        phase.end = m.utcnow() - dt.timedelta(minutes=1)
        phase.opened_at = phase.opened_at or m.utcnow() - dt.timedelta(days=1)
    assert platform.tick_phases()["closed"]
    assert "closed" not in platform.tick_phases()
    tab = platform.announcements(world.slug, CARL)["items"]
    assert [i["kind"] for i in tab].count("phase_closed") == 1


def test_mail_settings_check_what_they_are_given(platform):
    with pytest.raises(PlatformError, match="email: 'not an address' is not a mail address.*mail: unknown kind"):
        platform.save_mail_settings(ANN, email="not an address", mail={"spam": True})
    saved = platform.save_mail_settings(ANN, email="ann@example.org", mail={"submission_failed": True})
    assert saved["mail"]["submission_failed"] is True and saved["mail"]["submission_finished"] is False
    assert saved["mail"]["announcement"] is True
    with pytest.raises(NotFound):
        platform.unsubscribe("no-such-token", "announcement")
