"""The chat socket end to end: the real ASGI application, a real fake upstream over HTTP."""

from __future__ import annotations

import asyncio
import json
import uuid

import pytest
from asgiref.sync import sync_to_async

from assistant.models import Conversation, GenerationRun, Message
from bench.fake_upstream import Script, words
from tests.assistant.conftest import chat_requests, guest_session, is_title_request, open_socket, run_log_forget

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]


def send_frame(content="Hello there", *, tier="llama-3.1-8b", conversation_id=None, client_id="c1") -> dict:
    return {"type": "message.send", "client_id": client_id, "conversation_id": conversation_id,
            "content": content, "tier": tier}


def deltas(frames: list[dict]) -> list[dict]:
    return [f for f in frames if f["type"] == "delta"]


@sync_to_async
def db_message(pk) -> Message:
    return Message.objects.get(pk=pk)


@sync_to_async
def db_run(pk) -> GenerationRun:
    return GenerationRun.objects.get(pk=pk)


@sync_to_async
def db_count(model) -> int:
    return model.objects.count()


async def wait_run_finished(run_id: str, timeout: float = 5.0) -> GenerationRun:
    for _ in range(int(timeout / 0.02)):
        run = await db_run(run_id)
        if run.status != GenerationRun.Status.RUNNING:
            return run
        await asyncio.sleep(0.02)
    raise AssertionError(f"run {run_id} still running")


async def wait_snapshot(message_id: str, timeout: float = 5.0, *, containing: str = "") -> Message:
    """The answer once a snapshot has saved some partial text (that contains `containing`)."""
    for _ in range(int(timeout / 0.05)):
        message = await db_message(message_id)
        if message.content and containing in message.content:
            return message
        await asyncio.sleep(0.05)
    raise AssertionError(f"no snapshot with {containing!r} was written")


# --- streaming -----------------------------------------------------------------------------


async def test_hello_frame(member, sessions):
    socket = await open_socket(sessions["member"])
    assert socket.hello == {
        "type": "hello",
        "protocol": 1,
        "user": {"authenticated": True, "display_name": member.get_short_name()},
        "limits": {"max_message_chars": 8000},
    }
    await socket.close()


