"""Guests keep their conversations when they sign up or log in; a person's chat sockets
hear when their sessions end.

Django rotates the session key on login (and allauth logs a new account in), so the
guest's original key is kept inside the session data under GUEST_KEY (the chat socket
writes it once, when a guest connects); session data survives the rotation.

Logout, a password change, set or reset, and the deletion of the account send
`session.check` to the person's sockets (assistant.consumers), which close with 4001
where their session has ended. A socket also re-reads its session every few seconds on
its own, for whatever ends a session without a signal (a password set in the admin).
"""

from __future__ import annotations

import logging

from allauth.account.signals import password_changed, password_reset, password_set, user_logged_in, user_signed_up
from django.conf import settings
from django.contrib.auth.signals import user_logged_out
from django.db.models.signals import post_delete
from django.dispatch import receiver

from ads.services.delivery import impressions_claim_for_user
from ads.signals import impression_dismissed
from assistant import events
from assistant.services import conversation_ads_dismissed_set, conversations_claim_for_user

logger = logging.getLogger(__name__)
GUEST_KEY = "lhama_guest_session_key"


def _claim(request, user) -> None:
    session = getattr(request, "session", None)
    if session is None or user is None:
        return
    keys = {session.get(GUEST_KEY, "")}
    if session.session_key:
        keys.add(session.session_key)  # a login that did not rotate the key
    moved = sum(conversations_claim_for_user(session_key=key, user=user) for key in keys if key)
    for key in keys - {""}:  # the cards the guest was shown: their acknowledgement and click still count
        impressions_claim_for_user(session_key=key, user_id=user.pk)
    if GUEST_KEY in session:
        del session[GUEST_KEY]
    if moved:
        logger.info("moved %d guest conversation(s) to user %s", moved, user.pk)


@receiver(user_logged_in, dispatch_uid="assistant_claim_on_login")
def claim_on_login(sender, request, user, **kwargs) -> None:
    _claim(request, user)


@receiver(user_signed_up, dispatch_uid="assistant_claim_on_signup")
def claim_on_signup(sender, request, user, **kwargs) -> None:
    _claim(request, user)


@receiver(impression_dismissed, dispatch_uid="assistant_ads_dismissed")
def ads_dismissed(sender, conversation_id, user_id, session_key, **kwargs) -> None:
    """A card was dismissed: no more ads in its conversation (ads tells us by signal)."""
    conversation_ads_dismissed_set(conversation_id=conversation_id, user_id=user_id, session_key=session_key)


@receiver(user_logged_out, dispatch_uid="assistant_sockets_on_logout")
def sockets_on_logout(sender, request, user, **kwargs) -> None:
    if user is None or user.pk is None:  # nobody signed in, or an account just deleted (it has told them)
        return
    session_key = getattr(getattr(request, "session", None), "session_key", None) or ""
    events.event_send_on_commit(events.session_check(user_id=user.pk, ended_session_key=session_key))


@receiver(password_changed, dispatch_uid="assistant_sockets_on_password_changed")
@receiver(password_set, dispatch_uid="assistant_sockets_on_password_set")
@receiver(password_reset, dispatch_uid="assistant_sockets_on_password_reset")
def sockets_on_password_change(sender, request, user, **kwargs) -> None:
    events.event_send_on_commit(events.session_check(user_id=user.pk))


@receiver(post_delete, sender=settings.AUTH_USER_MODEL, dispatch_uid="assistant_sockets_on_account_deleted")
def sockets_on_account_deleted(sender, instance, **kwargs) -> None:
    events.event_send_on_commit(events.session_check(user_id=instance.pk))
