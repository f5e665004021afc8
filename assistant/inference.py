"""One async client for the OpenAI-compatible chat-completions streaming protocol.

The same code talks to vLLM in production and to the embedded llama.cpp server by
default. httpx is used directly (not the `openai` SDK) because we need separate
connect / first-token / between-token deadlines and a precise "retry only before the
first token" rule, which the SDK's retry layer does not express.

Token counting, in order of preference:
- usage from the final stream chunk (`stream_options.include_usage`; vLLM sends it);
- the server's tokenizer endpoint: vLLM `POST /tokenize` (chat template applied),
  llama.cpp `POST /extras/tokenize/count` (message texts; we add a fixed per-message
  overhead for the chat template);
- a safe over-estimate from the text (see `estimate_tokens`).
Completion tokens without a usage chunk are the number of content chunks received:
both servers stream one token per chunk.
"""

from __future__ import annotations

import asyncio
import json
import logging
import math
import os
import time
import weakref
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field

import httpx

logger = logging.getLogger(__name__)

# Chat-template overhead: Llama 3 wraps each message in ~5 special/header tokens,
# ChatML in ~4; the conversation start adds a few more. Rounded up to stay safe.
PER_MESSAGE_OVERHEAD = 8
PROMPT_OVERHEAD = 16


class InferenceError(Exception):
    """A run-ending upstream failure, with the protocol's error code."""

    code = "upstream_error"
    retryable = True

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status


class UpstreamUnavailable(InferenceError):
    code = "upstream_unavailable"


class UpstreamTimeout(InferenceError):
    code = "upstream_timeout"


class UpstreamHTTPError(InferenceError):
    code = "upstream_error"


class UpstreamMalformed(InferenceError):
    code = "upstream_malformed"


@dataclass(frozen=True)
class Timeouts:
    connect: float = 5.0
    first_token: float = 60.0
    between_tokens: float = 30.0


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int


@dataclass
class StreamChunk:
    text: str = ""
    finish_reason: str | None = None
    usage: Usage | None = None


@dataclass(frozen=True)
class Endpoint:
    base_url: str
    model: str
    api_key: str = ""
    tokenizer: str = "estimate"  # "estimate" | "llama.cpp" | "vllm"
    timeouts: Timeouts = field(default_factory=Timeouts)

    @property
    def root_url(self) -> str:
        url = self.base_url.rstrip("/")
        return url[: -len("/v1")] if url.endswith("/v1") else url

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.api_key}"} if self.api_key else {}


def endpoint_for_tier(tier, *, timeouts: Timeouts | None = None) -> Endpoint:
    """An Endpoint from a ModelTier (API key read from the environment variable it names,
    only when that name has an allowed prefix: assistant.models.api_key_env_allowed)."""
    from assistant.models import api_key_env_allowed

    api_key = ""
    if tier.api_key_env and api_key_env_allowed(tier.api_key_env):
        api_key = os.environ.get(tier.api_key_env, "")
    elif tier.api_key_env:
        logger.error("tier %s names api_key_env %r, which it may not read: no key sent", tier.slug, tier.api_key_env)
    return Endpoint(
        base_url=tier.base_url,
        model=tier.served_model_name,
        api_key=api_key,
        tokenizer=tier.tokenizer,
        timeouts=timeouts or _default_timeouts(),
    )


def _default_timeouts() -> Timeouts:
    from django.conf import settings

    return Timeouts(
        connect=settings.LLM_CONNECT_TIMEOUT_S,
        first_token=settings.LLM_FIRST_TOKEN_TIMEOUT_S,
        between_tokens=settings.LLM_BETWEEN_TOKENS_TIMEOUT_S,
    )


# One pooled client per event loop: connections are reused between runs, and a
# client never outlives the loop it was made on (tests run one loop per test).
_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, httpx.AsyncClient] = weakref.WeakKeyDictionary()


def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    client = _clients.get(loop)
    if client is None or client.is_closed:
        client = httpx.AsyncClient(
            limits=httpx.Limits(max_connections=1000, max_keepalive_connections=100),
            trust_env=False,
        )
        _clients[loop] = client
    return client


async def aclose_client() -> None:
    """Close this event loop's pooled client (for short-lived loops, e.g. in a Celery task)."""
    client = _clients.pop(asyncio.get_running_loop(), None)
    if client is not None:
        await client.aclose()