async def test_streams_in_order_and_saves_the_answer_once(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Say hello"))
    frames = await socket.until("done")
    started = frames[0]
    assert started["type"] == "run.started"
    assert started["client_id"] == "c1"
    assert started["tier"] == {"slug": "llama-3.1-8b", "display_name": "Llama 3.1 8B", "served_by": "Fake upstream"}
    delta_frames = deltas(frames)
    assert [f["seq"] for f in delta_frames] == list(range(1, len(delta_frames) + 1))
    assert "".join(f["text"] for f in delta_frames) == "Hello, world!"
    done = frames[-1]
    request = chat_requests(upstream)[0]
    expected_prompt = sum(len(m["content"].split()) + 4 for m in request["messages"])
    assert done == {
        "type": "done", "run_id": started["run_id"], "seq": len(delta_frames) + 1,
        "message_id": started["assistant_message_id"], "status": "complete", "finish_reason": "stop",
        "usage": {"prompt_tokens": expected_prompt, "completion_tokens": 4},
    }
    # The request: streaming with usage, the tier's sampling, system prompt with the custom instructions.
    assert request["stream"] is True
    assert request["stream_options"] == {"include_usage": True}
    assert request["model"] == "fake-model"
    assert request["repeat_penalty"] == 1.1 and request["temperature"] == 0.6 and request["top_p"] == 0.9
    assert request["messages"][0]["role"] == "system"
    assert "Answer like a pirate." in request["messages"][0]["content"]
    assert request["messages"][1:] == [{"role": "user", "content": "Say hello"}]

    answer = await db_message(started["assistant_message_id"])
    assert (answer.content, answer.status, answer.prompt_tokens, answer.completion_tokens, answer.usage_counted) == (
        "Hello, world!", "complete", expected_prompt, 4, False)
    question = await db_message(started["user_message_id"])
    assert (question.role, question.content, question.conversation_id) == ("user", "Say hello", answer.conversation_id)
    run = await db_run(started["run_id"])
    assert (run.status, run.last_seq) == ("complete", len(delta_frames))
    assert run.first_token_at is not None
    await socket.close()


async def test_first_token_at_once_then_coalesced(upstream, tier, member, sessions, settings):
    upstream.default = Script(tokens=words(60), interval=0.005)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done")
    delta_frames = deltas(frames)
    assert delta_frames[0]["text"] == "w0 "  # the first token alone, at once
    assert "".join(f["text"] for f in delta_frames) == "".join(words(60))
    # 60 tokens over ~0.3 s with a 40 ms window: about 8 frames, never one per token.
    assert 2 <= len(delta_frames) <= 20
    await socket.close()


async def test_without_coalescing_every_token_is_a_frame(upstream, tier, member, sessions, settings):
    settings.ASSISTANT_COALESCE_S = 0.0
    upstream.default = Script(tokens=words(30), interval=0.002)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done")
    assert [f["text"] for f in deltas(frames)] == words(30)
    await socket.close()


async def test_usage_counted_when_the_server_sends_none(upstream, transactional_db, member, sessions, free_plan):
    from assistant.inference import PER_MESSAGE_OVERHEAD, PROMPT_OVERHEAD
    from assistant.models import ModelTier

    await sync_to_async(ModelTier.objects.filter(slug="llama-3.1-8b").update)(tokenizer="llama.cpp")
    upstream.default = Script(tokens=words(7), usage=False)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("one two three"))
    frames = await socket.until("done")
    request = chat_requests(upstream)[0]
    # The fake's tokenizer counts words + 1 per text; Lhama adds the template overhead.
    expected_prompt = PROMPT_OVERHEAD + sum(len(m["content"].split()) + 1 + PER_MESSAGE_OVERHEAD
                                            for m in request["messages"])
    assert frames[-1]["usage"] == {"prompt_tokens": expected_prompt, "completion_tokens": 7}
    answer = await db_message(frames[0]["assistant_message_id"])
    assert (answer.prompt_tokens, answer.completion_tokens, answer.usage_counted) == (expected_prompt, 7, True)
    await socket.close()


# --- stop, disconnect, resync ------------------------------------------------------------------


async def test_stop_closes_the_upstream_and_keeps_the_partial_answer(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(400), interval=0.01)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    started = await socket.recv()
    received = [await socket.recv(), await socket.recv()]
    assert [f["type"] for f in received] == ["delta", "delta"]
    await socket.send({"type": "run.stop", "run_id": started["run_id"]})
    frames = await socket.until("done")
    received += frames
    done = received[-1]
    assert (done["status"], done["finish_reason"]) == ("stopped", "stopped")
    text = "".join(f["text"] for f in deltas(received))
    assert 0 < len(text) < len("".join(words(400)))
    record = next(r for r in upstream.records if not is_title_request(r.body))
    assert await asyncio.to_thread(upstream.wait_for, lambda: record.disconnected, 3)
    sent = record.sent_tokens
    assert sent < 400  # the server stopped generating
    answer = await db_message(started["assistant_message_id"])
    assert (answer.status, answer.content, answer.finish_reason) == ("stopped", text, "stopped")
    assert answer.completion_tokens == len(text.split())
    await socket.close()


async def test_closing_the_socket_does_not_stop_the_run(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(30), interval=0.01)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    started = await socket.recv()
    assert (await socket.recv())["type"] == "delta"
    await socket.close()
    run = await wait_run_finished(started["run_id"])
    assert run.status == "complete"
    answer = await db_message(started["assistant_message_id"])
    assert (answer.status, answer.content) == ("complete", "".join(words(30)))
    assert upstream.records[0].finished


async def test_partial_text_is_snapshotted_while_streaming(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(100), interval=0.01)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    started = await socket.recv()
    answer = await wait_snapshot(started["assistant_message_id"], containing="w1 ")  # every 0.2 s in tests
    assert answer.status == "streaming"
    assert answer.content.startswith("w0 w1 ")
    run = await db_run(started["run_id"])
    assert run.last_seq > 0
    await socket.send({"type": "run.stop", "run_id": started["run_id"]})
    await socket.until("done")
    await socket.close()


