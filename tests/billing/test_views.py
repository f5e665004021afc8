from __future__ import annotations

import re

from billing.entitlements import entitlements_for
from billing.grants import plan_grant_create
from billing.quotas import quota_reserve, quota_settle
from tests.billing.factories import CustomerFactory, SubscriptionFactory


def _cards(html: str) -> dict[str, str]:
    return dict(re.findall(r'<section class="card plan-card[^"]*"[^>]*data-plan="(\w+)">(.*?)</section>', html, re.S))


def test_pricing_renders_three_cards_from_the_plans_in_plain_words(client, plans):
    html = client.get("/billing/pricing").content.decode()
    cards = _cards(html)
    assert list(cards) == ["free", "plus", "pro"]
    assert "Models: Llama 3.1 8B</li>" in cards["free"]
    assert "50,000 tokens a day (about 37,500 words), reset at midnight UTC" in cards["free"]
    assert "Up to 10 messages a minute" in cards["free"]
    assert "Sponsored suggestions beside some answers" in cards["free"]
    assert "Models: Llama 3.1 8B, Llama 3.1 70B</li>" in cards["plus"]
    assert "No ads" in cards["plus"]
    assert "Models: Llama 3.1 8B, Llama 3.1 70B, Llama 3.1 405B" in cards["pro"]
    assert "Conversations up to 64K tokens of context" in cards["pro"]
    assert "<strong>$29.99</strong> a month" in cards["pro"]
    assert "or $299.00 a year" in cards["pro"]


def test_without_stripe_the_buttons_explain_billing_is_not_configured(client, user, plans, settings):
    settings.STRIPE_SECRET_KEY = ""
    client.force_login(user)
    html = client.get("/billing/pricing").content.decode()
    assert "Billing is not configured on this server (no Stripe key)" in html
    cards = _cards(html)
    assert '<button type="button" class="button" disabled aria-describedby="billing-not-configured">Subscribe</button>' in cards["plus"]
    assert "<form" not in cards["plus"]


def test_with_stripe_signed_in_people_get_monthly_and_yearly_buttons(client, user, plans, stripe_keys):
    client.force_login(user)
    cards = _cards(client.get("/billing/pricing").content.decode())
    assert 'action="/billing/subscribe/pro"' in cards["pro"]
    assert 'value="monthly"' in cards["pro"] and 'value="yearly"' in cards["pro"]
    assert re.search(r'name="request_token" value="[0-9a-f]{32}"', cards["pro"])


def test_with_stripe_guests_are_asked_to_sign_up(client, plans, stripe_keys):
    cards = _cards(client.get("/billing/pricing").content.decode())
    assert "Sign up to subscribe" in cards["plus"]
    assert "<form" not in cards["plus"]


def test_the_current_plan_is_marked(client, user, plans):
    SubscriptionFactory(customer__user=user, plan=plans["plus"])
    client.force_login(user)
    cards = _cards(client.get("/billing/pricing").content.decode())
    assert [slug for slug, card in cards.items() if "Your plan" in card] == ["plus"]


def test_account_page_shows_plan_renewal_and_todays_usage(client, user, plans):
    sub = SubscriptionFactory(customer__user=user, plan=plans["plus"])
    from datetime import UTC, datetime

    sub.current_period_end = datetime(2031, 3, 4, tzinfo=UTC)
    sub.save()
    reservation = quota_reserve(subject=f"user:{user.pk}", entitlements=entitlements_for(user=user), tokens=5_000)
    quota_settle(reservation=reservation, used_tokens=1_234)
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert "Plan: Plus</h2>" in html
    assert "Renews on 4 March 2031." in html
    assert "1,234 of 500,000 tokens" in html
    assert "498,766 tokens left today; the budget resets at midnight UTC (" in html
    assert "1 of 30 messages this minute" in html
    assert 'action="/billing/portal"' in html


def test_account_page_of_a_free_user_has_no_portal_button(client, user, plans):
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert "Plan: Free</h2>" in html
    assert "0 of 50,000 tokens" in html
    assert 'action="/billing/portal"' not in html


def test_account_page_shows_a_staff_grant(client, user, plans):
    plan_grant_create(user=user, plan=plans["pro"], reason="conference speaker")
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert "Plan: Pro</h2>" in html
    assert "Granted by staff (conference speaker)." in html


def test_a_user_never_sees_another_users_usage(client, user, other_user, plans):
    reservation = quota_reserve(subject=f"user:{other_user.pk}", entitlements=entitlements_for(user=other_user),
                                tokens=9_000)
    quota_settle(reservation=reservation, used_tokens=8_765)
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert "8,765" not in html
    assert "0 of 50,000 tokens" in html
    # The usage is only ever the signed-in user's: no parameter selects another subject.
    html = client.get(f"/account/?user={other_user.pk}&subject=user:{other_user.pk}").content.decode()
    assert "8,765" not in html


def test_success_page_waits_for_the_webhook(client, user, plans):
    client.force_login(user)
    html = client.get("/billing/success?session_id=cs_test_9").content.decode()
    assert "Confirming your payment" in html
    assert 'hx-get="/billing/success/status?session_id=cs_test_9"' in html
    assert 'hx-trigger="every 2s"' in html
    assert "is active" not in html

    # Not yet active: the poll answers "still waiting" (and keeps polling).
    sub = SubscriptionFactory(customer=CustomerFactory(user=user), plan=plans["plus"], status="incomplete",
                              checkout_session_id="cs_test_9")
    partial = client.get("/billing/success/status?session_id=cs_test_9").content.decode()
    assert "Confirming your payment" in partial and "<html" not in partial

    sub.status = "active"
    sub.save()
    partial = client.get("/billing/success/status?session_id=cs_test_9").content.decode()
    assert "Your Plus plan is active" in partial
    assert "hx-trigger" not in partial


def test_success_page_of_someone_elses_session_never_confirms(client, user, other_user, plans):
    SubscriptionFactory(customer__user=other_user, plan=plans["pro"], checkout_session_id="cs_theirs")
    client.force_login(user)
    partial = client.get("/billing/success/status?session_id=cs_theirs").content.decode()
    assert "Confirming your payment" in partial
    assert "Pro" not in partial


def test_success_page_rejects_a_malformed_session_id(client, user):
    client.force_login(user)
    assert client.get("/billing/success?session_id=<x>").status_code == 400
    assert client.get("/billing/success/status").status_code == 400


def test_account_page_warns_during_the_grace_period(client, user, plans):
    from datetime import UTC, datetime

    SubscriptionFactory(customer__user=user, plan=plans["pro"], status="past_due",
                        grace_period_end=datetime(2031, 5, 6, 7, 8, tzinfo=UTC))
    client.force_login(user)
    html = client.get("/account/").content.decode()
    assert "Plan: Pro</h2>" in html
    assert "Your last payment failed. Update your card before 6 May 2031, 07:08 UTC to keep Pro" in html
