"""The forum's pages and REST API, served by the real application (strict templates) on the test world.

The overview form turns the forum on; threads are opened, answered, pinned, locked,
edited and deleted through the pages' forms, as each kind of visitor; the API
answers the same rules; a failed submission links to a new thread about it that
tells others nothing of its logs.
"""
from __future__ import annotations

import re

from hub_extension import models as m
from tests.support import builders
from tests.support.service_harness import ok, visible_text


def forum_on(server, world) -> str:
    olga = server.browser("olga")
    saved = olga.post(f"competitions/{world.slug}/edit/overview",
                      {"title": "Secrets", "enable_forum": "on", "registration_auto_approve": "on"})
    assert saved.status_code == 200 and 'id="edit-saved"' in saved.text, saved.text[:2000]
    assert 'name="enable_forum" id="ov-forum" checked' in saved.text
    return f"competitions/{world.slug}/forum"


def test_no_forum_no_tab_and_no_page(world_server):
    server, world = world_server
    page = ok(server.browser("ann").get(f"competitions/{world.slug}")).text
    assert 'id="forum-tab"' not in page
    assert server.browser("ann").get(f"competitions/{world.slug}/forum").status_code == 404


def test_a_thread_with_a_reply_a_pin_an_answer_and_a_lock_through_the_pages(world_server):
    server, world = world_server
    forum = forum_on(server, world)
    ann, olga, nora = server.browser("ann"), server.browser("olga"), server.browser("nora")
    assert 'id="forum-tab"' in ok(ann.get(f"competitions/{world.slug}")).text
    assert 'id="new-thread"' in ok(ann.get(forum)).text

    refused = ann.post(forum, {"title": "", "body": "no title"})
    assert refused.status_code == 400 and "title: is required" in refused.text and "no title" in refused.text
    opened = ann.post(forum, {"title": "Scoring <question>", "body": "Is it *macro*? <script>x()</script>"})
    thread_url = opened.headers["Location"]
    page = ok(ann.follow(opened)).text
    assert "Scoring &lt;question&gt;" in page and "<em>macro</em>" in page and "<script>x()" not in page
    tid = int(re.search(r"/forum/(\d+)$", thread_url).group(1))

    replied = olga.post(f"{forum}/{tid}", {"body": "Micro, on the **evaluation** page."})
    assert replied.status_code == 302 and "#post-" in replied.headers["Location"]
    reply_id = int(replied.headers["Location"].rsplit("-", 1)[1])
    ok(olga.post(f"{forum}/{tid}/pin", {}), 302)
    marked = ann.post(f"{forum}/{tid}/answer", {"post": str(reply_id)})
    assert marked.status_code == 302
    listing = ok(nora.get(forum)).text
    assert 'id="forum-read-only"' in listing and "register for the competition" in listing
    row = re.search(rf'<tr data-thread="{tid}" class="pinned">.*?</tr>', listing, re.S).group(0)
    assert "data-pinned" in row and "data-answered" in row and ">2<" in row
    seen = ok(nora.get(f"{forum}/{tid}")).text
    assert 'id="reply-form"' not in seen and 'id="moderation"' not in seen and "data-mark-answer" not in seen
    assert f'id="post-{reply_id}" data-post="{reply_id}"' in seen and "<strong>evaluation</strong>" in seen
    assert nora.post(f"{forum}/{tid}", {"body": "me too"}).status_code == 403
    assert ann.post(f"{forum}/{tid}/pin", {}).status_code == 403

    ok(olga.post(f"{forum}/{tid}/lock", {}), 302)
    locked = ok(ann.get(f"{forum}/{tid}")).text
    assert 'id="thread-closed"' in locked and 'id="reply-form"' not in locked
    refused = ann.post(f"{forum}/{tid}", {"body": "one more"})
    assert refused.status_code == 409 and "locked" in refused.text


def test_editing_and_deleting_posts_through_the_pages(world_server):
    server, world = world_server
    forum = forum_on(server, world)
    ann, ben, olga = server.browser("ann"), server.browser("ben"), server.browser("olga")
    tid = int(ann.post(forum, {"title": "Typo", "body": "teh text"}).headers["Location"].rsplit("/", 1)[1])
    reply = ben.post(f"{forum}/{tid}", {"body": "spam spam"}).headers["Location"]
    reply_id = int(reply.rsplit("-", 1)[1])
    first_id = server.platform.forum_thread(world.slug, tid, builders.ANN)["items"][0]["id"]
    form = ok(ann.get(f"{forum}/posts/{first_id}/edit")).text
    assert "teh text" in form and 'id="page-preview"' in form
    assert ben.get(f"{forum}/posts/{first_id}/edit").status_code == 403
    assert ok(ann.follow(ann.post(f"{forum}/posts/{first_id}/edit", {"body": "the text"})))
    assert ben.post(f"{forum}/posts/{reply_id}/delete", {}).status_code == 403
    ok(olga.post(f"{forum}/posts/{reply_id}/delete", {}), 302)
    page = ok(ann.get(f"{forum}/{tid}")).text
    assert "the text" in page and "spam spam" not in page and "data-deleted" in page
    ok(olga.post(f"{forum}/{tid}/delete", {}), 302)
    assert ann.get(f"{forum}/{tid}").status_code == 404


