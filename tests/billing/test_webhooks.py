from __future__ import annotations

import json
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connections
from django.test import Client

from billing.entitlements import entitlements_for
from billing.ledger import balance_micros
from billing.models import LedgerEntry, StripeEvent, Subscription
from billing.subscriptions import subscriptions_expire_grace
from tests.billing import stripe_events as se
from tests.billing.conftest import post_event, stripe_signature
from tests.billing.factories import BalanceAccountFactory, CustomerFactory

T0 = 1_790_000_000  # the lifecycle's first second (2026-09-21)
DAY = 86_400


def _ts(seconds: int) -> datetime:
    return datetime.fromtimestamp(seconds, tz=UTC)


@pytest.fixture
def deliver(client, webhook_secret, django_capture_on_commit_callbacks):
    """POST a signed event to the webhook and run what it scheduled after commit (the Celery task, eagerly)."""

    def _deliver(event: dict):
        with django_capture_on_commit_callbacks(execute=True):
            response = post_event(client, event)
        return response

    return _deliver


@pytest.fixture
def customer(db):
    return CustomerFactory()


def _created(customer, *, sub_id="sub_life", key="lhama_plus_monthly", status="active", at=T0, period_end=T0 + 30 * DAY):
    return se.event(
        "customer.subscription.created",
        se.subscription(sub_id=sub_id, customer=customer.stripe_customer_id, status=status, lookup_key=key,
                        period_end=period_end),
        created=at,
    )


def test_bad_signature_is_rejected_and_nothing_changes(client, webhook_secret, plans, customer):
    event = _created(customer)
    payload = json.dumps(event).encode()
    forged = stripe_signature(payload, secret="whsec_someone_else")
    response = client.post("/billing/stripe/webhook", data=payload, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=forged)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert Subscription.objects.count() == 0


def test_tampered_body_is_rejected(client, webhook_secret, plans, customer):
    event = _created(customer)
    payload = json.dumps(event).encode()
    header = stripe_signature(payload)
    tampered = payload.replace(b"lhama_plus_monthly", b"lhama_pro_monthly")
    response = client.post("/billing/stripe/webhook", data=tampered, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=header)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_stale_timestamp_is_rejected_and_nothing_changes(client, webhook_secret, plans, customer):
    response = post_event(client, _created(customer), timestamp=int(time.time()) - 301)
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0
    assert Subscription.objects.count() == 0


def test_missing_signature_header_is_rejected(client, webhook_secret, plans, customer):
    response = post_event(client, _created(customer), signature="")
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


def test_without_a_webhook_secret_nothing_is_accepted(client, settings, plans, customer):
    settings.STRIPE_WEBHOOK_SECRET = ""
    response = post_event(client, _created(customer))
    assert response.status_code == 503
    assert StripeEvent.objects.count() == 0


def test_webhook_only_accepts_post(client, webhook_secret):
    assert client.get("/billing/stripe/webhook").status_code == 405


def test_subscription_created_grants_the_plan(deliver, plans, customer):
    response = deliver(_created(customer))
    assert response.status_code == 200
    sub = Subscription.objects.get(stripe_subscription_id="sub_life")
    assert (sub.status, sub.plan.slug, sub.current_period_end) == ("active", "plus", _ts(T0 + 30 * DAY))
    assert entitlements_for(user=customer.user).plan_slug == "plus"
    row = StripeEvent.objects.get()
    assert row.processed_at is not None
    assert row.result == "subscription sub_life: active"


def test_same_event_twice_has_one_effect(deliver, plans):
    account = BalanceAccountFactory()
    event = se.event(
        "checkout.session.completed",
        se.checkout_session(session_id="cs_topup_1", mode="payment", amount_total=2500,
                            metadata={"kind": "topup", "balance_account_id": str(account.pk)}),
        created=T0,
    )
    first = deliver(event)
    second = deliver(event)
    assert (first.status_code, first.content) == (200, b"ok")
    assert (second.status_code, second.content) == (200, b"duplicate")
    assert StripeEvent.objects.count() == 1
    assert list(LedgerEntry.objects.values_list("amount_micros", "reference")) == [(25_000_000, "stripe:checkout:cs_topup_1")]
    assert balance_micros(account_id=account.pk) == 25_000_000


