"""The forum of a competition in the application layer.

Who reads (whoever may see the competition), who writes (organizers and approved
participants), who moderates (organizers), what an archived or hidden competition's
forum answers, Markdown sanitized as pages are, search and pagination, and a
thread about a submission that shows others nothing of it.
"""
from __future__ import annotations

import pytest

from hub_extension import models as m
from hub_extension.app import NotFound, PlatformError
from hub_extension.errors import Conflict, Forbidden
from tests.support.builders import ADMIN, ANN, ANONYMOUS, BEN, NORA, ORGANIZER, OTHER_ORGANIZER


@pytest.fixture
def forum(platform, world):
    edit = platform.save_overview(world.slug, {"enable_forum": True}, ORGANIZER)
    assert edit.saved, edit.problems
    return world.slug


def test_a_competition_without_a_forum_says_so(platform, world):
    with pytest.raises(NotFound, match="has no forum; turn it on in the editor"):
        platform.forum_threads(world.slug, ORGANIZER)
    with pytest.raises(NotFound, match="has no forum$"):
        platform.forum_threads(world.slug, ANN)
    assert platform.competition_detail(world.slug, ANN)["enable_forum"] is False


def test_the_editor_setting_turns_the_forum_on_and_export_keeps_it(platform, forum):
    assert platform.competition_detail(forum, ANN)["enable_forum"] is True
    assert platform.editable_spec(forum, ORGANIZER).enable_forum is True
    assert "forum_enabled: true" in platform.competition_yaml(forum, ORGANIZER)


def test_a_thread_with_a_reply_an_answer_and_a_pin(platform, forum):
    thread = platform.create_thread(forum, "  How is  accuracy computed? ", "Is it *macro*?", ANN)
    assert thread["title"] == "How is accuracy computed?"
    assert thread["items"][0]["html"] == "<p>Is it <em>macro</em>?</p>\n"
    reply = platform.reply(forum, thread["id"], "Micro, see the **evaluation** page.", ORGANIZER)
    assert reply["author"] == "olga" and "<strong>evaluation</strong>" in reply["html"]
    with pytest.raises(Forbidden, match="only the thread's author and the organizers"):
        platform.mark_answer(forum, thread["id"], reply["id"], BEN)
    assert platform.mark_answer(forum, thread["id"], reply["id"], ANN)["answered"] is True
    with pytest.raises(Forbidden, match="only the organizers"):
        platform.edit_thread(forum, thread["id"], ANN, pinned=True)
    platform.create_thread(forum, "A later thread", "newer", BEN)
    assert platform.edit_thread(forum, thread["id"], ORGANIZER, pinned=True)["pinned"] is True
    listing = platform.forum_threads(forum, NORA)
    assert [t["title"] for t in listing["items"]] == ["How is accuracy computed?", "A later thread"]
    assert listing["items"][0]["posts"] == 2 and listing["items"][0]["answered"]
    seen = platform.forum_thread(forum, thread["id"], ANONYMOUS)
    assert [p["is_answer"] for p in seen["items"]] == [False, True]
    assert "body" not in seen["items"][0] and not seen["may_reply"]


def test_who_may_post_and_who_reads_only(platform, forum):
    thread = platform.create_thread(forum, "Question", "text", BEN)
    for actor, message in ((NORA, "register for the competition"), (OTHER_ORGANIZER, "register for the competition"),
                           (ANONYMOUS, "log in")):
        with pytest.raises(Forbidden, match=message):
            platform.reply(forum, thread["id"], "me too", actor)
        with pytest.raises(Forbidden):
            platform.create_thread(forum, "Mine", "text", actor)
        assert platform.forum_thread(forum, thread["id"], actor)["total"] == 1
    platform.set_registration(forum, "ben", m.BANNED, ORGANIZER)
    listing = platform.forum_threads(forum, BEN)
    assert not listing["may_post"] and "banned" in listing["read_only"]
    with pytest.raises(Forbidden, match="banned"):
        platform.reply(forum, thread["id"], "let me in", BEN)
    assert platform.reply(forum, thread["id"], "admins post", ADMIN)["author"] == "root"


