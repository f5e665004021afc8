"""Quotas: reserve a run's worst case before it starts, settle with the real usage after.

Three limits are checked together, atomically, per subject ("user:<pk>" or
"guest:<session key>"):

- requests per minute: a fixed window per UTC minute (resets at the next minute);
- concurrent runs: reservations neither settled, released nor expired;
- daily tokens: tokens settled today + tokens reserved today + this request's worst
  case must fit the plan's daily budget; the day is the UTC day (resets at midnight);
- tokens per minute (only where a caller passes one: the API, billing.api_limits): the
  worst cases reserved in this UTC minute, less what their settles gave back, plus this
  request's must fit (resets at the next minute).

A guest is counted three times over, in the same atomic step: against their session,
against their network (the client address, kept only as a keyed hash, see
`guest_network_hash`; BILLING_GUEST_ADDRESS_*), and against every guest together
(BILLING_GUEST_TOTAL_DAILY_TOKENS); and a network starts at most
BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR new guest sessions an hour. A guest's subject
names both: "guest:<session key>@<network hash>" (quota_subject_for). Each of these is
a *bucket*; a reservation takes one in every bucket of its subject, or none.

With REDIS_URL set the check-and-reserve is one Lua script (atomic in Redis, shared by
every process). Otherwise the buckets' rows for the day are locked, always in subject
order (select_for_update; on SQLite the IMMEDIATE transaction serialises writers) while
it checks and reserves. A reservation never settled (its process died) stops counting
after BILLING_RESERVATION_TTL_S. All functions are sync: call them through
sync_to_async / database_sync_to_async from async code.
"""

from __future__ import annotations

import ipaddress
import uuid
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import cache

import redis
from django.conf import settings
from django.db import transaction
from django.db.models import Count, F, Min, Q, Sum
from django.db.models.functions import Greatest
from django.urls import reverse
from django.utils import timezone
from django.utils.crypto import salted_hmac

from billing import metrics as billing_metrics
from billing.entitlements import GUEST_PLAN_SLUG, Entitlements
from billing.models import QuotaReservation, QuotaUsage

KEY_TTL_S = 2 * 24 * 3600

GUEST_PREFIX = "guest:"
NETWORK_PREFIX = "guestnet:"  # a guest network's bucket
ALL_GUESTS = "guests"  # the bucket of every guest together
_SEEN_PREFIX = "guestseen:"  # database mode: a guest session first seen on a network (its minute_start)
_NETWORK_SALT = "lhama.billing.guest-network"
_NO_LIMIT = 2**31 - 1
NEW_SESSION_WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Reservation:
    id: str
    subject: str
    day: date
    tokens: int
    # Database mode: the reservation rows of the subject's other buckets (a guest's network
    # and all guests); Redis keeps one id in every bucket.
    parts: tuple[str, ...] = ()
    # The UTC minute it was taken in, and the subject's own counts for that minute with it
    # included (requests, tokens): what rate-limit headers report.
    minute: datetime | None = None
    minute_requests: int = 0
    minute_tokens: int = 0


@dataclass(frozen=True)
class _Bucket:
    subject: str
    scope: str  # "own" (the person or session), "network" or "guests"
    daily_tokens: int
    requests_per_minute: int
    concurrent_runs: int
    tokens_per_minute: int = _NO_LIMIT


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


def quota_subject_for(
    *, user_id: int | None, session_key: str = "", client_address: str = "", now: datetime | None = None
) -> str:
    """The one definition of a quota subject: "user:<pk>" when signed in, else
    "guest:<session key>", followed by "@<network hash>" when the guest's address is known."""
    if user_id:
        return f"user:{user_id}"
    network = guest_network_hash(address=client_address, now=now)
    return f"{GUEST_PREFIX}{session_key}@{network}" if network else f"{GUEST_PREFIX}{session_key}"


