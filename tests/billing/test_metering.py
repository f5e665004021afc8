"""Metered API billing (billing.metering): usage records, and their report to Stripe as
Billing Meter events through the real SDK with the recording HTTP transport."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from billing import tasks
from billing.metering import MeterReportFailed, api_usage_record, api_usage_report, api_usage_report_all
from billing.models import ApiUsageRecord, PlanGrant
from tests.billing.factories import SubscriptionFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db

METER_EVENTS = ("POST", "/v1/billing/meter_events")
AT = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


class Killed(BaseException):
    """The reporter's process dies (not an error it could handle: SIGKILL, OOM)."""


class StripeMeters:
    """What Stripe keeps of meter events: one per identifier (a repeat is not counted
    again), summed per meter and customer. The route of the recording transport."""

    def __init__(self) -> None:
        self.events: dict[str, dict] = {}
        self.answered = 0
        self.die_after_accepting: int | None = None  # the process dies once Stripe took this many

    def __call__(self, params: dict) -> dict:
        identifier = params["identifier"]
        self.events.setdefault(identifier, params)
        self.answered += 1
        if self.die_after_accepting is not None and self.answered >= self.die_after_accepting:
            self.die_after_accepting = None
            raise Killed  # accepted by Stripe, the answer never read
        return {
            "object": "billing.meter_event", "event_name": params["event_name"], "identifier": identifier,
            "payload": {"stripe_customer_id": params["payload[stripe_customer_id]"],
                        "value": params["payload[value]"]},
            "timestamp": int(params["timestamp"]), "created": int(params["timestamp"]), "livemode": False,
        }

    def totals(self) -> dict[tuple[str, str], int]:
        sums: dict[tuple[str, str], int] = {}
        for event in self.events.values():
            key = (event["event_name"], event["payload[stripe_customer_id]"])
            sums[key] = sums.get(key, 0) + int(event["payload[value]"])
        return sums


@pytest.fixture
def meters(fake_stripe):
    meters = StripeMeters()
    fake_stripe.routes[METER_EVENTS] = meters
    return meters


@pytest.fixture
def subscriber(plans):
    user = UserFactory()
    SubscriptionFactory(customer__user=user, customer__stripe_customer_id="cus_pro", plan=plans["pro"])
    return user


def _record(user, n: int, *, tier="llama-3.1-8b", prompt=100, completion=23, at=AT):
    api_usage_record(
        user=user, key_id="key_abc", key_name="CI runner", request_id=f"chatcmpl-{n}", tier_slug=tier,
        prompt_tokens=prompt, completion_tokens=completion, now=at + timedelta(seconds=n),
    )


def test_recorded_requests_to_stripe_carry_the_meter_customer_value_identifier_and_time(subscriber, meters,
                                                                                      fake_stripe):
    _record(subscriber, 1, tier="llama-3.1-8b", prompt=100, completion=23)
    _record(subscriber, 2, tier="llama-3.1-405b", prompt=2_000, completion=500)
    result = api_usage_report(now=AT + timedelta(minutes=1))
    assert (result.reported, result.refused, result.pending) == (2, 0, 0)

    sent = fake_stripe.sent(*METER_EVENTS)
    records = list(ApiUsageRecord.objects.order_by("id"))
    assert [r.params for r in sent] == [
        {
            "event_name": "lhama_api_tokens_llama_3_1_8b", "payload[stripe_customer_id]": "cus_pro",
            "payload[value]": "123", "identifier": records[0].identifier, "timestamp": str(int(AT.timestamp()) + 1),
        },
        {
            "event_name": "lhama_api_tokens_llama_3_1_405b", "payload[stripe_customer_id]": "cus_pro",
            "payload[value]": "2500", "identifier": records[1].identifier, "timestamp": str(int(AT.timestamp()) + 2),
        },
    ]
    # The same identifier is the Idempotency-Key: a resent event gets Stripe's first answer.
    assert [r.header("Idempotency-Key") for r in sent] == [records[0].identifier, records[1].identifier]
    assert all(r.reported_at is not None and r.claimed_until is None for r in records)
    # Reported records are not sent again.
    assert api_usage_report().reported == 0
    assert len(fake_stripe.sent(*METER_EVENTS)) == 2