def _error_detail(body: bytes) -> str:
    try:
        data = json.loads(body)
    except ValueError:
        return body[:200].decode("utf-8", "replace").strip()
    if isinstance(data, dict):
        err = data.get("error", data.get("detail", data))
        if isinstance(err, dict):
            return str(err.get("message", err))[:200]
        return str(err)[:200]
    return str(data)[:200]


def parse_chunk(payload: str) -> StreamChunk:
    """One `data:` payload of the stream -> StreamChunk; UpstreamMalformed if it isn't one."""
    try:
        data = json.loads(payload)
    except ValueError as exc:
        raise UpstreamMalformed(f"The model server sent a chunk that is not JSON: {payload[:80]!r}") from exc
    if not isinstance(data, dict):
        raise UpstreamMalformed("The model server sent a chunk that is not a JSON object.")
    if "error" in data:
        raise UpstreamHTTPError(f"The model server reported an error: {_error_detail(payload.encode())}")
    choices = data.get("choices")
    if not isinstance(choices, list):
        raise UpstreamMalformed("The model server sent a chunk without choices.")
    chunk = StreamChunk()
    usage = data.get("usage")
    if isinstance(usage, dict):
        try:
            chunk.usage = Usage(int(usage["prompt_tokens"]), int(usage["completion_tokens"]))
        except (KeyError, TypeError, ValueError) as exc:
            raise UpstreamMalformed("The model server sent an unreadable usage block.") from exc
    if choices:
        choice = choices[0]
        if not isinstance(choice, dict):
            raise UpstreamMalformed("The model server sent a malformed choice.")
        delta = choice.get("delta") or {}
        if not isinstance(delta, dict):
            raise UpstreamMalformed("The model server sent a malformed delta.")
        content = delta.get("content")
        if content is not None and not isinstance(content, str):
            raise UpstreamMalformed("The model server sent non-text content.")
        chunk.text = content or ""
        chunk.finish_reason = choice.get("finish_reason")
    return chunk


# The deadline moves forward at most this often (see _lines_with_deadlines).
DEADLINE_REARM_S = 1.0


async def _lines_with_deadlines(response: httpx.Response, timeouts: Timeouts, state: dict) -> AsyncIterator[str]:
    """The response's lines; the deadline is first_token until content arrived, then between_tokens.

    One timeout for the whole stream, moved forward at most every DEADLINE_REARM_S (a
    timer per line, two lines per token, was a measurable part of the CPU per token): the
    between-tokens deadline fires after between_tokens - DEADLINE_REARM_S to
    between_tokens of silence."""
    loop = asyncio.get_running_loop()
    streaming = False
    armed_at = 0.0
    try:
        async with asyncio.timeout(None) as deadline:
            deadline.reschedule(loop.time() + max(state["first_token_deadline"] - time.monotonic(), 0.001))
            async for line in response.aiter_lines():
                if state["got_token"]:
                    now = loop.time()
                    if not streaming or now - armed_at >= DEADLINE_REARM_S:
                        deadline.reschedule(now + timeouts.between_tokens)
                        streaming, armed_at = True, now
                yield line
    except TimeoutError:
        if state["got_token"]:
            raise UpstreamTimeout(f"The model stopped sending tokens for {timeouts.between_tokens:g} s.") from None
        raise UpstreamTimeout(f"The model sent no first token within {timeouts.first_token:g} s.") from None


