"""The body of a generation run: one answer, from the upstream stream to the saved message.

It reads the upstream stream, appends coalesced deltas to the run log (first token at
once, then at most one delta per ASSISTANT_COALESCE_S), snapshots its text every
ASSISTANT_SNAPSHOT_INTERVAL_S, writes the final message once, settles the quota, and
publishes `done` (or `error`), the ad if one was decided in time, and `end`.
assistant/runs.py starts and stops it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from ads import metrics as ad_metrics
from assistant import events, metrics, services
from assistant.inference import (
    InferenceError,
    StreamChunk,
    UpstreamHTTPError,
    count_message_tokens,
    count_prompt_tokens,
    stream_chat,
)
from assistant.prompts import PromptTooLong, fit_messages
from assistant.titles import title_schedule

logger = logging.getLogger(__name__)

_STOP = object()
_END = object()


class RunInterrupted(InferenceError):
    """Its process is shutting down (a drain past its deadline): the run ends here, its text
    is saved as interrupted and the user is offered to continue it."""

    code = "interrupted"
    retryable = True


@dataclass
class RunHandle:
    spec: services.RunSpec
    parts: list[str] = field(default_factory=list)
    seq: int = 0
    stop_requested: bool = False
    task: asyncio.Task | None = None
    reader: asyncio.Task | None = None
    queue: asyncio.Queue = field(default_factory=asyncio.Queue)
    snapshotted_len: int = 0
    # Set once the answer has ended (its `done` is out): from then on an ad decision past
    # its budget is given up (see _decide_ad).
    answer_ended: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        if self.spec.text_before and not self.parts:
            # A continue: the answer's text so far comes first; deltas carry only what follows.
            self.parts.append(self.spec.text_before)
            self.snapshotted_len = len(self.spec.text_before)

    @property
    def text(self) -> str:
        return "".join(self.parts)

    def stop(self) -> None:
        if self.stop_requested:
            return
        self.stop_requested = True
        if self.reader is not None and not self.reader.done() and not self.reader.cancelling():
            self.reader.cancel()  # closes the upstream response: the server stops generating
        self.queue.put_nowait(_STOP)

    def interrupt(self) -> None:
        if self.stop_requested:
            return
        self.stop_requested = True
        if self.reader is not None and not self.reader.done() and not self.reader.cancelling():
            self.reader.cancel()
        self.queue.put_nowait(RunInterrupted(events.INTERRUPTED_MESSAGE))


async def _close_reader(handle: RunHandle) -> None:
    """Cancel the upstream reader once and wait until its response is closed (a second
    cancel would interrupt httpx while it closes the connection)."""
    reader = handle.reader
    if reader is None:
        return
    if not reader.done() and not reader.cancelling():
        reader.cancel()
    await asyncio.wait({reader}, timeout=5)


async def _read_upstream(handle: RunHandle, messages: list[dict], max_tokens: int) -> None:
    spec = handle.spec
    try:
        async for chunk in stream_chat(
            spec.tier.endpoint, messages=messages, max_tokens=max_tokens, sampling=spec.tier.sampling,
            # The run id follows the request into the model server's log; a router in front
            # of a tier's replicas keeps a conversation on one replica (its prefix cache).
            headers={"x-request-id": spec.run_id, "x-lhama-conversation": spec.conversation_id},
        ):
            handle.queue.put_nowait(chunk)
        handle.queue.put_nowait(_END)
    except InferenceError as exc:
        handle.queue.put_nowait(exc)
    except asyncio.CancelledError:
        raise
    except Exception as exc:  # an unexpected bug must still end the run with an error frame
        logger.exception("run %s: reading the upstream failed", spec.run_id)
        handle.queue.put_nowait(UpstreamHTTPError(f"Unexpected error while reading the answer: {type(exc).__name__}"))


async def _fit_exactly(spec: services.RunSpec) -> tuple[list[dict], int]:
    """Re-fit the history with the model's tokenizer when the estimate had to drop turns."""
    if not spec.exact_fit_needed:
        return spec.messages, spec.max_tokens
    system_message = {"role": "system", "content": spec.system}
    counts = await count_message_tokens(spec.tier.endpoint, [system_message, *spec.turns])
    if counts is None:
        return spec.messages, spec.max_tokens
    # Turns are matched by identity; the system message fit_messages builds is the only other one.
    by_id = {id(m): c for m, c in zip(spec.turns, counts[1:], strict=True)}
    return fit_messages(
        system=spec.system,
        turns=spec.turns,
        context_length=spec.context_length,
        max_output_tokens=spec.tier.max_output_tokens,
        count=lambda message: by_id.get(id(message), counts[0]),
    )


