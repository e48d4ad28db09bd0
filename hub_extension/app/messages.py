"""Messages: organizers' announcements and the platform's notices, kept in the platform and sent by mail.

Every message is a row (`messages`) with one copy per recipient
(`message_recipients`), so a participant reads it on the competition's
Announcements tab and in their own Messages whether or not mail reached them.
Mail is a copy: each recipient's `mail_status` says what became of it —
`queued` (waiting for the mail thread), `sent`, `failed`, `no_address` (no
e-mail on their profile), `unsubscribed` (they stopped that kind).

Who gets what:
- an announcement goes to all approved participants, to those of one phase
  (the approved participants who submitted in it, themselves or through their
  team), or to the members of one team; organizers only send them;
- `phase_opened` / `phase_closed` go to every approved participant, once per
  phase, from the phase clock;
- `approved` to a participant whose registration an organizer approved;
- `submission_finished` / `submission_failed` to the submitter, only when they
  asked for it (off by default: a message per run would bury the rest).

Mail leaves in `send_queued`, which the service runs in a thread of its own
every few seconds: each recipient is claimed with an atomic update (several
processes never send the same mail twice), sent through `mail.Transport`, and
on a temporary failure tried again after `mail_retry_seconds` until
`mail_give_up_hours`.
"""
from __future__ import annotations

import datetime as dt
import logging
import re
import secrets
from typing import Any, Iterable, Optional

from sqlalchemy import String, cast, exists, func, literal, or_, select, update
from sqlalchemy.orm import Session

from .. import models as m
from ..bundles.sanitize import render_page
from ..bundles.model import PageSpec
from ..errors import Forbidden, NotFound, PlatformError
from ..mail import Letter, SendFailure, Transport, read_maildir
from .actors import Actor, is_organizer, require_organizer
from .context import Context
from .records import find_participant, get_competition, phases_in_order, require_active, visible_competition

log = logging.getLogger("compete.mail")

ANNOUNCEMENT = "announcement"
SUBMISSION_FINISHED = "submission_finished"
SUBMISSION_FAILED = "submission_failed"
PHASE_OPENED = "phase_opened"
PHASE_CLOSED = "phase_closed"
APPROVED = "approved"
# Each kind, what its mail choice is called, and whether mail is on until the user says otherwise.
KINDS = {
    ANNOUNCEMENT: ("announcements from the organizers", True),
    PHASE_OPENED: ("a phase opening", True),
    PHASE_CLOSED: ("a phase closing", True),
    APPROVED: ("my registration being approved", True),
    SUBMISSION_FINISHED: ("my submission finishing", False),
    SUBMISSION_FAILED: ("my submission failing", False),
}
# What the Announcements tab shows: what was said to the competition's participants at large.
TAB_KINDS = (ANNOUNCEMENT, PHASE_OPENED, PHASE_CLOSED)
MAIL_STATUSES = ("queued", "sent", "failed", "no_address", "unsubscribed")
MAX_SUBJECT = 300
MAX_BODY = 50_000
MAX_ADDRESS = 300
# Phases that closed longer ago than this get no "closed" notice (a database upgraded with old phases).
CLOSED_NOTICE_WINDOW = dt.timedelta(days=2)
SEND_BATCH = 100
_ADDRESS = re.compile(r"^[^@\s<>\"',;]+@[^@\s<>\"',;]+\.[^@\s<>\"',;]+$")


def shown(username: str) -> str:
    """How a user is named in messages (the one place display names come in)."""
    return username


def wanted(profile: Optional[m.Profile], kind: str) -> bool:
    """Whether the user wants mail of `kind` (their choice, else the kind's default)."""
    choice = (profile.mail or {}).get(kind) if profile is not None else None
    return KINDS[kind][1] if choice is None else bool(choice)


def rendered(body: str) -> str:
    return render_page(PageSpec(name="message", title="", content=body, format="markdown"))


