"""POST /api/v1/chat/completions: the request checked, the tier's server asked through the
chat's inference client, the answer given back in OpenAI's shapes.

`completion_prepare` validates the body (pydantic), resolves the model (a tier slug),
checks the plan and the key's scope, fits the context and takes the API limits'
admission (billing, part of its public surface). A `CompletionRun` then reads the
upstream stream on a task of its own (cancelling it closes the upstream response, so the
server stops), re-checks the key while it runs, and settles the admission and records the
usage exactly once when it ends, whether it finished, failed or the client went away.

No ads, ever: API traffic is paid compute, and nothing here asks for an ad decision.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Annotated, Literal

from channels.db import database_sync_to_async
from django.conf import settings
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from assistant.api.errors import ApiError
from assistant.api.keys import AuthenticatedKey, api_key_is_revoked
from assistant.inference import (
    Endpoint,
    InferenceError,
    StreamChunk,
    UpstreamHTTPError,
    UpstreamTimeout,
    count_prompt_tokens,
    endpoint_for_tier,
    estimate_messages,
    stream_chat,
)
from assistant.models import ModelTier
from billing.public import ApiLimitExceeded, api_admit, api_release, api_settle, api_usage_record, entitlements_for
from config.logs import request_id_set

logger = logging.getLogger(__name__)

_END = object()
REQUEST_ID_PREFIX = "chatcmpl-"
MAX_STOP_SEQUENCES = 4


# --- the request body --------------------------------------------------------------


class _TextPart(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    type: Literal["text"]
    text: str


class _Message(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    role: Literal["system", "developer", "user", "assistant"]
    content: str | list[_TextPart]
    name: str | None = None

    def as_upstream(self) -> dict:
        text = self.content if isinstance(self.content, str) else "".join(part.text for part in self.content)
        return {"role": "system" if self.role == "developer" else self.role, "content": text}


class _StreamOptions(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)
    include_usage: bool = False


class ChatCompletionBody(BaseModel):
    """The fields of OpenAI's request that Lhama serves; the others are ignored, except
    those that would change the answer's shape (refused with a 400, below)."""

    model_config = ConfigDict(extra="ignore", strict=True)
    model: Annotated[str, Field(min_length=1, max_length=64)]
    messages: Annotated[list[_Message], Field(min_length=1)]
    stream: bool = False
    stream_options: _StreamOptions | None = None
    max_tokens: Annotated[int, Field(ge=1)] | None = None
    max_completion_tokens: Annotated[int, Field(ge=1)] | None = None
    temperature: Annotated[float, Field(ge=0, le=2)] | None = None
    top_p: Annotated[float, Field(gt=0, le=1)] | None = None
    frequency_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    presence_penalty: Annotated[float, Field(ge=-2, le=2)] | None = None
    stop: str | Annotated[list[str], Field(max_length=MAX_STOP_SEQUENCES)] | None = None
    n: int | None = None
    # Not served: a request that asks for them is refused rather than answered differently.
    tools: list | None = None
    functions: list | None = None
    tool_choice: object = None
    response_format: dict | None = None
    logprobs: bool | None = None

    @field_validator("temperature", "top_p", "frequency_penalty", "presence_penalty", mode="before")
    @classmethod
    def _number(cls, value):
        # JSON has one number type: 1 is as good a temperature as 1.0 (strict mode would refuse it).
        return float(value) if isinstance(value, int) and not isinstance(value, bool) else value


def _unsupported(body: ChatCompletionBody) -> ApiError | None:
    if body.n is not None and body.n != 1:
        return ApiError.bad_request("Only n=1 is supported: ask again for another answer.", param="n",
                                    code="unsupported_value")
    for name in ("tools", "functions", "tool_choice"):
        if getattr(body, name):
            return ApiError.bad_request(f"'{name}' is not supported: these models are served without tool calls.",
                                        param=name, code="unsupported_parameter")
    if body.response_format and body.response_format.get("type", "text") != "text":
        return ApiError.bad_request("Only the 'text' response_format is supported.", param="response_format",
                                    code="unsupported_value")
    if body.logprobs:
        return ApiError.bad_request("logprobs are not supported.", param="logprobs", code="unsupported_parameter")
    if body.stream_options is not None and not body.stream:
        return ApiError.bad_request("stream_options is only allowed when stream is true.", param="stream_options",
                                    code="invalid_value")
    if body.max_tokens and body.max_completion_tokens and body.max_tokens != body.max_completion_tokens:
        return ApiError.bad_request("max_tokens and max_completion_tokens differ: send one of them.",
                                    param="max_completion_tokens", code="invalid_value")
    return None