def test_participants_edit_their_own_posts_organizers_any(platform, forum):
    thread = platform.create_thread(forum, "Mine", "first", ANN)
    post = thread["items"][0]
    assert post["may_edit"] and post["body"] == "first"
    edited = platform.edit_post(forum, post["id"], "first, edited", ANN)
    assert edited["edited_by"] == "ann" and edited["html"] == "<p>first, edited</p>\n"
    with pytest.raises(Forbidden, match="their own posts only"):
        platform.edit_post(forum, post["id"], "not yours", BEN)
    assert platform.edit_post(forum, post["id"], "tidied", ORGANIZER)["edited_by"] == "olga"
    assert platform.edit_thread(forum, thread["id"], ANN, title="Renamed")["title"] == "Renamed"
    with pytest.raises(Forbidden):
        platform.edit_thread(forum, thread["id"], BEN, title="Hijacked")


def test_a_locked_thread_takes_replies_from_organizers_only(platform, forum):
    thread = platform.create_thread(forum, "Closed topic", "text", ANN)
    platform.edit_thread(forum, thread["id"], ORGANIZER, locked=True)
    with pytest.raises(Conflict, match="locked"):
        platform.reply(forum, thread["id"], "more", BEN)
    with pytest.raises(Conflict, match="locked"):
        platform.edit_post(forum, thread["items"][0]["id"], "changed", ANN)
    assert platform.reply(forum, thread["id"], "Closing: answered on the page.", ORGANIZER)
    assert not platform.forum_thread(forum, thread["id"], BEN)["may_reply"]


def test_organizers_delete_posts_and_threads(platform, forum):
    thread = platform.create_thread(forum, "Spam?", "opening", ANN)
    reply = platform.reply(forum, thread["id"], "buy things", BEN)
    platform.mark_answer(forum, thread["id"], reply["id"], ANN)
    with pytest.raises(Forbidden, match="only the organizers"):
        platform.delete_post(forum, reply["id"], ANN)
    gone = platform.delete_post(forum, reply["id"], ORGANIZER)
    assert gone["deleted"] and gone["html"] == ""
    seen = platform.forum_thread(forum, thread["id"], BEN)
    assert seen["posts"] == 1 and not seen["answered"] and seen["items"][1]["deleted"]
    assert "buy things" not in str(seen)
    with pytest.raises(Conflict, match="delete the thread instead"):
        platform.delete_post(forum, thread["items"][0]["id"], ORGANIZER)
    with pytest.raises(Forbidden):
        platform.delete_thread(forum, thread["id"], ANN)
    platform.delete_thread(forum, thread["id"], ORGANIZER)
    with pytest.raises(NotFound, match="no thread"):
        platform.forum_thread(forum, thread["id"], ANN)


def test_posts_are_sanitized_as_pages_are(platform, forum):
    body = "Hi <script>alert(1)</script> [x](javascript:alert(2)) <img src=x onerror=alert(3)>"
    thread = platform.create_thread(forum, "<b>bold</b> title", body, ANN)
    html = thread["items"][0]["html"]
    assert "<script" not in html and 'href="javascript' not in html and "onerror" not in html
    assert '<img src="x">' in html  # formatting kept, as on pages
    assert thread["title"] == "<b>bold</b> title"  # plain text, escaped where it is shown
    assert platform.forum_preview(forum, "**strong**", BEN) == "<p><strong>strong</strong></p>\n"
    with pytest.raises(Forbidden):
        platform.forum_preview(forum, "x", NORA)


def test_bad_input_is_refused_with_what_to_fix(platform, forum):
    with pytest.raises(PlatformError, match="title: is required"):
        platform.create_thread(forum, "  ", "text", ANN)
    with pytest.raises(PlatformError, match="body: is required"):
        platform.create_thread(forum, "Title", "", ANN)
    with pytest.raises(PlatformError, match="at most 20000"):
        platform.create_thread(forum, "Title", "x" * 20_001, ANN)
    assert platform.forum_threads(forum, ANN)["total"] == 0  # nothing half created