def guest_network_hash(*, address: str, now: datetime | None = None) -> str:
    """How a guest's address is kept: never as such, only as this keyed hash of its network
    (the IPv4 address, or the IPv6 /64 a single household or server gets), HMAC-SHA256
    with SECRET_KEY, salted with the UTC day and cut to 128 bits. The same network hashes
    alike all day and differently the next. "" for no address (or not an IP address)."""
    try:
        ip = ipaddress.ip_address((address or "").strip())
    except ValueError:
        return ""
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    network = str(ip) if ip.version == 4 else str(ipaddress.ip_network(f"{ip}/64", strict=False))
    day = (now or timezone.now()).astimezone(UTC).date().isoformat()
    return salted_hmac(f"{_NETWORK_SALT}:{day}", network, algorithm="sha256").hexdigest()[:32]


def _buckets(
    subject: str, entitlements: Entitlements | None = None, tokens_per_minute: int | None = None
) -> tuple[list[_Bucket], str]:
    """The buckets a subject's reservation takes, in subject order (the order rows are
    locked in), and the guest's network hash ("" for none). Without entitlements the
    limits are zeros: enough to name the keys (settle, usage). A tokens-per-minute limit
    applies to the subject's own bucket only."""
    own = subject
    network = ""
    if subject.startswith(GUEST_PREFIX):
        own, _, network = subject.partition("@")
    ent = entitlements
    buckets = [
        _Bucket(
            own, "own",
            ent.daily_tokens if ent else 0, ent.requests_per_minute if ent else 0, ent.concurrent_runs if ent else 0,
            _NO_LIMIT if tokens_per_minute is None else tokens_per_minute,
        )
    ]
    if own.startswith(GUEST_PREFIX):
        if network:
            buckets.append(_Bucket(
                f"{NETWORK_PREFIX}{network}", "network", settings.BILLING_GUEST_ADDRESS_DAILY_TOKENS,
                settings.BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE, settings.BILLING_GUEST_ADDRESS_CONCURRENT_RUNS,
            ))
        buckets.append(_Bucket(ALL_GUESTS, "guests", settings.BILLING_GUEST_TOTAL_DAILY_TOKENS, _NO_LIMIT, _NO_LIMIT))
    return sorted(buckets, key=lambda b: b.subject), network


def _day_reset(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date() + timedelta(days=1), time.min, tzinfo=UTC)


def _minute_start(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0)


def _exceeded(
    code: str, *, reset_at: datetime, entitlements: Entitlements, bucket: _Bucket | None = None
) -> QuotaExceeded:
    if bucket is not None and bucket.scope != "own":
        return _guests_exceeded(code, reset_at=reset_at, bucket=bucket)
    # A guest has no plan to upgrade: their way up is a free account.
    guest = entitlements.plan_slug == GUEST_PLAN_SLUG
    allows = "without an account you get" if guest else "your plan allows"
    if code == "rate_limited":
        message = f"Too many messages: {allows} {entitlements.requests_per_minute} a minute."
    elif code == "concurrent_runs":
        n = entitlements.concurrent_runs
        message = f"{allows.capitalize()} {n} answer{'s' if n != 1 else ''} at a time: wait for the current one to finish."
    elif code == "tokens_per_minute":
        n = bucket.tokens_per_minute if bucket is not None else 0
        message = f"Too many tokens this minute: {allows} {n:,} a minute."
    else:
        message = f"You have used today's {entitlements.daily_tokens:,} tokens."
    if guest:
        message += " Sign up for free to get more."
    upgrade_url = reverse("account_signup") if guest else reverse("billing:pricing")
    return QuotaExceeded(code=code, message=message, reset_at=reset_at, upgrade_url=upgrade_url)