async def test_reconnect_resyncs_without_loss_or_duplication(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(200), interval=0.01)
    first = await open_socket(sessions["member"])
    await first.send(send_frame())
    started = await first.recv()
    seen = [await first.recv() for _ in range(3)]
    assert [f["type"] for f in seen] == ["delta"] * 3
    last_seq = seen[-1]["seq"]
    seen_text = "".join(f["text"] for f in seen)
    record = next(r for r in upstream.records if not is_title_request(r.body))
    await first.close()
    # Tokens keep coming while nobody listens: wait until the run has read ten more.
    at_close = record.sent_tokens
    assert await asyncio.to_thread(upstream.wait_for, lambda: record.sent_tokens >= at_close + 10, 5)

    second = await open_socket(sessions["member"])
    await second.send({"type": "run.subscribe", "run_id": started["run_id"], "after_seq": last_seq})
    frames = await second.until("done")
    resync = frames[0]
    assert resync["type"] == "run.resync"
    assert (resync["run_id"], resync["conversation_id"], resync["status"]) == (
        started["run_id"], started["conversation_id"], "running")
    # The path under test ran: deltas were missed while disconnected, and the resync has them.
    assert resync["seq"] > last_seq
    assert resync["text"].startswith(seen_text) and len(resync["text"]) > len(seen_text)
    live = deltas(frames)
    assert live, "the run was still streaming after the resync"
    assert [f["seq"] for f in live] == list(range(resync["seq"] + 1, resync["seq"] + 1 + len(live)))
    assert resync["text"] + "".join(f["text"] for f in live) == "".join(words(200))
    await second.close()


async def test_subscribe_after_the_end_gets_the_final_state(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done")
    await socket.send({"type": "run.subscribe", "run_id": frames[0]["run_id"], "after_seq": 0})
    resync = await socket.recv()
    done = await socket.recv()
    assert (resync["type"], resync["text"], resync["status"], resync["seq"]) == (
        "run.resync", "Hello, world!", "complete", frames[-1]["seq"] - 1)
    assert done == frames[-1]
    await socket.close()


async def test_subscribe_when_the_log_is_gone_uses_the_saved_message(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done")
    run_id = frames[0]["run_id"]
    await run_log_forget(run_id)
    await socket.send({"type": "run.subscribe", "run_id": run_id, "after_seq": 0})
    resync, done = await socket.recv(), await socket.recv()
    assert (resync["text"], resync["status"]) == ("Hello, world!", "complete")
    assert (done["type"], done["status"], done["usage"]) == ("done", "complete", frames[-1]["usage"])
    await socket.close()


# --- errors from the upstream ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("script", "code", "requests", "partial"),
    [
        (Script(fault="stall_first", stall_s=5), "upstream_timeout", 1, ""),
        (Script(tokens=words(6), fault="stall_mid", fault_after=3, stall_s=5), "upstream_timeout", 1, "w0 w1 w2 "),
        (Script(tokens=words(6), fault="drop_mid", fault_after=3), "upstream_error", 1, "w0 w1 w2 "),
        (Script(fault="http_500"), "upstream_error", 2, ""),
        (Script(fault="http_400"), "upstream_error", 1, ""),
        (Script(tokens=words(6), fault="malformed", fault_after=2, stall_s=5), "upstream_malformed", 1, "w0 w1 "),
    ],
    ids=["stall-before-first-token", "stall-mid-stream", "drop-mid-stream", "http-500", "http-400", "malformed"],
)
async def test_upstream_faults_end_the_run_with_a_readable_error(upstream, tier, member, sessions, script, code,
                                                                 requests, partial):
    upstream.default = script
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("error")
    started, error = frames[0], frames[-1]
    assert "".join(f["text"] for f in deltas(frames)) == partial
    assert error["code"] == code
    assert error["run_id"] == started["run_id"]
    assert error["retryable"] is (requests == 2 or code != "upstream_error" or partial != "")
    assert error["message"]
    assert len(chat_requests(upstream)) == requests
    answer = await db_message(started["assistant_message_id"])
    assert (answer.status, answer.error_code, answer.content) == ("error", code, partial)
    run = await db_run(started["run_id"])
    assert (run.status, run.error_code) == ("error", code)
    assert await socket.nothing(0.2)  # no done frame, no spinner
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}
    await socket.close()


