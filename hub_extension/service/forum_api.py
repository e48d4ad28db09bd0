"""The REST API of a competition's forum, under `{prefix}api/v1/competitions/{slug}/forum/`.

Threads are listed pinned first, then by their last post (`?q=` words to find in
titles and posts, `?offset=&limit=`); a thread answers with a page of its posts.
Who may read, post and moderate is decided by `app.forum`; the routes are listed
in `api.api_routes` and documented in `openapi.yaml`.
"""
from __future__ import annotations

from typing import Any

from ..app import PlatformError
from .base import ApiHandler

THREAD = r"(?P<thread>[0-9]{1,9})"
POST = r"(?P<post>[0-9]{1,9})"


class ForumHandler(ApiHandler):
    def flag(self, body: dict[str, Any], name: str) -> Any:
        value = body.get(name)
        if value is not None and not isinstance(value, bool):
            raise PlatformError(f"{name}: must be true or false, got {value!r}")
        return value


class ThreadsHandler(ForumHandler):
    """GET a page of threads; POST `{"title", "body", "submission_id"?}` opens one."""

    def get(self, slug: str) -> None:
        offset, limit = self.paging()
        self.write_json(self.platform.forum_threads(slug, self.actor, search=self.get_query_argument("q", None),
                                                    offset=offset, limit=limit))

    def post(self, slug: str) -> None:
        body = self.json_body()
        submission = body.get("submission_id")
        if submission is not None and (isinstance(submission, bool) or not isinstance(submission, int)):
            raise PlatformError(f"submission_id: must be a submission's number, got {submission!r}")
        thread = self.platform.create_thread(slug, body.get("title"), body.get("body"), self.require_login(),
                                             submission_id=submission)
        self.set_header("Location", f"{self.prefix}api/v1/competitions/{slug}/forum/threads/{thread['id']}")
        self.write_json(thread, status=201)


class ThreadHandler(ForumHandler):
    """GET a thread with a page of its posts; PATCH its title, pin or lock; DELETE it (organizers)."""

    def get(self, slug: str, thread: str) -> None:
        offset, limit = self.paging()
        self.write_json(self.platform.forum_thread(slug, int(thread), self.actor, offset=offset, limit=limit))

    def patch(self, slug: str, thread: str) -> None:
        body = self.json_body()
        self.write_json(self.platform.edit_thread(slug, int(thread), self.require_login(), title=body.get("title"),
                                                  pinned=self.flag(body, "pinned"), locked=self.flag(body, "locked")))

    def delete(self, slug: str, thread: str) -> None:
        self.write_json(self.platform.delete_thread(slug, int(thread), self.require_login()))


class RepliesHandler(ForumHandler):
    """POST `{"body"}`: a reply at the end of the thread."""

    def post(self, slug: str, thread: str) -> None:
        post = self.platform.reply(slug, int(thread), self.json_body().get("body"), self.require_login())
        self.write_json(post, status=201)


class AnswerHandler(ForumHandler):
    """PUT `{"post_id": N}` marks the post that answers the thread; `{"post_id": null}` unmarks it."""

    def put(self, slug: str, thread: str) -> None:
        body = self.json_body()
        if "post_id" not in body:
            raise PlatformError('send {"post_id": N} (the answering post) or {"post_id": null}')
        post = body["post_id"]
        if post is not None and (isinstance(post, bool) or not isinstance(post, int)):
            raise PlatformError(f"post_id: must be a post's number or null, got {post!r}")
        self.write_json(self.platform.mark_answer(slug, int(thread), post, self.require_login()))


class PostHandler(ForumHandler):
    """PATCH `{"body"}` edits a post (its author or an organizer); DELETE removes its text (organizers)."""

    def patch(self, slug: str, post: str) -> None:
        self.write_json(self.platform.edit_post(slug, int(post), self.json_body().get("body"), self.require_login()))

    def delete(self, slug: str, post: str) -> None:
        self.write_json(self.platform.delete_post(slug, int(post), self.require_login()))


class ForumPreviewHandler(ForumHandler):
    """POST `{"text"}`: the post as it would show (for whoever may post)."""

    def post(self, slug: str) -> None:
        body = self.json_body()
        self.write_json({"html": self.platform.forum_preview(slug, body.get("text", ""), self.require_login())})


def forum_api_routes(comp: str) -> list[Any]:
    """The forum's routes under a competition's API path `comp`."""
    forum = f"{comp}/forum"
    return [
        (rf"{forum}/threads", ThreadsHandler),
        (rf"{forum}/threads/{THREAD}", ThreadHandler),
        (rf"{forum}/threads/{THREAD}/posts", RepliesHandler),
        (rf"{forum}/threads/{THREAD}/answer", AnswerHandler),
        (rf"{forum}/posts/{POST}", PostHandler),
        (rf"{forum}/preview", ForumPreviewHandler),
    ]