def _guests_exceeded(code: str, *, reset_at: datetime, bucket: _Bucket) -> QuotaExceeded:
    """A limit of a guest's network or of all guests: the way on is a free account."""
    if code == "new_sessions":
        code = "rate_limited"
        message = "Too many new guest sessions from your network in the last hour."
    elif bucket.scope == "guests":
        message = "Guests have used all of today's free answers."
    elif code == "rate_limited":
        message = f"Too many messages from your network: without an account it gets {bucket.requests_per_minute} a minute."
    elif code == "concurrent_runs":
        n = bucket.concurrent_runs
        message = (
            f"Without an account your network gets {n} answer{'s' if n != 1 else ''} at a time: "
            "wait for the current one to finish."
        )
    else:
        message = f"Guests on your network have used today's {bucket.daily_tokens:,} tokens."
    return QuotaExceeded(
        code=code, message=f"{message} Sign up for free to get more.", reset_at=reset_at,
        upgrade_url=reverse("account_signup"),
    )


def quota_reserve(
    *,
    subject: str,
    entitlements: Entitlements,
    tokens: int,
    now: datetime | None = None,
    tokens_per_minute: int | None = None,
) -> Reservation:
    """Reserve a run's worst case (prompt + max output tokens) in every bucket of the
    subject (a guest's: session, network, all guests); raises QuotaExceeded (code
    rate_limited, concurrent_runs, daily_tokens, or tokens_per_minute when one is given)."""
    if tokens <= 0:
        raise ValueError("A reservation needs a positive number of tokens.")
    now = now or timezone.now()
    buckets, network = _buckets(subject, entitlements, tokens_per_minute)
    reserve = _redis_reserve if settings.REDIS_URL else _db_reserve
    try:
        return reserve(
            subject=subject, buckets=buckets, network=network, entitlements=entitlements, tokens=tokens, now=now
        )
    except QuotaExceeded as exc:
        billing_metrics.quota_refusals.labels(kind=exc.code).inc()
        raise


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


def quota_minute_usage(*, subject: str, now: datetime | None = None) -> tuple[int, int]:
    """The subject's own (requests, tokens) counted in the current UTC minute."""
    now = now or timezone.now()
    subject = next(b.subject for b in _buckets(subject)[0] if b.scope == "own")
    minute = _minute_start(now)
    if settings.REDIS_URL:
        client = _redis(settings.REDIS_URL)
        requests, tokens = client.mget(_minute_key(subject, minute), _minute_tokens_key(subject, minute))
        return int(requests or 0), max(0, int(tokens or 0))
    usage = QuotaUsage.objects.filter(subject=subject, day=now.astimezone(UTC).date(), minute_start=minute).first()
    return (usage.minute_requests, usage.minute_tokens) if usage else (0, 0)


def quota_usage_today(*, subject: str, entitlements: Entitlements, now: datetime | None = None) -> QuotaUsageToday:
    """The subject's own usage (a guest's session, not their network's)."""
    now = now or timezone.now()
    subject = next(b.subject for b in _buckets(subject)[0] if b.scope == "own")
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


def _db_reserve(
    *, subject: str, buckets: list[_Bucket], network: str, entitlements: Entitlements, tokens: int, now: datetime
) -> Reservation:
    day = now.astimezone(UTC).date()
    minute = _minute_start(now)
    with transaction.atomic():
        # One locked read of each bucket's row for the day (FOR UPDATE on the get, and a row
        # this transaction creates is ours already), always in subject order: two guests of
        # one network, or a reservation and a settle, never wait on each other crosswise.
        rows = [QuotaUsage.objects.select_for_update().get_or_create(subject=b.subject, day=day)[0] for b in buckets]
        minute_counts = []
        for bucket, usage in zip(buckets, rows, strict=True):
            minute_counts.append(
                _db_check(bucket=bucket, usage=usage, entitlements=entitlements, tokens=tokens, now=now)
            )
        if network:
            own = next(b for b in buckets if b.scope == "own")
            _db_session_admit(
                network=network, session_subject=own.subject, day=day, now=now,
                bucket=next(b for b in buckets if b.scope == "network"), entitlements=entitlements,
            )
        ids = {}
        own_counts = (0, 0)
        for bucket, usage, (requests, minute_tokens) in zip(buckets, rows, minute_counts, strict=True):
            reservation = QuotaReservation.objects.create(
                usage=usage,
                tokens=tokens,
                created_at=now,
                expires_at=now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S),
            )
            ids[bucket.scope] = str(reservation.pk)
            usage.minute_start = minute
            usage.minute_requests = requests + 1
            usage.minute_tokens = minute_tokens + tokens
            usage.requests += 1
            usage.save(update_fields=["minute_start", "minute_requests", "minute_tokens", "requests"])
            if bucket.scope == "own":
                own_counts = (usage.minute_requests, usage.minute_tokens)
    parts = tuple(ids[scope] for scope in ("network", "guests") if scope in ids)
    return Reservation(
        id=ids["own"], subject=subject, day=day, tokens=tokens, parts=parts, minute=minute,
        minute_requests=own_counts[0], minute_tokens=own_counts[1],
    )


