"""Quotas: reserve a run's worst case before it starts, settle with the real usage after.

Three limits are checked together, atomically, per subject ("user:<pk>" or
"guest:<session key>"):

- requests per minute: a fixed window per UTC minute (resets at the next minute);
- concurrent runs: reservations neither settled, released nor expired;
- daily tokens: tokens settled today + tokens reserved today + this request's worst
  case must fit the plan's daily budget; the day is the UTC day (resets at midnight).

With REDIS_URL set the check-and-reserve is one Lua script (atomic in Redis, shared by
every process). Otherwise the subject's row for the day is locked (select_for_update;
on SQLite the IMMEDIATE transaction serialises writers) while it checks and reserves.
A reservation never settled (its process died) stops counting after
BILLING_RESERVATION_TTL_S. All functions are sync: call them through
sync_to_async / database_sync_to_async from async code.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q, Sum
from django.urls import reverse
from django.utils import timezone

from billing.entitlements import GUEST_PLAN_SLUG, Entitlements
from billing.models import QuotaReservation, QuotaUsage

KEY_TTL_S = 2 * 24 * 3600


@dataclass(frozen=True)
class Reservation:
    id: str
    subject: str
    day: date
    tokens: int


@dataclass(frozen=True)
class QuotaUsageToday:
    tokens_used: int
    tokens_reserved: int
    active_runs: int
    requests_this_minute: int
    daily_tokens: int
    requests_per_minute: int
    concurrent_runs: int
    reset_at: datetime

    @property
    def tokens_counted(self) -> int:
        return self.tokens_used + self.tokens_reserved

    @property
    def tokens_left(self) -> int:
        return max(0, self.daily_tokens - self.tokens_used - self.tokens_reserved)

    @property
    def percent_used(self) -> int:
        if self.daily_tokens <= 0:
            return 100
        return min(100, round(100 * (self.tokens_used + self.tokens_reserved) / self.daily_tokens))


class QuotaExceeded(Exception):
    def __init__(self, *, code: str, message: str, reset_at: datetime, upgrade_url: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.reset_at = reset_at
        self.upgrade_url = upgrade_url


def quota_subject_for(*, user_id: int | None, session_key: str = "") -> str:
    """The one definition of a quota subject: "user:<pk>" when signed in, else "guest:<session key>"."""
    return f"user:{user_id}" if user_id else f"guest:{session_key}"


def _day_reset(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time.min, tzinfo=UTC)


def _minute_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def _exceeded(code: str, *, reset_at: datetime, entitlements: Entitlements) -> QuotaExceeded:
    # A guest has no plan to upgrade: their way up is a free account.
    guest = entitlements.plan_slug == GUEST_PLAN_SLUG
    allows = "without an account you get" if guest else "your plan allows"
    if code == "rate_limited":
        message = f"Too many messages: {allows} {entitlements.requests_per_minute} a minute."
    elif code == "concurrent_runs":
        n = entitlements.concurrent_runs
        message = f"{allows.capitalize()} {n} answer{'s' if n != 1 else ''} at a time: wait for the current one to finish."
    else:
        message = f"You have used today's {entitlements.daily_tokens:,} tokens."
    if guest:
        message += " Sign up for free to get more."
    upgrade_url = reverse("account_signup") if guest else reverse("billing:pricing")
    return QuotaExceeded(code=code, message=message, reset_at=reset_at, upgrade_url=upgrade_url)


def quota_reserve(
    *, subject: str, entitlements: Entitlements, tokens: int, now: datetime | None = None
) -> Reservation:
    """Reserve a run's worst case (prompt + max output tokens); raises QuotaExceeded."""
    if tokens <= 0:
        raise ValueError("A reservation needs a positive number of tokens.")
    now = now or timezone.now()
    if settings.REDIS_URL:
        return _redis_reserve(subject=subject, entitlements=entitlements, tokens=tokens, now=now)
    return _db_reserve(subject=subject, entitlements=entitlements, tokens=tokens, now=now)


def quota_settle(*, reservation: Reservation, used_tokens: int) -> None:
    """Replace the worst case by the real usage and free the run's slot. Idempotent."""
    used_tokens = max(0, int(used_tokens))
    if settings.REDIS_URL:
        _redis_settle(reservation=reservation, used_tokens=used_tokens)
    else:
        _db_settle(reservation=reservation, used_tokens=used_tokens)


def quota_release(*, reservation: Reservation) -> None:
    """The run produced nothing: give the whole reservation back."""
    quota_settle(reservation=reservation, used_tokens=0)