async def test_upstream_down(upstream, transactional_db, member, sessions, free_plan):
    from assistant.models import ModelTier

    await sync_to_async(ModelTier.objects.filter(slug="llama-3.1-8b").update)(base_url="http://127.0.0.1:9/v1")
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("error")
    assert frames[-1]["code"] == "upstream_unavailable"
    assert frames[-1]["retryable"] is True
    assert frames[-1]["message"] == "The model server is unreachable right now."  # no internal address
    answer = await db_message(frames[0]["assistant_message_id"])
    assert (answer.status, answer.error_code) == ("error", "upstream_unavailable")
    await socket.close()


async def test_one_retry_before_the_first_token_recovers(upstream, tier, member, sessions):
    upstream.push(Script(fault="http_500"))
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done")
    assert "".join(f["text"] for f in deltas(frames)) == "Hello, world!"
    assert len(chat_requests(upstream)) == 2
    await socket.close()


# --- limits and bad input --------------------------------------------------------------------


async def test_message_length_cap(upstream, tier, member, sessions, settings):
    settings.ASSISTANT_MAX_MESSAGE_CHARS = 100
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("x" * 101))
    error = await socket.recv()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "too_large", "c1")
    assert "100" in error["message"]
    assert await db_count(Conversation) == 0
    assert await db_count(Message) == 0
    assert upstream.requests == []
    await socket.send(send_frame("x" * 100))
    assert (await socket.recv())["type"] == "run.started"
    await socket.until("done")
    await socket.close()


async def test_concurrent_run_limit(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(200), interval=0.01)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame(client_id="a"))
    first = await socket.recv()
    await socket.send(send_frame(client_id="b"))
    second = (await socket.until("run.started"))[-1]
    await socket.send(send_frame(client_id="c"))
    frames = await socket.until("error")
    error = frames[-1]
    assert (first["type"], second["type"]) == ("run.started", "run.started")
    assert (error["code"], error["client_id"], error["retryable"]) == ("concurrent_runs", "c", True)
    assert await db_count(GenerationRun) == 2
    for started in (first, second):
        await socket.send({"type": "run.stop", "run_id": started["run_id"]})
    await socket.until("done")
    await socket.until("done")
    await socket.close()


async def test_one_answer_at_a_time_per_conversation(upstream, tier, member, sessions):
    upstream.default = Script(tokens=words(100), interval=0.01)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame(client_id="a"))
    first = await socket.recv()
    await socket.send(send_frame(client_id="b", conversation_id=first["conversation_id"]))
    frames = await socket.until("error")
    assert (frames[-1]["code"], frames[-1]["client_id"]) == ("conversation_busy", "b")
    assert await db_count(Message) == 2
    await socket.send({"type": "run.stop", "run_id": first["run_id"]})
    await socket.until("done")
    await socket.close()


async def test_locked_tier_is_refused_server_side(upstream, tier, big_tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame(tier="llama-3.1-405b"))
    error = await socket.recv()
    assert (error["code"], error["client_id"]) == ("tier_locked", "c1")
    assert error["upgrade_url"] == "/billing/pricing"
    assert await db_count(Conversation) == 0
    assert upstream.requests == []
    await socket.send(send_frame(tier="no-such-tier"))
    assert (await socket.recv())["code"] == "not_found"
    await socket.close()


