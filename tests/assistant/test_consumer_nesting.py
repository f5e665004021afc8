"""Deeply nested JSON frames are refused with `bad_json` before they are parsed deeply:
no RecursionError, no traceback in the log, and the socket stays open (issue 9)."""

from __future__ import annotations

import json
import logging

import pytest
from asgiref.sync import sync_to_async

from tests.assistant.conftest import guest_session, open_socket

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]


@pytest.mark.parametrize("opener", ["[", "{\"a\":"])
async def test_a_4_kb_frame_of_nested_json_is_bad_json_and_the_socket_stays_open(opener, caplog):
    closer = "]" if opener == "[" else "}"
    depth = 4096 // len(opener)
    hostile = opener * depth + "1" + closer * depth
    socket = await open_socket(await sync_to_async(guest_session)())
    caplog.clear()
    with caplog.at_level(logging.INFO):
        await socket.send_text(hostile)
        frame = await socket.recv()
        assert (frame["type"], frame["code"]) == ("error", "bad_json")
        assert frame["message"] == "That frame nests JSON deeper than 8 levels."
        await socket.send({"type": "ping"})
        assert await socket.recv() == {"type": "pong"}
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    await socket.close()


async def test_an_unclosed_deep_prefix_is_refused_too():
    socket = await open_socket(await sync_to_async(guest_session)())
    await socket.send_text("[" * 60_000)
    frame = await socket.recv()
    assert (frame["type"], frame["code"]) == ("error", "bad_json")
    await socket.send({"type": "ping"})
    assert await socket.recv() == {"type": "pong"}
    await socket.close()


def test_brackets_inside_strings_do_not_count():
    from assistant.consumers import json_too_deep

    inside_a_string = json.dumps({"type": "message.send", "content": "[" * 5000 + "{" * 5000})
    assert not json_too_deep(inside_a_string)
    escaped_quote = json.dumps({"content": '\\"' + "[" * 100})
    assert not json_too_deep(escaped_quote)


@pytest.mark.parametrize(("depth", "too_deep"), [(1, False), (8, False), (9, True)])
def test_the_limit_is_exact(depth, too_deep):
    from assistant.consumers import MAX_JSON_DEPTH, json_too_deep

    assert MAX_JSON_DEPTH == 8
    text = "[" * (depth - 1) + '{"type": "ping"}' + "]" * (depth - 1)
    assert json_too_deep(text) is too_deep
