"""A real answer from the embedded llama.cpp server (SmolLM2-135M-Instruct on the CPU),
through the chat socket: the code path that runs against vLLM on GPUs."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from asgiref.sync import sync_to_async

from assistant.models import Message, ModelTier
from assistant.seed import EMBEDDED_SAMPLING
from tests.assistant.conftest import open_socket

ROOT = Path(__file__).resolve().parents[2]
ALIAS = "smollm2-test"

pytestmark = [
    pytest.mark.llama,
    pytest.mark.django_db(transaction=True),
    pytest.mark.usefixtures("_runs_drained"),
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
]


@pytest.fixture(scope="session")
def embedded_server(tmp_path_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    log = (tmp_path_factory.mktemp("llama") / "server.log").open("w")
    env = {**os.environ, "LLM_EMBEDDED_PORT": str(port), "LLM_EMBEDDED_ALIAS": ALIAS, "LLM_EMBEDDED_CTX": "2048",
           "LLM_EMBEDDED_THREADS": "2"}
    process = subprocess.Popen([sys.executable, "-m", "assistant.embedded_server"], cwd=ROOT, env=env,
                               stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}/v1"
    deadline = time.monotonic() + 120
    try:
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"the embedded server exited with {process.returncode}")
            try:
                if httpx.get(base_url + "/models", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("the embedded server did not start within 120 s")
            time.sleep(0.3)
        yield base_url
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def embedded_tier(transactional_db, embedded_server, settings):
    settings.LLM_FIRST_TOKEN_TIMEOUT_S = 60.0
    settings.LLM_BETWEEN_TOKENS_TIMEOUT_S = 30.0
    settings.BILLING_GUEST_CONCURRENT_RUNS = 2
    return ModelTier.objects.create(
        slug="llama-3.1-8b", display_name="Llama 3.1 8B", served_model_name=ALIAS,
        served_by="SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)", base_url=embedded_server,
        tokenizer=ModelTier.Tokenizer.LLAMA_CPP, context_length=2048, max_output_tokens=40,
        sampling=dict(EMBEDDED_SAMPLING),
    )


async def test_streams_a_real_answer_from_the_embedded_server(embedded_tier):
    from tests.assistant.conftest import guest_session

    socket_ = await open_socket(await sync_to_async(guest_session)())
    await socket_.send({"type": "message.send", "client_id": "c", "conversation_id": None,
                        "content": "What is the capital of France? Answer in one short sentence.",
                        "tier": "llama-3.1-8b"})
    frames = await socket_.until("done", "error", timeout=120)
    assert frames[0]["type"] == "run.started"
    assert frames[0]["tier"]["served_by"] == "SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)"
    assert frames[-1]["type"] == "done", frames[-1]
    deltas = [f for f in frames if f["type"] == "delta"]
    text = "".join(f["text"] for f in deltas)
    assert text.strip()
    assert [f["seq"] for f in deltas] == list(range(1, len(deltas) + 1))
    usage = frames[-1]["usage"]
    # llama.cpp's server sends no usage chunk: Lhama counted the tokens itself.
    assert 0 < usage["completion_tokens"] <= 40
    assert usage["prompt_tokens"] > 20
    answer = await sync_to_async(Message.objects.get)(pk=frames[0]["assistant_message_id"])
    assert (answer.content, answer.status, answer.usage_counted) == (text, "complete", True)
    assert answer.completion_tokens == usage["completion_tokens"]
    await socket_.close()


async def test_stopping_a_real_answer(embedded_tier):
    from tests.assistant.conftest import guest_session

    await sync_to_async(ModelTier.objects.filter(pk=embedded_tier.pk).update)(max_output_tokens=400)
    socket_ = await open_socket(await sync_to_async(guest_session)())
    await socket_.send({"type": "message.send", "client_id": "c", "conversation_id": None,
                        "content": "Write a long story about a llama who learns to code.", "tier": "llama-3.1-8b"})
    started = await socket_.recv(timeout=60)
    first = await socket_.recv(timeout=60)
    assert first["type"] == "delta"
    await socket_.send({"type": "run.stop", "run_id": started["run_id"]})
    frames = await socket_.until("done", timeout=30)
    assert frames[-1]["status"] == "stopped"
    assert frames[-1]["usage"]["completion_tokens"] < 400
    await socket_.close()


async def test_continuing_a_real_answer_cut_at_the_length_limit(embedded_tier):
    """llama-cpp-python's server takes the continue request (it ignores
    continue_final_message and closes the partial answer's turn): the continuation is
    appended to the same message."""
    from tests.assistant.conftest import guest_session

    # Greedy and seeded: a sampled continuation is sometimes the end of the turn at once
    # (nothing to append), which would make this test a coin toss.
    await sync_to_async(ModelTier.objects.filter(pk=embedded_tier.pk).update)(
        max_output_tokens=8, sampling={**embedded_tier.sampling, "temperature": 0.0, "seed": 7}
    )
    socket_ = await open_socket(await sync_to_async(guest_session)())
    await socket_.send({"type": "message.send", "client_id": "c", "conversation_id": None,
                        "content": "Write a long story about a llama who learns to code.", "tier": "llama-3.1-8b"})
    frames = await socket_.until("done", "error", timeout=120)
    assert (frames[-1]["type"], frames[-1]["finish_reason"]) == ("done", "length"), frames[-1]
    started = frames[0]
    cut = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
    await socket_.send({"type": "message.continue", "client_id": "k", "conversation_id": started["conversation_id"],
                        "message_id": started["assistant_message_id"], "tier": "llama-3.1-8b"})
    frames = await socket_.until("done", "error", timeout=120)
    assert frames[-1]["type"] == "done", frames[-1]
    assert frames[0]["assistant_message_id"] == started["assistant_message_id"]
    added = "".join(f["text"] for f in frames if f["type"] == "delta")
    assert added
    answer = await sync_to_async(Message.objects.get)(pk=started["assistant_message_id"])
    assert answer.content == cut.content + added
    await socket_.close()
