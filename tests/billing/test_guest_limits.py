"""Guests are counted per session, per network (their address, kept only as a keyed
hash) and all together, and a network starts only so many new guest sessions an hour:
a fresh cookie jar is not a fresh budget (issue 9). Every test runs on the row-lock
backend, and on the Redis script when REDIS_URL is set."""

from __future__ import annotations

import threading
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from billing.entitlements import entitlements_guest
from billing.models import QuotaUsage
from billing.quotas import (
    QuotaExceeded,
    guest_network_hash,
    quota_reserve,
    quota_rows_prune,
    quota_settle,
    quota_subject_for,
    quota_usage_today,
)

NOON = datetime(2026, 11, 27, 12, 0, 30, tzinfo=UTC)
ADDRESS = "203.0.113.7"
SIGN_UP = "/accounts/signup/"


@pytest.fixture(params=["database", "redis"])
def backend(request, settings):
    if request.param == "database":
        settings.REDIS_URL = ""
    elif not settings.REDIS_URL:
        pytest.skip("REDIS_URL is not set")
    # All guests share one bucket: a prefix of this test's own keeps its Redis counters apart.
    settings.REDIS_PREFIX = f"lhama-test-{uuid.uuid4().hex[:12]}"
    return request.param


@pytest.fixture
def limits(backend, settings):
    settings.BILLING_GUEST_DAILY_TOKENS = 1_000
    settings.BILLING_GUEST_REQUESTS_PER_MINUTE = 100
    settings.BILLING_GUEST_CONCURRENT_RUNS = 100
    settings.BILLING_GUEST_ADDRESS_DAILY_TOKENS = 1_000
    settings.BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE = 100
    settings.BILLING_GUEST_ADDRESS_CONCURRENT_RUNS = 100
    settings.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = 100
    settings.BILLING_GUEST_TOTAL_DAILY_TOKENS = 1_000_000
    return settings


def jar(address: str = ADDRESS, *, now: datetime = NOON) -> str:
    """A fresh cookie jar: a new guest session, from `address`."""
    return quota_subject_for(user_id=None, session_key=uuid.uuid4().hex, client_address=address, now=now)


def reserve(subject: str, tokens: int, *, now: datetime = NOON):
    return quota_reserve(subject=subject, entitlements=entitlements_guest(), tokens=tokens, now=now)


def refusal(subject: str, tokens: int, *, now: datetime = NOON) -> QuotaExceeded:
    with pytest.raises(QuotaExceeded) as caught:
        reserve(subject, tokens, now=now)
    return caught.value


@pytest.mark.django_db
def test_ten_fresh_cookie_jars_from_one_address_after_one_hit_its_limit_are_refused(limits):
    first = jar()
    quota_settle(reservation=reserve(first, 1_000), used_tokens=1_000)
    assert refusal(first, 1).code == "daily_tokens"

    for _ in range(10):
        refused = refusal(jar(), 10)
        assert (refused.code, refused.upgrade_url) == ("daily_tokens", SIGN_UP)
        assert refused.message == "Guests on your network have used today's 1,000 tokens. Sign up for free to get more."
        assert refused.reset_at == datetime(2026, 11, 28, tzinfo=UTC)


@pytest.mark.django_db
def test_fresh_cookie_jars_from_several_addresses_are_not_refused(limits):
    quota_settle(reservation=reserve(jar(), 1_000), used_tokens=1_000)
    for i in range(10):
        quota_settle(reservation=reserve(jar(f"198.51.100.{i + 1}"), 500), used_tokens=400)


@pytest.mark.django_db
def test_a_network_starts_only_so_many_new_guest_sessions_an_hour(limits):
    limits.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = 3
    jars = [jar() for _ in range(10)]
    outcomes = []
    for subject in jars:
        try:
            reserve(subject, 10)
            outcomes.append("ok")
        except QuotaExceeded as exc:
            outcomes.append(exc)
    assert outcomes[:3] == ["ok", "ok", "ok"]
    for refused in outcomes[3:]:
        assert (refused.code, refused.upgrade_url) == ("rate_limited", SIGN_UP)
        assert refused.message == (
            "Too many new guest sessions from your network in the last hour. Sign up for free to get more."
        )
        assert refused.reset_at == NOON + timedelta(hours=1)
    reserve(jars[0], 10)  # a session the network already started keeps chatting
    for i in range(10):
        reserve(jar(f"198.51.100.{i + 1}"), 10)  # other networks are not affected

    later = NOON + timedelta(hours=1, seconds=1)  # the first three are an hour old
    reserve(quota_subject_for(user_id=None, session_key="late", client_address=ADDRESS, now=later), 10, now=later)


