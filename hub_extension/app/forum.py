"""The forum of a competition: threads of Markdown posts, and their moderation.

Who may do what is decided here and nowhere else:
- read: whoever may see the competition (`records.visible_competition`: the forum
  of a draft or of a private competition is as hidden as the competition), when
  its forum is on (`competitions.enable_forum`);
- post (open a thread, reply, edit one's own posts): the organizers and the
  approved participants, while the competition is not archived; everyone else
  who may see it reads only, and is told why;
- moderate (pin, lock, edit or delete any post, delete a thread): organizers only;
  a locked thread takes replies from organizers only;
- mark the post that answers a thread: its author or an organizer.
Posts are Markdown rendered and sanitized as competition pages are
(`editor.preview_html`, the pages' live preview).  A thread opened from a
submission refers to it by number only: its logs and error stay where they
are, seen by its owner and the organizers.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Optional

from sqlalchemy import exists, func, or_, select
from sqlalchemy.orm import Session

from .. import models as m
from ..errors import Conflict, Forbidden, NotFound, PlatformError
from .actors import Actor, is_organizer
from .context import Context
from .editor import preview_html
from .names import shown_names
from .records import find_participant, phase_number, require_active, visible_competition

THREADS_PAGE = 20
POSTS_PAGE = 20
MAX_PAGE = 200
MAX_TITLE = 300
MAX_BODY = 20_000
MAX_SEARCH_WORDS = 10
# Why someone who may see the competition may not post, by their registration.
REGISTRATION_REASONS = {
    None: "register for the competition to post in its forum",
    m.PENDING: "your registration waits for the organizers' approval; you may post once approved",
    m.DENIED: "your registration was denied: you may read the forum, not post",
    m.REMOVED: "you were removed from the competition: you may read the forum, not post",
    m.BANNED: "you were banned from the competition: you may read the forum, not post",
}


def _shown(username: Optional[str]) -> str:
    """How a user is named in the forum before display names are read (`_named`)."""
    return username or "—"


def _named(s: Session, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Thread and post views with their authors' (and editors') display names, read in one statement."""
    every = [v for view in views for v in (view, *view.get("items", []))]
    names = shown_names(s, {u for v in every for u in (v.get("author"), v.get("edited_by_user")) if u})
    for v in every:
        if v.get("author"):
            v["author_name"] = names.get(v["author"], v["author"])
        if v.get("edited_by_user"):
            v["edited_by"] = names.get(v["edited_by_user"], v["edited_by_user"])
    return views


@dataclasses.dataclass
class Seat:
    """The viewer in a competition's forum: may they post, and moderate; if not, why not."""

    comp: m.Competition
    actor: Actor
    organizer: bool
    refusal: Optional[str]  # why the viewer may not post (None: they may)

    @property
    def may_post(self) -> bool:
        return self.refusal is None

    def require_post(self, doing: str) -> None:
        if self.comp.status == m.ARCHIVED:
            require_active(self.comp, doing)
        if self.refusal is not None:
            raise Forbidden(f"{doing}: {self.refusal}")

    def require_moderator(self, doing: str) -> None:
        if not self.organizer:
            raise Forbidden(f"{doing}: only the organizers of {self.comp.slug!r} moderate its forum")
        require_active(self.comp, doing)


def seat(s: Session, slug: str, actor: Actor) -> Seat:
    """The viewer's seat in the forum of `slug`; NotFound when they may not see it or it has none."""
    comp = visible_competition(s, slug, actor)
    organizer = is_organizer(actor, comp)
    if not comp.enable_forum:
        hint = "; turn it on in the editor (Overview: Forum)" if organizer else ""
        raise NotFound(f"competition {slug!r} has no forum{hint}")
    refusal = None
    if comp.status == m.ARCHIVED:
        refusal = "the competition is archived: its forum is read-only"
    elif actor.username is None:
        refusal = "log in and register to post"
    elif not organizer:
        part = find_participant(s, comp, actor.username)
        status = part.status if part is not None else None
        if status != m.APPROVED:
            refusal = REGISTRATION_REASONS.get(status, REGISTRATION_REASONS[None])
    return Seat(comp=comp, actor=actor, organizer=organizer, refusal=refusal)


