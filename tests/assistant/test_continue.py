"""Continue: an answer stopped, cut by the output limit or interrupted by a crash goes on
in the same message; the model server gets the partial answer as the last message."""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from asgiref.sync import sync_to_async
from django.utils import timezone

from assistant.models import GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.assistant.conftest import chat_requests, open_socket
from tests.assistant.test_consumer import db_message, deltas, send_frame, wait_snapshot

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

TIER = "llama-3.1-8b"


def continue_frame(conversation_id, message_id, client_id="k1") -> dict:
    return {"type": "message.continue", "client_id": client_id, "conversation_id": conversation_id,
            "message_id": message_id, "tier": TIER}


@sync_to_async
def message_count() -> int:
    return Message.objects.count()


async def stopped_answer(socket, upstream) -> tuple[dict, str]:
    """An answer stopped after a few deltas: (run.started, its text)."""
    upstream.default = Script(tokens=words(400), interval=0.01)
    await socket.send(send_frame("Count for me"))
    started = await socket.recv()
    await socket.until("delta")
    await socket.send({"type": "run.stop", "run_id": started["run_id"]})
    frames = await socket.until("done")
    assert frames[-1]["status"] == "stopped"
    return started, (await db_message(started["assistant_message_id"])).content


async def test_continue_after_stop_appends_to_the_same_message(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    started, partial = await stopped_answer(socket, upstream)
    assert partial
    before = await db_message(started["assistant_message_id"])
    count = await message_count()

    upstream.default = Script(tokens=[" and", " the", " rest."])
    await socket.send(continue_frame(started["conversation_id"], started["assistant_message_id"]))
    frames = await socket.until("done")
    again = frames[0]
    assert again["type"] == "run.started" and again["run_id"] != started["run_id"]
    assert again["assistant_message_id"] == started["assistant_message_id"]
    assert again["user_message_id"] == started["user_message_id"]
    assert again["continues"] == len(partial)
    # The deltas carry only the continuation.
    assert "".join(f["text"] for f in deltas(frames)) == " and the rest."
    assert frames[-1]["status"] == "complete"

    # The model server got the partial answer as the last (assistant) message, to go on from.
    request = chat_requests(upstream)[-1]
    assert request["messages"][1:] == [{"role": "user", "content": "Count for me"},
                                       {"role": "assistant", "content": partial}]
    assert request["continue_final_message"] is True and request["add_generation_prompt"] is False

    answer = await db_message(started["assistant_message_id"])
    assert (answer.content, answer.status, answer.finish_reason) == (partial + " and the rest.", "complete", "stop")
    assert answer.completion_tokens == before.completion_tokens + 3  # usage adds up over the runs
    assert await message_count() == count
    await socket.close()


async def test_continue_after_the_length_limit(upstream, transactional_db, member, sessions, free_plan):
    from assistant.models import ModelTier

    await sync_to_async(ModelTier.objects.filter(slug=TIER).update)(max_output_tokens=3)
    upstream.default = Script(tokens=["one", " two", " three", " four", " five"])
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Count to five"))
    frames = await socket.until("done")
    started = frames[0]
    assert frames[-1]["finish_reason"] == "length"
    cut = await db_message(started["assistant_message_id"])
    assert (cut.content, cut.status, cut.finish_reason) == ("one two three", "complete", "length")

    upstream.default = Script(tokens=[" four", " five"])
    await socket.send(continue_frame(started["conversation_id"], started["assistant_message_id"]))
    frames = await socket.until("done")
    assert frames[0]["continues"] == len("one two three")
    assert chat_requests(upstream)[-1]["messages"][-1] == {"role": "assistant", "content": "one two three"}
    answer = await db_message(started["assistant_message_id"])
    assert (answer.content, answer.finish_reason) == ("one two three four five", "stop")
    await socket.close()


async def test_continue_after_a_crash_keeps_the_text_and_goes_on(upstream, tier, member, sessions):
    """The process writing the answer dies (its task is cancelled, as at shutdown), the
    reaper marks the run interrupted keeping its last snapshot, and Continue goes on."""
    from assistant import runs
    from assistant.services import runs_reap_orphans

    upstream.default = Script(tokens=words(400), interval=0.02)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Tell me a long story"))
    started = await socket.recv()
    await wait_snapshot(started["assistant_message_id"], containing="w2 ")
    runs._local_runs[started["run_id"]].task.cancel()
    await asyncio.sleep(0)
    await sync_to_async(GenerationRun.objects.filter(pk=started["run_id"]).update)(
        heartbeat_at=timezone.now() - timedelta(minutes=5))
    assert await sync_to_async(runs_reap_orphans)() == [started["run_id"]]
    interrupted = await db_message(started["assistant_message_id"])
    assert interrupted.status == "interrupted" and interrupted.content.startswith("w0 w1 w2 ")

    upstream.default = Script(tokens=[" The", " end."])
    await socket.send(continue_frame(started["conversation_id"], started["assistant_message_id"], client_id="k2"))
    frames = await socket.until("done")
    again = next(f for f in frames if f["type"] == "run.started")  # after the dead run's last deltas
    assert (again["client_id"], again["assistant_message_id"]) == ("k2", started["assistant_message_id"])
    assert "".join(f["text"] for f in deltas(frames) if f["run_id"] == again["run_id"]) == " The end."
    answer = await db_message(started["assistant_message_id"])
    assert (answer.content, answer.status, answer.error_code) == (interrupted.content + " The end.", "complete", "")
    await socket.close()


async def test_a_resync_of_a_continue_carries_the_whole_answer(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    started, partial = await stopped_answer(socket, upstream)
    upstream.default = Script(tokens=words(150, prefix="x"), interval=0.01)
    await socket.send(continue_frame(started["conversation_id"], started["assistant_message_id"]))
    again = await socket.recv()
    first_delta = (await socket.until("delta"))[-1]
    assert first_delta["text"].startswith("x0")

    other_tab = await open_socket(sessions["member"])
    await other_tab.send({"type": "run.subscribe", "run_id": again["run_id"], "after_seq": 0})
    resync = await other_tab.recv()
    assert resync["type"] == "run.resync"
    assert resync["text"].startswith(partial + "x0 ")
    live = await other_tab.until("done")
    text = resync["text"] + "".join(f["text"] for f in deltas(live))
    assert text == partial + "".join(words(150, prefix="x"))
    await socket.send({"type": "run.stop", "run_id": again["run_id"]})
    await other_tab.close()
    await socket.close()


async def test_only_a_cut_answer_can_be_continued(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Hi"))
    started = (await socket.until("done"))[0]
    requests = len(chat_requests(upstream))
    await socket.send(continue_frame(started["conversation_id"], started["assistant_message_id"]))
    error = await socket.recv()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "not_continuable", "k1")
    # A question is not an answer to continue.
    await socket.send(continue_frame(started["conversation_id"], started["user_message_id"], client_id="k2"))
    assert (await socket.recv())["code"] == "not_found"
    assert len(chat_requests(upstream)) == requests
    answer = await db_message(started["assistant_message_id"])
    assert (answer.status, answer.content) == ("complete", "Hello, world!")
    await socket.close()


async def test_the_page_offers_continue_on_a_stopped_answer_only(upstream, tier, member, sessions):
    from django.conf import settings
    from django.test import Client
    from django.urls import reverse

    socket = await open_socket(sessions["member"])
    started, _ = await stopped_answer(socket, upstream)
    await socket.close()
    client = Client()
    client.cookies[settings.SESSION_COOKIE_NAME] = sessions["member"]
    url = reverse("assistant:conversation", args=[started["conversation_id"]])
    page = (await sync_to_async(client.get)(url)).content.decode()
    assert page.count('data-action="continue"') == 1
    await sync_to_async(Message.objects.filter(pk=started["assistant_message_id"]).update)(status="complete",
                                                                                           finish_reason="stop")
    page = (await sync_to_async(client.get)(url)).content.decode()
    assert 'data-action="continue"' not in page
