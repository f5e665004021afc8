"""Branches: regenerate and edit keep every version, the prompt is the active branch only,
switching shows (and stores) another branch, exports and shares say what they hold."""

from __future__ import annotations

import importlib
import json
import re

import pytest
from asgiref.sync import sync_to_async
from django.apps import apps as django_apps
from django.test import Client
from django.urls import reverse

from assistant.models import Conversation, Message
from bench.fake_upstream import Script
from tests.assistant.conftest import chat_requests, open_socket
from tests.assistant.test_consumer import send_frame

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

TIER = "llama-3.1-8b"


def regenerate_frame(conversation_id, message_id, client_id="r1") -> dict:
    return {"type": "message.regenerate", "client_id": client_id, "conversation_id": conversation_id,
            "message_id": message_id, "tier": TIER}


def edit_frame(conversation_id, message_id, content, client_id="e1") -> dict:
    return {"type": "message.edit", "client_id": client_id, "conversation_id": conversation_id,
            "message_id": message_id, "content": content, "tier": TIER}


def member_client(session_key: str) -> Client:
    from django.conf import settings

    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = session_key
    return client


@sync_to_async
def db_conversation(pk) -> Conversation:
    return Conversation.objects.select_related("active_leaf").get(pk=pk)


@sync_to_async
def db_messages(conversation_id) -> list[tuple[str, str]]:
    return list(Message.objects.filter(conversation_id=conversation_id).order_by("created_at")
                .values_list("role", "content"))


async def ask(socket, content, *, conversation_id=None, answer=None, upstream=None, client_id="c1") -> dict:
    """Send a question and wait for its answer; returns run.started."""
    if answer is not None:
        upstream.default = Script(tokens=[answer])
    await socket.send(send_frame(content, conversation_id=conversation_id, client_id=client_id))
    frames = await socket.until("done", "error")
    assert frames[-1]["type"] == "done", frames[-1]
    return frames[0]


async def two_turns(socket, upstream) -> tuple[dict, dict]:
    first = await ask(socket, "Q1", answer="A1", upstream=upstream)
    second = await ask(socket, "Q2", conversation_id=first["conversation_id"], answer="A2", upstream=upstream,
                       client_id="c2")
    return first, second


def prompt_turns(body: dict) -> list[tuple[str, str]]:
    return [(m["role"], m["content"]) for m in body["messages"][1:]]


