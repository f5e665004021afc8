"""The API's limits per plan (billing.api_limits): admitted atomically on both quota
backends, with OpenAI's rate-limit headers."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from billing.api_limits import ApiLimitExceeded, api_admit, api_limits_for, api_release, api_settle, duration_header
from billing.models import Plan
from billing.quotas import quota_minute_usage
from tests.factories import UserFactory

NOON = datetime(2026, 11, 27, 12, 0, 15, tzinfo=UTC)  # 45 s before the minute resets


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    """Every API limit test runs on the row-lock backend, and on the Redis scripts when REDIS_URL is set."""
    if request.param == "database":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    return request.param


def _plan(*, rpm=1000, tpm=1_000_000, per_day=10_000_000, streams=100) -> Plan:
    return Plan.objects.create(
        slug="free", name="Free", daily_tokens=1, requests_per_minute=1, concurrent_runs=1, max_context=8192,
        api_requests_per_minute=rpm, api_tokens_per_minute=tpm, api_tokens_per_day=per_day,
        api_concurrent_streams=streams,
    )


@pytest.fixture
def user(backend, db):
    # A new person per test: with REDIS_URL their keys never meet another test's (or run's).
    return UserFactory()


def _admit(user, tokens, now=NOON):
    return api_admit(user=user, key_id="key_1", tier_slug="llama-3.1-8b", tokens=tokens, now=now)


def test_limits_come_from_the_plan(user):
    _plan(rpm=7, tpm=7_000, per_day=70_000, streams=3)
    limits = api_limits_for(user=user)
    assert (limits.plan_slug, limits.requests_per_minute, limits.tokens_per_minute, limits.tokens_per_day,
            limits.concurrent_streams) == ("free", 7, 7_000, 70_000, 3)


def test_no_plan_seeded_means_no_api(user):
    with pytest.raises(ApiLimitExceeded) as caught:
        _admit(user, 10)
    assert caught.value.kind == "requests"


def test_an_admission_carries_openai_rate_limit_headers(user):
    _plan(rpm=60, tpm=10_000)
    first = _admit(user, 1_000)
    second = _admit(user, 2_500)
    assert first.headers == {
        "x-ratelimit-limit-requests": "60",
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-reset-requests": "45s",
        "x-ratelimit-limit-tokens": "10000",
        "x-ratelimit-remaining-tokens": "9000",
        "x-ratelimit-reset-tokens": "45s",
    }
    assert (second.headers["x-ratelimit-remaining-requests"], second.headers["x-ratelimit-remaining-tokens"]) == (
        "58", "6500"
    )


def test_requests_per_minute_refused_with_retry_after_until_the_next_minute(user):
    _plan(rpm=2)
    _admit(user, 10)
    _admit(user, 10)
    with pytest.raises(ApiLimitExceeded) as caught:
        _admit(user, 10)
    assert (caught.value.kind, caught.value.retry_after_s) == ("requests", 45)
    assert caught.value.headers["x-ratelimit-remaining-requests"] == "0"
    assert caught.value.headers["x-ratelimit-reset-requests"] == "45s"
    assert "2 API requests a minute" in caught.value.message
    # The next minute is a new window.
    _admit(user, 10, now=NOON + timedelta(seconds=45))


def test_tokens_per_minute_count_worst_cases_and_the_settle_gives_back_the_unused(user):
    _plan(tpm=1_000)
    first = _admit(user, 600)
    with pytest.raises(ApiLimitExceeded) as caught:
        _admit(user, 500)
    assert (caught.value.kind, caught.value.retry_after_s) == ("tokens", 45)
    assert caught.value.headers["x-ratelimit-remaining-tokens"] == "400"
    api_settle(admission=first, used_tokens=100)  # 500 of the 600 go back to this minute
    api_settle(admission=first, used_tokens=100)  # idempotent: given back once
    second = _admit(user, 500)
    assert second.headers["x-ratelimit-remaining-tokens"] == "400"
    api_release(admission=second)
    assert quota_minute_usage(subject=f"api:user:{user.pk}", now=NOON) == (2, 100)


def test_a_request_larger_than_the_minute_says_so(user):
    _plan(tpm=1_000)
    with pytest.raises(ApiLimitExceeded) as caught:
        _admit(user, 1_001)
    assert caught.value.kind == "tokens"
    assert "lower max_tokens" in caught.value.message


def test_tokens_per_day_refused_until_utc_midnight(user):
    _plan(per_day=1_000)
    admission = _admit(user, 800)
    api_settle(admission=admission, used_tokens=800)
    with pytest.raises(ApiLimitExceeded) as caught:
        _admit(user, 201, now=NOON + timedelta(hours=1))
    assert caught.value.kind == "tokens_per_day"
    midnight = datetime(2026, 11, 28, tzinfo=UTC)
    assert caught.value.retry_after_s == int((midnight - (NOON + timedelta(hours=1))).total_seconds())
    _admit(user, 1_000, now=midnight)


def test_a_stream_slot_frees_when_the_request_ends(user):
    _plan(streams=1)
    admission = _admit(user, 10)
    with pytest.raises(ApiLimitExceeded) as caught:
        _admit(user, 10)
    assert (caught.value.kind, caught.value.retry_after_s) == ("concurrency", 1)
    api_settle(admission=admission, used_tokens=5)
    _admit(user, 10)


def test_the_api_and_the_chat_are_counted_apart(user):
    from billing.entitlements import entitlements_for
    from billing.quotas import quota_reserve, quota_subject_for

    _plan(rpm=1)
    # The chat's own limit (1 a minute on this plan) is spent; the API still admits, once.
    quota_reserve(subject=quota_subject_for(user_id=user.pk), entitlements=entitlements_for(user=user), tokens=1,
                  now=NOON)
    _admit(user, 10)
    with pytest.raises(ApiLimitExceeded):
        _admit(user, 10)


def test_reset_durations_are_written_as_openai_writes_them():
    assert [duration_header(s) for s in (0.02, 1, 1.5, 45, 60, 360, 3723.25)] == [
        "20ms", "1s", "1.5s", "45s", "1m0s", "6m0s", "1h2m3.25s"
    ]


def _race(user, *, tokens: int, n: int = 50) -> list[str]:
    start = threading.Barrier(n)

    def attempt(_i: int) -> str:
        try:
            start.wait(timeout=30)
            _admit(user, tokens)  # all at NOON: one minute, whatever the clock says
            return "ok"
        except ApiLimitExceeded as exc:
            return exc.kind
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=n) as pool:
        return list(pool.map(attempt, range(n)))


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_admits_against_a_tokens_per_minute_budget_for_ten(user):
    """50 requests at once, each reserving 1,000 tokens, 10,000 tokens a minute: exactly 10 admitted."""
    _plan(tpm=10_000)
    outcomes = _race(user, tokens=1_000)
    assert (outcomes.count("ok"), outcomes.count("tokens")) == (10, 40), outcomes
    assert quota_minute_usage(subject=f"api:user:{user.pk}", now=NOON) == (10, 10_000)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_admits_against_a_limit_of_three_streams(user):
    _plan(streams=3)
    outcomes = _race(user, tokens=10)
    assert (outcomes.count("ok"), outcomes.count("concurrency")) == (3, 47), outcomes