def _db_check(
    *, bucket: _Bucket, usage: QuotaUsage, entitlements: Entitlements, tokens: int, now: datetime
) -> tuple[int, int]:
    """Raise QuotaExceeded when the bucket cannot take the reservation; else this minute's
    requests and tokens so far."""
    minute = _minute_start(now)
    this_minute = usage.minute_start == minute
    minute_requests = usage.minute_requests if this_minute else 0
    minute_tokens = max(0, usage.minute_tokens) if this_minute else 0
    if minute_requests >= bucket.requests_per_minute:
        raise _exceeded(
            "rate_limited", reset_at=minute + timedelta(minutes=1), entitlements=entitlements, bucket=bucket
        )
    if minute_tokens + tokens > bucket.tokens_per_minute:
        raise _exceeded(
            "tokens_per_minute", reset_at=minute + timedelta(minutes=1), entitlements=entitlements, bucket=bucket
        )
    # Runs in flight (any day) and today's reserved tokens in one query, under the same lock.
    active = _active_reservations(subject=bucket.subject, now=now).aggregate(
        n=Count("id"), first_expiry=Min("expires_at"), reserved=Sum("tokens", filter=Q(usage=usage))
    )
    if active["n"] >= bucket.concurrent_runs:
        reset_at = active["first_expiry"] or now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S)
        raise _exceeded("concurrent_runs", reset_at=reset_at, entitlements=entitlements, bucket=bucket)
    reserved = active["reserved"] or 0
    if usage.tokens_used + reserved + tokens > bucket.daily_tokens:
        raise _exceeded("daily_tokens", reset_at=_day_reset(now), entitlements=entitlements, bucket=bucket)
    return minute_requests, minute_tokens


def _db_session_admit(
    *, network: str, session_subject: str, day: date, now: datetime, bucket: _Bucket, entitlements: Entitlements
) -> None:
    """A guest session new to its network counts against the network's new sessions in the
    last hour (under the network row's lock). A marker row per (network, session) records
    when it was first seen, in its minute_start; it goes with the transaction if refused."""
    marker = f"{_SEEN_PREFIX}{network}:{session_subject.removeprefix(GUEST_PREFIX)}"
    if QuotaUsage.objects.filter(subject=marker).exists():
        return
    recent = QuotaUsage.objects.filter(
        subject__startswith=f"{_SEEN_PREFIX}{network}:", minute_start__gt=now - NEW_SESSION_WINDOW
    ).aggregate(n=Count("id"), oldest=Min("minute_start"))
    if recent["n"] >= settings.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR:
        reset_at = (recent["oldest"] or now) + NEW_SESSION_WINDOW
        raise _exceeded("new_sessions", reset_at=reset_at, entitlements=entitlements, bucket=bucket)
    QuotaUsage.objects.create(subject=marker, day=day, minute_start=now)