# -- reading what people write ------------------------------------------------------------------------
def clean_title(title: Any) -> str:
    if not isinstance(title, str) or not title.strip():
        raise PlatformError("title: is required (a line that says what the thread is about)")
    title = " ".join(title.split())
    if len(title) > MAX_TITLE:
        raise PlatformError(f"title: {len(title)} characters; at most {MAX_TITLE}")
    return title


def clean_body(body: Any) -> str:
    if not isinstance(body, str) or not body.strip():
        raise PlatformError("body: is required (Markdown)")
    if len(body) > MAX_BODY:
        raise PlatformError(f"body: {len(body)} characters; at most {MAX_BODY}")
    return body


def render(body: str) -> str:
    """A post as everyone sees it: Markdown rendered and sanitized as a competition page is."""
    return preview_html(body, "markdown")


def paging(offset: Any, limit: Any, default: int) -> tuple[int, int]:
    try:
        offset, limit = int(offset or 0), int(limit or default)
    except (TypeError, ValueError):
        raise PlatformError("offset and limit must be whole numbers") from None
    if offset < 0 or offset > 10_000_000:
        raise PlatformError(f"offset must be between 0 and 10000000, got {offset}")
    return offset, max(1, min(limit, MAX_PAGE))


def search_words(text: Optional[str]) -> list[str]:
    words = (text or "").split()
    if len(words) > MAX_SEARCH_WORDS:
        raise PlatformError(f"search: {len(words)} words; at most {MAX_SEARCH_WORDS}")
    return [w[:100] for w in words]


def _like(word: str) -> str:
    escaped = word.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


# -- answers ------------------------------------------------------------------------------------------
def _iso(moment: Any) -> Optional[str]:
    return moment.isoformat() if moment is not None else None


def thread_summary(t: m.ForumThread, viewer: Seat) -> dict[str, Any]:
    return {
        "id": t.id,
        "title": t.title,
        "author": t.author,
        "author_name": _shown(t.author),
        "created_at": _iso(t.created_at),
        "last_post_at": _iso(t.last_post_at),
        "posts": t.post_count,
        "pinned": t.pinned,
        "locked": t.locked,
        "answered": t.answer_post_id is not None,
        "answer_post_id": t.answer_post_id,
        "submission_id": t.submission_id,
        "own": viewer.actor.username is not None and viewer.actor.username == t.author,
    }


def post_view(p: m.ForumPost, t: m.ForumThread, viewer: Seat) -> dict[str, Any]:
    own = viewer.actor.username is not None and viewer.actor.username == p.author
    may_edit = not p.deleted and viewer.comp.status != m.ARCHIVED and (
        viewer.organizer or (own and viewer.may_post and not t.locked))
    view = {
        "id": p.id,
        "author": p.author,
        "author_name": _shown(p.author),
        "created_at": _iso(p.created_at),
        "edited_at": _iso(p.edited_at),
        "edited_by": _shown(p.edited_by) if p.edited_by else None,
        "edited_by_user": p.edited_by,
        "deleted": p.deleted,
        "html": "" if p.deleted else p.html,
        "is_answer": t.answer_post_id == p.id,
        "own": own,
        "may_edit": may_edit,
    }
    if may_edit:
        view["body"] = p.body  # the Markdown, for whoever may change it
    return view