def test_a_second_event_for_the_same_checkout_does_not_credit_twice(deliver, plans):
    account = BalanceAccountFactory()
    session = se.checkout_session(session_id="cs_topup_2", mode="payment", amount_total=1000,
                                  metadata={"balance_account_id": str(account.pk)})
    deliver(se.event("checkout.session.completed", session, created=T0))
    deliver(se.event("checkout.session.async_payment_succeeded", session, created=T0 + 5))
    assert StripeEvent.objects.count() == 2
    assert balance_micros(account_id=account.pk) == 10_000_000


def test_unpaid_checkout_credits_nothing_yet(deliver, plans):
    account = BalanceAccountFactory()
    session = se.checkout_session(session_id="cs_topup_3", mode="payment", amount_total=1000, payment_status="unpaid",
                                  metadata={"balance_account_id": str(account.pk)})
    deliver(se.event("checkout.session.completed", session, created=T0))
    assert balance_micros(account_id=account.pk) == 0
    assert StripeEvent.objects.get().result == "waiting: payment not settled yet"


def test_unhandled_event_types_are_acknowledged_and_ignored(deliver, plans):
    response = deliver(se.event("customer.updated", {"id": "cus_x", "object": "customer"}, created=T0))
    assert response.status_code == 200
    row = StripeEvent.objects.get()
    assert (row.type, row.result) == ("customer.updated", "ignored")
    assert row.processed_at is not None


def test_checkout_completed_links_the_session_for_the_success_page(deliver, plans, customer):
    deliver(se.event(
        "checkout.session.completed",
        se.checkout_session(session_id="cs_sub_1", mode="subscription", customer=customer.stripe_customer_id,
                            subscription="sub_life", client_reference_id=str(customer.user.pk)),
        created=T0,
    ))
    deliver(_created(customer))
    sub = Subscription.objects.get()
    assert (sub.checkout_session_id, sub.status, sub.plan.slug) == ("cs_sub_1", "active", "plus")


def test_older_event_never_regresses_state(deliver, plans, customer):
    updated = se.event(
        "customer.subscription.updated",
        se.subscription(sub_id="sub_life", customer=customer.stripe_customer_id, status="active",
                        lookup_key="lhama_pro_monthly", period_end=T0 + 30 * DAY),
        created=T0 + 100,
    )
    deliver(updated)
    deliver(_created(customer, status="incomplete", at=T0))  # arrives late
    sub = Subscription.objects.get()
    assert (sub.status, sub.plan.slug) == ("active", "pro")


def test_deleted_is_final_even_if_an_update_arrives_later(deliver, plans, customer):
    deleted = se.event(
        "customer.subscription.deleted",
        se.subscription(sub_id="sub_life", customer=customer.stripe_customer_id, status="canceled",
                        lookup_key="lhama_plus_monthly", period_end=T0 + 30 * DAY, canceled_at=T0 + 50),
        created=T0 + 50,
    )
    deliver(deleted)
    deliver(se.event("customer.subscription.updated",
                     se.subscription(sub_id="sub_life", customer=customer.stripe_customer_id, status="active",
                                     lookup_key="lhama_plus_monthly", period_end=T0 + 30 * DAY),
                     created=T0 + 60))
    assert Subscription.objects.get().status == "canceled"
    assert entitlements_for(user=customer.user).plan_slug == "free"


