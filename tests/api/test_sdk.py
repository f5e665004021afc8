"""The official openai SDK against a live Lhama: completions (streamed and not), the model
list, and the SDK's own exception for each refusal."""

from __future__ import annotations

import openai
import pytest

from assistant.inference import PER_MESSAGE_OVERHEAD, PROMPT_OVERHEAD
from tests.api.conftest import REPLY, client_for, make_account

pytestmark = pytest.mark.timeout(180)

HELLO = [{"role": "user", "content": "Say hello please"}]


@pytest.fixture(scope="module")
def free(api_server):
    return make_account(api_server, plan="free")


@pytest.fixture(scope="module")
def pro(api_server):
    return make_account(api_server, plan="pro")


def test_a_completion_without_streaming(api_server, api_upstream, free):
    client = client_for(api_server, free["key"])
    raw = client.chat.completions.with_raw_response.create(model="llama-3.1-8b", messages=HELLO, max_tokens=20)
    completion = raw.parse()
    assert completion.object == "chat.completion"
    assert completion.id.startswith("chatcmpl-")
    assert raw.headers["x-request-id"] == completion.id
    assert completion.model == "llama-3.1-8b"
    assert [c.index for c in completion.choices] == [0]
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content == "".join(REPLY)
    assert completion.choices[0].finish_reason == "stop"
    # The fake upstream sent its usage: that is the usage reported.
    sent = api_upstream.records[-1].body
    expected_prompt = api_upstream.prompt_tokens(sent)
    assert (completion.usage.prompt_tokens, completion.usage.completion_tokens) == (expected_prompt, len(REPLY))
    assert completion.usage.total_tokens == expected_prompt + len(REPLY)
    for name in ("x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-limit-tokens",
                 "x-ratelimit-remaining-tokens", "x-ratelimit-reset-requests", "x-ratelimit-reset-tokens"):
        assert raw.headers.get(name), name
    assert sent["max_tokens"] == 20 and sent["model"] == "smollm2-135m-instruct"


def test_a_streamed_completion_with_usage(api_server, free):
    client = client_for(api_server, free["key"])
    stream = client.chat.completions.create(model="llama-3.1-8b", messages=HELLO, stream=True,
                                            stream_options={"include_usage": True})
    chunks = list(stream)
    assert {c.object for c in chunks} == {"chat.completion.chunk"}
    assert len({c.id for c in chunks}) == 1 and chunks[0].id.startswith("chatcmpl-")
    content = [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content]
    assert content == REPLY  # one chunk per upstream token, in order
    assert chunks[0].choices[0].delta.role == "assistant"
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == len(REPLY)
    assert all(c.usage is None for c in chunks[:-1])


