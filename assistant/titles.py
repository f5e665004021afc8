"""Conversation titles: a few words from the model, or from the first message when the
model gives nothing usable.

With a shared channel layer (Redis) the title is made by a Celery task and pushed to
the page through the channel layer. In the embedded mode the in-process channel layer
cannot carry a message from a worker process, so the web process that ran the answer
makes the title itself, right after the run, and pushes it through the same group.
Either way the page gets the same `title` frame shortly after `done`.
"""

from __future__ import annotations

import asyncio
import logging
import re

from asgiref.sync import sync_to_async
from channels.db import database_sync_to_async

from assistant import events, services
from assistant.inference import InferenceError, Timeouts, endpoint_for_tier, stream_chat
from assistant.models import Conversation, Message, ModelTier

logger = logging.getLogger(__name__)

TITLE_INSTRUCTION = (
    "Write a short title (at most six words) for a conversation that starts with the "
    "message below. Reply with the title only: no quotes, no punctuation at the end."
)
TITLE_MAX_TOKENS = 16
TITLE_MAX_CHARS = 60
TITLE_TIMEOUT_S = 20.0
_background: set[asyncio.Task] = set()


def title_from_text(text: str) -> str:
    """The heuristic fallback: the first words of the first message."""
    words = re.sub(r"[#*_`>\[\]()]+", " ", text).split()
    title = " ".join(words[:6])
    if len(title) > TITLE_MAX_CHARS:
        title = title[: TITLE_MAX_CHARS - 1].rstrip() + "…"
    return title or "New conversation"


def title_from_model(raw: str) -> str:
    """The model's title, tidied; empty when it is not usable as a title."""
    line = next((ln.strip() for ln in raw.strip().splitlines() if ln.strip()), "")
    if line.startswith("```"):
        return ""  # small models sometimes answer the message instead, with code
    line = re.sub(r"^(title|conversation title)\s*:\s*", "", line, flags=re.IGNORECASE)
    line = line.strip(" \"'`*#.:;").strip()
    if not re.search(r"\w", line) or not 2 <= len(line.split()) <= 8 or len(line) > TITLE_MAX_CHARS:
        return ""
    return line


def _title_inputs(conversation_id: str):
    conversation = Conversation.objects.filter(pk=conversation_id).select_related("tier").first()
    if conversation is None or conversation.title or conversation.title_is_custom:
        return None
    first = conversation.messages.filter(role=Message.Role.USER).order_by("created_at").first()
    if first is None:
        return None
    tier = ModelTier.objects.filter(is_active=True).order_by("sort_order").first() or conversation.tier
    return first.content, tier


async def title_generate(*, conversation_id: str) -> str | None:
    """Make and save the title (idempotent: a conversation that has one is left alone)."""
    inputs = await database_sync_to_async(_title_inputs)(conversation_id)
    if inputs is None:
        return None
    first_message, tier = inputs
    title = ""
    if tier is not None:
        endpoint = endpoint_for_tier(tier, timeouts=Timeouts(connect=3.0, first_token=15.0, between_tokens=5.0))
        sampling = {**(tier.sampling or {}), "temperature": 0.2}
        parts: list[str] = []
        try:
            async with asyncio.timeout(TITLE_TIMEOUT_S):
                async for chunk in stream_chat(
                    endpoint,
                    messages=[
                        {"role": "system", "content": TITLE_INSTRUCTION},
                        {"role": "user", "content": first_message[:1000]},
                    ],
                    max_tokens=TITLE_MAX_TOKENS,
                    sampling=sampling,
                ):
                    parts.append(chunk.text)
        except (InferenceError, TimeoutError) as exc:
            logger.info("title for %s from the heuristic: %s", conversation_id, exc)
        title = title_from_model("".join(parts))
    title = title or title_from_text(first_message)
    saved = await database_sync_to_async(services.conversation_title_set_auto)(
        conversation_id=conversation_id, title=title
    )
    return title if saved else None


async def title_generate_and_publish(*, conversation_id: str) -> None:
    """Make the title and push it to the conversation's sockets (in a Celery worker with
    Redis, in the web process that ran the answer without)."""
    title = await title_generate(conversation_id=conversation_id)
    if title:
        await events.event_send(events.title(conversation_id=conversation_id, title=title))


async def _title_in_process(conversation_id: str) -> None:
    try:
        await title_generate_and_publish(conversation_id=conversation_id)
    except Exception:  # a title is a nicety; never let it disturb the web process
        logger.exception("title for %s failed", conversation_id)


async def title_schedule(*, conversation_id: str) -> None:
    if events.channel_layer_is_shared():
        from assistant.tasks import conversation_title_generate

        await sync_to_async(conversation_title_generate.delay, thread_sensitive=False)(str(conversation_id))
        return
    task = asyncio.get_running_loop().create_task(_title_in_process(str(conversation_id)))
    _background.add(task)
    task.add_done_callback(_background.discard)

