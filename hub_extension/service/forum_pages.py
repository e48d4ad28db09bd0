"""The pages of a competition's forum: the threads, a thread, and the forms that write them.

`{comp}/forum` lists threads (pinned first; `?q=` searches titles and posts;
`?page=`) and opens new ones; `{comp}/forum/new` is the form of a new thread
(`?submission=N` from a failed submission's "Ask about this error"); `{comp}/forum/N`
shows a thread page by page with its reply form and, for organizers, the
moderation buttons; `{comp}/forum/posts/N/edit` edits a post.  Markdown forms
preview as they are typed (`static/page_preview.js`, through the forum's preview
route).  Who may do what is the platform's (`app.forum`); a refused form comes
back as typed with what to fix.
"""
from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlencode

from ..app import Forbidden, NotFound, PlatformError
from .pages import PageHandler

THREADS_PER_PAGE = 20
POSTS_PER_PAGE = 20


class ForumPage(PageHandler):
    """A forum page: the competition (for its tabs), and the forum's address."""

    def forum_url(self, slug: str, rest: str = "", **query: Any) -> str:
        args = urlencode({k: v for k, v in query.items() if v not in (None, "")})
        return self.competition_url(slug, f"/forum{rest}") + (f"?{args}" if args else "")

    def page_number(self) -> int:
        return max(1, min(self.query_int("page") or 1, 100_000))

    def comp(self, slug: str) -> dict[str, Any]:
        return self.platform.competition_detail(slug, self.actor)

    def refused(self, template: str, exc: PlatformError, **context: Any) -> None:
        """The form again, as typed, with what to fix (refusals of who may post are errors, not forms)."""
        if isinstance(exc, (Forbidden, NotFound)):
            raise exc
        self.set_status(exc.status)
        self.render_page(template, notices=[{"kind": "error", "text": str(exc)}], **context)