class Forum:
    """The forums of competitions, over the shared context."""

    def __init__(self, ctx: Context):
        self.ctx = ctx

    # -- reading ----------------------------------------------------------------------------------
    def forum_threads(self, slug: str, actor: Actor, *, search: Optional[str] = None, offset: Any = 0,
                      limit: Any = THREADS_PAGE) -> dict[str, Any]:
        """A page of threads, pinned first, then by their last post; `search`: every word in the title or a post."""
        offset, limit = paging(offset, limit, THREADS_PAGE)
        words = search_words(search)
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            q = select(m.ForumThread).where(m.ForumThread.competition_id == viewer.comp.id)
            for word in words:
                pattern = _like(word)
                in_posts = exists().where(m.ForumPost.thread_id == m.ForumThread.id, m.ForumPost.deleted.is_(False),
                                          func.lower(m.ForumPost.body).like(pattern, escape="\\"))
                q = q.where(or_(func.lower(m.ForumThread.title).like(pattern, escape="\\"), in_posts))
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            rows = s.scalars(q.order_by(m.ForumThread.pinned.desc(), m.ForumThread.last_post_at.desc(),
                                        m.ForumThread.id.desc()).offset(offset).limit(limit)).all()
            return {
                "competition": {"slug": viewer.comp.slug, "title": viewer.comp.title},
                "items": _named(s, [thread_summary(t, viewer) for t in rows]),
                "total": total, "offset": offset, "limit": limit, "search": " ".join(words),
                **self._abilities(viewer),
            }

    def forum_thread(self, slug: str, thread_id: int, actor: Actor, *, offset: Any = 0,
                     limit: Any = POSTS_PAGE) -> dict[str, Any]:
        """A thread and a page of its posts, oldest first, each with what the viewer may do with it."""
        offset, limit = paging(offset, limit, POSTS_PAGE)
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            t = self._thread(s, viewer, thread_id)
            q = select(m.ForumPost).where(m.ForumPost.thread_id == t.id)
            total = s.scalar(select(func.count()).select_from(q.subquery())) or 0
            posts = s.scalars(q.order_by(m.ForumPost.id).offset(offset).limit(limit)).all()
            return self._thread_view(s, viewer, t, posts, total, offset, limit)

    def forum_page_of(self, slug: str, thread_id: int, post_id: int, actor: Actor,
                      per_page: int = POSTS_PAGE) -> int:
        """The 1-based page of a thread that shows `post_id`."""
        with self.ctx.db.session() as s:
            t = self._thread(s, seat(s, slug, actor), thread_id)
            before = s.scalar(select(func.count(m.ForumPost.id)).where(
                m.ForumPost.thread_id == t.id, m.ForumPost.id < post_id)) or 0
            return before // per_page + 1

    def forum_post(self, slug: str, post_id: int, actor: Actor) -> dict[str, Any]:
        """One post (its Markdown for whoever may edit it), with its thread's number and title."""
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            post, t = self._post(s, viewer, post_id)
            return {**post_view(post, t, viewer), "thread": {"id": t.id, "title": t.title}}

    def forum_submission(self, slug: str, submission_id: int, actor: Actor) -> dict[str, Any]:
        """What a new thread about a submission shows its author: the submission's number, phase and status."""
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            sub, ph = self._own_submission(s, viewer, submission_id)
            return {"id": sub.id, "phase": phase_number(viewer.comp, ph), "status": sub.status,
                    "error": sub.error if sub.status == m.FAILED else None}

    # -- writing ----------------------------------------------------------------------------------
    def create_thread(self, slug: str, title: Any, body: Any, actor: Actor, *,
                      submission_id: Optional[int] = None) -> dict[str, Any]:
        """Open a thread with its first post (organizers and approved participants); the thread."""
        title, body = clean_title(title), clean_body(body)
        html = render(body)
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            viewer.require_post("opening a thread")
            if submission_id is not None:
                self._own_submission(s, viewer, submission_id)
            now = m.utcnow()
            t = m.ForumThread(competition_id=viewer.comp.id, title=title, author=actor.username, created_at=now,
                              last_post_at=now, post_count=1, submission_id=submission_id)
            t.posts.append(m.ForumPost(author=actor.username, body=body, html=html, created_at=now))
            s.add(t)
            s.flush()
            return self._thread_view(s, viewer, t, list(t.posts), 1, 0, POSTS_PAGE)

    def reply(self, slug: str, thread_id: int, body: Any, actor: Actor) -> dict[str, Any]:
        """A post at the end of a thread (a locked thread: organizers only); the post."""
        body = clean_body(body)
        html = render(body)
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            viewer.require_post("replying")
            t = self._thread(s, viewer, thread_id, lock=True)
            if t.locked and not viewer.organizer:
                raise Conflict(f"thread {t.id} is locked by the organizers: it takes no more replies")
            now = m.utcnow()
            post = m.ForumPost(thread_id=t.id, author=actor.username, body=body, html=html, created_at=now)
            s.add(post)
            t.last_post_at, t.post_count = now, t.post_count + 1
            s.flush()
            return post_view(post, t, viewer)

    def edit_post(self, slug: str, post_id: int, body: Any, actor: Actor) -> dict[str, Any]:
        """Change a post's text: its author (while they may post and the thread is open) or an organizer."""
        body = clean_body(body)
        html = render(body)
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            post, t = self._post(s, viewer, post_id)
            self._require_editor(viewer, post, t, "editing a post")
            post.body, post.html, post.edited_at, post.edited_by = body, html, m.utcnow(), actor.username
            s.flush()
            return post_view(post, t, viewer)

    def edit_thread(self, slug: str, thread_id: int, actor: Actor, *, title: Any = None,
                    pinned: Optional[bool] = None, locked: Optional[bool] = None) -> dict[str, Any]:
        """Rename a thread (its author or an organizer), pin or lock it (organizers); the thread."""
        if title is None and pinned is None and locked is None:
            raise PlatformError('send what changes: {"title": "...", "pinned": true, "locked": false}')
        for name, value in (("pinned", pinned), ("locked", locked)):
            if value is not None and not isinstance(value, bool):
                raise PlatformError(f"{name}: must be true or false, got {value!r}")
        title = clean_title(title) if title is not None else None
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            t = self._thread(s, viewer, thread_id)
            if pinned is not None or locked is not None:
                viewer.require_moderator("pinning or locking a thread")
            if title is not None:
                first = s.scalars(select(m.ForumPost).where(m.ForumPost.thread_id == t.id)
                                  .order_by(m.ForumPost.id).limit(1)).first()
                if first is None:
                    raise Conflict(f"thread {t.id} has no first post to rename it by")
                self._require_editor(viewer, first, t, "renaming a thread")
                t.title = title
            if pinned is not None:
                t.pinned = pinned
            if locked is not None:
                t.locked = locked
            s.flush()
            return thread_summary(t, viewer)

    def mark_answer(self, slug: str, thread_id: int, post_id: Optional[int], actor: Actor) -> dict[str, Any]:
        """Mark the post that answers a thread, or none (`post_id` None): its author or an organizer."""
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            t = self._thread(s, viewer, thread_id)
            if not (viewer.organizer or (actor.username == t.author and viewer.may_post)):
                if actor.username == t.author:
                    viewer.require_post("marking the answer")
                raise Forbidden("marking the answer: only the thread's author and the organizers may")
            require_active(viewer.comp, "marking the answer")
            if post_id is not None:
                post, _ = self._post(s, viewer, post_id)
                if post.thread_id != t.id:
                    raise PlatformError(f"post {post_id} is not in thread {t.id}")
                if post.deleted:
                    raise PlatformError(f"post {post_id} was deleted: it cannot be the answer")
            t.answer_post_id = post_id
            s.flush()
            return thread_summary(t, viewer)

    def delete_post(self, slug: str, post_id: int, actor: Actor) -> dict[str, Any]:
        """Remove a post's text, leaving its place in the thread (organizers); the first post goes with its thread."""
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            viewer.require_moderator("deleting a post")
            post, t = self._post(s, viewer, post_id)
            first = s.scalar(select(func.min(m.ForumPost.id)).where(m.ForumPost.thread_id == t.id))
            if post.id == first:
                raise Conflict(f"post {post_id} opens thread {t.id}: delete the thread instead")
            if not post.deleted:
                post.deleted, post.body, post.html = True, "", ""
                post.edited_at, post.edited_by = m.utcnow(), actor.username
                t.post_count = max(0, t.post_count - 1)
                if t.answer_post_id == post.id:
                    t.answer_post_id = None
            s.flush()
            return post_view(post, t, viewer)

    def delete_thread(self, slug: str, thread_id: int, actor: Actor) -> dict[str, Any]:
        """Delete a thread and its posts (organizers)."""
        with self.ctx.db.session() as s:
            viewer = seat(s, slug, actor)
            viewer.require_moderator("deleting a thread")
            t = self._thread(s, viewer, thread_id)
            summary = thread_summary(t, viewer)
            s.delete(t)
            s.flush()
            return {"deleted": True, "thread": summary}

    def forum_preview(self, slug: str, text: Any, actor: Actor) -> str:
        """A post as it would show, for whoever may post (the forms' live preview)."""
        if not isinstance(text, str):
            raise PlatformError("send the post's text as a string")
        if len(text) > MAX_BODY:
            raise PlatformError(f"body: {len(text)} characters; at most {MAX_BODY}")
        with self.ctx.db.session() as s:
            seat(s, slug, actor).require_post("previewing a post")
        return render(text)

    # -- helpers ----------------------------------------------------------------------------------
    @staticmethod
    def _abilities(viewer: Seat) -> dict[str, Any]:
        return {"may_post": viewer.may_post, "may_moderate": viewer.organizer and viewer.comp.status != m.ARCHIVED,
                "read_only": viewer.refusal}

    def _thread_view(self, s: Session, viewer: Seat, t: m.ForumThread, posts: list[m.ForumPost], total: int,
                     offset: int, limit: int) -> dict[str, Any]:
        view = thread_summary(t, viewer)
        view["competition"] = {"slug": viewer.comp.slug, "title": viewer.comp.title}
        view["items"] = [post_view(p, t, viewer) for p in posts]
        _named(s, [view])
        view.update(total=total, offset=offset, limit=limit, **self._abilities(viewer))
        active = viewer.comp.status != m.ARCHIVED
        view["may_reply"] = viewer.may_post and (viewer.organizer or not t.locked)
        view["may_mark_answer"] = active and (viewer.organizer or (view["own"] and viewer.may_post))
        # The submission's page opens for its owner and the organizers only; others see its number.
        view["submission_visible"] = False
        if t.submission_id is not None:
            sub = s.get(m.Submission, t.submission_id)
            part = s.get(m.Participant, sub.participant_id) if sub is not None else None
            view["submission_visible"] = part is not None and (
                viewer.organizer or part.username == viewer.actor.username)
        return view

    @staticmethod
    def _thread(s: Session, viewer: Seat, thread_id: int, *, lock: bool = False) -> m.ForumThread:
        q = select(m.ForumThread).where(m.ForumThread.id == int(thread_id),
                                        m.ForumThread.competition_id == viewer.comp.id)
        if lock:
            q = q.with_for_update()
        t = s.scalars(q).first()
        if t is None:
            raise NotFound(f"the forum of {viewer.comp.slug!r} has no thread {thread_id}")
        return t

    @staticmethod
    def _post(s: Session, viewer: Seat, post_id: int) -> tuple[m.ForumPost, m.ForumThread]:
        row = s.execute(select(m.ForumPost, m.ForumThread).join(m.ForumThread)
                        .where(m.ForumPost.id == int(post_id), m.ForumThread.competition_id == viewer.comp.id)).first()
        if row is None:
            raise NotFound(f"the forum of {viewer.comp.slug!r} has no post {post_id}")
        return row[0], row[1]

    @staticmethod
    def _require_editor(viewer: Seat, post: m.ForumPost, t: m.ForumThread, doing: str) -> None:
        require_active(viewer.comp, doing)
        if post.deleted:
            raise Conflict(f"post {post.id} was deleted by the organizers")
        if viewer.organizer:
            return
        if viewer.actor.username != post.author:
            raise Forbidden(f"{doing}: participants edit their own posts only")
        viewer.require_post(doing)
        if t.locked:
            raise Conflict(f"thread {t.id} is locked by the organizers: its posts stay as they are")

    @staticmethod
    def _own_submission(s: Session, viewer: Seat, submission_id: Any) -> tuple[m.Submission, m.Phase]:
        """A submission of this competition that the viewer made (organizers: any of its submissions)."""
        try:
            sid = int(submission_id)
        except (TypeError, ValueError):
            raise PlatformError(f"submission_id: must be a submission's number, got {submission_id!r}") from None
        row = s.execute(select(m.Submission, m.Participant, m.Phase)
                        .join(m.Participant, m.Participant.id == m.Submission.participant_id)
                        .join(m.Phase, m.Phase.id == m.Submission.phase_id)
                        .where(m.Submission.id == sid, m.Participant.competition_id == viewer.comp.id)).first()
        if row is None or not (viewer.organizer or row[1].username == viewer.actor.username):
            raise NotFound(f"you have no submission {sid} in {viewer.comp.slug!r}")
        return row[0], row[2]