def quota_usage_today(*, subject: str, entitlements: Entitlements, now: datetime | None = None) -> QuotaUsageToday:
    now = now or timezone.now()
    if settings.REDIS_URL:
        used, reserved, active, minute = _redis_usage(subject=subject, now=now)
    else:
        used, reserved, active, minute = _db_usage(subject=subject, now=now)
    return QuotaUsageToday(
        tokens_used=used,
        tokens_reserved=reserved,
        active_runs=active,
        requests_this_minute=minute,
        daily_tokens=entitlements.daily_tokens,
        requests_per_minute=entitlements.requests_per_minute,
        concurrent_runs=entitlements.concurrent_runs,
        reset_at=_day_reset(now),
    )


# --- database mode -----------------------------------------------------------------


def _active_reservations(*, subject: str, now: datetime):
    return QuotaReservation.objects.filter(usage__subject=subject, settled_at__isnull=True, expires_at__gt=now)


def _db_reserve(*, subject: str, entitlements: Entitlements, tokens: int, now: datetime) -> Reservation:
    day = now.astimezone(UTC).date()
    minute = _minute_start(now)
    with transaction.atomic():
        # One locked read of the day's row (FOR UPDATE on the get, and a row this
        # transaction creates is ours already) instead of a plain read and a locked one.
        usage, _ = QuotaUsage.objects.select_for_update().get_or_create(subject=subject, day=day)
        minute_requests = usage.minute_requests if usage.minute_start == minute else 0
        if minute_requests >= entitlements.requests_per_minute:
            raise _exceeded("rate_limited", reset_at=minute + timedelta(minutes=1), entitlements=entitlements)
        # Runs in flight (any day) and today's reserved tokens in one query, under the same lock.
        active = _active_reservations(subject=subject, now=now).aggregate(
            n=Count("id"), first_expiry=Min("expires_at"), reserved=Sum("tokens", filter=Q(usage=usage))
        )
        if active["n"] >= entitlements.concurrent_runs:
            reset_at = active["first_expiry"] or now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S)
            raise _exceeded("concurrent_runs", reset_at=reset_at, entitlements=entitlements)
        reserved = active["reserved"] or 0
        if usage.tokens_used + reserved + tokens > entitlements.daily_tokens:
            raise _exceeded("daily_tokens", reset_at=_day_reset(now), entitlements=entitlements)
        reservation = QuotaReservation.objects.create(
            usage=usage,
            tokens=tokens,
            created_at=now,
            expires_at=now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S),
        )
        usage.minute_start = minute
        usage.minute_requests = minute_requests + 1
        usage.requests += 1
        usage.save(update_fields=["minute_start", "minute_requests", "requests"])
    return Reservation(id=str(reservation.pk), subject=subject, day=day, tokens=tokens)


def _db_settle(*, reservation: Reservation, used_tokens: int) -> None:
    # Conditional UPDATEs (each locks its row, reservation first as before): the first
    # settle wins, a repeated one changes nothing; two writes instead of four queries.
    with transaction.atomic():
        settled = QuotaReservation.objects.filter(pk=reservation.id, settled_at__isnull=True).update(
            settled_at=timezone.now()
        )
        if not settled:
            return
        QuotaUsage.objects.filter(reservations__pk=reservation.id).update(tokens_used=F("tokens_used") + used_tokens)


def _db_usage(*, subject: str, now: datetime) -> tuple[int, int, int, int]:
    day = now.astimezone(UTC).date()
    usage = QuotaUsage.objects.filter(subject=subject, day=day).first()
    active = _active_reservations(subject=subject, now=now)
    n_active = active.count()
    if usage is None:
        return 0, 0, n_active, 0
    reserved = active.filter(usage=usage).aggregate(t=Sum("tokens"))["t"] or 0
    minute = usage.minute_requests if usage.minute_start == _minute_start(now) else 0
    return usage.tokens_used, reserved, n_active, minute


def quota_rows_prune(*, now: datetime | None = None) -> int:
    """Drop usage rows (and their reservations) older than a week; Redis keys expire on their own."""
    now = now or timezone.now()
    deleted, _ = QuotaUsage.objects.filter(day__lt=now.astimezone(UTC).date() - timedelta(days=7)).delete()
    return deleted


# --- Redis mode ----------------------------------------------------------------------
# Hand-written Lua because the three limits must be checked and taken in one atomic
# step shared by every process; no maintained library does this combination.

_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local entries = redis.call('HGETALL', KEYS[2])
local active, reserved, earliest = 0, 0, -1
for i = 1, #entries, 2 do
  local t, exp, day = string.match(entries[i + 1], '^(%d+)|(%d+)|(.+)$')
  exp = tonumber(exp)
  if exp <= now then
    redis.call('HDEL', KEYS[2], entries[i])
  else
    active = active + 1
    if day == ARGV[8] then reserved = reserved + tonumber(t) end
    if earliest < 0 or exp < earliest then earliest = exp end
  end
