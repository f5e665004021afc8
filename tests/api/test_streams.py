"""A stream's end, whichever way it ends: the client leaves (the upstream request is closed
and what was used is recorded), the key is revoked mid-stream (the stream ends within the
check interval), and every request's usage is recorded under its request id."""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from tests.api.conftest import REPLY, SERVER_ENV, SLOW_TOKENS, client_for, make_account, revoke
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.timeout(180)

SLOW = [{"role": "user", "content": "SLOW story please"}]
CHECK_INTERVAL_S = float(SERVER_ENV["API_KEY_CHECK_INTERVAL_S"])


def usage_rows(server, request_id: str) -> list[tuple]:
    return server.query(
        "SELECT key_id, key_name, tier_slug, prompt_tokens, completion_tokens FROM billing_apiusagerecord "
        "WHERE request_id = ?", (request_id,))


def test_a_request_s_usage_is_recorded_under_its_request_id(api_server, api_upstream):
    account = make_account(api_server)
    raw = client_for(api_server, account["key"]).chat.completions.with_raw_response.create(
        model="llama-3.1-8b", messages=[{"role": "user", "content": "Say hello please"}])
    completion = raw.parse()
    rows = wait_until(lambda: usage_rows(api_server, completion.id), message="the usage record")
    prompt = api_upstream.prompt_tokens(api_upstream.records[-1].body)
    # The model server logs it too, as the UUID it is (llama.cpp refuses other x-request-ids).
    assert api_upstream.records[-1].headers["x-request-id"] == str(uuid.UUID(completion.id.removeprefix("chatcmpl-")))
    assert rows == [(str(account["key_id"]), "test key", "llama-3.1-8b", prompt, len(REPLY))]


def test_the_x_request_id_header_is_the_usage_record_s_id(api_server):
    account = make_account(api_server)
    raw = client_for(api_server, account["key"]).chat.completions.with_raw_response.create(
        model="llama-3.1-8b", messages=[{"role": "user", "content": "Say hello please"}])
    request_id = raw.headers["x-request-id"]
    assert request_id == raw.parse().id
    assert wait_until(lambda: usage_rows(api_server, request_id), message="the usage record")


def test_a_client_that_leaves_closes_the_upstream_request(api_server, api_upstream):
    account = make_account(api_server)
    stream = client_for(api_server, account["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=SLOW, stream=True)
    received = 0
    for chunk in stream:
        if chunk.choices and chunk.choices[0].delta.content:
            received += 1
            if received == 3:
                break
    request_id = chunk.id
    assert api_upstream.open_requests, "the upstream request is still being answered"
    stream.close()
    assert api_upstream.wait_for(lambda: not api_upstream.open_requests, timeout=10)
    record = api_upstream.records[-1]
    assert record.disconnected and not record.finished
    assert 3 <= record.sent_tokens < len(SLOW_TOKENS)
    # What was used until the client left is recorded (the prompt as counted, the chunks sent upstream so far).
    rows = wait_until(lambda: usage_rows(api_server, request_id),
                      message="the usage record of the abandoned stream")
    completion_tokens = rows[0][4]
    assert 3 <= completion_tokens <= record.sent_tokens


def test_revoking_a_key_mid_stream_ends_that_stream(api_server, api_upstream):
    account = make_account(api_server)
    stream = client_for(api_server, account["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=SLOW, stream=True)
    chunks = iter(stream)
    received = 0
    while received < 3:
        chunk = next(chunks)
        received += bool(chunk.choices and chunk.choices[0].delta.content)
    revoke(api_server, account["key_id"])  # committed when this returns
    sent_when_revoked = api_upstream.records[-1].sent_tokens
    revoked_at = time.monotonic()
    with pytest.raises(openai.APIError) as caught:
        for chunk in chunks:
            received += bool(chunk.choices and chunk.choices[0].delta.content)
    assert caught.value.body["code"] == "api_key_revoked"
    assert time.monotonic() - revoked_at < 5
    # Nothing later than one check interval (+ slack for a loaded machine) after the revocation went out.
    tokens_per_interval = CHECK_INTERVAL_S / 0.05
    assert received <= sent_when_revoked + tokens_per_interval + 6
    assert received < len(SLOW_TOKENS)
    assert api_upstream.wait_for(lambda: not api_upstream.open_requests, timeout=10)
    assert not api_upstream.records[-1].finished
    with pytest.raises(openai.AuthenticationError):
        client_for(api_server, account["key"]).models.list()


def test_a_key_that_expires_mid_stream_ends_that_stream(api_server, api_upstream):
    account = make_account(api_server, expires_in_s=6)  # the SLOW answer takes 10 s
    stream = client_for(api_server, account["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=SLOW, stream=True)
    received = 0
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received += bool(chunk.choices and chunk.choices[0].delta.content)
    assert caught.value.body["code"] == "api_key_expired"
    assert 0 < received < len(SLOW_TOKENS)
    assert api_upstream.wait_for(lambda: not api_upstream.open_requests, timeout=10)
    assert not api_upstream.records[-1].finished
