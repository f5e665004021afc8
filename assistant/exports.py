"""What the assistant contributes to a user's data export: conversations and messages."""

from __future__ import annotations

from django.db.models import Prefetch

from assistant.models import Conversation, Message


def user_export(*, user) -> dict:
    conversations = (
        Conversation.objects.filter(user=user).select_related("tier").prefetch_related(Prefetch("messages", queryset=Message.objects.select_related("tier").order_by("created_at"))).order_by("created_at")
    )
    return {
        "conversations": [
            {
                "id": str(conversation.pk),
                "title": conversation.title,
                "tier": conversation.tier.slug if conversation.tier else None,
                "custom_instructions": conversation.custom_instructions,
                "shared": bool(conversation.share_token),
                "created_at": conversation.created_at.isoformat(),
                "updated_at": conversation.updated_at.isoformat(),
                "messages": [
                    {
                        "id": str(message.pk),
                        "role": message.role,
                        "content": message.content,
                        "status": message.status,
                        "tier": message.tier.slug if message.tier else None,
                        "prompt_tokens": message.prompt_tokens,
                        "completion_tokens": message.completion_tokens,
                        "feedback": message.feedback,
                        "created_at": message.created_at.isoformat(),
                    }
                    for message in conversation.messages.all()
                ],
            }
            for conversation in conversations
        ]
    }
