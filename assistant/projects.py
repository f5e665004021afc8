"""Projects: folders of a signed-in person's conversations, each with its own
instructions (added to the system prompt of its conversations, assistant.prompts) and a
default model tier (what the picker starts on for a new chat in it).

Reads and writes of projects live here; every id is looked up for its owner, and
another person's project reads exactly like one that does not exist. Guests have no
projects (like ChatGPT's): their conversations live in their session until they sign up.
"""

from __future__ import annotations

import uuid

from django.db import transaction
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from assistant.models import Conversation, GenerationRun, Project
from assistant.selectors import Owner, conversation_get_for_owner, parse_uuid


class ProjectError(Exception):
    """A project operation that cannot be done; `code` is the protocol's (not_found, ...)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


PROJECT_NOT_FOUND = "That project does not exist."


def projects_for_owner(*, owner: Owner) -> QuerySet[Project]:
    """The owner's projects by name, each with `conversation_count` (none for guests)."""
    if not owner.user_id:
        return Project.objects.none()
    return (
        Project.objects.filter(user_id=owner.user_id)
        .select_related("tier")
        .annotate(conversation_count=Count("conversations", filter=Q(conversations__is_temporary=False)))
        .order_by("name", "created_at")
    )


def project_get_for_owner(*, owner: Owner, project_id) -> Project | None:
    pk = project_id if isinstance(project_id, uuid.UUID) else parse_uuid(project_id)
    if pk is None or not owner.user_id:
        return None
    return Project.objects.filter(user_id=owner.user_id, pk=pk).select_related("tier").first()


def project_for_new_conversation(*, owner: Owner, project_id) -> Project | None:
    """The project a new conversation is filed in (None when none is asked for); raises
    ProjectError("not_found") for an id that is not the owner's."""
    if project_id in (None, ""):
        return None
    project = project_get_for_owner(owner=owner, project_id=project_id)
    if project is None:
        raise ProjectError("not_found", PROJECT_NOT_FOUND)
    return project


def project_create(*, owner: Owner, name: str, instructions: str = "", tier=None) -> Project:
    if not owner.user_id:
        raise ProjectError("login_required", "Sign up or log in to make projects.")
    return Project.objects.create(
        user_id=owner.user_id, name=name.strip()[:100], instructions=instructions.strip(), tier=tier
    )


def project_update(*, project: Project, name: str, instructions: str, tier=None) -> Project:
    project.name = name.strip()[:100]
    project.instructions = instructions.strip()
    project.tier = tier
    project.save(update_fields=["name", "instructions", "tier", "updated_at"])
    return project


def project_delete(*, project: Project, with_conversations: bool) -> int:
    """Delete the project; its conversations go with it (`with_conversations`) or stay,
    outside any project. Refused while one of them is writing an answer. Returns how
    many conversations were deleted."""
    with transaction.atomic():
        conversations = Conversation.objects.filter(project=project)
        if with_conversations and GenerationRun.objects.filter(
            conversation__in=conversations, status=GenerationRun.Status.RUNNING
        ).exists():
            raise ProjectError(
                "conversation_busy", "An answer is still being written in this project: stop it or wait, then delete."
            )
        deleted = 0
        if with_conversations:
            deleted = conversations.count()
            conversations.delete()
        else:
            conversations.update(project=None, updated_at=timezone.now())
        project.delete()
    return deleted


def conversation_move(*, owner: Owner, conversation_id, project_id) -> Conversation:
    """File the owner's conversation in the owner's project (`project_id`), or in none
    (empty). Both ids are looked up for the owner: anything else is not_found."""
    conversation = conversation_get_for_owner(owner=owner, conversation_id=conversation_id)
    if conversation is None or conversation.is_temporary:
        raise ProjectError("not_found", "That conversation does not exist.")
    project = project_for_new_conversation(owner=owner, project_id=project_id)
    # updated_at is left alone: moving a conversation is not talking in it.
    Conversation.objects.filter(pk=conversation.pk).update(project=project)
    conversation.project = project
    return conversation