def _db_settle(*, reservation: Reservation, used_tokens: int) -> None:
    # Conditional UPDATEs (each locks its row, reservation first as before): the first
    # settle wins, a repeated one changes nothing. A guest's parts follow in subject order.
    # Still in the minute it was taken in, the unused part of the worst case goes back to
    # the minute's tokens (and more than the worst case is added).
    unused = reservation.tokens - used_tokens
    with transaction.atomic():
        for reservation_id in (reservation.id, *reservation.parts):
            settled = QuotaReservation.objects.filter(pk=reservation_id, settled_at__isnull=True).update(
                settled_at=timezone.now()
            )
            if settled:
                rows = QuotaUsage.objects.filter(reservations__pk=reservation_id)
                if reservation.minute is not None and unused:
                    rows.filter(minute_start=reservation.minute).update(
                        minute_tokens=Greatest(F("minute_tokens") - unused, 0)
                    )
                rows.update(tokens_used=F("tokens_used") + used_tokens)


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
    """Drop usage rows (and their reservations) older than a week, and the rows of guest
    networks (their hashes) once their day is over; Redis keys expire on their own."""
    now = now or timezone.now()
    today = now.astimezone(UTC).date()
    deleted, _ = QuotaUsage.objects.filter(day__lt=today - timedelta(days=7)).delete()
    networks, _ = QuotaUsage.objects.filter(
        Q(subject__startswith=NETWORK_PREFIX) | Q(subject__startswith=_SEEN_PREFIX), day__lt=today
    ).delete()
    return deleted + networks


# --- Redis mode ----------------------------------------------------------------------
# Hand-written Lua because the limits of every bucket must be checked and taken in one
# atomic step shared by every process; no maintained library does this combination.
#
# KEYS: per bucket i (0-based) its day hash, reservations hash, minute request counter
# and minute token counter at 4i+1..4i+4; for a guest with a network, then its sorted
# set of sessions (first seen).
# ARGV: now, tokens, reservation id, its expiry, day, key TTL, number of buckets, the
# new-session cap (0: no check), the session, the window's start, the set's keep-from;
# then per bucket its daily tokens, requests per minute, concurrent runs and tokens per
# minute.
# Returns {outcome, a time in ms (0 when none), the refusing bucket's index (0-based)},
# and when admitted then per bucket its minute's requests and tokens with this one.