async def test_bad_frames_get_clear_errors_and_the_socket_stays_usable(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send_text("{not json")
    assert (await socket.recv())["code"] == "bad_json"
    await socket.send_text("[1, 2]")
    assert (await socket.recv())["code"] == "invalid_frame"
    await socket.send({"type": "message.explode"})
    unknown = await socket.recv()
    assert (unknown["code"], unknown["retryable"]) == ("unknown_type", False)
    await socket.send({"type": "message.send", "client_id": "c1", "content": "hi"})
    missing = await socket.recv()
    assert (missing["code"], missing["client_id"]) == ("invalid_frame", "c1")
    assert "tier" in missing["message"]
    await socket.send({**send_frame(), "content": "   "})
    assert (await socket.recv())["code"] == "invalid_frame"
    await socket.send({"type": "run.subscribe", "run_id": str(uuid.uuid4()), "after_seq": -1})
    assert (await socket.recv())["code"] == "invalid_frame"
    await socket.comm.send_to(bytes_data=b"\x00\x01")
    assert (await socket.recv())["code"] == "invalid_frame"
    await socket.send_text(json.dumps({"type": "ping", "pad": "x" * 70_000}))
    assert (await socket.recv())["code"] == "too_large"
    assert await db_count(Conversation) == 0
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}
    await socket.close()


async def test_repeated_oversized_frames_close_with_4413(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    big = json.dumps({"type": "ping", "pad": "x" * 70_000})
    await socket.send_text(big)
    await socket.send_text(big)
    assert [(await socket.recv())["code"] for _ in range(2)] == ["too_large", "too_large"]
    await socket.send_text(big)
    assert await socket.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4413}


async def test_flood_gets_warnings_then_4400(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    for _ in range(30):
        await socket.send({"type": "ping"})
    pongs = [await socket.recv() for _ in range(30)]
    assert pongs == [{"type": "pong"}] * 30
    await socket.send({"type": "ping"})
    warning = await socket.recv()
    assert (warning["code"], warning["retryable"]) == ("rate_limited", True)
    from assistant import consumers

    closed = None
    for _ in range(consumers.MAX_FLOOD_WARNINGS + 1):
        await asyncio.sleep(1.01)
        for _ in range(40):
            await socket.send({"type": "ping"})
        while True:
            output = await socket.comm.receive_output(timeout=2)
            if output["type"] == "websocket.close":
                closed = output
                break
            if json.loads(output["text"]).get("code") == "rate_limited":
                break
        if closed:
            break
    assert closed == {"type": "websocket.close", "code": 4400}


async def test_bad_origin_is_refused(tier, member, sessions):
    socket = await open_socket(sessions["member"], origin="http://evil.example")
    assert socket.hello is None  # the handshake was refused before accept


async def test_guest_without_a_session_is_told_to_reload(tier):
    socket = await open_socket(None)
    assert socket.hello["user"] == {"authenticated": False, "display_name": "Guest"}
    error = await socket.recv()
    assert error["code"] == "session_required"
    assert "Reload" in error["message"]
    assert await socket.comm.receive_output(timeout=2) == {"type": "websocket.close", "code": 4403}


# --- ownership -------------------------------------------------------------------------------


async def test_another_users_ids_read_as_not_found(upstream, tier, member, other_member, sessions):
    upstream.default = Script(tokens=words(3000), interval=0.01)
    owner = await open_socket(sessions["member"])
    await owner.send(send_frame("my secret"))
    started = await owner.recv()
    assert (await owner.recv())["type"] == "delta"
    record = next(r for r in upstream.records if not is_title_request(r.body))
    intruder = await open_socket(sessions["other"])
    attempts = [
        {"type": "run.subscribe", "run_id": started["run_id"], "after_seq": 0},
        {"type": "run.stop", "run_id": started["run_id"]},
        send_frame("hijack", conversation_id=started["conversation_id"]),
        {"type": "message.regenerate", "client_id": "x", "conversation_id": started["conversation_id"],
         "message_id": started["assistant_message_id"], "tier": "llama-3.1-8b"},
        {"type": "message.edit", "client_id": "x", "conversation_id": started["conversation_id"],
         "message_id": started["user_message_id"], "content": "edited", "tier": "llama-3.1-8b"},
        {"type": "run.subscribe", "run_id": str(uuid.uuid4()), "after_seq": 0},
        {"type": "run.stop", "run_id": "not-a-uuid"},
        send_frame("guess", conversation_id=str(uuid.uuid4())),
    ]
    for attempt in attempts:
        await intruder.send(attempt)
        error = await intruder.recv()
        assert (error["type"], error["code"]) == ("error", "not_found"), attempt
    assert await intruder.nothing(0.2)
    # The owner's run went on undisturbed: the upstream keeps generating for it, and tokens
    # generated after the intruder's stop still reach the owner, in sequence.
    after = f"w{record.sent_tokens + 3} "
    text, frames = "", []
    while after not in text:
        frame = await owner.recv(timeout=10)
        frames.append(frame)
        assert frame["type"] == "delta", frame
        text += frame["text"]
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))
    assert record in upstream.open_requests and not record.disconnected
    await owner.send({"type": "run.stop", "run_id": started["run_id"]})
    frames = await owner.until("done")
    assert frames[-1]["status"] == "stopped"
    assert await asyncio.to_thread(upstream.wait_for, lambda: not record.open, 5)
    assert record.disconnected and record.sent_tokens < 3000
    assert await db_count(Message) == 2
    await owner.close()
    await intruder.close()