def _is_branch(part) -> bool:
    return isinstance(part, str) and (part in ("str", "int", "float", "bool") or "[" in part or "-" in part)


def completion_body_parse(raw: bytes) -> ChatCompletionBody:
    """The request body, or ApiError 400 naming the first wrong field."""
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise ApiError.bad_request("The request body is not valid JSON.", code="invalid_json") from None
    if not isinstance(data, dict):
        raise ApiError.bad_request("The request body must be a JSON object.", code="invalid_json")
    try:
        body = ChatCompletionBody.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        # A union's branch shows in the location as its type ("stop.str"): name the field only.
        param = ".".join(str(part) for part in first["loc"] if not _is_branch(part)) or None
        if first["type"] == "missing":
            raise ApiError.bad_request(f"Missing required parameter: '{param}'.", param=param,
                                       code="missing_required_parameter") from None
        raise ApiError.bad_request(f"Invalid value for '{param}': {first['msg']}.", param=param,
                                   code="invalid_value") from None
    error = _unsupported(body)
    if error is not None:
        raise error
    return body


# --- preparing a request: model, plan, scope, context, admission ---------------------------


@dataclass(frozen=True)
class PreparedCompletion:
    request_id: str
    created: int
    key: AuthenticatedKey
    tier_slug: str
    endpoint: Endpoint
    messages: list[dict]
    max_tokens: int
    sampling: dict
    stream: bool
    include_usage: bool
    admission: object
    prompt_estimate: int

    @property
    def ratelimit_headers(self) -> dict[str, str]:
        return dict(getattr(self.admission, "headers", {}) or {})


@dataclass(frozen=True)
class _TierFacts:
    slug: str
    endpoint: Endpoint
    sampling: dict
    context_limit: int
    max_output_tokens: int


def _tier_for_key(*, key: AuthenticatedKey, slug: str) -> _TierFacts:
    """The tier `slug` names, if this key may use it: 404 unknown, 403 not unlocked or out of scope."""
    tier = ModelTier.objects.filter(slug=slug, is_active=True).first()
    if tier is None:
        raise ApiError.not_found(f"The model '{slug}' does not exist. GET /api/v1/models lists yours.",
                                 code="model_not_found", param="model")
    entitlements = entitlements_for(user=key.user)
    if tier.slug not in entitlements.tier_slugs:
        raise ApiError.forbidden(f"Your plan ({entitlements.plan_name}) does not include the model '{slug}'.",
                                 code="model_not_in_plan", param="model")
    if key.tier_slugs and tier.slug not in key.tier_slugs:
        raise ApiError.forbidden(f"This API key is not allowed to use the model '{slug}'.",
                                 code="model_not_in_key_scope", param="model")
    return _TierFacts(
        slug=tier.slug, endpoint=endpoint_for_tier(tier), sampling=dict(tier.sampling or {}),
        context_limit=min(tier.context_length, entitlements.max_context), max_output_tokens=tier.max_output_tokens,
    )


def _admit(*, key: AuthenticatedKey, tier_slug: str, tokens: int):
    try:
        return api_admit(user=key.user, key_id=str(key.id), tier_slug=tier_slug, tokens=tokens)
    except ApiLimitExceeded as exc:
        raise ApiError.rate_limited(exc.message, code=exc.kind, retry_after_s=exc.retry_after_s,
                                    headers=exc.headers) from exc


