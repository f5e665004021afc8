"""Every report date range is bounded (issue 9): both dates or neither (the last 30
days), start <= end, at most 366 days; anything else is a form error, and the page
never builds a row per day of an unbounded range."""

from __future__ import annotations

import datetime as dt

import pytest
from django.urls import reverse
from django.utils import timezone

from ads.models import AdvertiserMembership
from tests.ads.factories import AdvertiserFactory, MembershipFactory

pytestmark = pytest.mark.django_db
BOTH_OR_NEITHER = "Give both a start and an end date (or neither, for the last 30 days)."


def url(name: str) -> str:
    return reverse(f"ads:dashboard:{name}")


@pytest.fixture
def member_client(client, user):
    advertiser = AdvertiserFactory(name="Acme")
    MembershipFactory(user=user, advertiser=advertiser, role=AdvertiserMembership.Role.VIEWER)
    client.force_login(user)
    return client


def last_30_days() -> tuple[dt.date, dt.date]:
    today = timezone.now().date()
    return today - dt.timedelta(days=29), today


@pytest.mark.parametrize("end", ["2100-12-31", "9999-12-31"])
def test_an_end_date_alone_is_a_form_error_not_a_row_per_day_until_then(member_client, end):
    response = member_client.get(url("performance"), {"end": end})
    assert response.status_code == 400
    assert BOTH_OR_NEITHER in response.content.decode()
    # The page behind the error shows the default range, not one reaching `end`.
    assert (response.context["start"], response.context["end"]) == last_30_days()
    assert len(response.context["daily"]) == 30


def test_a_start_date_alone_is_a_form_error(member_client):
    response = member_client.get(url("performance"), {"start": "1900-01-01"})
    assert response.status_code == 400
    assert BOTH_OR_NEITHER in response.content.decode()
    assert len(response.context["daily"]) == 30


@pytest.mark.parametrize("query", [{"end": "9999-12-31"}, {"start": "2026-01-01"}])
def test_the_csv_export_refuses_a_single_date(member_client, query):
    response = member_client.get(url("performance_csv"), query)
    assert response.status_code == 400
    assert response.content.decode() == BOTH_OR_NEITHER


def test_neither_date_is_the_last_30_days(member_client):
    response = member_client.get(url("performance"), {"start": "", "end": ""})
    assert response.status_code == 200
    assert (response.context["start"], response.context["end"]) == last_30_days()
    assert len(response.context["daily"]) == 30


def test_at_most_366_days(member_client):
    response = member_client.get(url("performance"), {"start": "2024-01-01", "end": "2024-12-31"})
    assert response.status_code == 200
    assert len(response.context["daily"]) == 366  # a leap year fits
    response = member_client.get(url("performance"), {"start": "2024-01-01", "end": "2025-01-01"})
    assert response.status_code == 400
    assert "Choose a range of at most 366 days." in response.content.decode()
    assert len(response.context["daily"]) == 30
    response = member_client.get(url("performance_csv"), {"start": "0001-01-01", "end": "9999-12-31"})
    assert (response.status_code, response.content.decode()) == (400, "Choose a range of at most 366 days.")


def test_a_far_but_bounded_range_is_a_bounded_page(member_client):
    response = member_client.get(url("performance"), {"start": "9999-01-01", "end": "9999-12-31"})
    assert response.status_code == 200
    assert len(response.context["daily"]) == 365
