"""The API usage page (/billing/usage/) and its CSV: per day and per key, with estimated costs."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from billing.metering import api_usage_record
from tests.billing.factories import SubscriptionFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def subscriber(plans):
    user = UserFactory()
    SubscriptionFactory(customer__user=user, customer__stripe_customer_id="cus_usage", plan=plans["pro"])
    return user


def _today_noon() -> datetime:
    return timezone.now().astimezone(UTC).replace(hour=12, minute=0, second=0, microsecond=0)


def _use(user, n, *, key="key_ci", name="CI runner", tier="llama-3.1-8b", prompt=400_000, completion=100_000,
         days_ago=0):
    api_usage_record(
        user=user, key_id=key, key_name=name, request_id=f"req-{user.pk}-{n}", tier_slug=tier,
        prompt_tokens=prompt, completion_tokens=completion, now=_today_noon() - timedelta(days=days_ago),
    )


@pytest.fixture
def usage(subscriber):
    # Today: CI runner 2 × 500k tokens on 8B ($0.20/M: $0.20), laptop 1M on 70B ($0.90/M: $0.90).
    _use(subscriber, 1)
    _use(subscriber, 2)
    _use(subscriber, 3, key="key_laptop", name="Laptop", tier="llama-3.1-70b", prompt=900_000)
    # Two days ago: CI runner 500k on 8B ($0.10).
    _use(subscriber, 4, days_ago=2)
    # Someone else's usage is never shown.
    _use(UserFactory(), 5, key="key_other", name="Other person")
    return subscriber


def test_the_usage_page_needs_a_sign_in(client):
    response = client.get(reverse("billing:usage"))
    assert response.status_code == 302 and "/accounts/login/" in response["Location"]


def test_usage_and_estimated_cost_per_day_and_per_key(client, usage):
    client.force_login(usage)
    response = client.get(reverse("billing:usage"))
    assert response.status_code == 200
    html = response.content.decode()
    today = _today_noon().date()
    by_day = response.context["summary"].by_day
    assert [(line.day, line.requests, line.total_tokens, line.cost_micros) for line in by_day] == [
        (today, 3, 2_000_000, 1_100_000),
        (today - timedelta(days=2), 1, 500_000, 100_000),
    ]
    by_key = response.context["summary"].by_key
    assert [(line.key_name, line.requests, line.total_tokens, line.cost_micros) for line in by_key] == [
        ("CI runner", 3, 1_500_000, 300_000),
        ("Laptop", 1, 1_000_000, 900_000),
    ]
    assert response.context["summary"].total.cost_micros == 1_200_000
    assert "$1.2000" in html and "$1.1000" in html and "$0.9000" in html
    assert "Other person" not in html


def test_usage_on_a_plan_without_a_subscription_is_shown_as_included(client, plans):
    free = UserFactory()
    _use(free, 1)
    client.force_login(free)
    response = client.get(reverse("billing:usage"))
    line = response.context["summary"].by_day[0]
    assert (line.total_tokens, line.cost_micros, line.billed) == (500_000, 0, False)
    assert "included" in response.content.decode()


def test_a_hostile_key_name_is_shown_as_text(client, subscriber):
    _use(subscriber, 1, name='<img src=x onerror="alert(1)">')
    client.force_login(subscriber)
    html = client.get(reverse("billing:usage")).content.decode()
    assert "<img src=x" not in html
    assert "&lt;img src=x onerror=&quot;alert(1)&quot;&gt;" in html


def test_the_csv_has_one_row_per_day_key_and_model(client, usage):
    client.force_login(usage)
    response = client.get(reverse("billing:usage_csv"), {"days": "7"})
    assert response.status_code == 200
    assert response["Content-Type"] == "text/csv; charset=utf-8"
    assert response["Content-Disposition"].startswith('attachment; filename="lhama-api-usage-')
    rows = list(csv.reader(io.StringIO(response.content.decode())))
    today = _today_noon().date()
    assert rows == [
        ["day_utc", "key_id", "key_name", "model", "requests", "prompt_tokens", "completion_tokens", "total_tokens",
         "estimated_cost_usd", "billed"],
        [today.isoformat(), "key_ci", "CI runner", "llama-3.1-8b", "2", "800000", "200000", "1000000", "0.200000",
         "yes"],
        [today.isoformat(), "key_laptop", "Laptop", "llama-3.1-70b", "1", "900000", "100000", "1000000", "0.900000",
         "yes"],
        [(today - timedelta(days=2)).isoformat(), "key_ci", "CI runner", "llama-3.1-8b", "1", "400000", "100000",
         "500000", "0.100000", "yes"],
    ]


def test_a_key_name_like_a_formula_stays_text_in_the_csv(client, subscriber):
    _use(subscriber, 1, name="=HYPERLINK(\"http://evil\")")
    client.force_login(subscriber)
    rows = list(csv.reader(io.StringIO(client.get(reverse("billing:usage_csv")).content.decode())))
    assert rows[1][2] == "'=HYPERLINK(\"http://evil\")"


def test_the_period_is_one_of_the_offered_ones(client, usage):
    client.force_login(usage)
    week = client.get(reverse("billing:usage"), {"days": "7"}).context["summary"]
    assert len(week.by_day) == 2
    for bad in ("0", "31", "-7", "abc", "1e3"):
        for name in ("billing:usage", "billing:usage_csv"):
            response = client.get(reverse(name), {"days": bad})
            assert response.status_code == 400
            assert response.content == b"days must be one of 7, 30, 90."


def test_usage_older_than_the_period_is_left_out(client, subscriber):
    _use(subscriber, 1, days_ago=7)  # the 8th UTC day back: outside "last 7 days"
    _use(subscriber, 2, days_ago=6)
    client.force_login(subscriber)
    summary = client.get(reverse("billing:usage"), {"days": "7"}).context["summary"]
    assert summary.total.requests == 1