def test_a_stream_without_include_usage_has_no_usage_chunk(api_server, free):
    chunks = list(client_for(api_server, free["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=HELLO, stream=True))
    assert all(c.choices for c in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "".join(REPLY)


def test_usage_is_counted_when_the_upstream_sends_none(api_server, api_upstream, free):
    completion = client_for(api_server, free["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=[{"role": "user", "content": "NOUSAGE please"}])
    assert completion.usage.completion_tokens == len(REPLY)
    # The chat's own count: the tier's tokenizer endpoint (the fake's llama.cpp one counts
    # words + 1) and the chat template's overheads, once per message and once per prompt.
    words = len("NOUSAGE please".split())
    assert completion.usage.prompt_tokens == PROMPT_OVERHEAD + words + 1 + PER_MESSAGE_OVERHEAD
    assert api_upstream.tokenize_calls > 0


def test_sampling_and_stop_reach_the_upstream(api_server, api_upstream, free):
    client_for(api_server, free["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=HELLO, temperature=0.2, top_p=0.5, stop=["\n\n"], max_completion_tokens=30)
    sent = api_upstream.records[-1].body
    assert (sent["temperature"], sent["top_p"], sent["stop"], sent["max_tokens"]) == (0.2, 0.5, ["\n\n"], 30)


def test_max_tokens_cuts_the_answer_with_finish_reason_length(api_server, free):
    completion = client_for(api_server, free["key"]).chat.completions.create(
        model="llama-3.1-8b", messages=HELLO, max_tokens=2)
    assert completion.choices[0].message.content == "".join(REPLY[:2])
    assert completion.choices[0].finish_reason == "length"


def test_models_lists_what_the_plan_unlocks(api_server, free, pro):
    assert [m.id for m in client_for(api_server, free["key"]).models.list()] == ["llama-3.1-8b"]
    pro_models = client_for(api_server, pro["key"]).models.list()
    assert [m.id for m in pro_models] == ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"]
    assert {m.object for m in pro_models} == {"model"} and {m.owned_by for m in pro_models} == {"lhama"}
    assert client_for(api_server, pro["key"]).models.retrieve("llama-3.1-70b").id == "llama-3.1-70b"


def test_models_of_a_scoped_key_are_the_plan_and_the_scope(api_server):
    scoped = make_account(api_server, plan="pro", scope=["llama-3.1-70b"])
    assert [m.id for m in client_for(api_server, scoped["key"]).models.list()] == ["llama-3.1-70b"]


def test_a_wrong_key_is_an_authentication_error(api_server, free):
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(api_server, free["key"][:-2] + "xx").models.list()
    assert caught.value.status_code == 401
    assert caught.value.body["code"] == "invalid_api_key"
    with pytest.raises(openai.AuthenticationError):
        client_for(api_server, "sk-not-a-lhama-key").chat.completions.create(model="llama-3.1-8b", messages=HELLO)


def test_an_expired_key_is_an_authentication_error(api_server):
    expired = make_account(api_server, expired=True)
    with pytest.raises(openai.AuthenticationError) as caught:
        client_for(api_server, expired["key"]).chat.completions.create(model="llama-3.1-8b", messages=HELLO)
    assert caught.value.body["code"] == "api_key_expired"


def test_a_tier_the_plan_does_not_unlock_is_permission_denied(api_server, api_upstream, free):
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client_for(api_server, free["key"]).chat.completions.create(model="llama-3.1-405b", messages=HELLO)
    assert caught.value.status_code == 403 and caught.value.body["code"] == "model_not_in_plan"
    assert api_upstream.records == []


def test_a_tier_outside_the_keys_scope_is_permission_denied(api_server, api_upstream):
    scoped = make_account(api_server, plan="pro", scope=["llama-3.1-70b"])
    with pytest.raises(openai.PermissionDeniedError) as caught:
        client_for(api_server, scoped["key"]).chat.completions.create(model="llama-3.1-8b", messages=HELLO)
    assert caught.value.body["code"] == "model_not_in_key_scope"
    assert api_upstream.records == []


def test_an_unknown_model_is_not_found(api_server, free):
    with pytest.raises(openai.NotFoundError) as caught:
        client_for(api_server, free["key"]).chat.completions.create(model="gpt-4o", messages=HELLO)
    assert caught.value.body["code"] == "model_not_found" and caught.value.body["param"] == "model"


def test_n_above_one_is_a_bad_request(api_server, api_upstream, free):
    with pytest.raises(openai.BadRequestError) as caught:
        client_for(api_server, free["key"]).chat.completions.create(model="llama-3.1-8b", messages=HELLO, n=2)
    assert caught.value.body["param"] == "n"
    assert api_upstream.records == []


def test_over_the_requests_per_minute_is_a_rate_limit_error(api_server, api_upstream):
    account = make_account(api_server, limits={"api_requests_per_minute": 2, "api_tokens_per_minute": 1_000_000,
                                               "api_tokens_per_day": 10_000_000, "api_concurrent_streams": 5})
    client = client_for(api_server, account["key"])
    _wait_for_a_fresh_minute()
    for _ in range(2):
        client.chat.completions.create(model="llama-3.1-8b", messages=HELLO)
    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(model="llama-3.1-8b", messages=HELLO)
    headers = caught.value.response.headers
    assert caught.value.status_code == 429 and caught.value.body["code"] == "requests"
    assert int(headers["retry-after"]) >= 1
    assert headers["x-ratelimit-limit-requests"] == "2" and headers["x-ratelimit-remaining-requests"] == "0"
    assert len(api_upstream.records) == 2


def _wait_for_a_fresh_minute(margin_s: float = 15.0) -> None:
    """The limits count per UTC minute: start a test that must stay in one minute with
    `margin_s` left in it (waits at most that long)."""
    import time
    from datetime import UTC, datetime

    seconds = datetime.now(UTC).second + datetime.now(UTC).microsecond / 1e6
    if seconds > 60 - margin_s:
        time.sleep(60 - seconds + 0.05)
