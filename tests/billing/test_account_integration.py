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
    assert schedule["billing-report-api-usage"] == "billing.report_api_usage"
    from config.celery import app

    app.loader.import_default_modules()
    assert {"billing.process_stripe_event", "billing.resync_subscriptions", "billing.expire_grace_periods",
            "billing.quota_cleanup", "billing.report_api_usage"} <= set(app.tasks)


def test_data_export_includes_the_subscription(user, plans):
    SubscriptionFactory(customer__user=user, customer__stripe_customer_id="cus_exp", stripe_subscription_id="sub_exp",
                        plan=plans["plus"])
    billing = user_data_export(user=user)["billing"]
    assert billing["stripe_customer_id"] == "cus_exp"
    assert [(s["stripe_subscription_id"], s["plan"], s["status"]) for s in billing["subscriptions"]] == [
        ("sub_exp", "plus", "active")]


def test_data_export_includes_the_api_usage_and_deletion_keeps_it_without_the_account(user, plans):
    from billing.metering import api_usage_record
    from billing.models import ApiUsageRecord

    api_usage_record(user=user, key_id="7", key_name="Laptop", request_id="chatcmpl-x1", tier_slug="llama-3.1-8b",
                     prompt_tokens=12, completion_tokens=34)
    [usage] = user_data_export(user=user)["billing"]["api_usage"]
    assert (usage["request_id"], usage["key_name"], usage["model"], usage["prompt_tokens"], usage["completion_tokens"],
            usage["billed"]) == ("chatcmpl-x1", "Laptop", "llama-3.1-8b", 12, 34, False)
    user_delete(user=user)
    record = ApiUsageRecord.objects.get(request_id="chatcmpl-x1")
    assert (record.user_id, record.total_tokens) == (None, 46)


def test_deleting_the_account_cancels_live_subscriptions_in_stripe(user, plans, fake_stripe):
    SubscriptionFactory(customer__user=user, stripe_subscription_id="sub_live", plan=plans["plus"])
    SubscriptionFactory(customer=Customer.objects.get(user=user), stripe_subscription_id="sub_old", status="canceled",
                        plan=plans["plus"])
    fake_stripe.routes[("DELETE", "/v1/subscriptions/sub_live")] = lambda p: {"id": "sub_live", "object": "subscription",
                                                                             "status": "canceled"}
    user_delete(user=user)
    assert [(r.method, r.path) for r in fake_stripe.requests] == [("DELETE", "/v1/subscriptions/sub_live")]
    assert Customer.objects.count() == 0
