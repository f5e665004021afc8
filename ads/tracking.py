"""Tracking primitives: signed, expiring click tokens, the tracking URLs of an ad
payload, viewer identity, the client's hashed network, rate limits, and bot checks.

A click token carries only the impression id and creative id, signed with Django's
signing (HMAC with SECRET_KEY and a salt of its own) and a timestamp. The redirect
target is never in the token: the click view looks the creative's approved landing
URL up on the server.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from datetime import UTC, datetime

from crawlerdetect import CrawlerDetect
from django.conf import settings
from django.core import signing
from django.http import HttpRequest
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac
from django_ratelimit.core import is_ratelimited

CLICK_SALT = "lhama.ads.click"
CLIENT_SALT = "lhama.ads.client"


def click_token(*, impression_id: str, creative_id: int) -> str:
    return signing.dumps({"i": str(impression_id), "c": int(creative_id)}, salt=CLICK_SALT, compress=False)


@dataclass(frozen=True)
class ClickToken:
    impression_id: str | None
    creative_id: int | None
    error: str  # "" when valid, else "tampered" or "expired"


def click_token_read(token: str, *, now: datetime | None = None) -> ClickToken:
    """Verify the signature first (anything not ours is "tampered"), then the age at
    `now` (the token's timestamp, "payload:timestamp:signature", is signed with it)."""
    try:
        payload = signing.loads(token, salt=CLICK_SALT, max_age=None)
        issued = signing.b62_decode(token.rsplit(":", 2)[-2])
    except (signing.BadSignature, ValueError, IndexError):
        return ClickToken(None, None, "tampered")
    if not isinstance(payload, dict) or not isinstance(payload.get("i"), str) or not isinstance(payload.get("c"), int):
        return ClickToken(None, None, "tampered")
    age = ((now or timezone.now()) - datetime.fromtimestamp(issued, tz=UTC)).total_seconds()
    if age > settings.ADS_CLICK_MAX_AGE_S:
        return ClickToken(payload["i"], payload["c"], "expired")
    return ClickToken(payload["i"], payload["c"], "")


def ad_urls(*, impression_id: str, creative_id: int) -> dict[str, str]:
    iid = str(impression_id)
    return {
        "click_url": reverse("ads:click", args=[click_token(impression_id=iid, creative_id=creative_id)]),
        "ack_url": reverse("ads:impression_ack", args=[iid]),
        "feedback_url": reverse("ads:impression_feedback", args=[iid]),
        "dismiss_url": reverse("ads:impression_dismiss", args=[iid]),
    }


@dataclass(frozen=True)
class Viewer:
    """Who sent a tracking request: the account, the session, the keyed hash of the
    client's network, and the User-Agent."""

    user_id: int | None
    session_key: str
    client_hash: str = ""
    user_agent: str = ""

    @property
    def key(self) -> str:
        return viewer_key(user_id=self.user_id, session_key=self.session_key)


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


def client_network(ip: str) -> str:
    """What one client is, as an address: IPv4 itself, IPv6 its /64 (one subscriber's
    prefix, which a client can rotate inside at will). "" when not an address."""
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return ""
    if address.version == 6:
        return str(ipaddress.ip_network(f"{address}/64", strict=False).network_address) + "/64"
    return str(address)


def client_hash(ip: str) -> str:
    """A keyed hash (HMAC-SHA256 with SECRET_KEY) of the client's network: stable enough
    to count per address, and no address is ever stored."""
    network = client_network(ip)
    if not network:
        return ""
    return salted_hmac(CLIENT_SALT, network, algorithm="sha256").hexdigest()


def rate_limited(request: HttpRequest, *, group: str, viewer: Viewer) -> bool:
    """Count this request against the per-viewer and the per-network limits
    (django-ratelimit on the default cache: Redis when configured); True when it goes
    over either. A request without a viewer or an address is limited by the other."""
    over = False
    for scope, value, rate in (
        ("viewer", viewer.key, settings.ADS_RATE_PER_VIEWER),
        ("ip", viewer.client_hash, settings.ADS_RATE_PER_IP),
    ):
        if value and is_ratelimited(
            request, group=f"ads.{group}.{scope}", key=lambda _group, _request, v=value: v, rate=rate, increment=True
        ):
            over = True
    return over