class ForumListPage(ForumPage):
    def get(self, slug: str) -> None:
        search = (self.get_query_argument("q", "") or "").strip()
        page = self.page_number()
        listing = self.platform.forum_threads(slug, self.actor, search=search or None,
                                              offset=(page - 1) * THREADS_PER_PAGE, limit=THREADS_PER_PAGE)
        pages = max(1, -(-listing["total"] // THREADS_PER_PAGE))
        self.show("forum.html", comp=self.comp(slug), forum=listing, search=search, page=page, pages=pages,
                  previous_url=self.forum_url(slug, q=search, page=page - 1 if page > 2 else None)
                  if page > 1 else None,
                  next_url=self.forum_url(slug, q=search, page=page + 1) if page < pages else None)

    def post(self, slug: str) -> None:
        actor = self.require_login()
        form = {name: self.get_body_argument(name, "") for name in ("title", "body", "submission")}
        submission = int(form["submission"]) if form["submission"].isdigit() else None
        try:
            thread = self.platform.create_thread(slug, form["title"], form["body"], actor, submission_id=submission)
        except PlatformError as exc:
            self.refused("forum_form.html", exc, **self.new_thread_context(slug, submission, form))
            return
        self.notice("Your thread is open.")
        self.redirect(self.forum_url(slug, f"/{thread['id']}"))

    def new_thread_context(self, slug: str, submission: Optional[int], form: dict[str, str]) -> dict[str, Any]:
        about = self.platform.forum_submission(slug, submission, self.actor) if submission is not None else None
        return {"comp": self.comp(slug), "mode": "new", "form": form, "about": about,
                "action": self.forum_url(slug), "back": self.forum_url(slug), "post": None}


class ForumNewPage(ForumListPage):
    """The form of a new thread; `?submission=N` refers it to one of the viewer's submissions."""

    def get(self, slug: str) -> None:
        self.require_login()
        submission = self.query_int("submission")
        context = self.new_thread_context(slug, submission, {})
        listing = self.platform.forum_threads(slug, self.actor, limit=1)
        if not listing["may_post"]:
            raise Forbidden(f"opening a thread: {listing['read_only']}")
        if context["about"] is not None:
            about = context["about"]
            context["form"] = {"title": f"Submission {about['id']} {about['status'].lower()} (phase {about['phase']})",
                               "body": "", "submission": str(about["id"])}
        self.show("forum_form.html", **context)


class ForumThreadPage(ForumPage):
    def get(self, slug: str, thread_id: str) -> None:
        page = self.page_number()
        thread = self.platform.forum_thread(slug, int(thread_id), self.actor,
                                            offset=(page - 1) * POSTS_PER_PAGE, limit=POSTS_PER_PAGE)
        self.show_thread(slug, thread, page)

    def show_thread(self, slug: str, thread: dict[str, Any], page: int, **extra: Any) -> None:
        pages = max(1, -(-thread["total"] // POSTS_PER_PAGE))
        base = f"/{thread['id']}"
        context = dict(comp=self.comp(slug), thread=thread, page=page, pages=pages, reply="",
                       previous_url=self.forum_url(slug, base, page=page - 1 if page > 2 else None)
                       if page > 1 else None,
                       next_url=self.forum_url(slug, base, page=page + 1) if page < pages else None)
        context.update(extra)
        if "notices" in context:
            self.render_page("forum_thread.html", **context)
        else:
            self.show("forum_thread.html", **context)

    def post(self, slug: str, thread_id: str) -> None:
        """A reply; the thread's page that shows it."""
        actor = self.require_login()
        body = self.get_body_argument("body", "")
        try:
            post = self.platform.reply(slug, int(thread_id), body, actor)
        except PlatformError as exc:
            if isinstance(exc, (Forbidden, NotFound)):
                raise
            thread = self.platform.forum_thread(slug, int(thread_id), actor, offset=0, limit=POSTS_PER_PAGE)
            self.set_status(exc.status)
            self.show_thread(slug, thread, 1, reply=body, notices=[{"kind": "error", "text": str(exc)}])
            return
        page = self.platform.forum_page_of(slug, int(thread_id), post["id"], actor, POSTS_PER_PAGE)
        self.redirect(self.forum_url(slug, f"/{thread_id}", page=page if page > 1 else None) + f"#post-{post['id']}")


class ForumThreadActionPage(ForumPage):
    """`{comp}/forum/N/(pin|unpin|lock|unlock|rename|answer|delete)`: a change of the thread."""

    def post(self, slug: str, thread_id: str, action: str) -> None:
        actor = self.require_login()
        tid = int(thread_id)
        if action == "delete":
            self.platform.delete_thread(slug, tid, actor)
            self.notice("The thread is deleted.")
            self.redirect(self.forum_url(slug))
            return
        if action == "answer":
            post = self.get_body_argument("post", "")
            post_id = int(post) if post.isdigit() else None
            self.platform.mark_answer(slug, tid, post_id, actor)
            self.notice("Marked as the answer." if post_id else "The thread is no longer marked answered.")
        elif action == "rename":
            self.platform.edit_thread(slug, tid, actor, title=self.get_body_argument("title", ""))
            self.notice("The thread is renamed.")
        else:
            changes = {"pin": {"pinned": True}, "unpin": {"pinned": False},
                       "lock": {"locked": True}, "unlock": {"locked": False}}[action]
            self.platform.edit_thread(slug, tid, actor, **changes)
            self.notice(f"The thread is {action}ned." if action.endswith("pin") else f"The thread is {action}ed.")
        self.back(self.forum_url(slug, f"/{tid}"))


class ForumPostPage(ForumPage):
    """`{comp}/forum/posts/N/edit` (the form, and its save) and `.../delete` (organizers)."""

    def get(self, slug: str, post_id: str, action: str) -> None:
        if action != "edit":
            raise NotFound("a post is deleted with a form's POST")
        post = self.platform.forum_post(slug, int(post_id), self.require_login())
        if not post["may_edit"]:
            raise Forbidden("editing a post: participants edit their own posts only, while the thread is open")
        self.show("forum_form.html", **self.edit_context(slug, post, {"body": post["body"]}))

    def edit_context(self, slug: str, post: dict[str, Any], form: dict[str, str]) -> dict[str, Any]:
        return {"comp": self.comp(slug), "mode": "edit", "form": form, "post": post, "about": None,
                "action": self.forum_url(slug, f"/posts/{post['id']}/edit"),
                "back": self.forum_url(slug, f"/{post['thread']['id']}") + f"#post-{post['id']}"}

    def post(self, slug: str, post_id: str, action: str) -> None:
        actor = self.require_login()
        post = self.platform.forum_post(slug, int(post_id), actor)
        back = self.forum_url(slug, f"/{post['thread']['id']}")
        if action == "delete":
            self.platform.delete_post(slug, int(post_id), actor)
            self.notice("The post is deleted.")
            self.redirect(back)
            return
        body = self.get_body_argument("body", "")
        try:
            self.platform.edit_post(slug, int(post_id), body, actor)
        except PlatformError as exc:
            self.refused("forum_form.html", exc, **self.edit_context(slug, post, {"body": body}))
            return
        self.notice("Your changes are saved.")
        page = self.platform.forum_page_of(slug, post["thread"]["id"], int(post_id), actor, POSTS_PER_PAGE)
        self.redirect(self.forum_url(slug, f"/{post['thread']['id']}", page=page if page > 1 else None)
                      + f"#post-{post_id}")


def forum_page_routes(prefix: str) -> list[tuple[str, type]]:
    """The forum's page routes under `prefix` (which ends with a slash)."""
    comp = rf"{prefix}competitions/([a-z0-9][a-z0-9-]*)/forum"
    return [
        (rf"{comp}/?", ForumListPage),
        (rf"{comp}/new", ForumNewPage),
        (rf"{comp}/([0-9]{{1,9}})", ForumThreadPage),
        (rf"{comp}/([0-9]{{1,9}})/(pin|unpin|lock|unlock|rename|answer|delete)", ForumThreadActionPage),
        (rf"{comp}/posts/([0-9]{{1,9}})/(edit|delete)", ForumPostPage),
    ]
