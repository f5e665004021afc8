"""Smoke test against localstripe, a stateful fake Stripe server: the SDK talks to it over HTTP
and it sends signed webhooks to the running app (pytest-django's live server)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import httpx
import pytest

from billing.checkout import customer_get_or_create
from billing.entitlements import entitlements_for
from billing.models import Subscription
from billing.stripe_api import stripe_client
from tests.billing.conftest import WEBHOOK_SECRET
from tests.factories import UserFactory

LOCALSTRIPE = Path(__file__).resolve().parents[2] / ".venv" / "bin" / "localstripe"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def localstripe(tmp_path):
    executable = LOCALSTRIPE if LOCALSTRIPE.exists() else shutil.which("localstripe")
    if executable is None:
        pytest.skip("localstripe is not installed")
    port = _free_port()
    log = (tmp_path / "localstripe.log").open("w")
    process = subprocess.Popen([str(executable), "--port", str(port), "--from-scratch"], cwd=tmp_path, stdout=log,
                               stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                httpx.get(f"{url}/v1/customers", headers={"Authorization": "Bearer sk_test_x"}, timeout=1)
                break
            except httpx.TransportError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("localstripe did not start") from None
                time.sleep(0.2)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


@pytest.mark.django_db(transaction=True)
def test_subscription_created_in_localstripe_reaches_the_app_as_a_signed_webhook(
    localstripe, live_server, settings, tiers
):
    from billing.seed import seed_demo
    from tests.billing.conftest import _Out

    seed_demo(stdout=_Out())
    settings.STRIPE_SECRET_KEY = "sk_test_localstripe"
    settings.STRIPE_API_BASE = localstripe
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    httpx.post(f"{localstripe}/_config/webhooks/lhama",
               data={"url": f"{live_server.url}/billing/stripe/webhook", "secret": WEBHOOK_SECRET}).raise_for_status()

    user = UserFactory()
    customer = customer_get_or_create(user=user)  # our service, through the SDK, against localstripe
    client = stripe_client()
    # localstripe predates Prices: a legacy Plan whose id is the lookup key stands in for the price.
    client.v1.plans.create({"id": "lhama_plus_monthly", "amount": 999, "currency": "usd", "interval": "month",
                            "product": {"name": "Lhama Plus"}})
    client.v1.customers.payment_sources.create(
        customer.stripe_customer_id,
        {"source": {"object": "card", "number": "4242424242424242", "exp_month": "12", "exp_year": "2034",
                    "cvc": "123"}},
    )
    stripe_sub = client.v1.subscriptions.create({"customer": customer.stripe_customer_id,
                                                 "items": [{"plan": "lhama_plus_monthly"}]})
    assert stripe_sub.status == "active"

    deadline = time.monotonic() + 20
    while not Subscription.objects.filter(stripe_subscription_id=stripe_sub.id, status="active").exists():
        assert time.monotonic() < deadline, "no signed webhook reached the app"
        time.sleep(0.25)
    sub = Subscription.objects.get(stripe_subscription_id=stripe_sub.id)
    assert (sub.customer_id, sub.plan.slug) == (customer.pk, "plus")
    assert entitlements_for(user=user).plan_slug == "plus"

    client.v1.subscriptions.cancel(stripe_sub.id)
    deadline = time.monotonic() + 20
    while Subscription.objects.get(pk=sub.pk).status != "canceled":
        assert time.monotonic() < deadline, "the cancellation webhook never arrived"
        time.sleep(0.25)
    assert entitlements_for(user=user).plan_slug == "free"
