"""Every refusal of the API, as a plain HTTP client sees it: the status and OpenAI's error
shape {"error": {"message", "type", "param", "code"}}; the SDK's exceptions for 401, 403,
404 and 429 are in test_sdk.py."""

from __future__ import annotations

import json

import httpx
import openai
import pytest

from tests.api.conftest import client_for, make_account

pytestmark = pytest.mark.timeout(180)

HELLO = [{"role": "user", "content": "Say hello please"}]


@pytest.fixture(scope="module")
def account(api_server):
    return make_account(api_server)


@pytest.fixture
def http(api_server, account):
    with httpx.Client(base_url=f"{api_server.url}/api/v1", timeout=30,
                      headers={"Authorization": f"Bearer {account['key']}"}) as client:
        yield client


def error_of(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"message", "type", "param", "code"}
    assert body["error"]["message"]
    return body["error"]


def test_a_body_that_is_not_json_is_400(http, api_upstream):
    error = error_of(http.post("/chat/completions", content=b"{not json",
                               headers={"Content-Type": "application/json"}), 400)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_json")
    assert api_upstream.records == []


@pytest.mark.parametrize(("body", "param"), [
    ({"model": "llama-3.1-8b"}, "messages"),
    ({"messages": HELLO}, "model"),
    ({"model": "llama-3.1-8b", "messages": []}, "messages"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "max_tokens": "5"}, "max_tokens"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "max_tokens": 0}, "max_tokens"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "temperature": 3}, "temperature"),
    ({"model": "llama-3.1-8b", "messages": [{"role": "tool", "content": "x"}]}, "messages.0.role"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "stop": ["a", "b", "c", "d", "e"]}, "stop"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "n": 3}, "n"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "tools": [{"type": "function"}]}, "tools"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "stream_options": {"include_usage": True}}, "stream_options"),
    ({"model": "llama-3.1-8b", "messages": HELLO, "max_tokens": 100000}, "max_tokens"),
])
def test_a_wrong_field_is_400_naming_it(http, api_upstream, body, param):
    error = error_of(http.post("/chat/completions", json=body), 400)
    assert error["param"] == param
    assert api_upstream.records == []


def test_a_prompt_over_the_context_is_400(http, api_upstream):
    long = " ".join(["ab"] * 4500)  # 4500 words: over the tier's 4096 tokens by any count
    error = error_of(http.post("/chat/completions", json={"model": "llama-3.1-8b",
                                                         "messages": [{"role": "user", "content": long}]}), 400)
    assert (error["code"], error["param"]) == ("context_length_exceeded", "messages")
    assert api_upstream.records == []


def test_no_key_is_401(api_server):
    response = httpx.post(f"{api_server.url}/api/v1/chat/completions", json={"model": "llama-3.1-8b",
                                                                            "messages": HELLO})
    error = error_of(response, 401)
    assert (error["type"], error["code"]) == ("authentication_error", "missing_api_key")


def test_a_revoked_key_is_401(api_server):
    from tests.api.conftest import revoke

    account = make_account(api_server)
    revoke(api_server, account["key_id"])
    response = httpx.get(f"{api_server.url}/api/v1/models", headers={"Authorization": f"Bearer {account['key']}"})
    assert error_of(response, 401)["code"] == "api_key_revoked"


def test_an_unknown_route_is_404(http):
    error = error_of(http.post("/embeddings", json={"input": "x"}), 404)
    assert error["code"] == "unknown_route"
    assert error_of(http.get("/models/llama-3.1-405b"), 404)["code"] == "model_not_found"  # not in the plan


def test_the_wrong_method_is_405(http):
    response = http.get("/chat/completions")
    assert error_of(response, 405)["code"] == "method_not_allowed"
    assert response.headers["allow"] == "POST"


def test_a_body_over_the_limit_is_413(http, api_upstream):
    big = {"model": "llama-3.1-8b", "messages": [{"role": "user", "content": "x" * 25_000}]}
    error = error_of(http.post("/chat/completions", content=json.dumps(big).encode(),
                               headers={"Content-Type": "application/json"}), 413)
    assert error["code"] == "request_too_large"
    assert api_upstream.records == []


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_error_is_502(http, stream):
    response = http.post("/chat/completions", json={"model": "llama-3.1-8b", "stream": stream,
                                                   "messages": [{"role": "user", "content": "FAIL now"}]})
    error = error_of(response, 502)
    assert (error["type"], error["code"]) == ("api_error", "upstream_error")
    assert response.headers["x-request-id"].startswith("chatcmpl-")


@pytest.mark.parametrize("stream", [False, True])
def test_an_upstream_that_sends_no_first_token_is_504(http, stream):
    response = http.post("/chat/completions", json={"model": "llama-3.1-8b", "stream": stream,
                                                   "messages": [{"role": "user", "content": "STALL now"}]})
    error = error_of(response, 504)
    assert (error["type"], error["code"]) == ("timeout_error", "upstream_timeout")


def test_an_upstream_failing_mid_stream_ends_it_with_an_error_event(api_server, account):
    stream = client_for(api_server, account["key"]).chat.completions.create(
        model="llama-3.1-8b", stream=True, messages=[{"role": "user", "content": "DROP it"}])
    received = []
    with pytest.raises(openai.APIError) as caught:
        for chunk in stream:
            received.append(chunk.choices[0].delta.content or "")
    assert "".join(received) == "Hello there"  # the two tokens before the drop
    assert caught.value.body["code"] == "upstream_error"


def test_a_stream_carries_completion_chunks_only(http):
    """No ads in API responses, ever: every event is a completion chunk, then [DONE]."""
    with http.stream("POST", "/chat/completions", json={
        "model": "llama-3.1-8b", "stream": True, "stream_options": {"include_usage": True},
        "messages": [{"role": "user", "content": "Which GPU should I rent to fine-tune llama?"}],
    }) as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        events = [line for line in response.iter_lines() if line]
    assert events[-1] == "data: [DONE]"
    payloads = [json.loads(line.removeprefix("data: ")) for line in events[:-1]]
    assert all(line.startswith("data: ") for line in events)
    assert {p["object"] for p in payloads} == {"chat.completion.chunk"}
    assert all(set(p) == {"id", "object", "created", "model", "choices", "usage"} for p in payloads)