async def test_guest_chats_through_the_session(upstream, tier):
    key = await sync_to_async(guest_session)()
    socket = await open_socket(key)
    assert socket.hello["user"]["authenticated"] is False
    await socket.send(send_frame("hi as a guest"))
    frames = await socket.until("done")
    conversation = await sync_to_async(Conversation.objects.get)(pk=frames[0]["conversation_id"])
    assert (conversation.user_id, conversation.session_key) == (None, key)
    other_guest = await open_socket(await sync_to_async(guest_session)())
    await other_guest.send({"type": "run.subscribe", "run_id": frames[0]["run_id"], "after_seq": 0})
    assert (await other_guest.recv())["code"] == "not_found"
    await socket.close()
    await other_guest.close()


# --- regenerate, edit, history ------------------------------------------------------------------


async def test_regenerate_keeps_the_answer_as_a_version(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Tell me a joke"))
    first = (await socket.until("done"))[0]
    upstream.default = Script(tokens=["Another", " one"])
    await socket.send({"type": "message.regenerate", "client_id": "r1", "conversation_id": first["conversation_id"],
                       "message_id": first["assistant_message_id"], "tier": "llama-3.1-8b"})
    frames = await socket.until("done")
    again = frames[0]
    assert again["type"] == "run.started"
    assert again["user_message_id"] == first["user_message_id"]
    assert again["assistant_message_id"] != first["assistant_message_id"]
    assert again["versions"] == {"message_id": again["assistant_message_id"], "index": 2, "count": 2,
                                 "previous_id": first["assistant_message_id"], "next_id": None}
    assert chat_requests(upstream)[1]["messages"][1:] == [{"role": "user", "content": "Tell me a joke"}]
    messages = await sync_to_async(list)(Message.objects.order_by("created_at").values_list("role", "content"))
    assert messages == [("user", "Tell me a joke"), ("assistant", "Hello, world!"), ("assistant", "Another one")]
    await socket.close()


async def test_edit_and_resend_keeps_the_old_question_and_its_later_turns(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("first question"))
    first = (await socket.until("done"))[0]
    await socket.send(send_frame("second question", conversation_id=first["conversation_id"]))
    await socket.until("done")
    await socket.send({"type": "message.edit", "client_id": "e1", "conversation_id": first["conversation_id"],
                       "message_id": first["user_message_id"], "content": "better question", "tier": "llama-3.1-8b"})
    edited = (await socket.until("done"))[0]
    assert edited["versions"]["index"] == 2 and edited["versions"]["message_id"] == edited["user_message_id"]
    assert chat_requests(upstream)[1]["messages"][1:] == [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "Hello, world!"},
        {"role": "user", "content": "second question"},
    ]
    assert chat_requests(upstream)[2]["messages"][1:] == [{"role": "user", "content": "better question"}]
    messages = await sync_to_async(list)(Message.objects.order_by("created_at").values_list("role", "content"))
    assert messages == [("user", "first question"), ("assistant", "Hello, world!"), ("user", "second question"),
                        ("assistant", "Hello, world!"), ("user", "better question"), ("assistant", "Hello, world!")]
    await socket.close()