async def test_regenerating_an_old_answer_keeps_every_version_and_prompts_with_its_branch_only(
    upstream, tier, member, sessions
):
    socket = await open_socket(sessions["member"])
    first, second = await two_turns(socket, upstream)
    conversation_id = first["conversation_id"]

    # Regenerate the FIRST answer while a later turn exists (an old branch): Q2/A2 stay.
    upstream.default = Script(tokens=["A1 again"])
    await socket.send(regenerate_frame(conversation_id, first["assistant_message_id"]))
    frames = await socket.until("done")
    again = frames[0]
    assert prompt_turns(chat_requests(upstream)[-1]) == [("user", "Q1")]
    assert again["user_message_id"] == first["user_message_id"]
    assert again["versions"] == {"message_id": again["assistant_message_id"], "index": 2, "count": 2,
                                 "previous_id": first["assistant_message_id"], "next_id": None}
    assert await db_messages(conversation_id) == [
        ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"), ("assistant", "A1 again")]
    assert str((await db_conversation(conversation_id)).active_leaf_id) == again["assistant_message_id"]

    # The next question follows the active branch: Q1, "A1 again", Q3 — never Q2 or A2.
    await ask(socket, "Q3", conversation_id=conversation_id, answer="A3", upstream=upstream, client_id="c3")
    assert prompt_turns(chat_requests(upstream)[-1]) == [("user", "Q1"), ("assistant", "A1 again"), ("user", "Q3")]
    await socket.close()


async def test_editing_a_question_keeps_the_old_one_and_its_later_turns(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    first, second = await two_turns(socket, upstream)
    conversation_id = first["conversation_id"]
    upstream.default = Script(tokens=["B2"])
    await socket.send(edit_frame(conversation_id, second["user_message_id"], "Q2 edited"))
    edited = (await socket.until("done"))[0]
    assert prompt_turns(chat_requests(upstream)[-1]) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2 edited")]
    assert edited["versions"]["message_id"] == edited["user_message_id"] != second["user_message_id"]
    assert (edited["versions"]["index"], edited["versions"]["count"]) == (2, 2)
    assert edited["versions"]["previous_id"] == second["user_message_id"]
    assert await db_messages(conversation_id) == [
        ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"), ("user", "Q2 edited"),
        ("assistant", "B2")]
    await socket.close()


async def test_switching_shows_that_branch_stores_it_and_the_next_prompt_follows_it(
    upstream, tier, member, sessions
):
    socket = await open_socket(sessions["member"])
    first, second = await two_turns(socket, upstream)
    conversation_id = first["conversation_id"]
    upstream.default = Script(tokens=["A1 again"])
    await socket.send(regenerate_frame(conversation_id, first["assistant_message_id"]))
    await socket.until("done")

    client = member_client(sessions["member"])
    url = reverse("assistant:conversation_branch", args=[conversation_id])
    response = await sync_to_async(client.post)(url, {"message_id": first["assistant_message_id"]})
    assert response.status_code == 200
    html = response.content.decode()
    # The old version's branch, later turns included, with its switcher at 1 / 2.
    assert "A1" in html and shows_text(html, "Q2") and shows_text(html, "A2") and "A1 again" not in html
    assert '<span class="version-label">1 / 2</span>' in html
    conversation = await db_conversation(conversation_id)
    assert str(conversation.active_leaf_id) == second["assistant_message_id"]

    # A reload shows the stored branch.
    page = (await sync_to_async(client.get)(reverse("assistant:conversation", args=[conversation_id]))).content.decode()
    assert "A2" in page and "A1 again" not in page

    await ask(socket, "Q3", conversation_id=conversation_id, answer="A3", upstream=upstream, client_id="c4")
    assert prompt_turns(chat_requests(upstream)[-1]) == [
        ("user", "Q1"), ("assistant", "A1"), ("user", "Q2"), ("assistant", "A2"), ("user", "Q3")]

    # Back to the newer version: its branch ends at that answer (it has no later turns).
    response = await sync_to_async(client.post)(url, {"message_id": first["assistant_message_id"]})
    versions = await sync_to_async(lambda: list(
        Message.objects.filter(conversation_id=conversation_id, content="A1 again").values_list("pk", flat=True)))()
    response = await sync_to_async(client.post)(url, {"message_id": str(versions[0])})
    html = response.content.decode()
    assert "A1 again" in html and not shows_text(html, "Q2") and '<span class="version-label">2 / 2</span>' in html
    await socket.close()


async def test_regenerating_on_a_branch_that_was_switched_back_to(upstream, tier, member, sessions):
    """A regenerate on an older branch adds a version there and prompts with that branch."""
    socket = await open_socket(sessions["member"])
    first, second = await two_turns(socket, upstream)
    conversation_id = first["conversation_id"]
    upstream.default = Script(tokens=["A1 again"])
    await socket.send(regenerate_frame(conversation_id, first["assistant_message_id"]))
    await socket.until("done")
    client = member_client(sessions["member"])
    await sync_to_async(client.post)(reverse("assistant:conversation_branch", args=[conversation_id]),
                                     {"message_id": first["assistant_message_id"]})
    upstream.default = Script(tokens=["A2 again"])
    await socket.send(regenerate_frame(conversation_id, second["assistant_message_id"], client_id="r2"))
    frames = await socket.until("done")
    assert prompt_turns(chat_requests(upstream)[-1]) == [("user", "Q1"), ("assistant", "A1"), ("user", "Q2")]
    assert frames[0]["versions"]["index"] == 2 and frames[0]["versions"]["count"] == 2
    assert len(await db_messages(conversation_id)) == 6
    await socket.close()


async def test_another_persons_message_ids_are_refused(upstream, tier, member, sessions, other_member):
    socket = await open_socket(sessions["member"])
    first, _ = await two_turns(socket, upstream)
    conversation_id = first["conversation_id"]
    await socket.close()

    other = await open_socket(sessions["other"])
    mine = await ask(other, "Mine", answer="Ok", upstream=upstream)
    requests_before = len(chat_requests(upstream))
    # Their ids in my conversation, my ids in theirs: both read as not found, nothing written.
    for frame in (
        regenerate_frame(mine["conversation_id"], first["assistant_message_id"]),
        regenerate_frame(conversation_id, first["assistant_message_id"]),
        edit_frame(mine["conversation_id"], first["user_message_id"], "hijack"),
        {"type": "message.continue", "client_id": "k1", "conversation_id": mine["conversation_id"],
         "message_id": first["assistant_message_id"], "tier": TIER},
    ):
        await other.send(frame)
        error = await other.recv()
        assert (error["type"], error["code"]) == ("error", "not_found"), error
    assert len(chat_requests(upstream)) == requests_before
    assert len(await db_messages(conversation_id)) == 4

    client = member_client(sessions["other"])
    url = reverse("assistant:conversation_branch", args=[conversation_id])
    assert (await sync_to_async(client.post)(url, {"message_id": first["assistant_message_id"]})).status_code == 404
    # Their own conversation, my message: not found either, and their branch is unchanged.
    url = reverse("assistant:conversation_branch", args=[mine["conversation_id"]])
    assert (await sync_to_async(client.post)(url, {"message_id": first["assistant_message_id"]})).status_code == 404
    assert (await sync_to_async(client.post)(url, {"message_id": "not-a-uuid"})).status_code == 404
    assert str((await db_conversation(mine["conversation_id"])).active_leaf_id) == mine["assistant_message_id"]
    await other.close()


async def test_switching_is_refused_while_an_answer_is_written(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    first, second = await two_turns(socket, upstream)
    upstream.default = Script(tokens=["slow "] * 50, interval=0.05)
    await socket.send(send_frame("Q3", conversation_id=first["conversation_id"], client_id="c9"))
    await socket.until("delta")
    client = member_client(sessions["member"])
    response = await sync_to_async(client.post)(
        reverse("assistant:conversation_branch", args=[first["conversation_id"]]),
        {"message_id": first["assistant_message_id"]})
    assert response.status_code == 409
    assert "still being written" in response.content.decode()
    await socket.until("done")
    await socket.close()


# --- exports and shares ------------------------------------------------------------------------


def shows_text(html: str, text: str) -> bool:
    """Whether `text` is an element's whole text on the page (a bare substring check also
    matches random tokens: a CSRF token once contained "Q2")."""
    return re.search(rf">\s*{re.escape(text)}\s*<", html) is not None


async def branched(socket, upstream) -> tuple[dict, dict]:
    """Q1 with two answers (A1, then "A1 again", active) and Q2/A2 under A1."""
    first, second = await two_turns(socket, upstream)
    upstream.default = Script(tokens=["A1 again"])
    await socket.send(regenerate_frame(first["conversation_id"], first["assistant_message_id"]))
    return first, (await socket.until("done"))[0]


async def test_markdown_export_and_share_show_the_active_branch_and_say_so(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    first, _ = await branched(socket, upstream)
    await socket.close()
    conversation_id = first["conversation_id"]
    client = member_client(sessions["member"])
    md = (await sync_to_async(client.get)(
        reverse("assistant:conversation_export", args=[conversation_id, "md"]))).content.decode()
    assert "A1 again" in md and "Q2" not in md and "A2" not in md
    assert "This is the branch shown in the chat; 3 message(s) on other versions are not included" in md

    await sync_to_async(client.post)(reverse("assistant:conversation_share", args=[conversation_id]))
    conversation = await db_conversation(conversation_id)
    shared = (await sync_to_async(Client().get)(
        reverse("assistant:shared", args=[conversation.share_token]))).content.decode()
    assert "A1 again" in shared and not shows_text(shared, "Q2")
    assert "3 messages on other versions are not shared" in shared


async def test_json_exports_hold_the_whole_tree_with_the_active_branch_marked(upstream, tier, member, sessions):
    from assistant.exports import user_export

    socket = await open_socket(sessions["member"])
    first, again = await branched(socket, upstream)
    await socket.close()
    conversation_id = first["conversation_id"]
    client = member_client(sessions["member"])
    data = json.loads((await sync_to_async(client.get)(
        reverse("assistant:conversation_export", args=[conversation_id, "json"]))).content)
    assert "Every version of every message is included" in data["branches"]
    by_content = {m["content"]: m for m in data["messages"]}
    assert list(by_content) == ["Q1", "A1", "Q2", "A2", "A1 again"]
    assert by_content["Q1"]["parent_id"] is None
    assert by_content["A1"]["parent_id"] == by_content["A1 again"]["parent_id"] == by_content["Q1"]["id"]
    assert by_content["Q2"]["parent_id"] == by_content["A1"]["id"]
    assert [m["content"] for m in data["messages"] if m["on_active_branch"]] == ["Q1", "A1 again"]

    exported = await sync_to_async(user_export)(user=member)
    messages = exported["conversations"][0]["messages"]
    assert [m["content"] for m in messages] == ["Q1", "A1", "Q2", "A2", "A1 again"]
    assert [m["content"] for m in messages if m["on_active_branch"]] == ["Q1", "A1 again"]
    assert "Every version" in exported["branches"]


async def test_the_chat_page_shows_the_version_switcher(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    first, again = await branched(socket, upstream)
    await socket.close()
    page = (await sync_to_async(member_client(sessions["member"]).get)(
        reverse("assistant:conversation", args=[first["conversation_id"]]))).content.decode()
    assert '<span class="version-label">2 / 2</span>' in page
    assert f'data-action="version" data-value="{first["assistant_message_id"]}" aria-label="Previous version"' in page
    assert not shows_text(page, "Q2")


# --- the migration of linear conversations ------------------------------------------------------


def test_the_migration_links_each_message_of_a_linear_conversation_to_the_one_before(member):
    migration = importlib.import_module("assistant.migrations.0003_message_tree_temporary_continue")
    conversation = Conversation.objects.create(user=member)
    q1 = Message.objects.create(conversation=conversation, role="user", content="Q1")
    a1 = Message.objects.create(conversation=conversation, role="assistant", content="A1", parent=q1)
    q2 = Message.objects.create(conversation=conversation, role="user", content="Q2")  # before branches: no parent
    a2 = Message.objects.create(conversation=conversation, role="assistant", content="A2", parent=q2)
    migration.link_linear_conversations(django_apps, None)
    assert [m.parent_id for m in Message.objects.filter(conversation=conversation).order_by("created_at")] == [
        None, q1.pk, a1.pk, q2.pk]
    conversation.refresh_from_db()
    assert conversation.active_leaf_id == a2.pk
    from assistant.conversations import conversation_thread

    assert [m.content for m in conversation_thread(conversation=conversation)] == ["Q1", "A1", "Q2", "A2"]


def test_a_message_tree_walks_versions_and_branches():
    from datetime import timedelta

    from django.utils import timezone

    from assistant.branches import MessageTree

    now = timezone.now()
    conversation = Conversation(pk=None)

    def message(name, parent, n):
        return Message(conversation=conversation, role="user", content=name, parent=parent,
                       created_at=now + timedelta(seconds=n))

    q1 = message("q1", None, 0)
    a1 = message("a1", q1, 1)
    a1b = message("a1b", q1, 2)
    q2 = message("q2", a1, 3)
    tree = MessageTree([q2, a1b, q1, a1])
    assert [m.content for m in tree.active_path(q2.pk)] == ["q1", "a1", "q2"]
    assert [m.content for m in tree.active_path(None)] == ["q1", "a1", "q2"]  # no leaf: the newest message's branch
    assert tree.newest_leaf_under(a1) is q2 and tree.newest_leaf_under(a1b) is a1b
    v = tree.versions(a1b)
    assert (v.index, v.count, v.previous_id, v.next_id) == (2, 2, str(a1.pk), None)
