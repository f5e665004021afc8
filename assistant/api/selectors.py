"""Reads for the API: the models a key may use, a user's keys."""

from __future__ import annotations

from assistant.api.keys import AuthenticatedKey
from assistant.api.models import ApiKey
from assistant.models import ModelTier
from billing.public import entitlements_for


def models_for_key(*, key: AuthenticatedKey) -> list[dict]:
    """The tiers this key's plan unlocks, within its scope, as OpenAI model objects
    (the model id is the tier's slug)."""
    unlocked = entitlements_for(user=key.user).tier_slugs
    if key.tier_slugs:
        unlocked = unlocked & set(key.tier_slugs)
    tiers = ModelTier.objects.filter(is_active=True, slug__in=sorted(unlocked)).order_by("sort_order", "slug")
    return [
        {"id": tier.slug, "object": "model", "created": int(tier.created_at.timestamp()), "owned_by": "lhama"}
        for tier in tiers
    ]


def api_keys_for_user(*, user) -> list[ApiKey]:
    return list(ApiKey.objects.filter(user=user).order_by("-created_at"))


def tier_choices_for_user(*, user) -> list[tuple[str, str]]:
    """(slug, display name) of the active tiers the user's plan unlocks: a key's possible scope."""
    unlocked = entitlements_for(user=user).tier_slugs
    return list(
        ModelTier.objects.filter(is_active=True, slug__in=sorted(unlocked))
        .order_by("sort_order", "slug")
        .values_list("slug", "display_name")
    )
