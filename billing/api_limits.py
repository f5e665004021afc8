"""The API's limits per plan (/api/v1/): admitted with the chat's quota machinery.

A person's API traffic, all their keys together, is one quota subject, "api:user:<pk>",
apart from their chat ("user:<pk>"): the API is paid compute with its own limits, set
on the plan (Plan.api_*, editable in the admin). One admission is one reservation
(billing.quotas) taken atomically on the database or in one Redis script:

- one request against requests per minute (a fixed UTC minute);
- the request's worst case (prompt + max output tokens) against tokens per minute (the
  same minute; the settle gives back what went unused while the minute lasts) and
  against tokens per day (the UTC day);
- one slot against concurrent streams (requests in flight, streaming or not).

Every admission and every refusal carries the rate-limit headers as OpenAI sends them
(x-ratelimit-limit-requests, ...-remaining-requests, ...-reset-requests, and the same for
tokens; the resets as durations such as "1s", "6m0s", "20ms"). Billing knows API keys
only by their id, a plain string (the keys are the assistant app's).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.utils import timezone

from billing.entitlements import Entitlements, entitlements_from_plan, entitlements_guest, plan_for_user
from billing.models import Plan
from billing.quotas import (
    QuotaExceeded,
    Reservation,
    quota_minute_usage,
    quota_release,
    quota_reserve,
    quota_settle,
)

API_SUBJECT_PREFIX = "api:"

# QuotaExceeded's codes as the API names the limit.
_KINDS = {
    "rate_limited": "requests",
    "tokens_per_minute": "tokens",
    "daily_tokens": "tokens_per_day",
    "concurrent_runs": "concurrency",
}


@dataclass(frozen=True)
class ApiLimits:
    plan_slug: str
    requests_per_minute: int
    tokens_per_minute: int
    tokens_per_day: int
    concurrent_streams: int


@dataclass(frozen=True)
class ApiAdmission:
    reservation: Reservation
    user_id: int
    key_id: str
    tier_slug: str
    tokens: int
    limits: ApiLimits
    headers: dict[str, str]


class ApiLimitExceeded(Exception):
    """A request over one of the plan's API limits: answer 429 with `headers` and
    Retry-After: `retry_after_s`. kind: requests, tokens, tokens_per_day or concurrency."""

    def __init__(self, *, kind: str, message: str, retry_after_s: int, headers: dict[str, str]) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after_s = retry_after_s
        self.headers = headers


def api_subject_for(*, user_id: int) -> str:
    return f"{API_SUBJECT_PREFIX}user:{user_id}"


def api_limits_for(*, user) -> ApiLimits:
    """The API limits of the user's plan now; no plan (or not signed in): all zero."""
    return _limits(_plan(user))


def _plan(user) -> Plan | None:
    return plan_for_user(user=user) if user is not None and getattr(user, "is_authenticated", False) else None


def _limits(plan: Plan | None) -> ApiLimits:
    if plan is None:
        return ApiLimits(plan_slug="", requests_per_minute=0, tokens_per_minute=0, tokens_per_day=0,
                         concurrent_streams=0)
    return ApiLimits(
        plan_slug=plan.slug,
        requests_per_minute=plan.api_requests_per_minute,
        tokens_per_minute=plan.api_tokens_per_minute,
        tokens_per_day=plan.api_tokens_per_day,
        concurrent_streams=plan.api_concurrent_streams,
    )


def duration_header(seconds: float) -> str:
    """A duration as OpenAI's x-ratelimit-reset-* headers write it: "20ms", "1s",
    "1.5s", "6m0s", "1h2m3s"."""
    ms = max(0, math.ceil(seconds * 1000))
    if ms < 1000:
        return f"{ms}ms"
    hours, rest = divmod(ms, 3_600_000)
    minutes, rest = divmod(rest, 60_000)
    secs = f"{rest / 1000:.3f}".rstrip("0").rstrip(".")
    text = f"{secs}s"
    if hours or minutes:
        text = f"{minutes}m{text}"
    if hours:
        text = f"{hours}h{text}"
    return text


