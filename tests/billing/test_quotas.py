from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import close_old_connections, connection

from billing.entitlements import Entitlements
from billing.quotas import (
    QuotaExceeded,
    quota_release,
    quota_reserve,
    quota_settle,
    quota_subject_for,
    quota_usage_today,
)


def _ent(*, daily_tokens=10_000, rpm=1000, concurrent=1000) -> Entitlements:
    return Entitlements(
        plan_slug="test", plan_name="Test", tier_slugs=frozenset({"llama-3.1-8b"}), daily_tokens=daily_tokens,
        requests_per_minute=rpm, concurrent_runs=concurrent, max_context=8192, ads_enabled=True,
    )


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    """Every quota test runs on the row-lock backend, and on the Redis script when REDIS_URL is set."""
    if request.param == "database":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    return request.param


@pytest.fixture
def subject(backend):
    # Unique per test: with REDIS_URL the keys of other tests (and runs) never collide.
    return f"user:test-{uuid.uuid4().hex}"


NOON = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)


@pytest.mark.django_db
def test_usage_settles_to_the_real_token_counts(subject):
    ent = _ent(daily_tokens=10_000)
    first = quota_reserve(subject=subject, entitlements=ent, tokens=4_000, now=NOON)
    second = quota_reserve(subject=subject, entitlements=ent, tokens=4_000, now=NOON)
    usage = quota_usage_today(subject=subject, entitlements=ent, now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs) == (0, 8_000, 2)

    quota_settle(reservation=first, used_tokens=1_234)
    quota_settle(reservation=first, used_tokens=1_234)  # idempotent
    quota_release(reservation=second)
    usage = quota_usage_today(subject=subject, entitlements=ent, now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs) == (1_234, 0, 0)
    assert usage.tokens_left == 8_766


@pytest.mark.django_db
def test_worst_case_over_the_daily_budget_is_refused_with_reset_and_upgrade_link(subject):
    ent = _ent(daily_tokens=5_000)
    reservation = quota_reserve(subject=subject, entitlements=ent, tokens=3_000, now=NOON)
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(subject=subject, entitlements=ent, tokens=2_001, now=NOON)
    assert caught.value.code == "daily_tokens"
    assert caught.value.reset_at == datetime(2026, 11, 28, tzinfo=UTC)
    assert caught.value.upgrade_url == "/billing/pricing"
    assert caught.value.message == "You have used today's 5,000 tokens."
    # Settling with less than the worst case makes room again.
    quota_settle(reservation=reservation, used_tokens=1_000)
    quota_reserve(subject=subject, entitlements=ent, tokens=4_000, now=NOON)


@pytest.mark.django_db
def test_daily_budget_resets_at_utc_midnight(subject):
    ent = _ent(daily_tokens=1_000)
    late = datetime(2026, 11, 27, 23, 59, 50, tzinfo=UTC)
    reservation = quota_reserve(subject=subject, entitlements=ent, tokens=1_000, now=late)
    quota_settle(reservation=reservation, used_tokens=1_000)
    with pytest.raises(QuotaExceeded):
        quota_reserve(subject=subject, entitlements=ent, tokens=1, now=late)
    quota_reserve(subject=subject, entitlements=ent, tokens=1_000, now=late + timedelta(seconds=11))


@pytest.mark.django_db
def test_requests_per_minute(subject):
    ent = _ent(rpm=3)
    for _ in range(3):
        quota_release(reservation=quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON))
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON)
    assert caught.value.code == "rate_limited"
    assert caught.value.reset_at == datetime(2026, 11, 27, 12, 1, tzinfo=UTC)
    quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON + timedelta(seconds=30))


@pytest.mark.django_db
def test_concurrent_runs_and_expired_reservations(subject, settings):
    settings.BILLING_RESERVATION_TTL_S = 600
    ent = _ent(concurrent=2)
    first = quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON)
    quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON + timedelta(seconds=1))
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON + timedelta(seconds=2))
    assert caught.value.code == "concurrent_runs"
    assert caught.value.reset_at == NOON + timedelta(seconds=600)
    quota_settle(reservation=first, used_tokens=5)
    quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON + timedelta(seconds=3))
    # A reservation whose process died stops counting after its time to live.
    quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON + timedelta(seconds=602))


@pytest.mark.django_db
def test_subjects_are_independent(subject):
    """One subject at its daily limit is refused; another subject's budget is untouched."""
    ent = _ent(daily_tokens=100)
    other = subject + "-other"
    first = quota_reserve(subject=subject, entitlements=ent, tokens=100, now=NOON)
    assert (first.subject, first.tokens) == (subject, 100)
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(subject=subject, entitlements=ent, tokens=1, now=NOON)
    assert caught.value.code == "daily_tokens"
    theirs = quota_reserve(subject=other, entitlements=ent, tokens=100, now=NOON)
    assert (theirs.subject, theirs.tokens) == (other, 100)
    for name in (subject, other):
        usage = quota_usage_today(subject=name, entitlements=ent, now=NOON)
        assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs, usage.requests_this_minute) == (
            0, 100, 1, 1)
    # Settling one subject's run frees that subject's budget only.
    quota_settle(reservation=first, used_tokens=40)
    assert quota_usage_today(subject=subject, entitlements=ent, now=NOON).tokens_left == 60
    assert quota_usage_today(subject=other, entitlements=ent, now=NOON).tokens_left == 0
    with pytest.raises(QuotaExceeded):
        quota_reserve(subject=other, entitlements=ent, tokens=1, now=NOON)