def test_payment_failure_past_due_then_grace_then_free(deliver, plans, customer, settings):
    settings.BILLING_GRACE_DAYS = 3
    deliver(_created(customer))
    failed_at = T0 + 30 * DAY + 60
    deliver(se.event("invoice.payment_failed",
                     se.invoice(invoice_id="in_1", sub_id="sub_life", customer=customer.stripe_customer_id,
                                created=T0 + 30 * DAY, paid=False),
                     created=failed_at))
    sub = Subscription.objects.get()
    assert sub.status == "past_due"
    assert sub.grace_period_end == _ts(failed_at) + timedelta(days=3)

    # Inside the grace period the plan holds (checked as of a moment inside it).
    from billing.entitlements import plan_for_user

    assert plan_for_user(user=customer.user, now=_ts(failed_at + 2 * DAY)).slug == "plus"
    assert plan_for_user(user=customer.user, now=_ts(failed_at + 3 * DAY + 1)).slug == "free"

    # Before the end, the periodic task leaves it alone; after, it cancels (no Stripe key: locally).
    assert subscriptions_expire_grace(now=_ts(failed_at + 2 * DAY)) == 0
    assert Subscription.objects.get().status == "past_due"
    assert subscriptions_expire_grace(now=_ts(failed_at + 3 * DAY + 1)) == 1
    sub.refresh_from_db()
    assert (sub.status, sub.grace_period_end) == ("canceled", None)
    assert entitlements_for(user=customer.user).plan_slug == "free"


def test_paying_during_the_grace_period_restores_good_standing(deliver, plans, customer):
    deliver(_created(customer))
    deliver(se.event("invoice.payment_failed",
                     se.invoice(invoice_id="in_1", sub_id="sub_life", customer=customer.stripe_customer_id,
                                created=T0 + 30 * DAY, paid=False),
                     created=T0 + 30 * DAY + 60))
    deliver(se.event("invoice.paid",
                     se.invoice(invoice_id="in_1", sub_id="sub_life", customer=customer.stripe_customer_id,
                                created=T0 + 30 * DAY, paid=True),
                     created=T0 + 31 * DAY))
    sub = Subscription.objects.get()
    assert (sub.status, sub.grace_period_end) == ("active", None)


def test_first_payment_failure_keeps_the_subscription_incomplete(deliver, plans, customer):
    deliver(_created(customer, status="incomplete"))
    deliver(se.event("invoice.payment_failed",
                     se.invoice(invoice_id="in_0", sub_id="sub_life", customer=customer.stripe_customer_id,
                                created=T0, paid=False, billing_reason="subscription_create"),
                     created=T0 + 5))
    assert Subscription.objects.get().status == "incomplete"
    assert entitlements_for(user=customer.user).plan_slug == "free"


def test_cancel_at_period_end_keeps_the_plan_until_the_end(deliver, plans, customer, client):
    now = int(time.time())
    period_end = now + 10 * DAY
    deliver(_created(customer, at=now - 100, period_end=period_end))
    deliver(se.event("customer.subscription.updated",
                     se.subscription(sub_id="sub_life", customer=customer.stripe_customer_id, status="active",
                                     lookup_key="lhama_plus_monthly", period_end=period_end,
                                     cancel_at_period_end=True),
                     created=now - 50))
    sub = Subscription.objects.get()
    assert (sub.status, sub.cancel_at_period_end) == ("active", True)
    assert entitlements_for(user=customer.user).plan_slug == "plus"
    client.force_login(customer.user)
    page = client.get("/account/").content.decode()
    assert f"Cancelled: Plus ends on {_ts(period_end):%-d %B %Y}" in page

    deliver(se.event("customer.subscription.deleted",
                     se.subscription(sub_id="sub_life", customer=customer.stripe_customer_id, status="canceled",
                                     lookup_key="lhama_plus_monthly", period_end=period_end,
                                     cancel_at_period_end=True, canceled_at=period_end),
                     created=now - 10))
    assert Subscription.objects.get().status == "canceled"
    assert entitlements_for(user=customer.user).plan_slug == "free"