end
if tonumber(redis.call('GET', KEYS[3]) or '0') >= tonumber(ARGV[4]) then return {'rate_limited', 0} end
if active >= tonumber(ARGV[5]) then return {'concurrent_runs', earliest} end
local used = tonumber(redis.call('HGET', KEYS[1], 'used') or '0')
if used + reserved + tokens > tonumber(ARGV[3]) then return {'daily_tokens', 0} end
redis.call('HSET', KEYS[2], ARGV[6], ARGV[2] .. '|' .. ARGV[7] .. '|' .. ARGV[8])
redis.call('EXPIRE', KEYS[2], ARGV[9])
redis.call('INCR', KEYS[3])
redis.call('EXPIRE', KEYS[3], 120)
redis.call('HINCRBY', KEYS[1], 'requests', 1)
redis.call('EXPIRE', KEYS[1], ARGV[9])
return {'ok', 0}
"""

_SETTLE_LUA = """
if redis.call('SADD', KEYS[3], ARGV[1]) == 0 then return 0 end
redis.call('EXPIRE', KEYS[3], ARGV[3])
redis.call('HDEL', KEYS[2], ARGV[1])
if tonumber(ARGV[2]) > 0 then
  redis.call('HINCRBY', KEYS[1], 'used', ARGV[2])
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
return 1
"""


@cache
def _redis(url: str) -> redis.Redis:
    return redis.Redis.from_url(url)


@cache
def _scripts(url: str):
    client = _redis(url)
    return client.register_script(_RESERVE_LUA), client.register_script(_SETTLE_LUA)


def _key_base(subject: str) -> str:
    # REDIS_PREFIX keeps deployments that share one Redis apart (as it does for the cache
    # and the channel layer); the hash tag puts one subject's keys on one cluster slot.
    return f"{settings.REDIS_PREFIX}:quota:{{{subject}}}"


def _keys(subject: str, day: date) -> tuple[str, str, str]:
    base = _key_base(subject)
    return f"{base}:day:{day.isoformat()}", f"{base}:reservations", f"{base}:settled"


def _minute_key(subject: str, minute: datetime) -> str:
    return f"{_key_base(subject)}:minute:{minute:%Y%m%d%H%M}"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _redis_reserve(*, subject: str, entitlements: Entitlements, tokens: int, now: datetime) -> Reservation:
    reserve, _ = _scripts(settings.REDIS_URL)
    day = now.astimezone(UTC).date()
    minute = _minute_start(now)
    day_key, res_key, _settled = _keys(subject, day)
    rid = uuid.uuid4().hex
    expires = now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S)
    outcome, earliest = reserve(
        keys=[day_key, res_key, _minute_key(subject, minute)],
        args=[
            _ms(now),
            tokens,
            entitlements.daily_tokens,
            entitlements.requests_per_minute,
            entitlements.concurrent_runs,
            rid,
            _ms(expires),
            day.isoformat(),
            KEY_TTL_S,
        ],
    )
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    if outcome == "rate_limited":
        raise _exceeded(outcome, reset_at=minute + timedelta(minutes=1), entitlements=entitlements)
    if outcome == "concurrent_runs":
        reset_at = (
            datetime.fromtimestamp(int(earliest) / 1000, tz=UTC)
            if int(earliest) > 0
            else now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S)
        )
        raise _exceeded(outcome, reset_at=reset_at, entitlements=entitlements)
    if outcome == "daily_tokens":
        raise _exceeded(outcome, reset_at=_day_reset(now), entitlements=entitlements)
    return Reservation(id=rid, subject=subject, day=day, tokens=tokens)


def _redis_settle(*, reservation: Reservation, used_tokens: int) -> None:
    _, settle = _scripts(settings.REDIS_URL)
    day_key, res_key, settled_key = _keys(reservation.subject, reservation.day)
    settle(keys=[day_key, res_key, settled_key], args=[reservation.id, used_tokens, KEY_TTL_S])


def _redis_usage(*, subject: str, now: datetime) -> tuple[int, int, int, int]:
    client = _redis(settings.REDIS_URL)
    day = now.astimezone(UTC).date()
    day_key, res_key, _settled = _keys(subject, day)
    used = int(client.hget(day_key, "used") or 0)
    active = reserved = 0
    now_ms = _ms(now)
    for value in client.hgetall(res_key).values():
        text = value.decode() if isinstance(value, bytes) else value
        tokens, expires, res_day = text.split("|", 2)
        if int(expires) > now_ms:
            active += 1
            if res_day == day.isoformat():
                reserved += int(tokens)
    minute = int(client.get(_minute_key(subject, _minute_start(now))) or 0)
    return used, reserved, active, minute