def test_search_by_words_in_titles_and_posts_and_pages(platform, forum):
    platform.create_thread(forum, "Docker image missing", "the image is not found", ANN)
    t2 = platform.create_thread(forum, "Deadline", "when does phase 2 open?", BEN)
    platform.reply(forum, t2["id"], "see the 100% schedule in the image", ORGANIZER)
    for i in range(25):
        platform.create_thread(forum, f"Filler {i}", "nothing", ANN)
    assert {t["title"] for t in platform.forum_threads(forum, NORA, search="IMAGE")["items"]} == {
        "Docker image missing", "Deadline"}
    assert [t["title"] for t in platform.forum_threads(forum, NORA, search="image schedule")["items"]] == ["Deadline"]
    assert platform.forum_threads(forum, NORA, search="100%")["total"] == 1
    assert platform.forum_threads(forum, NORA, search="_")["total"] == 0  # no LIKE wildcard
    first = platform.forum_threads(forum, NORA)
    assert first["total"] == 27 and len(first["items"]) == 20
    assert len(platform.forum_threads(forum, NORA, offset=20)["items"]) == 7
    for _ in range(24):
        platform.reply(forum, t2["id"], "more", BEN)
    assert len(platform.forum_thread(forum, t2["id"], ANN)["items"]) == 20
    last = platform.forum_thread(forum, t2["id"], ANN, offset=20)
    assert last["total"] == 26 and len(last["items"]) == 6
    assert platform.forum_page_of(forum, t2["id"], last["items"][-1]["id"], ANN) == 2


def test_a_thread_about_a_submission_tells_others_nothing_of_it(platform, forum, world):
    sid = world.subs["ann"]
    with pytest.raises(NotFound, match=f"no submission {sid}"):
        platform.create_thread(forum, "About ann's", "hm", BEN, submission_id=sid)
    with pytest.raises(NotFound):
        platform.forum_submission(forum, sid, BEN)
    assert platform.forum_submission(forum, sid, ANN)["id"] == sid
    thread = platform.create_thread(forum, f"Submission {sid} failed", "Why?", ANN, submission_id=sid)
    assert thread["submission_id"] == sid and thread["submission_visible"]
    theirs = platform.forum_thread(forum, thread["id"], BEN)
    assert theirs["submission_visible"] is False and "error" not in str(theirs)
    assert platform.forum_thread(forum, thread["id"], ORGANIZER)["submission_visible"] is True


def test_hidden_and_archived_competitions_forums(platform, forum):
    thread = platform.create_thread(forum, "Before", "text", ANN)
    platform.set_lifecycle(forum, m.DRAFT, ORGANIZER)
    for actor in (ANN, NORA, ANONYMOUS):
        with pytest.raises(NotFound, match=f"no competition {forum!r}"):
            platform.forum_threads(forum, actor)
        with pytest.raises(NotFound, match=f"no competition {forum!r}"):
            platform.reply(forum, thread["id"], "x", actor)
    assert platform.reply(forum, thread["id"], "testing the draft", ORGANIZER)
    platform.set_lifecycle(forum, m.ARCHIVED, ORGANIZER)
    listing = platform.forum_threads(forum, ANN)
    assert listing["total"] == 1 and not listing["may_post"] and "archived" in listing["read_only"]
    for actor in (ANN, ORGANIZER):
        with pytest.raises(Conflict, match="archived and read-only"):
            platform.reply(forum, thread["id"], "x", actor)
    with pytest.raises(Conflict, match="archived"):
        platform.edit_thread(forum, thread["id"], ORGANIZER, pinned=True)


def test_the_forum_names_authors_by_their_display_names(platform, forum):
    thread = platform.create_thread(forum, "Named", "first", ANN)
    platform.save_profile(ANN, {"display_name": "Ann of the Lab"})
    platform.reply(forum, thread["id"], "second", BEN)
    seen = platform.forum_thread(forum, thread["id"], ANONYMOUS)
    assert seen["author_name"] == "Ann of the Lab" and seen["author"] == ANN.username
    assert [p["author_name"] for p in seen["items"]] == ["Ann of the Lab", BEN.username]
    listing = platform.forum_threads(forum, BEN)
    assert [t["author_name"] for t in listing["items"] if t["id"] == thread["id"]] == ["Ann of the Lab"]