def test_events_for_unknown_customers_change_nothing(deliver, plans):
    deliver(se.event("customer.subscription.created",
                     se.subscription(sub_id="sub_x", customer="cus_unknown", status="active",
                                     lookup_key="lhama_plus_monthly", period_end=T0 + DAY),
                     created=T0))
    assert Subscription.objects.count() == 0
    assert StripeEvent.objects.get().result == "ignored: unknown customer cus_unknown"


def test_unprocessed_event_is_retried_when_stripe_redelivers(client, webhook_secret, plans, customer,
                                                              django_capture_on_commit_callbacks):
    event = _created(customer)
    with django_capture_on_commit_callbacks(execute=False):  # the worker never ran it
        post_event(client, event)
    assert StripeEvent.objects.get().processed_at is None
    with django_capture_on_commit_callbacks(execute=True):
        response = post_event(client, event)
    assert response.content == b"duplicate"
    assert StripeEvent.objects.get().processed_at is not None
    assert Subscription.objects.get().status == "active"


@pytest.mark.parametrize(
    "body",
    [
        b"[1, 2, 3]",
        b'{"id": "evt_1", "type": "customer.subscription.created"}',
        b'{"id": "evt_1", "object": "event", "type": "x", "created": "yesterday", "data": {"object": {}}}',
        b'{"id": "evt_1", "object": "event", "type": "x", "created": 1, "data": {"object": "nope"}}',
        b"not json",
    ],
)
def test_a_validly_signed_but_malformed_payload_is_rejected(client, webhook_secret, db, body):
    response = client.post("/billing/stripe/webhook", data=body, content_type="application/json",
                           HTTP_STRIPE_SIGNATURE=stripe_signature(body))
    assert response.status_code == 400
    assert StripeEvent.objects.count() == 0


@pytest.mark.postgres
@pytest.mark.skipif(
    not os.environ.get("DATABASE_URL", "").startswith("postgres"),
    reason="a real double delivery needs PostgreSQL's concurrent writers (set DATABASE_URL=postgres://...)",
)
@pytest.mark.django_db(transaction=True)
def test_a_double_delivery_at_the_same_moment_has_one_effect(webhook_secret, caplog):
    """Stripe delivers one event twice at once (a retry racing the first attempt): two
    threads, each with its own database connection, released together by a barrier.
    One records it ("ok"), the other is told "duplicate"; it is processed once, and the
    balance is credited once. Ten rounds, so the race is really run."""
    caplog.set_level(logging.INFO, logger="billing.webhooks")
    rounds = 10
    accounts = [BalanceAccountFactory() for _ in range(rounds)]
    events = [
        se.event(
            "checkout.session.completed",
            se.checkout_session(session_id=f"cs_race_{n}", mode="payment", amount_total=1000,
                                metadata={"kind": "topup", "balance_account_id": str(account.pk)}),
            created=T0,
        )
        for n, account in enumerate(accounts)
    ]
    for event in events:
        barrier = threading.Barrier(2)

        def deliver(_n: int, event=event, barrier=barrier):
            try:
                client = Client()
                barrier.wait(timeout=10)
                return post_event(client, event)
            finally:
                connections.close_all()

        with ThreadPoolExecutor(max_workers=2) as pool:
            responses = list(pool.map(deliver, range(2)))
        assert sorted((r.status_code, r.content) for r in responses) == [(200, b"duplicate"), (200, b"ok")]

    assert StripeEvent.objects.count() == rounds
    assert StripeEvent.objects.filter(processed_at__isnull=True).count() == 0
    for event, account in zip(events, accounts, strict=True):
        session = event["data"]["object"]["id"]
        assert list(LedgerEntry.objects.filter(account=account).values_list("amount_micros", "reference")) == [
            (10_000_000, f"stripe:checkout:{session}")
        ]
        assert balance_micros(account_id=account.pk) == 10_000_000
        # Processed once: the second delivery's task found the event already processed.
        processed = [r for r in caplog.records if r.getMessage().startswith(f"stripe event {event['id']} ")]
        assert len(processed) == 1, [r.getMessage() for r in processed]