def test_a_record_keeps_the_price_meter_and_customer_of_its_time_and_is_written_once(subscriber):
    _record(subscriber, 1, tier="llama-3.1-70b", prompt=1_000_000, completion=0)
    _record(subscriber, 1, tier="llama-3.1-70b", prompt=5, completion=5)  # the same request id again
    record = ApiUsageRecord.objects.get()
    assert (record.prompt_tokens, record.completion_tokens, record.micros_per_million_tokens) == (1_000_000, 0, 900_000)
    assert (record.meter_event_name, record.stripe_customer_id, record.billable) == (
        "lhama_api_tokens_llama_3_1_70b", "cus_pro", True
    )
    assert (record.key_id, record.key_name, record.user) == ("key_abc", "CI runner", subscriber)


@pytest.mark.parametrize(
    ("prompt", "completion"), [(-1, 0), (0, -3), (1.5, 0), (True, 1), ("10", 0)]
)
def test_bad_token_counts_are_refused_and_nothing_is_recorded(subscriber, prompt, completion):
    with pytest.raises(ValueError):
        _record(subscriber, 1, prompt=prompt, completion=completion)
    assert not ApiUsageRecord.objects.exists()


def test_free_and_staff_granted_usage_is_shown_but_never_billed(plans, meters, fake_stripe):
    free, granted = UserFactory(), UserFactory()
    PlanGrant.objects.create(user=granted, plan=plans["pro"], starts_at=AT - timedelta(days=1))
    _record(free, 1)
    _record(granted, 2)
    _record(UserFactory(), 3, tier="no-such-tier")
    assert list(ApiUsageRecord.objects.values_list("billable", flat=True)) == [False, False, False]
    assert api_usage_report().reported == 0
    assert fake_stripe.sent(*METER_EVENTS) == []


def test_a_replayed_batch_bills_nothing_twice(subscriber, meters, fake_stripe):
    for n in range(5):
        _record(subscriber, n)
    api_usage_report(now=AT)
    # The batch is sent again as if never marked (a reporter that died before marking).
    ApiUsageRecord.objects.update(reported_at=None)
    api_usage_report(now=AT + timedelta(hours=1))
    identifiers = [r.params["identifier"] for r in fake_stripe.sent(*METER_EVENTS)]
    assert len(identifiers) == 10 and len(set(identifiers)) == 5
    assert meters.totals() == {("lhama_api_tokens_llama_3_1_8b", "cus_pro"): 5 * 123}
    assert ApiUsageRecord.objects.filter(reported_at__isnull=True).count() == 0


@pytest.mark.parametrize("status", [429, 500])
def test_stripe_failing_stops_the_batch_and_the_next_run_reports_everything(subscriber, meters, fake_stripe, status):
    for n in range(3):
        _record(subscriber, n)
    # The SDK tries three times (max_network_retries=2); all three fail on the first record.
    fake_stripe.fail(*METER_EVENTS, status, status, status)
    with pytest.raises(MeterReportFailed):
        api_usage_report(now=AT)
    assert ApiUsageRecord.objects.filter(reported_at__isnull=True, claimed_until__isnull=True).count() == 3
    assert meters.events == {}

    assert api_usage_report(now=AT).reported == 3  # at once: the failed run gave its claims back
    assert len(meters.events) == 3


def test_a_retry_inside_the_sdk_sends_the_same_identifier(subscriber, meters, fake_stripe):
    _record(subscriber, 1)
    fake_stripe.fail(*METER_EVENTS, 500)
    assert api_usage_report(now=AT).reported == 1
    sent = fake_stripe.sent(*METER_EVENTS)
    assert len(sent) == 2 and sent[0].params == sent[1].params
    assert sent[0].header("Idempotency-Key") == sent[1].header("Idempotency-Key")
    assert len(meters.events) == 1


