"""Stripe at the network edge for the browser journeys: a small HTTP server in the test
process that the live server's real Stripe SDK talks to (STRIPE_API_BASE), and the
hosted Checkout page its sessions point at (https://checkout.stripe.com/c/pay/<id>, as
Stripe's: the page's CSP form-action allows exactly that origin), answered by
Playwright's route (`route_checkout`) so nothing leaves the machine; its Pay link sends
the browser back to the session's success_url. Webhooks are then posted to the live server signed exactly as
Stripe signs them (tests/billing/conftest.py's stripe_signature) and built by
tests/billing/stripe_events.py.

Hand-written on http.server: localstripe (tests/billing/test_localstripe.py) has no
hosted Checkout page to send a browser through and speaks an older API version than the
one billing/stripe_api.py pins; these four routes are all the journeys need.
"""

from __future__ import annotations

import html
import itertools
import json
import threading
import time
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

from tests.billing import stripe_events as se
from tests.billing.conftest import stripe_signature

WEBHOOK_SECRET = "whsec_e2e_journeys"
SECRET_KEY = "sk_test_e2e_journeys"
CHECKOUT_ORIGIN = "https://checkout.stripe.com"


def _nested(pairs: list[tuple[str, str]]) -> dict:
    """Stripe's form encoding (a[b][0][c]=v) back into a dict; lists stay dicts keyed "0", "1"…"""
    out: dict = {}
    for key, value in pairs:
        parts = key.replace("]", "").split("[")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value
    return out


class StripeEdge:
    """Customers, prices by lookup key, Checkout Sessions and their hosted page."""

    def __init__(self) -> None:
        self.sessions: dict[str, dict] = {}
        self.customers: dict[str, dict] = {}
        self.requests: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        edge = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_args) -> None:  # quiet
                pass

            def _params(self) -> dict:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else urlsplit(self.path).query
                return _nested(parse_qsl(body, keep_blank_values=True))

            def _json(self, status: int, body: dict) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Request-Id", f"req_e2e_{next(edge._ids)}")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:  # noqa: N802 -- http.server's name
                path = urlsplit(self.path).path
                edge.requests.append(("GET", path))
                if path == "/v1/prices":
                    keys = list(self._params().get("lookup_keys", {}).values())
                    data = [{"id": f"price_{k}", "object": "price", "lookup_key": k, "active": True} for k in keys]
                    return self._json(200, {"object": "list", "data": data, "has_more": False, "url": "/v1/prices"})
                return self._json(404, {"error": {"type": "invalid_request_error", "message": f"no route {path}"}})

            def do_POST(self) -> None:  # noqa: N802
                path = urlsplit(self.path).path
                edge.requests.append(("POST", path))
                params = self._params()
                if path == "/v1/customers":
                    customer = {"id": f"cus_e2e{next(edge._ids)}", "object": "customer", "email": params.get("email")}
                    edge.customers[customer["id"]] = customer
                    return self._json(200, customer)
                if path == "/v1/checkout/sessions":
                    session_id = f"cs_e2e{next(edge._ids)}"
                    session = {
                        "id": session_id,
                        "object": "checkout.session",
                        "url": f"{CHECKOUT_ORIGIN}/c/pay/{session_id}",
                        "status": "open",
                        **{k: params.get(k) for k in ("mode", "customer", "client_reference_id", "success_url",
                                                     "cancel_url", "customer_email")},
                        "metadata": params.get("metadata", {}),
                        "line_items": params.get("line_items", {}),
                    }
                    edge.sessions[session_id] = session
                    return self._json(200, session)
                return self._json(404, {"error": {"type": "invalid_request_error", "message": f"no route {path}"}})

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def start(self) -> StripeEdge:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def checkout_page(self, session_id: str) -> str:
        """Stripe's hosted Checkout, reduced to a Pay link back to the success_url."""
        session = self.sessions[session_id]
        back = session["success_url"].replace("{CHECKOUT_SESSION_ID}", session_id)
        return (
            '<!doctype html><html lang="en"><head><title>Checkout (test edge)</title></head><body><main>'
            f"<h1>Pay Lhama</h1><p>Session {html.escape(session_id)}</p>"
            f'<a id="pay" href="{html.escape(back)}">Pay</a></main></body></html>'
        )

    def route_checkout(self, context) -> None:
        """Answer the browser's navigation to Stripe's hosted Checkout (a Playwright context)."""

        def fulfill(route) -> None:
            session_id = urlsplit(route.request.url).path.rsplit("/", 1)[-1]
            if session_id not in self.sessions:
                route.fulfill(status=404, body="no such session")
                return
            route.fulfill(status=200, content_type="text/html", body=self.checkout_page(session_id))

        context.route(f"{CHECKOUT_ORIGIN}/**", fulfill)

    def env(self) -> dict:
        """What the live server needs to use this edge."""
        return {"STRIPE_SECRET_KEY": SECRET_KEY, "STRIPE_WEBHOOK_SECRET": WEBHOOK_SECRET, "STRIPE_API_BASE": self.url}

    def sessions_of(self, mode: str) -> list[dict]:
        return [s for s in self.sessions.values() if s["mode"] == mode]


def webhook_post(live_url: str, event: dict) -> tuple[int, str]:
    """POST one event to the live server's webhook, signed as Stripe signs it."""
    payload = json.dumps(event).encode()
    request = urllib.request.Request(  # noqa: S310 -- the live server's own http:// address
        f"{live_url}/billing/stripe/webhook", data=payload, method="POST",
        headers={"Content-Type": "application/json",
                 "Stripe-Signature": stripe_signature(payload, secret=WEBHOOK_SECRET)},
    )
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310
        return response.status, response.read().decode()


def subscription_paid(live_url: str, session: dict, *, lookup_key: str) -> list[tuple[int, str]]:
    """What Stripe sends once a subscription Checkout is paid: the session completed, then
    the subscription created (active)."""
    now = int(time.time())
    sub_id = f"sub_{session['id']}"
    completed = se.event(
        "checkout.session.completed",
        se.checkout_session(session_id=session["id"], mode="subscription", customer=session["customer"],
                            subscription=sub_id, client_reference_id=session["client_reference_id"],
                            metadata=session["metadata"]),
        created=now,
    )
    created = se.event(
        "customer.subscription.created",
        se.subscription(sub_id=sub_id, customer=session["customer"], status="active", lookup_key=lookup_key,
                        period_end=now + 30 * 86400, created=now),
        created=now,
    )
    return [webhook_post(live_url, completed), webhook_post(live_url, created)]


def topup_paid(live_url: str, session: dict) -> tuple[int, str]:
    """checkout.session.completed of a paid top-up (payment mode)."""
    cents = int(session["line_items"]["0"]["price_data"]["unit_amount"])
    event = se.event(
        "checkout.session.completed",
        {**se.checkout_session(session_id=session["id"], mode="payment",
                               client_reference_id=session["client_reference_id"], metadata=session["metadata"],
                               amount_total=cents), "payment_intent": f"pi_{session['id']}"},
        created=int(time.time()),
    )
    return webhook_post(live_url, event)
