"""Reads the chat page needs beyond assistant.selectors (the list's date groups among them), and the conversation exports.

Ownership, lists, search and the writes (rename, delete, share, feedback) are in
assistant.selectors / assistant.services; this module adds what only the HTTP side
uses: the message lookup for feedback, the thread as shown on screen, and the
Markdown/JSON exports.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.utils import timezone

from assistant.attachments import attachment_export, attachment_markdown, attachments_by_message
from assistant.branches import MessageTree, branch_active, conversation_tree
from assistant.models import Conversation, GenerationRun, Message
from assistant.selectors import Owner, _owner_q, parse_uuid
from assistant.services import message_is_continuable

UNTITLED = "New conversation"


def message_get_for_owner(*, owner: Owner, message_id: Any) -> Message | None:
    pk = message_id if not isinstance(message_id, str) else parse_uuid(message_id)
    if pk is None or not owner.is_known:
        return None
    return Message.objects.filter(_owner_q(owner, "conversation__"), pk=pk).select_related("conversation").first()


def conversation_thread(*, conversation: Conversation, tree: MessageTree | None = None) -> list[Message]:
    """The active branch as shown on screen, oldest first (assistant.branches): each
    message with `.versions` and `.continuable`, and an answer still being written with
    `.live_run_id`."""
    thread = branch_active(conversation=conversation, tree=tree)
    streaming = [m.pk for m in thread if m.status == Message.Status.STREAMING]
    live: dict[Any, Any] = {}
    if streaming:
        live = dict(
            GenerationRun.objects.filter(assistant_message__in=streaming, status=GenerationRun.Status.RUNNING)
            .values_list("assistant_message_id", "pk")
        )
    for message in thread:
        message.live_run_id = live.get(message.pk)
        message.continuable = message_is_continuable(message)
    return thread


# What the exports say about versions (docs/protocol.md, "Branches").
JSON_EXPORT_BRANCHES = (
    "Every version of every message is included: parent_id links a message to the one before it, "
    "messages with the same parent are versions of one another, and on_active_branch marks the "
    "branch shown in the chat."
)
MARKDOWN_EXPORT_BRANCHES = (
    "This is the branch shown in the chat; {hidden} message(s) on other versions are not included "
    "(the JSON export has every version)."
)


def conversation_export_data(*, conversation: Conversation) -> dict:
    """The JSON export: the whole message tree, oldest first, the active branch marked."""
    tier = conversation.tier
    tree = conversation_tree(conversation=conversation)
    active = {m.pk for m in tree.active_path(conversation.active_leaf_id)}
    attached = attachments_by_message(messages=tree.messages)
    return {
        "id": str(conversation.pk),
        "title": conversation.title or UNTITLED,
        "tier": tier.slug if tier else None,
        "created_at": conversation.created_at.isoformat(),
        "updated_at": conversation.updated_at.isoformat(),
        "branches": JSON_EXPORT_BRANCHES,
        "messages": [
            {
                "id": str(m.pk),
                "parent_id": str(m.parent_id) if m.parent_id in tree.by_id else None,
                "on_active_branch": m.pk in active,
                "role": m.role,
                "content": m.content,
                "status": m.status,
                "model": m.tier.display_name if m.tier else None,
                "created_at": m.created_at.isoformat(),
                "feedback": m.feedback or None,
                "attachments": [attachment_export(a) for a in attached.get(m.pk, [])],
            }
            for m in tree.messages
        ],
    }


def conversation_export_markdown(*, conversation: Conversation) -> str:
    """The Markdown export: the active branch, saying how much of the tree it leaves out."""
    title = conversation.title or UNTITLED
    lines = [f"# {title}", "", f"Exported from Lhama · started {conversation.created_at:%Y-%m-%d %H:%M} UTC", ""]
    tree = conversation_tree(conversation=conversation)
    thread = conversation_thread(conversation=conversation, tree=tree)
    hidden = len(tree.messages) - len(thread)
    attached = attachments_by_message(messages=thread)
    if hidden:
        lines += [f"_{MARKDOWN_EXPORT_BRANCHES.format(hidden=hidden)}_", ""]
    for m in thread:
        if m.role == Message.Role.USER:
            heading = "## You"
        else:
            heading = f"## {m.tier.display_name}" if m.tier else "## Assistant"
            if m.status not in (Message.Status.COMPLETE, Message.Status.STREAMING):
                heading += f" ({m.get_status_display().lower()})"
        lines += [heading, "", m.content.rstrip(), ""]
        for attachment in attached.get(m.pk, []):
            lines += attachment_markdown(attachment)
    return "\n".join(lines).rstrip() + "\n"


GROUP_TODAY = "Today"
GROUP_WEEK = "Previous 7 days"
GROUP_OLDER = "Older"


def conversation_groups(conversations, *, now=None) -> list[tuple[str, list]]:
    """The list in date groups, newest first: Today, Previous 7 days, Older (by the
    site's time zone; empty groups left out)."""
    today = timezone.localdate(now or timezone.now())
    groups: dict[str, list] = {GROUP_TODAY: [], GROUP_WEEK: [], GROUP_OLDER: []}
    for conversation in conversations:
        day = timezone.localdate(conversation.updated_at)
        if day >= today:
            groups[GROUP_TODAY].append(conversation)
        elif day >= today - timedelta(days=7):
            groups[GROUP_WEEK].append(conversation)
        else:
            groups[GROUP_OLDER].append(conversation)
    return [(label, items) for label, items in groups.items() if items]
