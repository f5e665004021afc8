"""HTTP-side conversation operations: ownership, list/search, rename, delete, share,
feedback and export. The socket side (send, regenerate, edit, runs) lives in
assistant.services; these are the reads and writes the chat page's forms make.

An owner is either a signed-in user or a guest's session key. Every lookup goes
through `conversation_get_owned`, so another owner's id is indistinguishable from
an id that does not exist (the views answer 404 for both).
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Any

from django.db.models import Q, QuerySet

from assistant.models import Conversation, Message

TITLE_MAX_LENGTH = 200
UNTITLED = "New conversation"


@dataclass(frozen=True)
class Owner:
    """Who is asking: a signed-in user, or a guest known by their session key."""

    user: Any | None
    session_key: str

    @property
    def is_guest(self) -> bool:
        return self.user is None


class NotOwned(Exception):
    """The conversation or message does not exist for this owner."""


# ---------------------------------------------------------------- selectors


def conversation_queryset_for(*, owner: Owner) -> QuerySet[Conversation]:
    if owner.user is not None:
        return Conversation.objects.filter(user=owner.user)
    if not owner.session_key:
        return Conversation.objects.none()
    return Conversation.objects.filter(user__isnull=True, session_key=owner.session_key)


def conversation_get_owned(*, owner: Owner, conversation_id: Any) -> Conversation:
    conversation = conversation_queryset_for(owner=owner).select_related("tier").filter(pk=conversation_id).first()
    if conversation is None:
        raise NotOwned
    return conversation


def message_get_owned(*, owner: Owner, message_id: Any) -> Message:
    conversations = conversation_queryset_for(owner=owner)
    message = Message.objects.filter(pk=message_id, conversation__in=conversations).select_related("conversation").first()
    if message is None:
        raise NotOwned
    return message


def conversation_list(*, owner: Owner, query: str = "", limit: int = 100) -> list[Conversation]:
    """The owner's conversations, newest first; `query` matches titles and message text."""
    qs = conversation_queryset_for(owner=owner)
    query = query.strip()
    if query:
        matching = Message.objects.filter(content__icontains=query).exclude(role=Message.Role.SYSTEM)
        qs = qs.filter(Q(title__icontains=query) | Q(pk__in=matching.values("conversation_id")))
    return list(qs.order_by("-updated_at")[:limit])


def conversation_thread(*, conversation: Conversation) -> list[Message]:
    """The messages to show, oldest first: no system prompt, and for each user turn only
    its latest answer (a regenerated answer replaces the one before it on screen)."""
    messages = list(
        conversation.messages.exclude(role=Message.Role.SYSTEM)
        .select_related("tier", "run")
        .order_by("created_at", "role")
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


def shared_conversation_get(*, token: str) -> Conversation:
    if not token:
        raise NotOwned
    conversation = Conversation.objects.filter(share_token=token).select_related("tier").first()
    if conversation is None:
        raise NotOwned
    return conversation


# ---------------------------------------------------------------- services


def conversation_rename(*, conversation: Conversation, title: str) -> Conversation:
    conversation.title = title.strip()[:TITLE_MAX_LENGTH]
    conversation.title_is_custom = True
    conversation.save(update_fields=["title", "title_is_custom", "updated_at"])
    return conversation


def conversation_delete(*, conversation: Conversation) -> None:
    conversation.delete()


def conversation_share_create(*, conversation: Conversation) -> Conversation:
    """Give the conversation a read-only share link (idempotent: an existing link is kept)."""
    if not conversation.share_token:
        conversation.share_token = secrets.token_urlsafe(24)
        conversation.save(update_fields=["share_token", "updated_at"])
    return conversation


def conversation_share_revoke(*, conversation: Conversation) -> Conversation:
    if conversation.share_token:
        conversation.share_token = None
        conversation.save(update_fields=["share_token", "updated_at"])
    return conversation


def message_feedback_set(*, message: Message, value: str) -> Message:
    if message.role != Message.Role.ASSISTANT:
        raise ValueError("Only answers can be rated.")
    if value not in Message.Feedback.values:
        raise ValueError(f"Unknown feedback {value!r}.")
    message.feedback = value
    message.save(update_fields=["feedback", "updated_at"])
    return message


# ---------------------------------------------------------------- exports


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