async def completion_prepare(*, key: AuthenticatedKey, body: ChatCompletionBody) -> PreparedCompletion:
    tier = await database_sync_to_async(_tier_for_key)(key=key, slug=body.model)
    messages = [message.as_upstream() for message in body.messages]
    requested = body.max_completion_tokens or body.max_tokens
    if requested is not None and requested > tier.max_output_tokens:
        param = "max_completion_tokens" if body.max_completion_tokens else "max_tokens"
        raise ApiError.bad_request(f"'{param}' is {requested}; this model answers at most {tier.max_output_tokens} "
                                   "tokens.", param=param, code="invalid_value")
    prompt = estimate_messages(messages)  # an over-estimate: the admission's worst case
    if prompt + (requested or 1) > tier.context_limit:
        # The estimate says it does not fit: ask the model's tokenizer before refusing.
        prompt = await count_prompt_tokens(tier.endpoint, messages)
    room = tier.context_limit - prompt
    if room < (requested or 1):
        raise ApiError.bad_request(
            f"This model's context is {tier.context_limit} tokens; the messages take about {prompt}"
            + (f" and you asked for {requested} more." if requested else "."),
            param="messages", code="context_length_exceeded",
        )
    max_tokens = requested or min(tier.max_output_tokens, room)
    sampling = dict(tier.sampling)
    for name in ("temperature", "top_p", "frequency_penalty", "presence_penalty"):
        value = getattr(body, name)
        if value is not None:
            sampling[name] = value
    if body.stop:
        sampling["stop"] = [body.stop] if isinstance(body.stop, str) else list(body.stop)
    admission = await database_sync_to_async(_admit)(key=key, tier_slug=tier.slug, tokens=prompt + max_tokens)
    return PreparedCompletion(
        request_id=f"{REQUEST_ID_PREFIX}{uuid.uuid4().hex}", created=int(time.time()), key=key, tier_slug=tier.slug,
        endpoint=tier.endpoint, messages=messages, max_tokens=max_tokens, sampling=sampling, stream=body.stream,
        include_usage=bool(body.stream_options and body.stream_options.include_usage), admission=admission,
        prompt_estimate=prompt,
    )


# --- running it ------------------------------------------------------------------------


def _upstream_error(error: InferenceError) -> ApiError:
    if isinstance(error, UpstreamTimeout):
        return ApiError.upstream_timeout(error.message)
    return ApiError.upstream(error.message)


def _revoked_error() -> ApiError:
    return ApiError.unauthorized("This API key was revoked while the answer was being written.",
                                 code="api_key_revoked")


def _expired_error() -> ApiError:
    return ApiError.unauthorized("This API key expired while the answer was being written.", code="api_key_expired")


