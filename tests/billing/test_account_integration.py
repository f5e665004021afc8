from __future__ import annotations

from django.conf import settings as django_settings

from accounts.services import user_data_export, user_delete
from billing.models import Customer
from tests.billing.factories import SubscriptionFactory


def test_periodic_tasks_are_registered_in_the_beat_schedule():
    schedule = {name: entry["task"] for name, entry in django_settings.CELERY_BEAT_SCHEDULE.items()}
    assert schedule["billing-resync-subscriptions"] == "billing.resync_subscriptions"
    assert schedule["billing-expire-grace-periods"] == "billing.expire_grace_periods"
    assert schedule["billing-quota-cleanup"] == "billing.quota_cleanup"
    from config.celery import app

    app.loader.import_default_modules()
    assert {"billing.process_stripe_event", "billing.resync_subscriptions", "billing.expire_grace_periods",
            "billing.quota_cleanup"} <= set(app.tasks)


def test_data_export_includes_the_subscription(user, plans):
    SubscriptionFactory(customer__user=user, customer__stripe_customer_id="cus_exp", stripe_subscription_id="sub_exp",
                        plan=plans["plus"])
    billing = user_data_export(user=user)["billing"]
    assert billing["stripe_customer_id"] == "cus_exp"
    assert [(s["stripe_subscription_id"], s["plan"], s["status"]) for s in billing["subscriptions"]] == [
        ("sub_exp", "plus", "active")]


def test_deleting_the_account_cancels_live_subscriptions_in_stripe(user, plans, fake_stripe):
    SubscriptionFactory(customer__user=user, stripe_subscription_id="sub_live", plan=plans["plus"])
    SubscriptionFactory(customer=Customer.objects.get(user=user), stripe_subscription_id="sub_old", status="canceled",
                        plan=plans["plus"])
    fake_stripe.routes[("DELETE", "/v1/subscriptions/sub_live")] = lambda p: {"id": "sub_live", "object": "subscription",
                                                                             "status": "canceled"}
    user_delete(user=user)
    assert [(r.method, r.path) for r in fake_stripe.requests] == [("DELETE", "/v1/subscriptions/sub_live")]
    assert Customer.objects.count() == 0