def _headers(*, limits: ApiLimits, requests: int, tokens: int, now: datetime) -> dict[str, str]:
    # Both windows are the fixed UTC minute: each resets at the next minute.
    reset = duration_header((_next_minute(now) - now).total_seconds())
    return {
        "x-ratelimit-limit-requests": str(limits.requests_per_minute),
        "x-ratelimit-remaining-requests": str(max(0, limits.requests_per_minute - requests)),
        "x-ratelimit-reset-requests": reset,
        "x-ratelimit-limit-tokens": str(limits.tokens_per_minute),
        "x-ratelimit-remaining-tokens": str(max(0, limits.tokens_per_minute - tokens)),
        "x-ratelimit-reset-tokens": reset,
    }


def _next_minute(now: datetime) -> datetime:
    return now.astimezone(UTC).replace(second=0, microsecond=0) + timedelta(minutes=1)


def _quota_entitlements(*, plan: Plan | None, limits: ApiLimits) -> Entitlements:
    return dataclasses.replace(
        entitlements_from_plan(plan=plan) if plan is not None else entitlements_guest(),
        daily_tokens=limits.tokens_per_day,
        requests_per_minute=limits.requests_per_minute,
        concurrent_runs=limits.concurrent_streams,
    )


def _refusal(*, exc: QuotaExceeded, limits: ApiLimits, tokens: int, subject: str, now: datetime) -> ApiLimitExceeded:
    kind = _KINDS.get(exc.code, "requests")
    requests_now, tokens_now = quota_minute_usage(subject=subject, now=now)
    headers = _headers(limits=limits, requests=requests_now, tokens=tokens_now, now=now)
    until_reset = max(1, math.ceil((exc.reset_at - now).total_seconds()))
    if kind == "requests":
        message = f"Rate limit reached: your plan allows {limits.requests_per_minute} API requests a minute."
    elif kind == "tokens" and tokens > limits.tokens_per_minute:
        message = (
            f"This request can use up to {tokens:,} tokens (prompt + max_tokens), more than your plan's "
            f"{limits.tokens_per_minute:,} tokens a minute: lower max_tokens or shorten the prompt."
        )
    elif kind == "tokens":
        message = (
            f"Rate limit reached: your plan allows {limits.tokens_per_minute:,} tokens a minute "
            "(prompt + max_tokens of the requests in flight)."
        )
    elif kind == "tokens_per_day":
        message = f"Daily limit reached: your plan allows {limits.tokens_per_day:,} API tokens a UTC day."
    else:
        n = limits.concurrent_streams
        message = (
            f"Too many requests in flight: your plan allows {n} at a time; retry when one has finished."
        )
        # A slot frees when any running request ends, which may be any moment: a short retry.
        until_reset = 1
    return ApiLimitExceeded(kind=kind, message=message, retry_after_s=until_reset, headers=headers)


def api_admit(
    *, user, key_id: str, tier_slug: str, tokens: int, now: datetime | None = None
) -> ApiAdmission:
    """Admit one API request reserving `tokens` (its worst case), atomically against all
    four limits; raises ApiLimitExceeded. Settle or release the admission when it ends."""
    if not isinstance(tokens, int) or tokens <= 0:
        raise ValueError("An API request reserves a positive number of tokens.")
    now = now or timezone.now()
    plan = _plan(user)  # read once: the limits and the quota's entitlements agree
    limits = _limits(plan)
    subject = api_subject_for(user_id=user.pk)
    try:
        reservation = quota_reserve(
            subject=subject,
            entitlements=_quota_entitlements(plan=plan, limits=limits),
            tokens=tokens,
            now=now,
            tokens_per_minute=limits.tokens_per_minute,
        )
    except QuotaExceeded as exc:
        raise _refusal(exc=exc, limits=limits, tokens=tokens, subject=subject, now=now) from None
    headers = _headers(
        limits=limits, requests=reservation.minute_requests, tokens=reservation.minute_tokens, now=now
    )
    return ApiAdmission(
        reservation=reservation, user_id=user.pk, key_id=key_id, tier_slug=tier_slug, tokens=tokens,
        limits=limits, headers=headers,
    )


def api_settle(*, admission: ApiAdmission, used_tokens: int) -> None:
    """The request ended having used `used_tokens` (prompt + completion). Idempotent."""
    quota_settle(reservation=admission.reservation, used_tokens=used_tokens)


def api_release(*, admission: ApiAdmission) -> None:
    """The request produced nothing (refused upstream, failed before any token)."""
    quota_release(reservation=admission.reservation)