# -- writing messages ----------------------------------------------------------------------------------
def write_message(s: Session, comp_id: Optional[int], kind: str, audience: str, subject: str, body: str,
                  usernames: Iterable[str], sender: Optional[str] = None) -> m.Message:
    """The message and one copy per recipient, in the caller's transaction; mail queued for those who want it."""
    names = sorted(set(usernames))
    profiles = {p.username: p for p in s.scalars(select(m.Profile).where(m.Profile.username.in_(names)))} \
        if names else {}
    msg = m.Message(competition_id=comp_id, kind=kind, audience=audience, subject=subject[:MAX_SUBJECT],
                    body=body, html=rendered(body), sender=sender)
    for name in names:
        profile = profiles.get(name)
        address = (profile.email or "").strip() if profile is not None else ""
        if not address:
            status = "no_address"
        elif not wanted(profile, kind):
            status = "unsubscribed"
        else:
            status = "queued"
            if not profile.unsubscribe_token:
                profile.unsubscribe_token = secrets.token_urlsafe(24)
        msg.recipients.append(m.MessageRecipient(username=name, address=address or None, mail_status=status))
    s.add(msg)
    s.flush()
    return msg


def approved_names(s: Session, comp_id: int) -> list[str]:
    return list(s.scalars(select(m.Participant.username).where(
        m.Participant.competition_id == comp_id, m.Participant.status == m.APPROVED)))


def phase_names(s: Session, comp_id: int, phase_id: int) -> list[str]:
    """The approved participants who submitted in the phase, themselves or through their team."""
    own = select(m.Participant.username).join(m.Submission, m.Submission.participant_id == m.Participant.id).where(
        m.Submission.phase_id == phase_id)
    teams = select(m.TeamMember.username).join(m.Submission, m.Submission.team_id == m.TeamMember.team_id).where(
        m.Submission.phase_id == phase_id, m.TeamMember.status == m.MEMBER)
    names = set(s.scalars(own)) | set(s.scalars(teams))
    return sorted(set(approved_names(s, comp_id)) & names)


def notify_phase(s: Session, comp: m.Competition, phase: m.Phase, kind: str) -> None:
    """Tell the approved participants that `phase` opened or closed (in the clock's transaction)."""
    verb = "is open" if kind == PHASE_OPENED else "has closed"
    body = (f"Phase **{phase.name}** of *{comp.title}* {verb}." if kind == PHASE_OPENED or phase.end is None
            else f"Phase **{phase.name}** of *{comp.title}* {verb} ({phase.end:%Y-%m-%d %H:%M} UTC).")
    if kind == PHASE_OPENED and phase.end is not None:
        body += f" It closes {phase.end:%Y-%m-%d %H:%M} UTC."
    write_message(s, comp.id, kind, f"phase:{phase.index}", f"{comp.title}: phase {phase.name} {verb}", body,
                  approved_names(s, comp.id))


def notify_approved(s: Session, comp: m.Competition, usernames: Iterable[str]) -> None:
    """Tell each user that their registration was approved (in the transaction that approved them)."""
    for name in usernames:
        write_message(s, comp.id, APPROVED, f"user:{name}", f"{comp.title}: your registration is approved",
                      f"You are registered in *{comp.title}*: you may now download its data and submit.", [name])


def notify_submission(ctx: Context, submission_id: int, status: str) -> None:
    """Tell the submitter that their submission finished or failed, when they asked for it."""
    kind = {m.FINISHED: SUBMISSION_FINISHED, m.FAILED: SUBMISSION_FAILED}.get(status)
    if kind is None:
        return
    try:
        with ctx.db.session() as s:
            row = s.execute(
                select(m.Participant.username, m.Competition.id, m.Competition.title, m.Submission.error,
                       m.Profile)
                .join(m.Submission, m.Submission.participant_id == m.Participant.id)
                .join(m.Competition, m.Competition.id == m.Participant.competition_id)
                .join(m.Profile, m.Profile.username == m.Participant.username)
                .where(m.Submission.id == submission_id,
                       m.Submission.reproduces_id.is_(None))  # a reproduction is the organizers' check, not theirs
            ).first()
            if row is None or not wanted(row.Profile, kind):
                return  # no profile: mail not asked for (the default), and the message would bury the others
            if kind == SUBMISSION_FINISHED:
                subject, body = f"{row.title}: submission {submission_id} finished", (
                    f"Your submission {submission_id} to *{row.title}* finished and was scored.")
            else:
                subject, body = f"{row.title}: submission {submission_id} failed", (
                    f"Your submission {submission_id} to *{row.title}* failed.\n\n"
                    + "\n".join(f"    {line}" for line in (row.error or "no reason was recorded").splitlines()[:20]))
            write_message(s, row.id, kind, f"user:{row.username}", subject, body, [row.username])
    except Exception:  # noqa: BLE001 - a notice must never undo or hold up recording a result
        log.exception("the notice of submission %s (%s) was not written", submission_id, status)