def test_a_reporter_killed_mid_batch_leaves_exactly_the_rest_to_the_next_run(subscriber, meters, fake_stripe,
                                                                           settings):
    settings.BILLING_METER_CLAIM_S = 300
    for n in range(10):
        _record(subscriber, n)
    records = list(ApiUsageRecord.objects.order_by("id"))
    meters.die_after_accepting = 4  # Stripe takes the 4th event; the process dies before reading the answer
    with pytest.raises(Killed):
        api_usage_report(now=AT)
    assert ApiUsageRecord.objects.filter(reported_at__isnull=False).count() == 3
    first_run = len(fake_stripe.sent(*METER_EVENTS))
    assert first_run == 4

    # Another reporter, while the dead one's claim lasts: it sends nothing.
    assert api_usage_report(now=AT + timedelta(seconds=299)).reported == 0
    assert len(fake_stripe.sent(*METER_EVENTS)) == first_run

    # Once the claim has lapsed: exactly the rest, each identifier once, the 4th resent as it was.
    result = api_usage_report(now=AT + timedelta(seconds=301))
    assert (result.reported, result.pending) == (7, 0)
    second_run = [r.params["identifier"] for r in fake_stripe.sent(*METER_EVENTS)[first_run:]]
    assert second_run == [r.identifier for r in records[3:]]
    assert sorted(meters.events) == sorted(r.identifier for r in records)
    assert meters.totals() == {("lhama_api_tokens_llama_3_1_8b", "cus_pro"): 10 * 123}


def test_a_refused_event_is_kept_with_its_error_and_the_rest_is_reported(subscriber, meters, fake_stripe):
    from tests.billing.conftest import StripeAnswer

    for n in range(3):
        _record(subscriber, n)
    fake_stripe.failures[METER_EVENTS] = [StripeAnswer(400, {"error": {
        "type": "invalid_request_error", "message": "No such customer: 'cus_pro'", "param": "payload",
    }})]
    result = api_usage_report(now=AT)
    assert (result.reported, result.refused, result.pending) == (2, 1, 0)
    refused = ApiUsageRecord.objects.get(reported_at__isnull=True)
    assert "No such customer" in refused.report_error
    # Not retried by itself; staff clear the error (the admin's action) and it goes.
    assert api_usage_report(now=AT).reported == 0
    ApiUsageRecord.objects.filter(pk=refused.pk).update(report_error="")
    assert api_usage_report(now=AT).reported == 1


def test_the_task_reports_every_batch_and_runs_every_minute(subscriber, meters, settings):
    settings.BILLING_METER_BATCH_SIZE = 2
    for n in range(5):
        _record(subscriber, n)
    tasks.report_api_usage.apply()
    assert ApiUsageRecord.objects.filter(reported_at__isnull=True).count() == 0
    assert len(meters.events) == 5
    assert settings.CELERY_BEAT_SCHEDULE["billing-report-api-usage"]["task"] == "billing.report_api_usage"


def test_the_whole_backlog_is_reported_in_batches(subscriber, meters, settings):
    settings.BILLING_METER_BATCH_SIZE = 3
    for n in range(7):
        _record(subscriber, n)
    assert api_usage_report_all(now=timezone.now()) == 7


def test_the_task_retries_while_stripe_fails_and_then_reports_everything(subscriber, meters, fake_stripe):
    for n in range(3):
        _record(subscriber, n)
    fake_stripe.fail(*METER_EVENTS, 500, 500, 500)  # the first attempt (the SDK's three tries) fails
    # Eager, not propagating (so Celery runs the retry it asked for): the retry runs at
    # once instead of after its countdown.
    result = tasks.report_api_usage.apply(throw=False)
    assert result.successful()
    assert ApiUsageRecord.objects.filter(reported_at__isnull=True).count() == 0
    assert len(meters.events) == 3
    assert len(fake_stripe.sent(*METER_EVENTS)) == 3 + 3
