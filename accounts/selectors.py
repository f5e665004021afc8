"""Reads about accounts and their sessions."""

from __future__ import annotations

from importlib import import_module

from django.conf import settings
from django.contrib.auth import SESSION_KEY, get_user
from django.http import HttpRequest


def session_is_current(*, session_key: str, user_id: int | None) -> bool:
    """Whether a session still stands as it did when a long-lived connection (the chat
    socket) was opened with it: it exists and has not expired, and for a signed-in person
    it still names them with the auth hash of their current password, exactly as Django
    checks it on every request (django.contrib.auth.get_user, SECRET_KEY_FALLBACKS
    included). Logout, a password change elsewhere and account deletion all end it."""
    if not session_key:
        return False
    store = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    signed_in = SESSION_KEY in store  # loads it once; a missing or expired session forgets its key
    if store.session_key is None:
        return False
    if user_id is None:
        return not signed_in
    request = HttpRequest()
    request.session = store
    user = get_user(request)
    return bool(user.is_authenticated and user.pk == user_id)