async def _snapshot_loop(handle: RunHandle) -> None:
    spec = handle.spec
    while True:
        await asyncio.sleep(settings.ASSISTANT_SNAPSHOT_INTERVAL_S)
        text = handle.text
        changed = len(text) != handle.snapshotted_len
        try:
            await database_sync_to_async(services.run_heartbeat)(
                run_id=spec.run_id,
                assistant_message_id=spec.assistant_message_id,
                text=text if changed else None,
                seq=handle.seq,
            )
            handle.snapshotted_len = len(text)
        except Exception:  # a failed snapshot is retried at the next tick
            logger.exception("run %s: snapshot failed", spec.run_id)


# Ad decisions get their own two threads (the embedding model runs one text at a time
# anyway): on the loop's default pool, fifty decisions waiting for the model held every
# thread while run_begin and run_end, on the path to the first token, queued behind them.
_ads_executor = ThreadPoolExecutor(max_workers=2, thread_name_prefix="lhama-ads")


async def _decide_ad(ad_request, answer_ended: asyncio.Event) -> dict | None:
    """The ad for this answer, or None. The decision has ADS_DECISION_BUDGET_S, and
    beyond it as long as the answer is still being written: its card is shown after the
    answer, so a decision that ends before the answer does is in time and slows nothing
    (a CPU model's answer takes seconds; a GPU's fast answer gets the budget). One still
    running when both are over is given up: no ad, never a later `end`."""
    from ads.services.decision import ad_decide

    started = time.monotonic()
    # Its own pool thread (its DB connection cleaned up around the call), so a slow
    # decision never holds up the first token; one still queued when it is given up is
    # cancelled before it starts.
    decision = asyncio.ensure_future(
        database_sync_to_async(ad_decide, thread_sensitive=False, executor=_ads_executor)(request=ad_request)
    )
    ended = asyncio.ensure_future(answer_ended.wait())
    try:
        await asyncio.wait({decision}, timeout=settings.ADS_DECISION_BUDGET_S)
        if not decision.done():
            await asyncio.wait({decision, ended}, return_when=asyncio.FIRST_COMPLETED)
        if not decision.done():
            decision.cancel()
            logger.info("ad decision missed its %.2f s budget and the answer's end", settings.ADS_DECISION_BUDGET_S)
            ad_metrics.ad_decision_record(outcome="timeout")
            return None
        return decision.result()
    except asyncio.CancelledError:
        decision.cancel()
        raise
    except Exception:  # no ad is the safe failure
        logger.exception("ad decision failed")
        ad_metrics.ad_decision_record(outcome="failed")
        return None
    finally:
        ended.cancel()
        ad_metrics.ad_decision_seconds.observe(time.monotonic() - started)


async def run_generate(*, handle: RunHandle) -> None:
    """Write the answer of `handle`'s run, to its end: stopped, failed or complete."""
    spec = handle.spec
    loop = asyncio.get_running_loop()
    started_at = loop.time()
    ad_task = (
        loop.create_task(_decide_ad(spec.ad_request, handle.answer_ended)) if spec.ad_request is not None else None
    )
    snapshot_task = loop.create_task(_snapshot_loop(handle))
    status = "complete"
    error: InferenceError | PromptTooLong | None = None
    finish_reason = ""
    usage = None
    content_chunks = 0
    first_chunk_at = last_chunk_at = 0.0
    first_token_at = None
    messages = spec.messages
    pending: list[str] = []
    last_flush = 0.0
    window = settings.ASSISTANT_COALESCE_S

    async def flush() -> None:
        nonlocal last_flush, first_token_at
        if not pending:
            return
        text = "".join(pending)
        pending.clear()
        handle.seq = await events.event_send(events.delta(run_id=spec.run_id, text=text))
        handle.parts.append(text)
        last_flush = loop.time()
        if first_token_at is None:
            first_token_at = timezone.now()
            metrics.time_to_first_token.labels(tier=spec.tier.slug).observe(last_flush - started_at)

    try:
        messages, max_tokens = await _fit_exactly(spec)
        if not handle.stop_requested:
            handle.reader = loop.create_task(_read_upstream(handle, messages, max_tokens))
        while True:
            if not pending:
                item = await handle.queue.get()
            elif not handle.queue.empty():
                item = handle.queue.get_nowait()
            else:
                # Text is waiting for the window: one sleep per window (a timer per token
                # cost more CPU than the rest of the token's way); what arrives meanwhile
                # is read before the flush. A stop waits at most the window too.
                await asyncio.sleep(last_flush + window - loop.time())
                if handle.queue.empty():
                    await flush()
                    continue
                item = handle.queue.get_nowait()
            if item is _STOP:
                status = finish_reason = events.STOPPED
                break
            if item is _END:
                break
            if isinstance(item, InferenceError):
                error = item
                break
            chunk: StreamChunk = item
            if chunk.usage is not None:
                usage = chunk.usage
            if chunk.finish_reason:
                finish_reason = chunk.finish_reason
            if chunk.text:
                content_chunks += 1
                last_chunk_at = loop.time()
                if content_chunks == 1:
                    first_chunk_at = last_chunk_at
                pending.append(chunk.text)
                # The first token at once (every token without a window); later ones once
                # the window is over and the queue is drained (what came meanwhile, in one frame).
                if handle.seq == 0 or window <= 0 or (loop.time() - last_flush >= window and handle.queue.empty()):
                    await flush()
        await flush()
    except PromptTooLong as exc:
        error = exc
    except asyncio.CancelledError:
        # The process is shutting down: the reaper marks the run interrupted later.
        if handle.reader is not None and not handle.reader.cancelling():
            handle.reader.cancel()
        snapshot_task.cancel()
        raise
    finally:
        snapshot_task.cancel()
        await _close_reader(handle)

    if content_chunks > 1:
        metrics.time_between_tokens.labels(tier=spec.tier.slug).observe(
            (last_chunk_at - first_chunk_at) / (content_chunks - 1)
        )
    try:
        await _finish(handle, status=status, error=error, finish_reason=finish_reason, usage=usage,
                      content_chunks=content_chunks, messages=messages, first_token_at=first_token_at,
                      ad_task=ad_task)
    except Exception:
        logger.exception("run %s: finishing failed", spec.run_id)
        await events.event_send(events.error(
            code="upstream_error", message=events.NOT_SAVED_MESSAGE, run_id=spec.run_id, retryable=True
        ))
        await events.event_send(events.end(run_id=spec.run_id))


