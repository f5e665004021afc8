"""Fifty concurrent streams against a tokens-per-minute budget for ten: exactly ten are
admitted and the other forty get 429, on the database's quotas and on Redis's."""

from __future__ import annotations

import asyncio
import os

import openai
import pytest

from assistant.inference import estimate_messages
from tests.api.conftest import async_client_for, make_account, start_server
from tests.api.test_sdk import _wait_for_a_fresh_minute

pytestmark = pytest.mark.timeout(300)

STREAMS = 50
ADMITTED = 10
MAX_TOKENS = 20
HOLD = [{"role": "user", "content": "HOLD the line"}]
# What one request reserves: its prompt's estimate and max_tokens (completions.completion_prepare).
PER_REQUEST = estimate_messages(HOLD) + MAX_TOKENS


@pytest.fixture(scope="module", params=["database", "redis"])
def backend_server(request, api_server, api_upstream, tmp_path_factory):
    redis_configured = bool(os.environ.get("REDIS_URL"))
    if request.param == "redis" and not redis_configured:
        pytest.skip("the Redis leg needs REDIS_URL")
    if (request.param == "redis") == redis_configured:
        yield api_server  # the session's server already runs on this backend
        return
    server = start_server(api_upstream, tmp_path_factory.mktemp(f"api-{request.param}"), redis=False)
    yield server
    server.stop()


async def _one(client: openai.AsyncOpenAI):
    """'admitted' with the open stream, or 'limited' with the 429's error code."""
    try:
        stream = await client.chat.completions.create(model="llama-3.1-8b", messages=HOLD, stream=True,
                                                      max_tokens=MAX_TOKENS)
    except openai.RateLimitError as exc:
        return "limited", exc
    return "admitted", stream


def test_fifty_streams_against_a_budget_for_ten(backend_server, api_upstream):
    account = make_account(backend_server, limits={
        "api_requests_per_minute": 1000, "api_tokens_per_minute": ADMITTED * PER_REQUEST,
        "api_tokens_per_day": 10_000_000, "api_concurrent_streams": 100,
    })

    async def scenario():
        client = async_client_for(backend_server, account["key"])
        try:
            outcomes = await asyncio.gather(*(_one(client) for _ in range(STREAMS)))
            admitted = [value for kind, value in outcomes if kind == "admitted"]
            limited = [value for kind, value in outcomes if kind == "limited"]
            for stream in admitted:
                await stream.close()
            return admitted, limited
        finally:
            await client.close()

    _wait_for_a_fresh_minute(margin_s=25)  # the budget is per UTC minute: all fifty within one
    admitted, limited = asyncio.run(scenario())
    assert (len(admitted), len(limited)) == (ADMITTED, STREAMS - ADMITTED)
    assert {exc.body["code"] for exc in limited} == {"tokens"}
    assert all(int(exc.response.headers["retry-after"]) >= 1 for exc in limited)
    assert {exc.response.headers["x-ratelimit-remaining-tokens"] for exc in limited} == {"0"}
    # Only the admitted ones reached the model, and every one of them was closed.
    assert len(api_upstream.records) == ADMITTED
    assert api_upstream.wait_for(lambda: not api_upstream.open_requests, timeout=15)
