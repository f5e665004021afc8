"""Tracking primitives: signed, expiring click tokens, the tracking URLs of an ad
payload, viewer identity, and invalid-traffic checks.

A click token carries only the impression id and creative id, signed with Django's
signing (HMAC with SECRET_KEY and a salt of its own) and a timestamp. The redirect
target is never in the token: the click view looks the creative's approved landing
URL up on the server.
"""

from __future__ import annotations

from dataclasses import dataclass

from crawlerdetect import CrawlerDetect
from django.conf import settings
from django.core import signing
from django.urls import reverse

CLICK_SALT = "lhama.ads.click"


def click_token(*, impression_id: str, creative_id: int) -> str:
    return signing.dumps({"i": str(impression_id), "c": int(creative_id)}, salt=CLICK_SALT, compress=False)


@dataclass(frozen=True)
class ClickToken:
    impression_id: str | None
    creative_id: int | None
    error: str  # "" when valid, else "tampered" or "expired"


def click_token_read(token: str) -> ClickToken:
    """Verify the signature first (anything not ours is "tampered"), then the age."""
    try:
        payload = signing.loads(token, salt=CLICK_SALT, max_age=None)
    except signing.BadSignature:
        return ClickToken(None, None, "tampered")
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), str) or not isinstance(payload.get("c"), int):
        return ClickToken(None, None, "tampered")
    try:
        signing.loads(token, salt=CLICK_SALT, max_age=settings.ADS_CLICK_MAX_AGE_S)
    except signing.SignatureExpired:
        return ClickToken(payload["i"], payload["c"], "expired")
    except signing.BadSignature:
        return ClickToken(None, None, "tampered")
    return ClickToken(payload["i"], payload["c"], "")


def ad_urls(*, impression_id: str, creative_id: int) -> dict[str, str]:
    iid = str(impression_id)
    return {
        "click_url": reverse("ads:click", args=[click_token(impression_id=iid, creative_id=creative_id)]),
        "ack_url": reverse("ads:impression_ack", args=[iid]),
        "feedback_url": reverse("ads:impression_feedback", args=[iid]),
        "dismiss_url": reverse("ads:impression_dismiss", args=[iid]),
    }


def viewer_key(*, user_id: int | None, session_key: str) -> str:
    """Frequency caps and acknowledgements are per viewer: the user when signed in,
    else the session."""
    if user_id:
        return f"user:{user_id}"
    if session_key:
        return f"session:{session_key}"
    return ""


def is_bot(user_agent: str) -> bool:
    """Known crawlers (crawlerdetect's maintained list); an empty User-Agent counts too.
    A fresh detector per call (0.5 ms): it keeps per-call state, so it is not shared
    between threads."""
    if not (user_agent or "").strip():
        return True
    return bool(CrawlerDetect().isCrawler(user_agent))
