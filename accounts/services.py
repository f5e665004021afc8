"""Writes and whole-account operations for users.

Every app may ship an ``exports`` module with ``user_export(*, user) -> dict`` (its
part of "export all my data") and optionally ``user_before_delete(*, user)`` (clean
up outside the database, e.g. cancel a Stripe subscription; it may fail) and
``user_on_delete(*, user)`` (database work in the deletion's own transaction, e.g.
anonymising what must outlive the account) — so the account page never needs to know
the other apps' models.
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


class UserDeleteFailed(Exception):
    """A step before the deletion failed (`step`: the app whose clean-up it was); nothing was deleted."""

    def __init__(self, step: str) -> None:
        super().__init__(step)
        self.step = step


def user_age_confirmation_clear(*, user_id: int) -> bool:
    """Set a confirmed "18 or older" answer back to not answered, so that it is asked
    again: the person said in a conversation that they are under 18. True when it
    changed."""
    return bool(User.objects.filter(pk=user_id, is_adult=True).update(is_adult=None))


def user_delete(*, user: User) -> None:
    """Delete the account and everything that belongs to it (cascades).

    Cancel first, then delete: every app's `user_before_delete` runs before anything is
    deleted (billing cancels live Stripe subscriptions there), and if one fails — Stripe
    down, a network error — nothing is deleted and UserDeleteFailed says which step
    (subscriptions cancelled before it stay cancelled: the person asked for that). The
    other way round (delete, queue the cancellation) would leave a deleted account that
    Stripe keeps charging for as long as the retries fail, with nobody left to tell.
    Then one transaction: every app's `user_on_delete` (ads anonymises the account's ad
    events) and the deletion."""
    for label, module in app_modules("exports"):
        if hasattr(module, "user_before_delete"):
            try:
                module.user_before_delete(user=user)
            except Exception as exc:
                logger.exception("deleting user %s: the %s clean-up failed, nothing was deleted", user.pk, label)
                raise UserDeleteFailed(label) from exc
    with transaction.atomic():
        user_id = user.pk
        for _label, module in app_modules("exports"):
            if hasattr(module, "user_on_delete"):
                module.user_on_delete(user=user)
        user.delete()
    logger.info("deleted user %s and their data", user_id)