_RESERVE_LUA = """
local now = tonumber(ARGV[1])
local tokens = tonumber(ARGV[2])
local n = tonumber(ARGV[7])
for b = 0, n - 1 do
  local day_key, res_key, minute_key, tokens_key = KEYS[4 * b + 1], KEYS[4 * b + 2], KEYS[4 * b + 3], KEYS[4 * b + 4]
  local daily, rpm = tonumber(ARGV[12 + 4 * b]), tonumber(ARGV[13 + 4 * b])
  local concurrent, tpm = tonumber(ARGV[14 + 4 * b]), tonumber(ARGV[15 + 4 * b])
  local entries = redis.call('HGETALL', res_key)
  local active, reserved, earliest = 0, 0, -1
  for i = 1, #entries, 2 do
    local t, exp, day = string.match(entries[i + 1], '^(%d+)|(%d+)|(.+)$')
    exp = tonumber(exp)
    if exp <= now then
      redis.call('HDEL', res_key, entries[i])
    else
      active = active + 1
      if day == ARGV[5] then reserved = reserved + tonumber(t) end
      if earliest < 0 or exp < earliest then earliest = exp end
    end
  end
  if tonumber(redis.call('GET', minute_key) or '0') >= rpm then return {'rate_limited', 0, b} end
  local minute_tokens = math.max(0, tonumber(redis.call('GET', tokens_key) or '0'))
  if minute_tokens + tokens > tpm then return {'tokens_per_minute', 0, b} end
  if active >= concurrent then return {'concurrent_runs', earliest, b} end
  local used = tonumber(redis.call('HGET', day_key, 'used') or '0')
  if used + reserved + tokens > daily then return {'daily_tokens', 0, b} end
end
local cap = tonumber(ARGV[8])
if cap > 0 then
  local sessions = KEYS[4 * n + 1]
  redis.call('ZREMRANGEBYSCORE', sessions, '-inf', '(' .. ARGV[11])
  if not redis.call('ZSCORE', sessions, ARGV[9]) then
    if redis.call('ZCOUNT', sessions, '(' .. ARGV[10], '+inf') >= cap then
      local oldest = redis.call('ZRANGEBYSCORE', sessions, '(' .. ARGV[10], '+inf', 'WITHSCORES', 'LIMIT', 0, 1)
      return {'new_sessions', tonumber(oldest[2]), -1}
    end
    redis.call('ZADD', sessions, now, ARGV[9])
    redis.call('EXPIRE', sessions, ARGV[6])
  end
end
local counts = {'ok', 0, 0}
for b = 0, n - 1 do
  local day_key, res_key, minute_key, tokens_key = KEYS[4 * b + 1], KEYS[4 * b + 2], KEYS[4 * b + 3], KEYS[4 * b + 4]
  redis.call('HSET', res_key, ARGV[3], ARGV[2] .. '|' .. ARGV[4] .. '|' .. ARGV[5])
  redis.call('EXPIRE', res_key, ARGV[6])
  table.insert(counts, redis.call('INCR', minute_key))
  redis.call('EXPIRE', minute_key, 120)
  if tonumber(redis.call('GET', tokens_key) or '0') < 0 then redis.call('SET', tokens_key, 0) end
  table.insert(counts, redis.call('INCRBY', tokens_key, tokens))
  redis.call('EXPIRE', tokens_key, 120)
  redis.call('HINCRBY', day_key, 'requests', 1)
  redis.call('EXPIRE', day_key, ARGV[6])
end
return counts
"""