@pytest.mark.parametrize("tokenizer", ["estimate", "vllm"])
async def test_history_is_fitted_to_the_context(upstream, transactional_db, member, sessions, free_plan, tokenizer):
    """Six long turns in a 700-token context: the oldest are dropped, and every prompt
    plus its max_tokens fits (the fake upstream, like vLLM, refuses one that does not).
    With the server's tokenizer ("vllm") the fit is exact, so a few tokens too many fail."""
    from assistant.models import ModelTier

    await sync_to_async(ModelTier.objects.filter(slug="llama-3.1-8b").update)(
        context_length=700, max_output_tokens=100, tokenizer=tokenizer)
    upstream.max_model_len = 700
    socket = await open_socket(sessions["member"])
    conversation_id = None
    for n in range(6):
        await socket.send(send_frame(f"question {n} " + "lorem ipsum " * 60, conversation_id=conversation_id))
        frames = await socket.until("done", "error")
        assert frames[-1]["type"] == "done", frames[-1]
        conversation_id = frames[0]["conversation_id"]
    assert upstream.refusals == []
    requests = chat_requests(upstream)
    assert len(requests) == 6
    for body in requests:
        assert upstream.prompt_tokens(body) + body["max_tokens"] <= 700
        assert body["max_tokens"] == 100  # dropping turns keeps the answer its full budget
    last = requests[-1]["messages"]
    assert last[0]["role"] == "system"
    assert last[-1]["content"].startswith("question 5 ")
    assert last[1]["role"] == "user"
    assert not any(m["content"].startswith("question 0 ") for m in last)  # the oldest were dropped
    assert len(last) < 12
    await socket.close()


async def test_the_fake_upstream_refuses_a_prompt_over_the_context_like_vllm(upstream, tier, member, sessions):
    """The check above can fail: a tier that claims more context than the server has gets
    vLLM's 400, shown as an upstream error (and nothing is retried)."""
    from assistant.models import ModelTier

    await sync_to_async(ModelTier.objects.filter(slug="llama-3.1-8b").update)(context_length=4096,
                                                                            max_output_tokens=256)
    upstream.max_model_len = 200
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("lorem ipsum " * 100))
    frames = await socket.until("done", "error")
    assert (frames[-1]["type"], frames[-1]["code"]) == ("error", "upstream_error")
    [refused] = upstream.refusals
    assert refused.refused == "context_length"
    assert upstream.prompt_tokens(refused.body) + refused.body["max_tokens"] > 200
    await socket.close()


# --- titles --------------------------------------------------------------------------------------


async def test_title_is_generated_and_pushed_after_the_first_answer(upstream, tier, member, sessions):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame("Hello world, how are you?"))
    frames = await socket.until("done")
    title = await socket.recv(timeout=5, titles=True)
    assert title == {"type": "title", "conversation_id": frames[0]["conversation_id"], "title": "Greeting the world"}
    conversation = await sync_to_async(Conversation.objects.get)(pk=frames[0]["conversation_id"])
    assert conversation.title == "Greeting the world"
    # A second answer in the same conversation asks for no new title.
    await socket.send(send_frame("And again", conversation_id=frames[0]["conversation_id"]))
    await socket.until("done")
    assert await socket.comm.receive_nothing(timeout=0.5)
    assert len(upstream.requests) - len(chat_requests(upstream)) == 1
    await socket.close()