def notify_closed_phases(ctx: Context, now: dt.datetime, slug: Optional[str] = None) -> list[str]:
    """The phases that closed since the last pass, each told to its participants once; their names."""
    said = exists().where(m.Message.competition_id == m.Phase.competition_id, m.Message.kind == PHASE_CLOSED,
                          m.Message.audience == literal("phase:").concat(cast(m.Phase.index, String)))
    done = []
    with ctx.db.session() as s:
        q = (select(m.Phase, m.Competition).join(m.Competition, m.Competition.id == m.Phase.competition_id)
             .where(m.Phase.end.is_not(None), m.Phase.end <= now, m.Phase.end > now - CLOSED_NOTICE_WINDOW,
                    m.Phase.opened_at.is_not(None), m.Competition.status == m.PUBLISHED, ~said))
        if slug is not None:
            q = q.where(m.Competition.slug == slug)
        for phase, comp in s.execute(q).all():
            notify_phase(s, comp, phase, PHASE_CLOSED)
            done.append(f"{comp.slug}/{phase.name}")
    return done


def _check_text(subject: Any, body: Any) -> tuple[str, str]:
    problems = []
    if not isinstance(subject, str) or not subject.strip():
        problems.append("subject: write a subject")
    elif len(subject) > MAX_SUBJECT:
        problems.append(f"subject: at most {MAX_SUBJECT} characters, got {len(subject)}")
    if not isinstance(body, str) or not body.strip():
        problems.append("body: write the message (Markdown)")
    elif len(body) > MAX_BODY:
        problems.append(f"body: at most {MAX_BODY} characters, got {len(body)}")
    if problems:
        raise PlatformError("; ".join(problems) + "; nothing was sent")
    return subject.strip(), body


def _message_view(msg: m.Message, copy: Optional[m.MessageRecipient] = None, comp: Optional[m.Competition] = None,
                  ) -> dict[str, Any]:
    view = {"id": msg.id, "kind": msg.kind, "audience": msg.audience, "subject": msg.subject, "body": msg.body,
            "html": msg.html, "sender": shown(msg.sender) if msg.sender else None,
            "created_at": msg.created_at.isoformat()}
    if comp is not None:
        view["competition"] = {"slug": comp.slug, "title": comp.title}
    if copy is not None:
        view.update(mail_status=copy.mail_status, read=copy.read_at is not None)
    return view