# KEYS: per bucket its day hash, reservations hash, settled set and the token counter of
# the minute the reservation was taken in; ARGV: reservation id, used tokens, key TTL,
# number of buckets, the worst case's unused tokens (negative: used more). Each bucket
# settles once, whatever is repeated; the minute's tokens change only while it lasts.
_SETTLE_LUA = """
local settled = 0
for b = 0, tonumber(ARGV[4]) - 1 do
  local day_key, res_key, settled_key, tokens_key = KEYS[4 * b + 1], KEYS[4 * b + 2], KEYS[4 * b + 3], KEYS[4 * b + 4]
  if redis.call('SADD', settled_key, ARGV[1]) == 1 then
    redis.call('EXPIRE', settled_key, ARGV[3])
    redis.call('HDEL', res_key, ARGV[1])
    if tonumber(ARGV[5]) ~= 0 and redis.call('EXISTS', tokens_key) == 1 then
      redis.call('DECRBY', tokens_key, ARGV[5])
    end
    if tonumber(ARGV[2]) > 0 then
      redis.call('HINCRBY', day_key, 'used', ARGV[2])
      redis.call('EXPIRE', day_key, ARGV[3])
    end
    settled = settled + 1
  end
end
return settled
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
    # and the channel layer). The hash tag puts the keys one script touches on one cluster
    # slot: a person's are tagged with their subject; a guest's buckets (session, network,
    # all guests) are taken together, so every guest key carries the one tag {guests}.
    guest = subject.startswith((GUEST_PREFIX, NETWORK_PREFIX)) or subject == ALL_GUESTS
    tag = ALL_GUESTS if guest else subject
    return f"{settings.REDIS_PREFIX}:quota:{{{tag}}}:{subject}" if guest else f"{settings.REDIS_PREFIX}:quota:{{{tag}}}"


def _keys(subject: str, day: date) -> tuple[str, str, str]:
    base = _key_base(subject)
    return f"{base}:day:{day.isoformat()}", f"{base}:reservations", f"{base}:settled"


def _minute_key(subject: str, minute: datetime) -> str:
    return f"{_key_base(subject)}:minute:{minute:%Y%m%d%H%M}"


def _minute_tokens_key(subject: str, minute: datetime) -> str:
    return f"{_key_base(subject)}:minute-tokens:{minute:%Y%m%d%H%M}"


def _sessions_key(network: str) -> str:
    return f"{_key_base(NETWORK_PREFIX + network)}:sessions"


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _redis_reserve(
    *, subject: str, buckets: list[_Bucket], network: str, entitlements: Entitlements, tokens: int, now: datetime
) -> Reservation:
    reserve, _ = _scripts(settings.REDIS_URL)
    day = now.astimezone(UTC).date()
    minute = _minute_start(now)
    rid = uuid.uuid4().hex
    expires = now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S)
    keys: list[str] = []
    limits: list[int] = []
    for bucket in buckets:
        day_key, res_key, _settled = _keys(bucket.subject, day)
        keys += [day_key, res_key, _minute_key(bucket.subject, minute), _minute_tokens_key(bucket.subject, minute)]
        limits += [bucket.daily_tokens, bucket.requests_per_minute, bucket.concurrent_runs, bucket.tokens_per_minute]
    own = next(b for b in buckets if b.scope == "own")
    cap = settings.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR if network else 0
    if network:
        keys.append(_sessions_key(network))
    outcome, moment, index, *counts = reserve(
        keys=keys,
        args=[
            _ms(now),
            tokens,
            rid,
            _ms(expires),
            day.isoformat(),
            KEY_TTL_S,
            len(buckets),
            cap,
            own.subject,
            _ms(now - NEW_SESSION_WINDOW),
            _ms(now - timedelta(days=1)),
            *limits,
        ],
    )
    outcome = outcome.decode() if isinstance(outcome, bytes) else outcome
    if outcome == "ok":
        at = buckets.index(own)
        return Reservation(
            id=rid, subject=subject, day=day, tokens=tokens, minute=minute,
            minute_requests=int(counts[2 * at]), minute_tokens=int(counts[2 * at + 1]),
        )
    bucket = buckets[int(index)] if int(index) >= 0 else next(b for b in buckets if b.scope == "network")
    if outcome in ("rate_limited", "tokens_per_minute"):
        raise _exceeded(outcome, reset_at=minute + timedelta(minutes=1), entitlements=entitlements, bucket=bucket)
    if outcome == "concurrent_runs":
        reset_at = (
            datetime.fromtimestamp(int(moment) / 1000, tz=UTC)
            if int(moment) > 0
            else now + timedelta(seconds=settings.BILLING_RESERVATION_TTL_S)
        )
        raise _exceeded(outcome, reset_at=reset_at, entitlements=entitlements, bucket=bucket)
    if outcome == "new_sessions":
        reset_at = datetime.fromtimestamp(int(moment) / 1000, tz=UTC) + NEW_SESSION_WINDOW
        raise _exceeded(outcome, reset_at=reset_at, entitlements=entitlements, bucket=bucket)
    raise _exceeded("daily_tokens", reset_at=_day_reset(now), entitlements=entitlements, bucket=bucket)


def _redis_settle(*, reservation: Reservation, used_tokens: int) -> None:
    _, settle = _scripts(settings.REDIS_URL)
    buckets, _network = _buckets(reservation.subject)
    keys: list[str] = []
    minute = reservation.minute or datetime.combine(reservation.day, time.min, tzinfo=UTC)
    unused = reservation.tokens - used_tokens if reservation.minute is not None else 0
    for bucket in buckets:
        keys += [*_keys(bucket.subject, reservation.day), _minute_tokens_key(bucket.subject, minute)]
    settle(keys=keys, args=[reservation.id, used_tokens, KEY_TTL_S, len(buckets), unused])


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
