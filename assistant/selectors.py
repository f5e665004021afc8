"""Reads for conversations, messages, tiers and runs. Ownership is always checked here:
another person's id reads exactly like an id that does not exist."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.conf import settings
from django.db.models import Q, QuerySet

from assistant.models import Conversation, GenerationRun, Message, ModelTier
from billing.public import quota_subject_for


@dataclass(frozen=True)
class Owner:
    """Who is chatting: a signed-in user, or a guest identified by their session (and,
    for guest limits, the address they connect from; never stored as such)."""

    user_id: int | None
    session_key: str = ""
    client_address: str = ""

    @property
    def subject(self) -> str:
        """The quota subject (billing's one definition: a guest's names their network too)."""
        return quota_subject_for(user_id=self.user_id, session_key=self.session_key, client_address=self.client_address)

    @property
    def is_known(self) -> bool:
        return bool(self.user_id or self.session_key)


def owner_for(*, user, session_key: str | None, client_address: str = "") -> Owner:
    if user is not None and getattr(user, "is_authenticated", False):
        return Owner(user_id=user.pk)
    return Owner(user_id=None, session_key=session_key or "", client_address=client_address)


def _owner_q(owner: Owner, prefix: str = "") -> Q:
    if owner.user_id:
        return Q(**{f"{prefix}user_id": owner.user_id})
    if owner.session_key:
        return Q(**{f"{prefix}user__isnull": True, f"{prefix}session_key": owner.session_key})
    return Q(pk__in=[])


def parse_uuid(value) -> uuid.UUID | None:
    if not isinstance(value, str):
        return None
    try:
        return uuid.UUID(value)
    except ValueError:
        return None


def conversations_for_owner(*, owner: Owner, query: str = "") -> QuerySet[Conversation]:
    """The owner's conversations for the list and its search (never a temporary chat)."""
    qs = Conversation.objects.filter(_owner_q(owner), is_temporary=False).select_related("tier")
    if query:
        qs = qs.filter(Q(title__icontains=query) | Q(messages__content__icontains=query)).distinct()
    return qs.order_by("-updated_at")


def conversation_get_for_owner(*, owner: Owner, conversation_id, include_temporary: bool = False) -> Conversation | None:
    """The owner's conversation, or None. A temporary chat exists only for the chat socket
    (`include_temporary`): pages, exports, sharing and the rest read it as missing."""
    pk = parse_uuid(conversation_id) if not isinstance(conversation_id, uuid.UUID) else conversation_id
    if pk is None or not owner.is_known:
        return None
    qs = Conversation.objects.filter(_owner_q(owner), pk=pk)
    if not include_temporary:
        qs = qs.filter(is_temporary=False)
    return qs.select_related("tier").first()


def conversation_get_shared(*, share_token: str) -> Conversation | None:
    if not share_token:
        return None
    return Conversation.objects.filter(share_token=share_token).select_related("tier").first()


def run_get_for_owner(*, owner: Owner, run_id) -> GenerationRun | None:
    pk = parse_uuid(run_id)
    if pk is None or not owner.is_known:
        return None
    return (
        GenerationRun.objects.filter(_owner_q(owner, "conversation__"), pk=pk)
        .select_related("assistant_message", "conversation", "tier")
        .first()
    )


def session_has_complete_answer(*, session_key: str) -> bool:
    """A guest session that has had at least one answer written to the end (the ads app
    counts a guest's impressions only from then: a new session is a cheap identity)."""
    return bool(session_key) and Message.objects.filter(
        conversation__user__isnull=True,
        conversation__session_key=session_key,
        role=Message.Role.ASSISTANT,
        status=Message.Status.COMPLETE,
    ).exists()


def tiers_active() -> QuerySet[ModelTier]:
    return ModelTier.objects.filter(is_active=True).order_by("sort_order", "slug")


def tier_names() -> list[tuple[str, str]]:
    """(slug, display name) of every tier, active or not, in display order: what billing shows beside plans
    (settings.BILLING_MODEL_TIER_NAMES)."""
    return list(ModelTier.objects.order_by("sort_order", "slug").values_list("slug", "display_name"))


def tier_base_urls() -> list[str]:
    """The distinct inference servers that the active model tiers point at (settings when no tier exists)."""
    urls = sorted({url.rstrip("/") for url in tiers_active().values_list("base_url", flat=True) if url})
    if urls:
        return urls
    configured = [settings.VLLM_BASE_URL_8B, settings.VLLM_BASE_URL_70B, settings.VLLM_BASE_URL_405B, settings.VLLM_BASE_URL]
    return sorted({u for u in configured if u}) or [settings.LLM_EMBEDDED_URL]