class Messages:
    """Announcements, the user's messages, mail choices and unsubscribing, the mail thread's pass."""

    def __init__(self, ctx: Context):
        self.ctx = ctx
        self.transport = Transport(ctx.config)

    # -- organizers ---------------------------------------------------------------------------------
    def send_announcement(self, slug: str, subject: Any, body: Any, actor: Actor, *, phase: Any = None,
                          team: Any = None) -> dict[str, Any]:
        """Write an announcement to all approved participants, to a phase's (its number) or to a team's
        members (its id); the message with its recipients' count."""
        subject, body = _check_text(subject, body)
        if phase not in (None, "") and team not in (None, ""):
            raise PlatformError("send to one phase or to one team, not both; nothing was sent")
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            require_active(comp, "sending announcements")
            audience, names = self._audience(s, comp, phase, team)
            if not names:
                raise PlatformError(f"nobody would receive it: {self._audience_label(s, comp, audience)} has no "
                                    "participants yet; nothing was sent")
            msg = write_message(s, comp.id, ANNOUNCEMENT, audience, subject, body, names, sender=actor.username)
            view = _message_view(msg)
            view["recipients"] = len(names)
            view["mail"] = _counts(msg.recipients)
            view["to"] = self._audience_label(s, comp, audience)
            return view

    def _audience(self, s: Session, comp: m.Competition, phase: Any, team: Any) -> tuple[str, list[str]]:
        if phase not in (None, ""):
            number = _whole(phase, "phase")
            phases = phases_in_order(comp)
            if not 1 <= number <= len(phases):
                raise PlatformError(f"phase: {slug_phase(comp, number)} does not exist (the competition has "
                                    f"{len(phases)} phase(s)); nothing was sent")
            ph = phases[number - 1]
            return f"phase:{ph.index}", phase_names(s, comp.id, ph.id)
        if team not in (None, ""):
            team_id = _whole(team, "team")
            row = s.get(m.Team, team_id)
            if row is None or row.competition_id != comp.id:
                raise PlatformError(f"team: no team {team_id} in {comp.slug!r}; nothing was sent")
            return f"team:{team_id}", sorted(mb.username for mb in row.members if mb.status == m.MEMBER)
        return "all", approved_names(s, comp.id)

    @staticmethod
    def _audience_label(s: Session, comp: m.Competition, audience: str) -> str:
        kind, _, ref = audience.partition(":")
        if kind == "phase":
            names = [p.name for p in comp.phases if str(p.index) == ref]
            return f"the participants of phase {names[0] if names else ref}"
        if kind == "team":
            team = s.get(m.Team, int(ref)) if ref.isdigit() else None
            return f"the members of team {team.name if team else ref}"
        if kind == "user":
            return shown(ref)
        return "all participants"

    def audiences(self, slug: str, actor: Actor) -> dict[str, Any]:
        """What the send form offers (organizers): the phases and teams, each with its recipients' count."""
        with self.ctx.db.session() as s:
            comp = get_competition(s, slug)
            require_organizer(actor, comp)
            phases = [{"number": n, "name": ph.name, "recipients": len(phase_names(s, comp.id, ph.id))}
                      for n, ph in enumerate(phases_in_order(comp), start=1)]
            teams = [{"id": t.id, "name": t.name,
                      "recipients": sum(1 for mb in t.members if mb.status == m.MEMBER)}
                     for t in s.scalars(select(m.Team).where(m.Team.competition_id == comp.id).order_by(m.Team.name))]
            return {"all": len(approved_names(s, comp.id)), "phases": phases, "teams": teams,
                    "mail": self.transport.describe()}

    # -- reading --------------------------------------------------------------------------------------
    def announcements(self, slug: str, actor: Actor, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """The competition's Announcements: organizers see every announcement and notice (with what became
        of its mail); a participant the ones they received."""
        with self.ctx.db.session() as s:
            comp = visible_competition(s, slug, actor)
            if is_organizer(actor, comp):
                q = select(m.Message).where(m.Message.competition_id == comp.id, m.Message.kind.in_(TAB_KINDS))
                total = s.scalar(select(func.count()).select_from(q.subquery()))
                rows = s.scalars(q.order_by(m.Message.id.desc()).offset(offset).limit(limit)).all()
                items = []
                for msg in rows:
                    view = _message_view(msg)
                    view.update(to=self._audience_label(s, comp, msg.audience), recipients=len(msg.recipients),
                                mail=_counts(msg.recipients))
                    items.append(view)
                return {"items": items, "total": total, "organizer": True, "mail": self.transport.describe()}
            part = find_participant(s, comp, actor.username) if actor.username else None
            if part is None or part.status != m.APPROVED:
                raise Forbidden(f"the announcements of {slug!r} are for its participants: register first")
            q = (select(m.Message, m.MessageRecipient)
                 .join(m.MessageRecipient, m.MessageRecipient.message_id == m.Message.id)
                 .where(m.Message.competition_id == comp.id, m.Message.kind.in_(TAB_KINDS),
                        m.MessageRecipient.username == actor.username))
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            rows = s.execute(q.order_by(m.Message.id.desc()).offset(offset).limit(limit)).all()
            return {"items": [_message_view(msg, copy) for msg, copy in rows], "total": total, "organizer": False}

    def inbox(self, actor: Actor, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """The user's own messages, newest first, with how many are unread."""
        name = _logged_in(actor)
        with self.ctx.db.session() as s:
            q = (select(m.Message, m.MessageRecipient, m.Competition)
                 .join(m.MessageRecipient, m.MessageRecipient.message_id == m.Message.id)
                 .outerjoin(m.Competition, m.Competition.id == m.Message.competition_id)
                 .where(m.MessageRecipient.username == name))
            total = s.scalar(select(func.count()).select_from(q.subquery()))
            unread = s.scalar(select(func.count(m.MessageRecipient.id)).where(
                m.MessageRecipient.username == name, m.MessageRecipient.read_at.is_(None)))
            rows = s.execute(q.order_by(m.Message.id.desc()).offset(offset).limit(limit)).all()
            return {"items": [_message_view(msg, copy, comp) for msg, copy, comp in rows], "total": total,
                    "unread": unread}

    def read_message(self, message_id: int, actor: Actor) -> dict[str, Any]:
        """One of the user's messages (marked read); NotFound for anyone else's."""
        name = _logged_in(actor)
        with self.ctx.db.session() as s:
            row = s.execute(
                select(m.Message, m.MessageRecipient)
                .join(m.MessageRecipient, m.MessageRecipient.message_id == m.Message.id)
                .where(m.Message.id == message_id, m.MessageRecipient.username == name)
            ).first()
            if row is None:
                raise NotFound(f"you have no message {message_id}")
            msg, copy = row
            if copy.read_at is None:
                copy.read_at = m.utcnow()
            comp = s.get(m.Competition, msg.competition_id) if msg.competition_id else None
            return _message_view(msg, copy, comp)

    # -- mail choices ---------------------------------------------------------------------------------
    def mail_settings(self, actor: Actor) -> dict[str, Any]:
        """The user's address and, per kind, whether they get it by mail."""
        name = _logged_in(actor)
        with self.ctx.db.session() as s:
            profile = s.get(m.Profile, name)
            return _settings_view(profile)

    def save_mail_settings(self, actor: Actor, *, email: Any = None, mail: Any = None) -> dict[str, Any]:
        """Set the address (None: unchanged, "": none) and the kinds wanted ({kind: bool}); the settings after."""
        name = _logged_in(actor)
        problems = []
        if email is not None:
            if not isinstance(email, str):
                problems.append("email: must be text")
            else:
                email = email.strip()
                if email and (len(email) > MAX_ADDRESS or not _ADDRESS.match(email)):
                    problems.append(f"email: {email[:80]!r} is not a mail address (name@example.org)")
        choices: dict[str, bool] = {}
        if mail is not None:
            if not isinstance(mail, dict):
                problems.append("mail: must be an object {kind: true|false}")
            else:
                for kind, value in mail.items():
                    if kind not in KINDS:
                        problems.append(f"mail: unknown kind {kind!r}; the kinds are {', '.join(KINDS)}")
                    elif not isinstance(value, bool):
                        problems.append(f"mail.{kind}: must be true or false")
                    else:
                        choices[kind] = value
        if problems:
            raise PlatformError("; ".join(problems) + "; nothing was saved")
        with self.ctx.db.session() as s:
            profile = s.get(m.Profile, name)
            if profile is None:
                profile = m.Profile(username=name, mail={})
                s.add(profile)
            if email is not None:
                profile.email = email or None
            if choices:
                profile.mail = {**(profile.mail or {}), **choices}
            if profile.unsubscribe_token is None:
                profile.unsubscribe_token = secrets.token_urlsafe(24)
            profile.updated_at = m.utcnow()
            s.flush()
            return _settings_view(profile)

    def unsubscribe(self, token: str, kind: str) -> dict[str, Any]:
        """Stop mail of `kind` for the user whose link this is (no login: the token is the proof)."""
        if kind not in KINDS:
            raise NotFound(f"no kind of mail {kind!r}")
        with self.ctx.db.session() as s:
            profile = s.scalars(select(m.Profile).where(m.Profile.unsubscribe_token == token)).first() \
                if token else None
            if profile is None:
                raise NotFound("this unsubscribe link is not known (it may be from an address changed since)")
            profile.mail = {**(profile.mail or {}), kind: False}
            profile.updated_at = m.utcnow()
            # Mail of that kind still waiting is not sent either.
            s.execute(update(m.MessageRecipient).where(
                m.MessageRecipient.username == profile.username, m.MessageRecipient.mail_status == "queued",
                m.MessageRecipient.message_id.in_(select(m.Message.id).where(m.Message.kind == kind)),
            ).values(mail_status="unsubscribed"))
            return {"username": profile.username, "kind": kind, "label": KINDS[kind][0]}

    def unsubscribe_kind_label(self, kind: str) -> str:
        if kind not in KINDS:
            raise NotFound(f"no kind of mail {kind!r}")
        return KINDS[kind][0]

    # -- admins ---------------------------------------------------------------------------------------
    def mailbox(self, actor: Actor, *, offset: int = 0, limit: int = 50) -> dict[str, Any]:
        """The mail kept in the Maildir (the embedded default without SMTP), newest first (admins)."""
        if not actor.is_admin:
            raise Forbidden("the platform's kept mail is for admins")
        kept = read_maildir(self.transport.maildir_path, offset, limit)
        with self.ctx.db.session() as s:
            counts = dict(s.execute(select(m.MessageRecipient.mail_status, func.count(m.MessageRecipient.id))
                                    .group_by(m.MessageRecipient.mail_status)).all())
        return {**kept, "smtp": self.transport.uses_smtp, "maildir": str(self.transport.maildir_path),
                "mail": self.transport.describe(), "statuses": {k: counts.get(k, 0) for k in MAIL_STATUSES}}

    # -- the mail thread ------------------------------------------------------------------------------
    def send_queued(self, now: Optional[dt.datetime] = None) -> dict[str, int]:
        """One pass of the mail thread: send what is queued and due; counts of what happened."""
        now = now or m.utcnow()
        cfg = self.ctx.config
        due = now - dt.timedelta(seconds=cfg.mail_retry_seconds)
        give_up = now - dt.timedelta(hours=cfg.mail_give_up_hours)
        done = {"sent": 0, "failed": 0, "retry": 0}
        with self.ctx.db.session() as s:
            ids = list(s.scalars(
                select(m.MessageRecipient.id).where(
                    m.MessageRecipient.mail_status == "queued",
                    or_(m.MessageRecipient.sent_at.is_(None), m.MessageRecipient.sent_at <= due))
                .order_by(m.MessageRecipient.id).limit(SEND_BATCH)))
        for rid in ids:
            done[self._send_one(rid, now, due, give_up)] += 1
        return {k: v for k, v in done.items() if v}

    def _send_one(self, rid: int, now: dt.datetime, due: dt.datetime, give_up: dt.datetime) -> str:
        with self.ctx.db.session() as s:
            # The claim: while queued, `sent_at` is the last attempt; only one process wins it.
            claimed = s.execute(update(m.MessageRecipient).where(
                m.MessageRecipient.id == rid, m.MessageRecipient.mail_status == "queued",
                or_(m.MessageRecipient.sent_at.is_(None), m.MessageRecipient.sent_at <= due),
            ).values(sent_at=now)).rowcount
            if not claimed:
                return "retry"
            copy = s.get(m.MessageRecipient, rid)
            msg = copy.message
            profile = s.get(m.Profile, copy.username)
            letter = self._letter(msg, copy, profile)
            created = msg.created_at
        try:
            self.transport.send(letter)
            status, error, outcome = "sent", None, "sent"
        except SendFailure as exc:
            error = str(exc)[:2000]
            late = created <= give_up
            status, outcome = ("failed", "failed") if exc.permanent or late else ("queued", "retry")
            log.warning("mail of message %s to %s %s: %s", msg.id, copy.username,
                        "failed" if status == "failed" else "will be tried again", error)
        with self.ctx.db.session() as s:
            s.execute(update(m.MessageRecipient).where(m.MessageRecipient.id == rid).values(
                mail_status=status, error=error, sent_at=m.utcnow() if status == "sent" else now))
        return outcome

    def _letter(self, msg: m.Message, copy: m.MessageRecipient, profile: Optional[m.Profile]) -> Letter:
        base = self.ctx.config.mail_site_url.rstrip("/") + "/"
        token = profile.unsubscribe_token if profile is not None else ""
        return Letter(to=copy.address or "", subject=msg.subject, text=msg.body, html=msg.html,
                      link=f"{base}messages/{msg.id}", unsubscribe=f"{base}unsubscribe/{token}/{msg.kind}",
                      kind_label=f"mail about {KINDS[msg.kind][0]}", message_id=msg.id)


def _counts(recipients: Iterable[m.MessageRecipient]) -> dict[str, int]:
    counts = {k: 0 for k in MAIL_STATUSES}
    for r in recipients:
        counts[r.mail_status] = counts.get(r.mail_status, 0) + 1
    return counts


def _settings_view(profile: Optional[m.Profile]) -> dict[str, Any]:
    return {"email": profile.email if profile is not None else None,
            "mail": {kind: wanted(profile, kind) for kind in KINDS},
            "kinds": [{"kind": k, "label": label, "default": default} for k, (label, default) in KINDS.items()]}


def _logged_in(actor: Actor) -> str:
    if actor.username is None:
        raise Forbidden("this needs a logged-in user")
    return actor.username


def _whole(value: Any, what: str) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise PlatformError(f"{what}: must be a whole number, got {value!r}; nothing was sent") from None


def slug_phase(comp: m.Competition, number: int) -> str:
    return f"phase {number} of {comp.slug!r}"
