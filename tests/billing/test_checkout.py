"""Checkout, Portal and other Stripe calls through the real SDK, with only its HTTP transport faked."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from billing.checkout import topup_checkout_create
from billing.models import Customer, Subscription
from billing.stripe_api import STRIPE_API_VERSION, BillingNotConfigured
from billing.subscriptions import subscription_resync, subscriptions_expire_grace
from tests.billing import stripe_events as se
from tests.billing.factories import BalanceAccountFactory, CustomerFactory, SubscriptionFactory

TOKEN = "0123456789abcdef0123456789abcdef"


@pytest.fixture
def stripe_routes(fake_stripe):
    fake_stripe.routes.update({
        ("POST", "/v1/customers"): lambda p: {"id": "cus_new1", "object": "customer", "email": p.get("email")},
        ("GET", "/v1/prices"): lambda p: {
            "object": "list", "url": "/v1/prices", "has_more": False,
            "data": [{"id": f"price_for_{p['lookup_keys[0]']}", "object": "price", "lookup_key": p["lookup_keys[0]"]}],
        },
        ("POST", "/v1/checkout/sessions"): lambda p: {
            "id": "cs_test_1", "object": "checkout.session", "url": "https://checkout.stripe.com/c/pay/cs_test_1",
        },
        ("POST", "/v1/billing_portal/sessions"): lambda p: {
            "id": "bps_1", "object": "billing_portal.session", "url": f"https://billing.stripe.com/p/session/{p['customer']}",
        },
    })
    return fake_stripe


def test_subscribe_creates_a_checkout_session_with_the_right_parameters(client, user, plans, stripe_routes):
    client.force_login(user)
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN})
    assert response.status_code == 302
    assert response["Location"] == "https://checkout.stripe.com/c/pay/cs_test_1"

    [create_customer] = stripe_routes.sent("POST", "/v1/customers")
    assert create_customer.params["email"] == user.email
    assert create_customer.params["metadata[user_id]"] == str(user.pk)
    assert create_customer.header("Idempotency-Key") == f"lhama-customer-{user.pk}"
    assert Customer.objects.get(user=user).stripe_customer_id == "cus_new1"

    [price_lookup] = stripe_routes.sent("GET", "/v1/prices")
    assert price_lookup.params["lookup_keys[0]"] == "lhama_plus_monthly"
    assert price_lookup.params["active"] == "true"

    [session] = stripe_routes.sent("POST", "/v1/checkout/sessions")
    assert session.params["mode"] == "subscription"
    assert session.params["customer"] == "cus_new1"
    assert session.params["client_reference_id"] == str(user.pk)
    assert session.params["line_items[0][price]"] == "price_for_lhama_plus_monthly"
    assert session.params["line_items[0][quantity]"] == "1"
    assert session.params["success_url"] == "https://lhama.example/billing/success?session_id={CHECKOUT_SESSION_ID}"
    assert session.params["cancel_url"] == "https://lhama.example/billing/pricing"
    assert session.params["subscription_data[metadata][plan_slug]"] == "plus"
    assert session.header("Idempotency-Key") == f"lhama-checkout-{user.pk}-plus-monthly-{TOKEN}"

    for request in stripe_routes.requests:
        assert request.header("Stripe-Version") == STRIPE_API_VERSION
        assert request.header("Authorization") == "Bearer sk_test_lhama"


def test_a_monthly_subscription_carries_the_metered_api_prices_of_its_tiers(client, user, plans, stripe_routes):
    from billing.models import ApiTierPrice

    ApiTierPrice.objects.filter(tier_slug="llama-3.1-8b").update(stripe_price_lookup_key="lhama_api_8b")
    ApiTierPrice.objects.filter(tier_slug="llama-3.1-70b").update(stripe_price_lookup_key="lhama_api_70b")
    ApiTierPrice.objects.filter(tier_slug="llama-3.1-405b").update(stripe_price_lookup_key="lhama_api_405b")
    client.force_login(user)
    client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN})
    [session] = stripe_routes.sent("POST", "/v1/checkout/sessions")
    # Plus unlocks 8B and 70B: their metered prices, without a quantity (Stripe meters them).
    items = {k: v for k, v in session.params.items() if k.startswith("line_items")}
    assert items == {
        "line_items[0][price]": "price_for_lhama_plus_monthly", "line_items[0][quantity]": "1",
        "line_items[1][price]": "price_for_lhama_api_70b", "line_items[2][price]": "price_for_lhama_api_8b",
    }
    # Yearly: the plan's price alone (metered prices bill monthly).
    client.post("/billing/subscribe/plus", {"interval": "yearly", "request_token": TOKEN})
    yearly = stripe_routes.sent("POST", "/v1/checkout/sessions")[1]
    assert [k for k in yearly.params if k.startswith("line_items")] == ["line_items[0][price]", "line_items[0][quantity]"]


def test_the_customer_is_reused_and_yearly_uses_the_yearly_price(client, user, plans, stripe_routes):
    CustomerFactory(user=user, stripe_customer_id="cus_existing")
    client.force_login(user)
    client.post("/billing/subscribe/pro", {"interval": "yearly", "request_token": TOKEN})
    assert stripe_routes.sent("POST", "/v1/customers") == []
    [price_lookup] = stripe_routes.sent("GET", "/v1/prices")
    assert price_lookup.params["lookup_keys[0]"] == "lhama_pro_yearly"
    [session] = stripe_routes.sent("POST", "/v1/checkout/sessions")
    assert (session.params["customer"], session.params["line_items[0][price]"]) == ("cus_existing",
                                                                                   "price_for_lhama_pro_yearly")
    assert session.header("Idempotency-Key") == f"lhama-checkout-{user.pk}-pro-yearly-{TOKEN}"


def test_a_double_submit_sends_the_same_idempotency_key(client, user, plans, stripe_routes):
    client.force_login(user)
    for _ in range(2):
        client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN})
    keys = [r.header("Idempotency-Key") for r in stripe_routes.sent("POST", "/v1/checkout/sessions")]
    assert keys == [f"lhama-checkout-{user.pk}-plus-monthly-{TOKEN}"] * 2


@pytest.mark.parametrize(
    ("slug", "data", "status"),
    [
        ("plus", {"interval": "monthly"}, 400),  # no request token
        ("plus", {"interval": "monthly", "request_token": "<script>"}, 400),
        ("plus", {"interval": "weekly", "request_token": TOKEN}, 302),  # redirected back with a message
        ("free", {"interval": "monthly", "request_token": TOKEN}, 302),  # Free is not sold
        ("nope", {"interval": "monthly", "request_token": TOKEN}, 404),
    ],
)
def test_bad_subscribe_requests_reach_no_stripe_endpoint(client, user, plans, stripe_routes, slug, data, status):
    client.force_login(user)
    response = client.post(f"/billing/subscribe/{slug}", data)
    assert response.status_code == status
    if status == 302:
        assert response["Location"] == "/billing/pricing"
    assert stripe_routes.sent("POST", "/v1/checkout/sessions") == []


def test_a_missing_price_is_reported_not_charged(client, user, plans, stripe_routes):
    stripe_routes.routes[("GET", "/v1/prices")] = lambda p: {"object": "list", "url": "/v1/prices", "has_more": False,
                                                             "data": []}
    client.force_login(user)
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN}, follow=True)
    assert "No active Stripe price has the lookup key &#x27;lhama_plus_monthly&#x27;." in response.content.decode()
    assert stripe_routes.sent("POST", "/v1/checkout/sessions") == []


def test_a_stripe_error_is_reported(client, user, plans, stripe_routes):
    del stripe_routes.routes[("POST", "/v1/checkout/sessions")]  # the fake answers 404
    client.force_login(user)
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN}, follow=True)
    assert "Stripe could not start the checkout just now. Nothing was charged" in response.content.decode()


CHECKOUT_FAILED = "Stripe could not start the checkout just now. Nothing was charged; please try again."


@pytest.mark.parametrize("status", [429, 500])
def test_a_retryable_stripe_error_is_retried_with_the_same_idempotency_key(client, user, plans, stripe_routes,
                                                                            status):
    """A 500, or a 429 that Stripe marks retryable: the SDK tries again (max_network_retries
    = 2, so three attempts in all) with the same idempotency key, and the third succeeds."""
    stripe_routes.fail("POST", "/v1/checkout/sessions", status, status)
    client.force_login(user)
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN})
    assert (response.status_code, response["Location"]) == (302, "https://checkout.stripe.com/c/pay/cs_test_1")
    attempts = stripe_routes.sent("POST", "/v1/checkout/sessions")
    assert len(attempts) == 3
    assert {a.header("Idempotency-Key") for a in attempts} == {f"lhama-checkout-{user.pk}-plus-monthly-{TOKEN}"}


@pytest.mark.parametrize("status", [429, 500])
def test_a_stripe_error_that_outlasts_the_retries_is_reported(client, user, plans, stripe_routes, status):
    stripe_routes.fail("POST", "/v1/checkout/sessions", status, status, status, status)
    client.force_login(user)
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN}, follow=True)
    assert response.redirect_chain == [("/billing/pricing", 302)]
    assert CHECKOUT_FAILED in response.content.decode()
    assert len(stripe_routes.sent("POST", "/v1/checkout/sessions")) == 3  # 1 + max_network_retries
    assert len(stripe_routes.failures[("POST", "/v1/checkout/sessions")]) == 1  # the fourth was never asked


def test_a_402_is_not_retried_and_the_person_is_told(client, user, plans, stripe_routes):
    stripe_routes.fail("POST", "/v1/checkout/sessions", 402)
    client.force_login(user)
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN}, follow=True)
    assert response.redirect_chain == [("/billing/pricing", 302)]
    assert CHECKOUT_FAILED in response.content.decode()
    assert len(stripe_routes.sent("POST", "/v1/checkout/sessions")) == 1
    assert not Subscription.objects.exists()


def test_subscribe_needs_login(client, plans, stripe_routes):
    response = client.post("/billing/subscribe/plus", {"interval": "monthly", "request_token": TOKEN})
    assert response.status_code == 302
    assert response["Location"].startswith("/accounts/login/")
    assert stripe_routes.requests == []


def test_portal_opens_the_users_own_customer(client, user, stripe_routes):
    CustomerFactory(user=user, stripe_customer_id="cus_mine")
    client.force_login(user)
    response = client.post("/billing/portal")
    assert response["Location"] == "https://billing.stripe.com/p/session/cus_mine"
    [portal] = stripe_routes.sent("POST", "/v1/billing_portal/sessions")
    assert portal.params == {"customer": "cus_mine", "return_url": "https://lhama.example/account/"}
    assert portal.header("Stripe-Version") == STRIPE_API_VERSION


def test_a_user_cannot_open_another_users_portal(client, user, other_user, stripe_routes):
    CustomerFactory(user=other_user, stripe_customer_id="cus_theirs")
    client.force_login(user)
    response = client.post("/billing/portal", {"customer": "cus_theirs"})
    assert response.status_code == 302
    assert response["Location"] == "/account/"
    assert stripe_routes.requests == []
    CustomerFactory(user=user, stripe_customer_id="cus_mine")
    client.post("/billing/portal", {"customer": "cus_theirs"}, QUERY_STRING="customer=cus_theirs")
    assert [r.params["customer"] for r in stripe_routes.sent("POST", "/v1/billing_portal/sessions")] == ["cus_mine"]


def test_portal_needs_login_and_post(client, stripe_routes):
    assert client.post("/billing/portal")["Location"].startswith("/accounts/login/")
    assert stripe_routes.requests == []


def test_topup_checkout_is_a_payment_for_the_balance_account(user, stripe_routes):
    account = BalanceAccountFactory(name="Acme")
    url = topup_checkout_create(account_id=account.pk, amount_micros=25_000_000, user=user,
                                success_url="https://lhama.example/ads/account/?paid=1",
                                cancel_url="https://lhama.example/ads/account/")
    assert url == "https://checkout.stripe.com/c/pay/cs_test_1"
    [session] = stripe_routes.sent("POST", "/v1/checkout/sessions")
    assert session.params["mode"] == "payment"
    assert session.params["metadata[balance_account_id]"] == str(account.pk)
    assert session.params["line_items[0][price_data][unit_amount]"] == "2500"
    assert session.params["line_items[0][price_data][currency]"] == "usd"
    assert session.params["client_reference_id"] == str(user.pk)
    assert session.params["success_url"] == "https://lhama.example/ads/account/?paid=1"
    assert re.fullmatch(rf"lhama-topup-{account.pk}-[0-9a-f]{{32}}", session.header("Idempotency-Key"))


@pytest.mark.parametrize("amount", [0, 4_990_000, 10_000_000_010_000, 5_000_001])
def test_topup_amounts_out_of_range_are_refused_before_stripe(user, stripe_routes, amount):
    account = BalanceAccountFactory()
    with pytest.raises(ValueError):
        topup_checkout_create(account_id=account.pk, amount_micros=amount, user=user, success_url="https://x/",
                              cancel_url="https://x/")
    assert stripe_routes.requests == []


def test_topup_without_stripe_raises_billing_not_configured(user, settings):
    settings.STRIPE_SECRET_KEY = ""
    account = BalanceAccountFactory()
    with pytest.raises(BillingNotConfigured):
        topup_checkout_create(account_id=account.pk, amount_micros=10_000_000, user=user, success_url="https://x/",
                              cancel_url="https://x/")


def test_expired_grace_cancels_in_stripe_and_applies_its_answer(plans, fake_stripe):
    sub = SubscriptionFactory(stripe_subscription_id="sub_overdue", status="past_due", plan=plans["plus"],
                              grace_period_end=datetime(2026, 1, 1, tzinfo=UTC))
    canceled = se.subscription(sub_id="sub_overdue", customer=sub.customer.stripe_customer_id, status="canceled",
                               lookup_key="lhama_plus_monthly", period_end=1_790_000_000, canceled_at=1_790_000_000)
    fake_stripe.routes[("DELETE", "/v1/subscriptions/sub_overdue")] = lambda p: canceled
    assert subscriptions_expire_grace(now=datetime(2026, 1, 2, tzinfo=UTC)) == 1
    assert [r.path for r in fake_stripe.sent("DELETE", "/v1/subscriptions/sub_overdue")] == ["/v1/subscriptions/sub_overdue"]
    sub.refresh_from_db()
    assert (sub.status, sub.grace_period_end) == ("canceled", None)


def test_resync_takes_stripes_current_state(plans, fake_stripe):
    sub = SubscriptionFactory(stripe_subscription_id="sub_sync", status="past_due", plan=plans["plus"])
    current = se.subscription(sub_id="sub_sync", customer=sub.customer.stripe_customer_id, status="active",
                              lookup_key="lhama_pro_yearly", period_end=1_800_000_000)
    fake_stripe.routes[("GET", "/v1/subscriptions/sub_sync")] = lambda p: current
    subscription_resync(stripe_subscription_id="sub_sync")
    sub = Subscription.objects.get(pk=sub.pk)
    assert (sub.status, sub.plan.slug, sub.current_period_end) == ("active", "pro", datetime.fromtimestamp(1_800_000_000, tz=UTC))
