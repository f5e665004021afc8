"""A conversation's message tree: versions, the active branch, switching between them.

Every message but a conversation's first question has a parent: an answer's is the
question it answers, a question's the answer before it. Messages with the same parent
are *versions* of one another: regenerating an answer adds a version of it, editing a
question adds a version of the question (and its new answer). Nothing is thrown away.

`Conversation.active_leaf` is the last message of the *active branch*: the leaf and its
ancestors are what the page shows, what the next prompt is built from, and what the
Markdown export and a share link show. Switching to a version makes its branch active;
its later turns are those of the newest reply at each step below it (the branch as it was
last written). A conversation without a leaf (it was deleted, or never set) shows the
newest message's branch.

Conversations are a few dozen messages: the tree is read whole, once, and walked here.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass

from django.db import transaction

from assistant.models import Conversation, GenerationRun, Message
from assistant.selectors import parse_uuid


@dataclass(frozen=True)
class Versions:
    """Where a message stands among its versions: `index` of `count` (from 1, oldest first)."""

    index: int
    count: int
    previous_id: str | None
    next_id: str | None


class BranchError(Exception):
    """A switch that cannot be made; `code` is the protocol's (not_found, conversation_busy)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class MessageTree:
    """The messages of one conversation (system prompts aside) as a tree."""

    def __init__(self, messages: list[Message]) -> None:
        self.messages = sorted(messages, key=lambda m: m.created_at)
        self.by_id = {m.pk: m for m in self.messages}
        self.children: dict = defaultdict(list)  # parent id (None: the first questions) -> oldest first
        for message in self.messages:
            parent_id = message.parent_id if message.parent_id in self.by_id else None
            self.children[parent_id].append(message)

    def get(self, message_id) -> Message | None:
        pk = parse_uuid(message_id) if isinstance(message_id, str) else message_id
        return self.by_id.get(pk)

    def path_to(self, message: Message | None) -> list[Message]:
        """`message` and its ancestors, oldest first (empty for None)."""
        path = []
        seen = set()
        while message is not None and message.pk not in seen:
            seen.add(message.pk)
            path.append(message)
            message = self.by_id.get(message.parent_id)
        path.reverse()
        return path

    def newest_leaf_under(self, message: Message) -> Message:
        """The end of `message`'s branch: the newest reply at each step below it."""
        while self.children.get(message.pk):
            message = self.children[message.pk][-1]
        return message

    def active_path(self, leaf_id) -> list[Message]:
        """The branch ending at `leaf_id`, or the newest message's when that is unknown."""
        leaf = self.by_id.get(leaf_id)
        if leaf is None:
            if not self.messages:
                return []
            leaf = self.messages[-1]
        return self.path_to(leaf)

    def versions(self, message: Message) -> Versions:
        parent_id = message.parent_id if message.parent_id in self.by_id else None
        siblings = self.children[parent_id]
        i = siblings.index(message)
        return Versions(
            index=i + 1,
            count=len(siblings),
            previous_id=str(siblings[i - 1].pk) if i > 0 else None,
            next_id=str(siblings[i + 1].pk) if i + 1 < len(siblings) else None,
        )


def conversation_tree(*, conversation: Conversation) -> MessageTree:
    return MessageTree(list(
        conversation.messages.exclude(role=Message.Role.SYSTEM).select_related("tier")
    ))


def branch_active(*, conversation: Conversation, tree: MessageTree | None = None) -> list[Message]:
    """The active branch, oldest first, each message with `.versions` (a Versions)."""
    tree = tree or conversation_tree(conversation=conversation)
    path = tree.active_path(conversation.active_leaf_id)
    for message in path:
        message.versions = tree.versions(message)
    return path


def branch_hidden_count(*, conversation: Conversation, tree: MessageTree | None = None) -> int:
    """How many messages are on other branches than the active one."""
    tree = tree or conversation_tree(conversation=conversation)
    return len(tree.messages) - len(tree.active_path(conversation.active_leaf_id))


def branch_switch(*, conversation: Conversation, message_id) -> Message:
    """Make the branch of the version `message_id` the active one (stored: a reload, another
    tab and the next prompt follow it) and return its new leaf. Raises
    BranchError: not_found for a message not in this conversation (another person's
    included: the caller looked the conversation up for its owner), conversation_busy while
    an answer is being written in it (its branch would change under it)."""
    with transaction.atomic():
        tree = conversation_tree(conversation=conversation)
        target = tree.get(message_id)
        if target is None:
            raise BranchError("not_found", "That message does not exist in this conversation.")
        if GenerationRun.objects.filter(conversation=conversation, status=GenerationRun.Status.RUNNING).exists():
            raise BranchError("conversation_busy", "An answer is still being written in this conversation.")
        leaf = tree.newest_leaf_under(target)
        Conversation.objects.filter(pk=conversation.pk).update(active_leaf=leaf)
        conversation.active_leaf = leaf
    return leaf