@dataclass
class CompletionRun:
    """One admitted request's upstream read, to its end."""

    prepared: PreparedCompletion
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    reader: asyncio.Task | None = None
    buffered: list[StreamChunk] = field(default_factory=list)
    content_chunks: int = 0
    finish_reason: str = ""
    upstream_usage: tuple[int, int] | None = None
    usage: tuple[int, int] | None = None  # (prompt, completion), once counted
    ended: bool = False
    _closing: asyncio.Task | None = None
    _next_check: float = 0.0

    # reading

    def start(self) -> None:
        p = self.prepared
        self.reader = asyncio.get_running_loop().create_task(self._read(p))
        self._next_check = time.monotonic() + settings.API_KEY_CHECK_INTERVAL_S

    async def _read(self, p: PreparedCompletion) -> None:
        request_id_set(p.request_id)  # this task's log lines carry the request's id
        try:
            # The model server logs the same id, as a UUID (the chat sends its run id the same
            # way; llama.cpp's server answers 400 to an x-request-id that is not a UUID).
            upstream_id = str(uuid.UUID(p.request_id.removeprefix(REQUEST_ID_PREFIX)))
            async for chunk in stream_chat(p.endpoint, messages=p.messages, max_tokens=p.max_tokens,
                                           sampling=p.sampling, headers={"x-request-id": upstream_id}):
                self.queue.put_nowait(chunk)
            self.queue.put_nowait(_END)
        except InferenceError as exc:
            self.queue.put_nowait(exc)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # a bug must still end the request with an error, not hang it
            logger.exception("api request %s: reading the upstream failed", p.request_id)
            self.queue.put_nowait(UpstreamHTTPError(f"Unexpected error while reading the answer: {type(exc).__name__}"))

    async def _key_check(self) -> None:
        """The key's state: expiry on every chunk (no I/O), revocation every API_KEY_CHECK_INTERVAL_S."""
        key = self.prepared.key
        if key.expired():
            raise _expired_error()
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + settings.API_KEY_CHECK_INTERVAL_S
            if await database_sync_to_async(api_key_is_revoked)(prefix=key.prefix):
                raise _revoked_error()

    async def next_chunk(self) -> StreamChunk | None:
        """The next chunk with text (or the last one), None at the end; ApiError when the
        upstream failed or the key stopped being valid (then nothing more is read)."""
        if self.buffered:
            return self.buffered.pop(0)
        while not self.ended:
            try:
                async with asyncio.timeout(max(0.0, self._next_check - time.monotonic())):
                    item = await self.queue.get()
            except TimeoutError:
                await self._key_check()
                continue
            await self._key_check()
            if item is _END:
                self.ended = True
                return None
            if isinstance(item, InferenceError):
                self.ended = True
                raise _upstream_error(item)
            chunk: StreamChunk = item
            if chunk.usage is not None:
                self.upstream_usage = (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)
            if chunk.finish_reason:
                self.finish_reason = chunk.finish_reason
            if chunk.text:
                self.content_chunks += 1
                return chunk
        return None

    async def first(self) -> None:
        """Wait for the first text (or the end) before answering: an upstream that fails
        first gets its own status (502, 504) instead of a 200 that breaks off."""
        chunk = await self.next_chunk()
        if chunk is not None:
            self.buffered.append(chunk)

    # usage and the end

    async def count_usage(self) -> tuple[int, int]:
        if self.usage is None:
            if self.upstream_usage is not None:
                self.usage = self.upstream_usage
            elif self.content_chunks:
                # llama.cpp sends no usage chunk (and a stream cut short never gets one):
                # the prompt as the chat counts it, one token per content chunk.
                prompt = await count_prompt_tokens(self.prepared.endpoint, self.prepared.messages)
                self.usage = (prompt, self.content_chunks)
            else:
                self.usage = (0, 0)
        return self.usage

    async def close(self) -> None:
        """Stop reading (the upstream response is closed) and settle once; safe to call
        again, and finishes even when the caller is cancelled (the client left)."""
        if self._closing is None:
            self._closing = asyncio.get_running_loop().create_task(self._close())
        await asyncio.shield(self._closing)

    async def _close(self) -> None:
        p = self.prepared
        if self.reader is not None and not self.reader.done():
            self.reader.cancel()
            await asyncio.wait({self.reader}, timeout=5)
        try:
            prompt, completion = await self.count_usage()
            await database_sync_to_async(_settle)(prepared=p, prompt_tokens=prompt, completion_tokens=completion)
        except Exception:  # the answer went out either way; the admission has a TTL
            logger.exception("api request %s: settling failed", p.request_id)

    # the two response shapes

    def _chunk(self, delta: dict, finish_reason: str | None = None) -> bytes:
        p = self.prepared
        data: dict = {
            "id": p.request_id, "object": "chat.completion.chunk", "created": p.created, "model": p.tier_slug,
            "choices": [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}],
        }
        if p.include_usage:
            data["usage"] = None
        return b"data: " + json.dumps(data, ensure_ascii=False).encode() + b"\n\n"

    def _usage_body(self) -> dict:
        prompt, completion = self.usage or (0, 0)
        return {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion}

    def _finish_reason(self) -> str:
        return "length" if self.finish_reason == "length" else "stop"

    async def sse(self) -> AsyncIterator[bytes]:
        """The answer as server-sent events; an error after the first chunk is one error
        event (the SDKs raise it) and the end of the stream."""
        request_id_set(self.prepared.request_id)  # the task sending the stream logs under it too
        try:
            yield self._chunk({"role": "assistant", "content": ""})
            while True:
                try:
                    chunk = await self.next_chunk()
                except ApiError as error:
                    yield error.sse()
                    return
                if chunk is None:
                    break
                yield self._chunk({"content": chunk.text})
            yield self._chunk({}, self._finish_reason())
            if self.prepared.include_usage:
                await self.count_usage()
                p = self.prepared
                usage = {"id": p.request_id, "object": "chat.completion.chunk", "created": p.created,
                         "model": p.tier_slug, "choices": [], "usage": self._usage_body()}
                yield b"data: " + json.dumps(usage).encode() + b"\n\n"
            yield b"data: [DONE]\n\n"
        finally:
            await self.close()

    async def collect(self) -> dict:
        """The whole answer as one chat.completion object (ApiError as the request's error)."""
        parts = []
        try:
            while (chunk := await self.next_chunk()) is not None:
                parts.append(chunk.text)
            await self.count_usage()
        finally:
            await self.close()
        p = self.prepared
        return {
            "id": p.request_id, "object": "chat.completion", "created": p.created, "model": p.tier_slug,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(parts)},
                         "logprobs": None, "finish_reason": self._finish_reason()}],
            "usage": self._usage_body(),
        }


def _settle(*, prepared: PreparedCompletion, prompt_tokens: int, completion_tokens: int) -> None:
    """Give back what the admission over-reserved and record the usage (billing); a request
    that produced nothing gives its whole admission back and records nothing."""
    if not completion_tokens:
        api_release(admission=prepared.admission)
        return
    api_settle(admission=prepared.admission, used_tokens=prompt_tokens + completion_tokens)
    key = prepared.key
    api_usage_record(user=key.user, key_id=str(key.id), key_name=key.name, request_id=prepared.request_id,
                     tier_slug=prepared.tier_slug, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