async def test_a_run_whose_process_died_is_resynced_as_interrupted(upstream, tier, member, sessions, settings):
    from datetime import timedelta

    from django.utils import timezone

    from assistant import runs
    from assistant.runlog import _in_process
    from assistant.tasks import runs_reap_orphans

    upstream.default = Script(tokens=words(100), interval=0.02)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    started = await socket.recv()
    await wait_snapshot(started["assistant_message_id"], containing="w1 ")
    await socket.close()
    # The owning process dies: its task vanishes without writing anything more.
    handle = runs._local_runs[started["run_id"]]
    handle.task.cancel()
    await asyncio.wait([handle.task], timeout=5)
    assert handle.task.cancelled()
    if not settings.REDIS_URL:
        _in_process._logs.pop(started["run_id"], None)  # an in-process log dies with its process
    await sync_to_async(GenerationRun.objects.filter(pk=started["run_id"]).update)(
        heartbeat_at=timezone.now() - timedelta(minutes=5))
    await sync_to_async(runs_reap_orphans.delay)()

    answer = await db_message(started["assistant_message_id"])
    assert answer.status == "interrupted"
    assert answer.content.startswith("w0 w1 ")
    again = await open_socket(sessions["member"])
    await again.send({"type": "run.subscribe", "run_id": started["run_id"], "after_seq": 0})
    resync = await again.recv()
    assert (resync["type"], resync["status"]) == ("run.resync", "interrupted")
    assert resync["text"].startswith(answer.content)
    error = await again.recv()
    assert (error["type"], error["code"], error["run_id"], error["retryable"]) == (
        "error", "interrupted", started["run_id"], True)
    await again.close()


async def test_a_quiet_wait_longer_than_redis_socket_timeouts_is_fine(upstream, tier, member, sessions, settings):
    """Seven quiet seconds before the first token: followers and the channel layer must
    not time out their own Redis reads (redis-py's default socket timeout is 5 s)."""
    settings.LLM_FIRST_TOKEN_TIMEOUT_S = 15.0
    upstream.default = Script(first_delay=7.0)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    frames = await socket.until("done", "error", timeout=20)
    assert frames[-1]["type"] == "done", frames[-1]
    assert "".join(f["text"] for f in deltas(frames)) == "Hello, world!"
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}
    await socket.close()


# --- quotas (billing's reserve / settle / release around every run) ----------------------------


@sync_to_async
def quota_today(user, plan):
    from billing.entitlements import entitlements_from_plan
    from billing.quotas import quota_usage_today

    return quota_usage_today(subject=f"user:{user.pk}", entitlements=entitlements_from_plan(plan=plan))


async def test_usage_is_settled_with_the_real_tokens(upstream, tier, member, sessions, free_plan):
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    done = (await socket.until("done"))[-1]
    usage = await quota_today(member, free_plan)
    assert usage.tokens_used == done["usage"]["prompt_tokens"] + done["usage"]["completion_tokens"]
    assert (usage.tokens_reserved, usage.active_runs) == (0, 0)
    await socket.close()


async def test_a_failed_run_gives_its_reservation_back(upstream, tier, member, sessions, free_plan):
    upstream.default = Script(fault="http_400")
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    await socket.until("error")
    usage = await quota_today(member, free_plan)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs) == (0, 0, 0)
    await socket.close()


async def test_the_daily_budget_is_checked_before_anything_is_written(upstream, tier, member, sessions, free_plan):
    await sync_to_async(type(free_plan).objects.filter(pk=free_plan.pk).update)(daily_tokens=50)
    socket = await open_socket(sessions["member"])
    await socket.send(send_frame())
    error = await socket.recv()
    assert (error["type"], error["code"], error["client_id"]) == ("error", "daily_tokens", "c1")
    assert error["reset_at"] and error["upgrade_url"]
    assert await db_count(Conversation) == 0
    assert upstream.requests == []
    await socket.close()


async def test_a_guest_who_logs_in_keeps_the_conversation(upstream, tier, member):
    from django.conf import settings as django_settings
    from django.test import Client

    from tests.factories import TEST_PASSWORD

    client = Client()
    key = await sync_to_async(guest_session)()
    client.cookies[django_settings.SESSION_COOKIE_NAME] = key
    socket = await open_socket(key)  # the socket remembers the guest's session key
    await socket.send(send_frame("a guest question"))
    frames = await socket.until("done")
    await socket.close()
    response = await sync_to_async(client.post)("/accounts/login/", {"login": member.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert client.cookies[django_settings.SESSION_COOKIE_NAME].value != key  # Django rotated the key
    conversation = await sync_to_async(Conversation.objects.get)(pk=frames[0]["conversation_id"])
    assert (conversation.user_id, conversation.session_key) == (member.pk, "")
