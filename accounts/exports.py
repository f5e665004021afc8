"""What the accounts app contributes to a user's data export."""

from __future__ import annotations

from accounts.models import User


def user_export(*, user: User) -> dict:
    return {
        "email": user.email,
        "display_name": user.display_name,
        "custom_instructions": user.custom_instructions,
        "is_adult": user.is_adult,
        "date_joined": user.date_joined.isoformat(),
        "last_login": user.last_login.isoformat() if user.last_login else None,
    }