@pytest.mark.django_db
def test_a_network_has_its_own_rate_and_concurrency(limits):
    limits.BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE = 2
    reserve(jar(), 10)
    reserve(jar(), 10)
    refused = refusal(jar(), 10)
    assert (refused.code, refused.reset_at) == ("rate_limited", datetime(2026, 11, 27, 12, 1, tzinfo=UTC))
    assert refused.message == (
        "Too many messages from your network: without an account it gets 2 a minute. Sign up for free to get more."
    )

    limits.BILLING_GUEST_ADDRESS_REQUESTS_PER_MINUTE = 100
    limits.BILLING_GUEST_ADDRESS_CONCURRENT_RUNS = 2
    refused = refusal(jar(), 10)
    assert refused.code == "concurrent_runs"
    assert refused.message == (
        "Without an account your network gets 2 answers at a time: wait for the current one to finish."
        " Sign up for free to get more."
    )


@pytest.mark.django_db
def test_all_guests_together_have_a_daily_budget(limits):
    limits.BILLING_GUEST_TOTAL_DAILY_TOKENS = 2_500
    for i in range(2):
        quota_settle(reservation=reserve(jar(f"198.51.100.{i + 1}"), 1_000), used_tokens=1_000)
    reserve(jar("198.51.100.3"), 500)
    refused = refusal(jar("198.51.100.4"), 1)
    assert (refused.code, refused.upgrade_url) == ("daily_tokens", SIGN_UP)
    assert refused.message == "Guests have used all of today's free answers. Sign up for free to get more."


@pytest.mark.django_db
def test_a_refused_reservation_takes_nothing_and_settling_counts_in_every_bucket(limits):
    first, second = jar(), jar()
    held = reserve(first, 600)
    assert refusal(second, 401).code == "daily_tokens"  # the network's 1,000: 600 held
    usage = quota_usage_today(subject=second, entitlements=entitlements_guest(), now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs, usage.requests_this_minute) == (0, 0, 0, 0)

    quota_settle(reservation=held, used_tokens=100)
    quota_settle(reservation=held, used_tokens=100)  # idempotent, in every bucket
    reserve(second, 900)
    assert refusal(jar(), 1).code == "daily_tokens"
    usage = quota_usage_today(subject=first, entitlements=entitlements_guest(), now=NOON)
    assert (usage.tokens_used, usage.tokens_reserved, usage.active_runs) == (100, 0, 0)


@pytest.mark.django_db
def test_ipv6_addresses_count_by_their_64(limits):
    quota_settle(reservation=reserve(jar("2001:db8:1:2::10"), 1_000), used_tokens=1_000)
    assert refusal(jar("2001:db8:1:2:ffff::1"), 1).code == "daily_tokens"  # the same /64
    reserve(jar("2001:db8:1:3::10"), 10)  # the next /64
    reserve(jar("::ffff:192.0.2.1"), 10)
    assert refusal(jar("192.0.2.1"), 991).code == "daily_tokens"  # an IPv4-mapped address is that IPv4 address


@pytest.mark.django_db
def test_signed_in_people_are_not_counted_per_address():
    assert quota_subject_for(user_id=7, session_key="abc", client_address=ADDRESS) == "user:7"
    assert quota_subject_for(user_id=None, session_key="abc") == "guest:abc"


def test_an_address_is_kept_only_as_a_keyed_hash_that_changes_every_day(settings):
    today = guest_network_hash(address=ADDRESS, now=NOON)
    assert len(today) == 32 and ADDRESS not in today
    assert guest_network_hash(address=ADDRESS, now=NOON + timedelta(hours=11)) == today
    assert guest_network_hash(address=ADDRESS, now=NOON + timedelta(hours=12)) != today  # the next UTC day
    settings.SECRET_KEY = "another secret key of fifty characters or so, for the test"
    assert guest_network_hash(address=ADDRESS, now=NOON) != today
    assert guest_network_hash(address="", now=NOON) == guest_network_hash(address="not an ip", now=NOON) == ""


@pytest.mark.django_db
def test_no_row_names_an_address_and_network_rows_go_once_their_day_is_over(limits):
    if limits.REDIS_URL:
        pytest.skip("database rows only")
    reserve(jar(), 10)
    subjects = list(QuotaUsage.objects.values_list("subject", flat=True))
    assert len(subjects) == 4  # the session, the network, all guests, the session first seen on the network
    assert not any(ADDRESS in subject for subject in subjects)
    quota_rows_prune(now=NOON + timedelta(days=1))
    assert sorted(QuotaUsage.objects.values_list("subject", flat=True)) == sorted(
        s for s in subjects if s.startswith("guest:") or s == "guests"
    )


@pytest.mark.django_db(transaction=True)
def test_twenty_new_sessions_at_once_from_one_network_against_a_cap_of_five(limits):
    limits.BILLING_GUEST_SESSIONS_PER_ADDRESS_HOUR = 5
    start = threading.Barrier(20)

    def attempt(_i: int) -> str:
        try:
            start.wait(timeout=30)
            reserve(jar(now=datetime.now(UTC)), 10, now=datetime.now(UTC))
            return "ok"
        except QuotaExceeded as exc:
            return exc.code
        finally:
            connection.close()

    with ThreadPoolExecutor(max_workers=20) as pool:
        outcomes = list(pool.map(attempt, range(20)))
    assert (outcomes.count("ok"), outcomes.count("rate_limited")) == (5, 15)