async def _finish(handle: RunHandle, *, status, error, finish_reason, usage, content_chunks, messages,
                  first_token_at, ad_task) -> None:
    spec = handle.spec
    text = handle.text
    if error is not None:
        status = "interrupted" if isinstance(error, RunInterrupted) else "error"
    usage_counted = usage is None
    if usage is None:
        # llama.cpp sends no usage chunk, and a stopped or failed stream never gets one.
        prompt_tokens = await count_prompt_tokens(spec.tier.endpoint, messages) if content_chunks or text else 0
        completion_tokens = content_chunks
    else:
        prompt_tokens, completion_tokens = usage.prompt_tokens, usage.completion_tokens

    error_code = error.code if error else ""
    error_message = error.message if error else ""
    # One thread hop, one transaction: the final message and the quota's settle (or
    # release, when an error left no text). On the shared ORM thread, as run_finish was:
    # on the pool it queued ahead of other chats' run_begin (measured slower at 50 chats).
    finished = await database_sync_to_async(services.run_end)(
        reservation=spec.reservation,
        release=status == "error" and not text,
        used_tokens=prompt_tokens + completion_tokens,
        run_id=spec.run_id,
        assistant_message_id=spec.assistant_message_id,
        conversation_id=spec.conversation_id,
        status=status,
        text=text,
        seq=handle.seq,
        finish_reason=finish_reason or ("error" if error else ""),
        prompt_tokens=prompt_tokens,
        completion_tokens=completion_tokens,
        usage_counted=usage_counted,
        error_code=error_code,
        error_message=error_message,
        first_token_at=first_token_at,
    )
    if not finished:
        # The reaper got there first (this process was presumed dead); its record stands.
        if ad_task is not None:
            ad_task.cancel()
        await events.event_send(events.end(run_id=spec.run_id))
        return

    metrics.run_outcomes.labels(status=status).inc()
    metrics.completion_tokens.labels(tier=spec.tier.slug).inc(completion_tokens)
    if error is not None and status == "error" and error_code.startswith("upstream"):
        metrics.upstream_errors.labels(tier=spec.tier.slug, kind=error_code).inc()
    if error is not None:
        # Support finds this line by the run id the page shows (config/logs.py adds it to each line).
        logger.warning("run ended with %s: %s", error_code, error_message)
        await events.event_send(events.error(
            code=error_code, message=error_message, run_id=spec.run_id, retryable=getattr(error, "retryable", True)
        ))
    else:
        await events.event_send(events.done(
            run_id=spec.run_id,
            message_id=spec.assistant_message_id,
            status=status,
            finish_reason=finish_reason,
            prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens,
        ))
    handle.answer_ended.set()
    if ad_task is not None:
        ad = await ad_task if error is None else None
        if error is not None:
            ad_task.cancel()
        if ad:
            from ads.services.delivery import impression_mark_sent

            try:  # when the frame went out: an acknowledgement sooner than a second after it is refused
                await database_sync_to_async(impression_mark_sent)(impression_id=ad["impression_id"])
            except Exception:
                logger.exception("run %s: recording when the ad was sent failed", spec.run_id)
            await events.event_send(events.ad(run_id=spec.run_id, conversation_id=spec.conversation_id, ad=ad))
    await events.event_send(events.end(run_id=spec.run_id))
    if spec.title_needed and error is None:
        await title_schedule(conversation_id=spec.conversation_id)
