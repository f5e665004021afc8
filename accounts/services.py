"""Writes and whole-account operations for users.

Every app may ship an ``exports`` module with ``user_export(*, user) -> dict`` (its
part of "export all my data") and optionally ``user_before_delete(*, user)`` (clean
up outside the database, e.g. cancel a Stripe subscription) — so the account page
never needs to know the other apps' models.
"""

from __future__ import annotations

import logging
from typing import Any

from django.db import transaction
from django.utils import timezone

from accounts.models import User
from config.appmodules import app_modules

logger = logging.getLogger(__name__)
EXPORT_FORMAT_VERSION = 1


def user_data_export(*, user: User) -> dict:
    data: dict[str, Any] = {
        "format_version": EXPORT_FORMAT_VERSION,
        "exported_at": timezone.now().isoformat(),
    }
    for label, module in app_modules("exports"):
        if hasattr(module, "user_export"):
            data[label] = module.user_export(user=user)
    return data


def user_profile_update(
    *, user: User, display_name: str, custom_instructions: str, is_adult: bool | None
) -> User:
    user.display_name = display_name.strip()
    user.custom_instructions = custom_instructions.strip()
    user.is_adult = is_adult
    user.full_clean(exclude=["password"])
    user.save(update_fields=["display_name", "custom_instructions", "is_adult"])
    return user


def user_delete(*, user: User) -> None:
    """Delete the account and everything that belongs to it (cascades)."""
    for _label, module in app_modules("exports"):
        if hasattr(module, "user_before_delete"):
            module.user_before_delete(user=user)
    with transaction.atomic():
        user_id = user.pk
        user.delete()
    logger.info("deleted user %s and their data", user_id)
