"""The openai SDK against a live Lhama whose tier is the real embedded llama.cpp server
(SmolLM2-135M-Instruct on the CPU): the code path that runs against vLLM on GPUs."""

from __future__ import annotations

import importlib.util

import pytest

from tests.api.conftest import SERVER_ENV, client_for, make_account
from tests.assistant.test_embedded_llama import ALIAS, embedded_server  # noqa: F401  (the session's llama.cpp server)
from tests.e2e.conftest import LiveServer

pytestmark = [
    pytest.mark.llama,
    pytest.mark.timeout(300),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
]

QUESTION = [{"role": "user", "content": "What is the capital of France? Answer in one short sentence."}]


@pytest.fixture(scope="module")
def llama_api(embedded_server, tmp_path_factory):  # noqa: F811
    env = {**SERVER_ENV, "LLM_EMBEDDED_ALIAS": ALIAS, "LLM_EMBEDDED_CTX": "2048", "REDIS_URL": "",
           "LLM_FIRST_TOKEN_TIMEOUT_S": "60", "LLM_BETWEEN_TOKENS_TIMEOUT_S": "30"}
    server = LiveServer(upstream_url=embedded_server, base=tmp_path_factory.mktemp("api-llama"), env_extra=env)
    yield server
    server.stop()


def test_the_sdk_gets_a_real_answer_streamed_and_not(llama_api):
    account = make_account(llama_api)
    client = client_for(llama_api, account["key"], timeout=120)
    assert [m.id for m in client.models.list()] == ["llama-3.1-8b"]

    completion = client.chat.completions.create(model="llama-3.1-8b", messages=QUESTION, max_tokens=30)
    assert completion.choices[0].message.content.strip()
    assert completion.choices[0].finish_reason in ("stop", "length")
    # llama.cpp sends no usage chunk: Lhama counted the prompt with its tokenizer and the chunks.
    assert completion.usage.prompt_tokens > 10
    assert 0 < completion.usage.completion_tokens <= 30

    chunks = list(client.chat.completions.create(model="llama-3.1-8b", messages=QUESTION, max_tokens=30,
                                                 stream=True, stream_options={"include_usage": True}))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip()
    assert chunks[-1].usage is not None and 0 < chunks[-1].usage.completion_tokens <= 30