async def stream_chat(
    endpoint: Endpoint,
    *,
    messages: Sequence[dict],
    max_tokens: int,
    sampling: dict | None = None,
    headers: dict[str, str] | None = None,
) -> AsyncIterator[StreamChunk]:
    """Stream a chat completion. Closing the generator (or cancelling its consumer)
    closes the upstream response, so the server stops generating. `headers` are sent as
    well (the run's `x-request-id` and the routing key of a router in front of replicas).

    One retry, and only before the first token, for a server that is down, a dropped
    connection, or a 5xx; 4xx, malformed chunks and timeouts are not retried.
    """
    body = {
        **(sampling or {}),
        "model": endpoint.model,
        "messages": list(messages),
        "max_tokens": max_tokens,
        "stream": True,
        "stream_options": {"include_usage": True},
    }
    timeouts = endpoint.timeouts
    timeout = httpx.Timeout(connect=timeouts.connect, read=None, write=timeouts.connect, pool=timeouts.connect)
    url = endpoint.base_url.rstrip("/") + "/chat/completions"
    client = _client()
    attempt = 0
    state = {"got_token": False, "first_token_deadline": time.monotonic() + timeouts.first_token}
    while True:
        attempt += 1
        try:
            async with client.stream(
                "POST", url, json=body, headers={**endpoint.headers(), **(headers or {})}, timeout=timeout
            ) as response:
                if response.status_code >= 400:
                    detail = _error_detail(await response.aread())
                    error_class = UpstreamHTTPError
                    err = error_class(
                        f"The model server answered {response.status_code}: {detail}", status=response.status_code
                    )
                    if response.status_code < 500:
                        err.retryable = False
                    raise err
                async for line in _lines_with_deadlines(response, timeouts, state):
                    if not line or line.startswith(":"):
                        continue
                    if not line.startswith("data:"):
                        continue  # other SSE fields (event:, id:) carry nothing for us
                    payload = line[5:].strip()
                    if payload == "[DONE]":
                        return
                    chunk = parse_chunk(payload)
                    if chunk.text:
                        state["got_token"] = True
                    yield chunk
                if not state["got_token"]:
                    raise UpstreamHTTPError("The model server closed the stream without sending anything.")
                return
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # The user sees this message: say what happened, not where the server lives.
            logger.warning("model server %s unreachable: %s", endpoint.base_url, exc)
            error: InferenceError = UpstreamUnavailable("The model server is unreachable right now.")
            cause: BaseException = exc
        except (httpx.RemoteProtocolError, httpx.ReadError) as exc:
            error = UpstreamHTTPError("The model server dropped the connection mid-answer.")
            cause = exc
        except (httpx.WriteTimeout, httpx.PoolTimeout, httpx.ReadTimeout) as exc:
            error = UpstreamTimeout("The model server did not answer in time.")
            cause = exc
        except UpstreamHTTPError as exc:
            error = exc
            cause = exc
            if exc.status is None or exc.status < 500:
                raise
        if state["got_token"] or attempt >= 2:
            raise error from cause
        logger.info("retrying %s once before the first token: %s", url, error.message)
        await asyncio.sleep(0.2)


# --- token counting ------------------------------------------------------------------


def estimate_tokens(text: str) -> int:
    """A safe over-estimate without a tokenizer: BPE vocabularies for English average
    ~4 bytes per token, so ASCII counts 1 token per 3 characters; other scripts
    1.5 tokens per character (CJK is 1–2 tokens per character in 50k–128k vocabularies)."""
    ascii_chars = sum(1 for ch in text if ord(ch) < 128)
    other = len(text) - ascii_chars
    return math.ceil(ascii_chars / 3 + other * 1.5)


def estimate_messages(messages: Sequence[dict]) -> int:
    return PROMPT_OVERHEAD + sum(estimate_tokens(m["content"]) + PER_MESSAGE_OVERHEAD for m in messages)


async def count_message_tokens(endpoint: Endpoint, messages: Sequence[dict]) -> list[int] | None:
    """Per-message token counts with the model's tokenizer, or None when the server has none."""
    if endpoint.tokenizer not in ("llama.cpp", "vllm") or not messages:
        return None
    client = _client()
    timeout = httpx.Timeout(endpoint.timeouts.connect)
    try:
        if endpoint.tokenizer == "vllm":
            url = endpoint.root_url + "/tokenize"
            requests = [
                client.post(url, json={"model": endpoint.model, "prompt": m["content"], "add_special_tokens": False},
                            headers=endpoint.headers(), timeout=timeout)
                for m in messages
            ]
        else:
            url = endpoint.root_url + "/extras/tokenize/count"
            requests = [
                client.post(url, json={"input": m["content"]}, headers=endpoint.headers(), timeout=timeout)
                for m in messages
            ]
        responses = await asyncio.gather(*requests)
        counts = []
        for response in responses:
            response.raise_for_status()
            counts.append(int(response.json()["count"]) + PER_MESSAGE_OVERHEAD)
        return counts
    except (httpx.HTTPError, ValueError, KeyError, TypeError) as exc:
        logger.info("tokenizer endpoint of %s unavailable (%s); estimating", endpoint.base_url, exc)
        return None


async def count_prompt_tokens(endpoint: Endpoint, messages: Sequence[dict]) -> int:
    counts = await count_message_tokens(endpoint, messages)
    if counts is None:
        return estimate_messages(messages)
    return PROMPT_OVERHEAD + sum(counts)