def test_a_quota_subject_names_a_signed_in_person_or_a_guest_session():
    assert quota_subject_for(user_id=42) == "user:42"
    assert quota_subject_for(user_id=None, session_key="abc") == "guest:abc"


@pytest.mark.django_db
def test_the_chat_and_the_account_page_count_under_the_same_subject(user):
    from assistant.selectors import owner_for

    # The chat reserves under its Owner's subject; the account page reads billing's: one function.
    assert owner_for(user=user, session_key="ignored").subject == quota_subject_for(user_id=user.pk)
    assert owner_for(user=None, session_key="sess1").subject == quota_subject_for(user_id=None, session_key="sess1")


@pytest.mark.django_db
def test_a_non_positive_reservation_is_a_programming_error(subject):
    with pytest.raises(ValueError):
        quota_reserve(subject=subject, entitlements=_ent(), tokens=0)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_reservations_against_a_budget_for_ten(subject):
    """50 runs at once, each needing 1,000 tokens, a 10,000-token budget: exactly 10 start."""
    ent = _ent(daily_tokens=10_000)
    start = threading.Barrier(50)

    def attempt(_i: int) -> str:
        try:
            start.wait(timeout=30)
            quota_reserve(subject=subject, entitlements=ent, tokens=1_000)
            return "ok"
        except QuotaExceeded as exc:
            return exc.code
        finally:
            close_old_connections()
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))
    assert outcomes.count("ok") == 10
    assert outcomes.count("daily_tokens") == 40
    usage = quota_usage_today(subject=subject, entitlements=ent)
    assert (usage.tokens_reserved, usage.active_runs) == (10_000, 10)


@pytest.mark.django_db(transaction=True)
def test_fifty_concurrent_runs_against_a_concurrency_limit(subject):
    ent = _ent(concurrent=3)
    start = threading.Barrier(50)

    def attempt(_i: int) -> str:
        try:
            start.wait(timeout=30)
            quota_reserve(subject=subject, entitlements=ent, tokens=10)
            return "ok"
        except QuotaExceeded as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=50) as pool:
        outcomes = list(pool.map(attempt, range(50)))
    assert (outcomes.count("ok"), outcomes.count("concurrent_runs")) == (3, 47)


@pytest.mark.django_db
def test_a_plan_without_concurrent_runs_is_refused_with_a_reset_time(subject, settings):
    settings.BILLING_RESERVATION_TTL_S = 600
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(subject=subject, entitlements=_ent(concurrent=0), tokens=10, now=NOON)
    assert (caught.value.code, caught.value.reset_at) == ("concurrent_runs", NOON + timedelta(seconds=600))


@pytest.mark.django_db
def test_a_guest_over_the_rate_is_offered_an_account_not_a_plan(subject):
    from dataclasses import replace

    ent = replace(_ent(rpm=1), plan_slug="guest", plan_name="Guest")
    quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON)
    with pytest.raises(QuotaExceeded) as caught:
        quota_reserve(subject=subject, entitlements=ent, tokens=10, now=NOON)
    assert caught.value.code == "rate_limited"
    assert caught.value.message == "Too many messages: without an account you get 1 a minute. Sign up for free to get more."
    assert caught.value.upgrade_url == "/accounts/signup/"


@pytest.mark.redis
@pytest.mark.django_db
def test_two_redis_prefixes_do_not_see_each_others_quota_counters(settings):
    """Two deployments sharing one Redis, each with its own REDIS_PREFIX, keep their own quotas."""
    if not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    subject = f"user:test-{uuid.uuid4().hex}"  # the same person id in both deployments
    ent = _ent(daily_tokens=100, rpm=1, concurrent=1)
    first, second = f"lhama-one-{uuid.uuid4().hex[:8]}", f"lhama-two-{uuid.uuid4().hex[:8]}"

    settings.REDIS_PREFIX = first
    quota_reserve(subject=subject, entitlements=ent, tokens=100, now=NOON)  # every limit now reached
    with pytest.raises(QuotaExceeded):
        quota_reserve(subject=subject, entitlements=ent, tokens=1, now=NOON)

    settings.REDIS_PREFIX = second
    usage = quota_usage_today(subject=subject, entitlements=ent, now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs, usage.requests_this_minute) == (0, 0, 0, 0)
    settled = quota_reserve(subject=subject, entitlements=ent, tokens=40, now=NOON)
    quota_settle(reservation=settled, used_tokens=30)

    settings.REDIS_PREFIX = first
    usage = quota_usage_today(subject=subject, entitlements=ent, now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs, usage.requests_this_minute) == (0, 100, 1, 1)
    settings.REDIS_PREFIX = second
    usage = quota_usage_today(subject=subject, entitlements=ent, now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs, usage.requests_this_minute) == (30, 0, 0, 1)
