"""Temporary chats: conversations that are never kept.

A `message.send` with `"temporary": true` (and no conversation yet) starts one
(services.run_begin marks it `Conversation.is_temporary`). The server, not the page,
keeps it out of everything that lasts:

- never listed or searched (selectors.conversations_for_owner), never a page, an export,
  a share link or a data export (selectors.conversation_get_for_owner reads it as missing
  outside the chat socket; assistant.exports skips it);
- no title task (run_begin's title_needed) and no ads: the ad request is never made, so no
  impression, click or other ad event is recorded;
- its rows (conversation, messages, runs) are deleted when the socket that started it
  closes (`temporary_conversations_close`, from the consumer's disconnect), and by a
  periodic sweep for those a crashed process left (`temporary_conversations_sweep`).
"""

from __future__ import annotations

import logging
from datetime import timedelta

from channels.db import database_sync_to_async
from django.conf import settings
from django.utils import timezone

from assistant.models import Conversation, GenerationRun
from assistant.selectors import Owner, _owner_q

logger = logging.getLogger(__name__)


def temporary_conversations_delete(*, owner: Owner, conversation_ids) -> list[tuple[str, str]]:
    """Delete the owner's temporary conversations among `conversation_ids` (others' ids and
    kept conversations are left alone). Returns (run id, run owner) of the runs that were
    still running in them, for the caller to stop."""
    conversations = Conversation.objects.filter(_owner_q(owner), pk__in=list(conversation_ids), is_temporary=True)
    running = list(
        GenerationRun.objects.filter(conversation__in=conversations, status=GenerationRun.Status.RUNNING)
        .values_list("pk", "owner")
    )
    conversations.delete()
    return [(str(pk), run_owner) for pk, run_owner in running]


async def temporary_conversations_close(*, owner: Owner, conversation_ids) -> None:
    """The socket that started these temporary chats closed: stop their answers (the
    server stops generating) and delete every row. A run stopped here finds its rows gone
    when it ends and saves nothing."""
    from assistant.runs import run_stop  # runs imports the generation, which imports services

    if not conversation_ids:
        return
    running = await database_sync_to_async(temporary_conversations_delete)(
        owner=owner, conversation_ids=conversation_ids
    )
    for run_id, run_owner in running:
        try:
            await run_stop(run_id=run_id, owner=run_owner)
        except Exception:  # the rows are gone either way; the run ends on its own
            logger.exception("stopping temporary run %s failed", run_id)


def temporary_conversations_sweep(*, idle_s: float | None = None) -> int:
    """Delete temporary chats left behind (their web process died before the socket's
    close could delete them): untouched for ASSISTANT_TEMPORARY_IDLE_S and with no answer
    being written. Returns how many were deleted."""
    idle_s = settings.ASSISTANT_TEMPORARY_IDLE_S if idle_s is None else idle_s
    cutoff = timezone.now() - timedelta(seconds=idle_s)
    stale = Conversation.objects.filter(is_temporary=True, updated_at__lt=cutoff).exclude(
        runs__status=GenerationRun.Status.RUNNING
    )
    _, per_model = Conversation.objects.filter(pk__in=list(stale.values_list("pk", flat=True))).delete()
    return per_model.get(Conversation._meta.label, 0)
