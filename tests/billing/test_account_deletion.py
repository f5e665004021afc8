"""Deleting an account survives a Stripe error without half-deleting (issue 9): live
subscriptions are cancelled first; when Stripe fails nothing is deleted, the person is
still signed in and is told so, and trying again later works."""

from __future__ import annotations

from django.contrib.messages import get_messages
from django.urls import reverse

from accounts.models import User
from billing.models import Customer, Subscription
from tests.billing.factories import SubscriptionFactory
from tests.factories import TEST_PASSWORD


def test_a_stripe_error_deletes_nothing_and_says_so(client, user, plans, fake_stripe):
    SubscriptionFactory(customer__user=user, stripe_subscription_id="sub_live", plan=plans["plus"])
    client.force_login(user)
    # No route for the cancellation: Stripe answers 404, the SDK raises.
    response = client.post(reverse("accounts:delete"), {"confirm_email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    assert response["Location"] == reverse("accounts:profile")
    assert [str(m) for m in get_messages(response.wsgi_request)] == [
        "Your account could not be deleted: cancelling your subscription with Stripe failed, so nothing has been"
        " deleted. Please try again in a few minutes."
    ]
    assert fake_stripe.sent("DELETE", "/v1/subscriptions/sub_live")
    assert User.objects.filter(pk=user.pk).exists()
    assert Subscription.objects.filter(stripe_subscription_id="sub_live", customer__user=user).exists()
    assert client.session["_auth_user_id"] == str(user.pk)

    fake_stripe.routes[("DELETE", "/v1/subscriptions/sub_live")] = lambda p: {
        "id": "sub_live", "object": "subscription", "status": "canceled"}
    response = client.post(reverse("accounts:delete"), {"confirm_email": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 302 and response["Location"] == "/"
    assert not User.objects.filter(pk=user.pk).exists()
    assert Customer.objects.count() == 0
    assert "_auth_user_id" not in client.session
