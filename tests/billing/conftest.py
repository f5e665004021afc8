from __future__ import annotations

import hashlib
import hmac
import json
import time
from dataclasses import dataclass, field
from urllib.parse import parse_qsl, urlsplit

import pytest
import stripe

from assistant.models import ModelTier
from billing import stripe_api
from billing.models import Plan
from billing.seed import seed_demo

WEBHOOK_SECRET = "whsec_test_lhama_billing"


class _Out:
    def write(self, _text: str) -> None:
        pass


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    # Test users' passwords need no slow hash; PBKDF2 would dominate these tests' run time.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def tiers(db):
    specs = [("llama-3.1-8b", "Llama 3.1 8B", 10), ("llama-3.1-70b", "Llama 3.1 70B", 20),
             ("llama-3.1-405b", "Llama 3.1 405B", 30)]
    return {
        slug: ModelTier.objects.get_or_create(
            slug=slug,
            defaults={"display_name": name, "served_model_name": slug, "base_url": "http://127.0.0.1:9/v1",
                      "sort_order": order},
        )[0]
        for slug, name, order in specs
    }


@pytest.fixture
def plans(tiers):
    seed_demo(stdout=_Out())
    return {plan.slug: plan for plan in Plan.objects.all()}


@pytest.fixture
def stripe_keys(settings):
    settings.STRIPE_SECRET_KEY = "sk_test_lhama"
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    settings.SITE_URL = "https://lhama.example"
    return settings


@pytest.fixture
def webhook_secret(settings):
    settings.STRIPE_WEBHOOK_SECRET = WEBHOOK_SECRET
    return WEBHOOK_SECRET


def stripe_signature(payload: bytes, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None) -> str:
    """Exactly Stripe's scheme: t=<unix time>,v1=<hex HMAC-SHA256(secret, "<t>.<raw body>")>."""
    timestamp = int(time.time()) if timestamp is None else timestamp
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + payload, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def post_event(client, event: dict, *, secret: str = WEBHOOK_SECRET, timestamp: int | None = None, signature=None):
    payload = json.dumps(event).encode()
    header = signature if signature is not None else stripe_signature(payload, secret=secret, timestamp=timestamp)
    return client.post(
        "/billing/stripe/webhook", data=payload, content_type="application/json", HTTP_STRIPE_SIGNATURE=header
    )


@dataclass
class RecordedRequest:
    method: str
    path: str
    headers: dict
    params: dict

    def header(self, name: str) -> str | None:
        lowered = {k.lower(): v for k, v in self.headers.items()}
        return lowered.get(name.lower())


@dataclass
class StripeAnswer:
    """An answer the fake gives instead of its route's: a status, a JSON body, headers."""

    status: int
    body: dict
    headers: dict = field(default_factory=dict)


# Stripe's error answers, as its API sends them. The SDK retries a 500 (and 5xx), and a
# 409 or any answer carrying "Stripe-Should-Retry: true" (Stripe sends it with the 429 of
# a lock timeout), up to max_network_retries; never a 402.
STRIPE_ERRORS = {
    402: StripeAnswer(402, {"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined.", "request_log_url": "https://dashboard.stripe.com/test/logs/req_x",
    }}),
    429: StripeAnswer(429, {"error": {
        "type": "invalid_request_error", "code": "lock_timeout",
        "message": "This object cannot be accessed right now because another API request or Stripe process is "
                   "currently accessing it. If you see this error intermittently, retry the request.",
    }}, {"stripe-should-retry": "true"}),
    500: StripeAnswer(500, {"error": {"type": "api_error", "message": "An unknown error occurred"}}),
}


@dataclass
class RecordingStripeHTTP(stripe.HTTPClient):
    """The network edge replaced: records every request the SDK sends and answers from
    `routes`, or with the errors queued by `fail` (one per request, first)."""

    name = "recording"
    routes: dict = field(default_factory=dict)  # (method, path) -> callable(params) -> dict
    requests: list = field(default_factory=list)
    failures: dict = field(default_factory=dict)  # (method, path) -> [StripeAnswer, ...]

    def __post_init__(self) -> None:
        super().__init__()

    def fail(self, method: str, path: str, *statuses: int) -> None:
        """The next requests to (method, path) get these error answers (402, 429, 500), in order."""
        self.failures.setdefault((method.upper(), path), []).extend(STRIPE_ERRORS[s] for s in statuses)

    def request(self, method, url, headers, post_data=None, *, _usage=None):
        parts = urlsplit(url)
        body = post_data.decode() if isinstance(post_data, bytes) else (post_data or parts.query)
        params = dict(parse_qsl(body, keep_blank_values=True))
        self.requests.append(RecordedRequest(method.upper(), parts.path, dict(headers), params))
        request_id = {"request-id": f"req_{len(self.requests)}"}
        queued = self.failures.get((method.upper(), parts.path))
        if queued:
            answer = queued.pop(0)
            return json.dumps(answer.body), answer.status, {**answer.headers, **request_id}
        route = self.routes.get((method.upper(), parts.path))
        if route is None:
            error = {"error": {"type": "invalid_request_error", "message": f"no fake route {method} {parts.path}"}}
            return json.dumps(error), 404, {}
        return json.dumps(route(params)), 200, request_id

    def request_stream(self, method, url, headers, post_data=None, *, _usage=None):
        raise NotImplementedError

    def close(self) -> None:
        pass

    def sent(self, method: str, path: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.method == method and r.path == path]


@pytest.fixture
def fake_stripe(stripe_keys):
    fake = RecordingStripeHTTP()
    stripe_api.stripe_http_client_set(fake)
    yield fake
    stripe_api.stripe_http_client_set(None)
