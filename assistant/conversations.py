"""Reads the chat page needs beyond assistant.selectors, and the conversation exports.

Ownership, lists, search and the writes (rename, delete, share, feedback) are in
assistant.selectors / assistant.services; this module adds what only the HTTP side
uses: the message lookup for feedback, the thread as shown on screen, and the
Markdown/JSON exports.
"""

from __future__ import annotations

from typing import Any

from assistant.models import Conversation, Message
from assistant.selectors import Owner, _owner_q, parse_uuid

UNTITLED = "New conversation"


def message_get_for_owner(*, owner: Owner, message_id: Any) -> Message | None:
    pk = message_id if not isinstance(message_id, str) else parse_uuid(message_id)
    if pk is None or not owner.is_known:
        return None
    return Message.objects.filter(_owner_q(owner, "conversation__"), pk=pk).select_related("conversation").first()


def conversation_thread(*, conversation: Conversation) -> list[Message]:
    """The messages to show, oldest first: no system prompt, and for each question only
    its latest answer (a regenerated answer replaces the one before it on screen)."""
    messages = list(
        conversation.messages.exclude(role=Message.Role.SYSTEM).select_related("tier", "run").order_by("created_at")
    )
    latest_reply: dict[Any, Message] = {}
    for message in messages:
        if message.role == Message.Role.ASSISTANT and message.parent_id is not None:
            latest_reply[message.parent_id] = message  # later created_at wins
    return [
        m
        for m in messages
        if m.role != Message.Role.ASSISTANT or m.parent_id is None or latest_reply[m.parent_id] is m
    ]


def conversation_export_data(*, conversation: Conversation) -> dict:
    tier = conversation.tier
    return {
        "id": str(conversation.pk),
        "title": conversation.title or UNTITLED,
        "tier": tier.slug if tier else None,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "messages": [
            {
                "id": str(m.pk),
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.tier.display_name if m.tier else None,
                "created_at": m.created_at.isoformat(),
                "feedback": m.feedback or None,
            }
            for m in conversation_thread(conversation=conversation)
        ],
    }


def conversation_export_markdown(*, conversation: Conversation) -> str:
    title = conversation.title or UNTITLED
    lines = [f"# {title}", "", f"Exported from Lhama · started {conversation.created_at:%Y-%m-%d %H:%M} UTC", ""]
    for m in conversation_thread(conversation=conversation):
        if m.role == Message.Role.USER:
            heading = "## You"
        else:
            heading = f"## {m.tier.display_name}" if m.tier else "## Assistant"
            if m.status not in (Message.Status.COMPLETE, Message.Status.STREAMING):
                heading += f" ({m.get_status_display().lower()})"
        lines += [heading, "", m.content.rstrip(), ""]
    return "\n".join(lines).rstrip() + "\n"
