"""What the assistant contributes to a user's data export: conversations and messages.

Every version of every message is exported (the whole message tree: `parent_id` links a
message to the one before it, `on_active_branch` marks the branch shown in the chat).
Temporary chats are never exported (they are not kept)."""

from __future__ import annotations

from django.db.models import Prefetch

from assistant.attachments import attachment_export
from assistant.branches import MessageTree
from assistant.conversations import JSON_EXPORT_BRANCHES
from assistant.models import Conversation, Message, Project


def user_export(*, user) -> dict:
    conversations = (
        Conversation.objects.filter(user=user, is_temporary=False).select_related("tier").prefetch_related(Prefetch("messages", queryset=Message.objects.select_related("tier").prefetch_related("attachments").order_by("created_at"))).order_by("created_at")
    )
    conversations = list(conversations)
    active = set()
    for conversation in conversations:
        tree = MessageTree(list(conversation.messages.all()))
        active.update(m.pk for m in tree.active_path(conversation.active_leaf_id))
    return {
        "projects": [
            {"id": str(p.pk), "name": p.name, "instructions": p.instructions, "tier": p.tier.slug if p.tier else None,
             "created_at": p.created_at.isoformat()}
            for p in Project.objects.filter(user=user).select_related("tier").order_by("created_at")
        ],
        "branches": JSON_EXPORT_BRANCHES,
        "conversations": [
            {
                "id": str(conversation.pk),
                "title": conversation.title,
                "tier": conversation.tier.slug if conversation.tier else None,
                "custom_instructions": conversation.custom_instructions,
                "project": str(conversation.project_id) if conversation.project_id else None,
                "shared": bool(conversation.share_token),
                "created_at": conversation.created_at.isoformat(),
                "updated_at": conversation.updated_at.isoformat(),
                "messages": [
                    {
                        "id": str(message.pk),
                        "parent_id": str(message.parent_id) if message.parent_id else None,
                        "on_active_branch": message.pk in active,
                        "role": message.role,
                        "content": message.content,
                        "status": message.status,
                        "tier": message.tier.slug if message.tier else None,
                        "prompt_tokens": message.prompt_tokens,
                        "completion_tokens": message.completion_tokens,
                        "feedback": message.feedback,
                        "created_at": message.created_at.isoformat(),
                        "attachments": [attachment_export(a) for a in message.attachments.all()],
                    }
                    for message in conversation.messages.all()
                ],
            }
            for conversation in conversations
        ]
    }
