"""API keys: create, revoke, authenticate, and the revocation check a running stream makes.

A key is `lhm_XXXXXXXX_<secret>`: the prefix (`lhm_` and 8 random characters) is stored
in clear, shown in lists and finds the row; the secret (32 random bytes, 43 URL-safe
characters) is kept only as a SHA-256 hash and compared in constant time.

Why SHA-256 and not Django's password hashers: those are deliberately slow (PBKDF2 with
1,200,000 iterations: 0.34 s of CPU per check, measured here, see docs/api.md) because
passwords are guessable. A 256-bit random secret is not: nothing can enumerate 2**256
candidates however fast the hash, so a slow hash would only cost every API request a
third of a second of CPU (SHA-256: under a microsecond). GitHub and Stripe keep their
tokens the same way. The stored value names its algorithm (`sha256$<hex>`) so that it
can change later.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.core.cache import cache
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.utils import timezone

from assistant.api.errors import ApiError
from assistant.api.models import ApiKey

PREFIX_LEAD = "lhm_"
PREFIX_RANDOM_CHARS = 8
PREFIX_LENGTH = len(PREFIX_LEAD) + PREFIX_RANDOM_CHARS
SECRET_BYTES = 32
_PREFIX_ALPHABET = string.ascii_letters + string.digits
_HASH_SCHEME = "sha256"
LAST_USED_EVERY = timedelta(minutes=1)
# A running stream re-reads a key's state from the cache at most every
# API_KEY_CHECK_INTERVAL_S; the cache keeps an "active" answer this long before the
# database is read again (a revocation overwrites it at once).
STATE_CACHE_S = 60
REVOKED = "revoked"
ACTIVE = "active"
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class ApiKeyCreated:
    key: ApiKey
    token: str  # the whole key, shown once


@dataclass(frozen=True)
class AuthenticatedKey:
    """What a request learned about its key (no further query needed while it runs)."""

    id: int
    name: str
    prefix: str
    user: object
    tier_slugs: tuple[str, ...]
    expires_at: datetime | None

    def expired(self, now: datetime | None = None) -> bool:
        return self.expires_at is not None and self.expires_at <= (now or timezone.now())


def _hash(secret: str) -> str:
    return f"{_HASH_SCHEME}${hashlib.sha256(secret.encode()).hexdigest()}"


def _state_key(prefix: str) -> str:
    # By the random prefix, not the row's id: ids come back after a database is restored or
    # recreated (tests), a prefix never names another key.
    return f"api:key:{prefix}:state"


def api_key_create(
    *, user, name: str, expires_at: datetime | None = None, tier_slugs: list[str] | tuple[str, ...] = ()
) -> ApiKeyCreated:
    """A new key for `user`; the returned token is the only time the secret exists in clear."""
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH:
        raise ValueError(f"A key needs a name of 1 to {MAX_NAME_LENGTH} characters.")
    if expires_at is not None and expires_at <= timezone.now():
        raise ValueError("A key's expiry must be in the future.")
    secret = secrets.token_urlsafe(SECRET_BYTES)
    for _ in range(5):  # 62**8 prefixes: a collision is rare, and retried
        prefix = PREFIX_LEAD + "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_RANDOM_CHARS))
        try:
            with transaction.atomic():
                key = ApiKey.objects.create(
                    user=user, name=name, prefix=prefix, secret_hash=_hash(secret),
                    tier_slugs=sorted(set(tier_slugs)), expires_at=expires_at,
                )
        except IntegrityError:
            continue
        return ApiKeyCreated(key=key, token=f"{prefix}_{secret}")
    raise RuntimeError("Could not find a free API key prefix.")


def api_key_revoke(*, key: ApiKey) -> bool:
    """Revoke a key (idempotent): refused from the next request on, and running streams
    stop within API_KEY_CHECK_INTERVAL_S. True when this call revoked it."""
    now = timezone.now()
    changed = ApiKey.objects.filter(pk=key.pk, revoked_at__isnull=True).update(revoked_at=now)
    key.revoked_at = key.revoked_at or now
    # After the commit, so a stream never reads "revoked" for a revocation rolled back;
    # a long timeout: the database says the same thing for ever after.
    transaction.on_commit(lambda: cache.set(_state_key(key.prefix), REVOKED, timeout=7 * 24 * 3600))
    return bool(changed)


def api_keys_revoke_for_user(*, user, key_ids) -> int:
    """Revoke several keys of one user (the account page, the admin's action)."""
    keys = list(ApiKey.objects.filter(user=user, pk__in=list(key_ids), revoked_at__isnull=True))
    return sum(api_key_revoke(key=key) for key in keys)


def _parse(token: str) -> tuple[str, str] | None:
    if not token.startswith(PREFIX_LEAD) or len(token) <= PREFIX_LENGTH + 1 or token[PREFIX_LENGTH] != "_":
        return None
    return token[:PREFIX_LENGTH], token[PREFIX_LENGTH + 1:]


def api_key_authenticate(*, authorization: str) -> AuthenticatedKey:
    """The key of an `Authorization: Bearer <key>` header; ApiError 401 otherwise."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if not authorization:
        raise ApiError.unauthorized(
            "You didn't provide an API key. Send it as 'Authorization: Bearer <key>'.", code="missing_api_key"
        )
    parsed = _parse(token.strip()) if scheme.lower() == "bearer" else None
    if parsed is None:
        raise ApiError.unauthorized("Incorrect API key provided.", code="invalid_api_key")
    prefix, secret = parsed
    key = ApiKey.objects.select_related("user").filter(prefix=prefix).first()
    expected = key.secret_hash if key is not None else _hash("")
    if not hmac.compare_digest(expected.encode(), _hash(secret).encode()) or key is None:
        raise ApiError.unauthorized("Incorrect API key provided.", code="invalid_api_key")
    now = timezone.now()
    if key.revoked_at is not None:
        raise ApiError.unauthorized("This API key has been revoked.", code="api_key_revoked")
    if key.is_expired(now):
        raise ApiError.unauthorized("This API key has expired.", code="api_key_expired")
    if not key.user.is_active:
        raise ApiError.unauthorized("This API key's account is disabled.", code="account_disabled")
    if key.last_used_at is None or now - key.last_used_at >= LAST_USED_EVERY:
        # One conditional UPDATE a minute at most, whatever the number of requests.
        ApiKey.objects.filter(pk=key.pk).filter(
            Q(last_used_at__isnull=True) | Q(last_used_at__lt=now - LAST_USED_EVERY)
        ).update(last_used_at=now)
    return AuthenticatedKey(
        id=key.pk, name=key.name, prefix=key.prefix, user=key.user, tier_slugs=tuple(key.tier_slugs or ()),
        expires_at=key.expires_at,
    )


def api_key_is_revoked(*, prefix: str) -> bool:
    """Whether the key with this prefix was revoked, through the cache (one database read a
    minute per key)."""
    state = cache.get(_state_key(prefix))
    if state is None:
        revoked = ApiKey.objects.filter(prefix=prefix, revoked_at__isnull=False).exists()
        state = REVOKED if revoked else ACTIVE
        cache.set(_state_key(prefix), state, timeout=None if revoked else STATE_CACHE_S)
    return state == REVOKED