def test_search_and_pages_of_threads(world_server):
    server, world = world_server
    forum = forum_on(server, world)
    for i in range(23):
        server.platform.create_thread(world.slug, f"Thread {i}", "the usual" if i else "a GPU question", builders.ANN)
    first = ok(server.browser().get(forum)).text
    assert len(re.findall(r"<tr data-thread=", first)) == 20 and 'rel="next"' in first
    second = ok(server.browser().get(f"{forum}?page=2")).text
    assert len(re.findall(r"<tr data-thread=", second)) == 3 and 'rel="prev"' in second
    found = ok(server.browser().get(f"{forum}?q=gpu")).text
    assert re.findall(r"<tr data-thread=", found) and "Thread 0" in visible_text(found)
    assert "Thread 1" not in visible_text(found)


def test_ask_about_a_failed_submission(world_server):
    server, world = world_server
    forum = forum_on(server, world)
    sid = world.subs["ann_waiting"]
    assert server.platform.runs.record_result(sid, {"status": "Failed", "error": "Traceback: secret-path/x.py",
                                                    "scores": {}, "tasks": [], "artifacts": {}})
    ann, ben = server.browser("ann"), server.browser("ben")
    page = ok(ann.get(f"submissions/{sid}")).text
    link = re.search(r'id="ask-about-error" href="([^"]+)"', page).group(1)
    assert link.endswith(f"/forum/new?submission={sid}")
    form = ok(ann.get(link)).text
    assert f'value="Submission {sid} failed (phase 1)"' in form and "secret-path/x.py" in form
    assert ben.get(link).status_code == 404  # not theirs: no such submission for them
    opened = ann.post(forum, {"title": f"Submission {sid} failed (phase 1)", "body": "What did I do wrong?",
                              "submission": str(sid)})
    tid = int(opened.headers["Location"].rsplit("/", 1)[1])
    theirs = ok(ben.get(f"{forum}/{tid}")).text
    assert f'<span id="thread-submission">#{sid}</span>' in theirs and "secret-path" not in theirs
    mine = ok(ann.get(f"{forum}/{tid}")).text
    assert f'href="/services/competitions/submissions/{sid}" id="thread-submission"' in mine


def test_the_api_answers_the_same_rules(world_server):
    server, world = world_server
    forum_on(server, world)
    api = f"api/v1/competitions/{world.slug}/forum"
    ann, ben, olga, nora = (server.client(n) for n in ("ann", "ben", "olga", "nora"))
    opened = ann.post(f"{api}/threads", json={"title": "API question", "body": "**bold**"})
    assert opened.status_code == 201, opened.text
    thread = opened.json()
    assert opened.headers["Location"].endswith(f"/forum/threads/{thread['id']}")
    assert thread["items"][0]["html"] == "<p><strong>bold</strong></p>\n"
    reply = ben.post(f"{api}/threads/{thread['id']}/posts", json={"body": "an answer"})
    assert reply.status_code == 201
    assert nora.post(f"{api}/threads/{thread['id']}/posts", json={"body": "x"}).status_code == 403
    assert server.client().post(f"{api}/threads/{thread['id']}/posts", json={"body": "x"}).status_code == 401
    assert ann.request("PATCH", f"{api}/threads/{thread['id']}", json={"pinned": True}).status_code == 403
    pinned = olga.request("PATCH", f"{api}/threads/{thread['id']}", json={"pinned": True, "locked": True})
    assert pinned.status_code == 200 and pinned.json()["pinned"] and pinned.json()["locked"]
    assert ann.put(f"{api}/threads/{thread['id']}/answer", json={"post_id": reply.json()["id"]}).json()["answered"]
    assert ann.put(f"{api}/threads/{thread['id']}/answer", json={}).status_code == 400
    assert ben.request("PATCH", f"{api}/posts/{reply.json()['id']}", json={"body": "x"}).status_code == 409  # locked
    listing = server.client().get(f"{api}/threads?q=question").json()
    assert [t["id"] for t in listing["items"]] == [thread["id"]] and listing["may_post"] is False
    assert ann.post(f"{api}/preview", json={"text": "_hi_"}).json() == {"html": "<p><em>hi</em></p>\n"}
    assert nora.post(f"{api}/preview", json={"text": "_hi_"}).status_code == 403
    assert ann.request("DELETE", f"{api}/threads/{thread['id']}").status_code == 403
    assert olga.request("DELETE", f"{api}/threads/{thread['id']}").json()["deleted"] is True
    server.platform.set_lifecycle(world.slug, m.DRAFT, builders.ORGANIZER)
    assert ann.get(f"{api}/threads").status_code == 404
