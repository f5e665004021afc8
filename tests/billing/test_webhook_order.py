"""Property: any delivery order, with duplicates, ends in the state in-order delivery reaches."""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from accounts.models import User
from billing.entitlements import plan_for_user
from billing.models import Subscription
from billing.webhooks import stripe_event_record
from tests.billing import stripe_events as se
from tests.billing.factories import CustomerFactory

T0 = 1_790_000_000
DAY = 86_400
STEPS = ["renew", "fail", "recover", "cancel_at_end", "uncancel", "upgrade", "downgrade"]
KEYS = {"plus": "lhama_plus_monthly", "pro": "lhama_pro_monthly"}
_runs = itertools.count()


@dataclass
class Model:
    status: str = "incomplete"
    plan: str = "plus"
    cancel: bool = False
    period_end: int = T0 + 30 * DAY


def lifecycle(steps: list[str], end: bool, *, sub_id: str, customer: str, prefix: str) -> tuple[list[dict], Model]:
    """The events Stripe would send for these steps, in the order it sends them, and the expected outcome."""
    model = Model()
    events: list[dict] = []
    ids = itertools.count()

    def emit(type_: str, obj: dict, at: int) -> None:
        events.append(se.event(type_, obj, created=at, event_id=f"evt_{prefix}_{next(ids)}"))

    def snapshot(at: int, type_: str = "customer.subscription.updated", canceled_at: int | None = None) -> None:
        emit(type_, se.subscription(sub_id=sub_id, customer=customer, status=model.status, lookup_key=KEYS[model.plan],
                                    period_end=model.period_end, cancel_at_period_end=model.cancel,
                                    canceled_at=canceled_at), at)

    def invoice(at: int, *, paid: bool, reason: str = "subscription_cycle") -> None:
        obj = se.invoice(invoice_id=f"in_{prefix}_{at}", sub_id=sub_id, customer=customer, created=at, paid=paid,
                         billing_reason=reason)
        emit("invoice.paid" if paid else "invoice.payment_failed", obj, at)

    snapshot(T0, "customer.subscription.created")  # incomplete
    model.status = "active"
    invoice(T0, paid=True, reason="subscription_create")
    snapshot(T0)
    for i, step in enumerate(steps, start=1):
        at = T0 + i * 3600
        if step in ("renew", "recover"):
            if step == "renew":
                model.period_end += 30 * DAY
            model.status = "active"
            invoice(at, paid=True)
            snapshot(at)
        elif step == "fail":
            model.status = "past_due"
            invoice(at, paid=False)
            snapshot(at)
        elif step in ("cancel_at_end", "uncancel"):
            model.cancel = step == "cancel_at_end"
            snapshot(at)
        else:
            model.plan = "pro" if step == "upgrade" else "plus"
            snapshot(at)
    if end:
        at = T0 + (len(steps) + 1) * 3600
        model.status = "canceled"
        snapshot(at, "customer.subscription.deleted", canceled_at=at)
    return events, model


def state(sub_id: str) -> tuple:
    sub = Subscription.objects.select_related("plan").get(stripe_subscription_id=sub_id)
    return (sub.status, sub.plan.slug, sub.stripe_price_lookup_key, sub.current_period_end, sub.cancel_at_period_end,
            sub.canceled_at, sub.grace_period_end)


@pytest.mark.django_db
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(st.sampled_from(STEPS), min_size=1, max_size=7),
    end=st.booleans(),
    data=st.data(),
)
def test_shuffled_and_duplicated_delivery_ends_in_the_in_order_state(
    plans, steps, end, data, django_capture_on_commit_callbacks
):
    run = next(_runs)
    # Users without a password hash: hashing would dominate the run time of each example.
    in_order_customer = CustomerFactory(user=User.objects.create(email=f"in-order-{run}@example.com"))
    shuffled_customer = CustomerFactory(user=User.objects.create(email=f"shuffled-{run}@example.com"))
    ordered, model = lifecycle(steps, end, sub_id=f"sub_a{run}", customer=in_order_customer.stripe_customer_id,
                               prefix=f"a{run}")
    others, _ = lifecycle(steps, end, sub_id=f"sub_b{run}", customer=shuffled_customer.stripe_customer_id,
                          prefix=f"b{run}")
    duplicates = data.draw(st.lists(st.sampled_from(others), max_size=len(others)), label="duplicates")
    delivery = data.draw(st.permutations(others + duplicates), label="delivery")

    with django_capture_on_commit_callbacks(execute=True):
        for event in ordered:
            stripe_event_record(event=event)
    with django_capture_on_commit_callbacks(execute=True):
        for event in delivery:
            stripe_event_record(event=event)

    in_order = state(f"sub_a{run}")
    assert in_order[:3] == (model.status, model.plan, KEYS[model.plan])
    assert in_order[3:5] == (datetime.fromtimestamp(model.period_end, tz=UTC), model.cancel)
    assert state(f"sub_b{run}") == in_order
    moment = datetime.fromtimestamp(T0 + 10 * 3600, tz=UTC)
    assert plan_for_user(user=shuffled_customer.user, now=moment) == plan_for_user(user=in_order_customer.user,
                                                                                   now=moment)
