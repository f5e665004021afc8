"""/metrics: Prometheus' text format for staff or the bearer token, refused to anyone else;
after a chat, an ad, a click and a webhook, each of their counters has moved."""

from __future__ import annotations

import pytest
from asgiref.sync import sync_to_async
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

from bench.fake_upstream import Script
from tests.assistant.conftest import login_session, open_socket
from tests.assistant.test_ads_in_chat import GPU_QUESTION
from tests.billing.conftest import post_event
from tests.factories import UserFactory

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("_runs_drained")]

BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
TOKEN = "metrics-token-for-tests-0123456789"


def samples(text: str) -> dict[tuple[str, tuple], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(metrics: dict, name: str, **labels) -> float:
    return metrics.get((name, tuple(sorted(labels.items()))), 0.0)


def total(metrics: dict, name: str) -> float:
    return sum(v for (n, _), v in metrics.items() if n == name)


def scrape(client: Client, **headers) -> dict:
    response = client.get("/metrics", **headers)
    assert response.status_code == 200, response.content[:200]
    assert response["Content-Type"].startswith("text/plain; version=")
    return samples(response.content.decode())


@pytest.fixture
def metrics_token(settings):
    settings.METRICS_TOKEN = TOKEN
    return TOKEN


def test_metrics_are_refused_without_the_token_or_staff(metrics_token, transactional_db):
    assert Client().get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer wrong").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION=TOKEN).status_code == 403  # not a bearer header
    member_client = Client()
    member_client.force_login(UserFactory())
    assert member_client.get("/metrics").status_code == 403
    assert Client().get("/metrics", HTTP_AUTHORIZATION=f"Bearer {TOKEN}").status_code == 200
    staff_client = Client()
    staff_client.force_login(UserFactory(is_staff=True))
    assert staff_client.get("/metrics").status_code == 200


def test_no_token_configured_lets_no_bearer_in(settings, transactional_db):
    settings.METRICS_TOKEN = ""
    assert Client().get("/metrics", HTTP_AUTHORIZATION="Bearer ").status_code == 403


async def test_a_chat_an_ad_a_click_and_a_webhook_each_move_their_counters(
    upstream, tier, member, gpu_ad, metrics_token, webhook_secret
):
    scraper = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    before = await sync_to_async(scrape)(scraper)

    upstream.default = Script(tokens=["Try", " a", " cloud", " provider", "."])
    socket = await open_socket(await sync_to_async(login_session)(member))
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": GPU_QUESTION, "tier": "llama-3.1-8b"})
    await socket.until("done")
    ad_frame = await socket.recv()
    assert ad_frame["type"] == "ad"
    await socket.close()

    def click_and_webhook() -> None:
        browser = Client(HTTP_USER_AGENT=BROWSER)
        browser.force_login(member)
        assert browser.get(ad_frame["ad"]["click_url"]).status_code == 302
        event = {"id": "evt_metrics_1", "type": "customer.created", "created": 1764547200, "livemode": False,
                 "data": {"object": {"id": "cus_1", "object": "customer"}}}
        assert post_event(Client(), event).status_code == 200

    await sync_to_async(click_and_webhook)()
    after = await sync_to_async(scrape)(scraper)

    tier_label = {"tier": "llama-3.1-8b"}
    moved = {
        "run outcome": value(after, "lhama_run_outcomes_total", status="complete")
        - value(before, "lhama_run_outcomes_total", status="complete"),
        "time to first token": value(after, "lhama_time_to_first_token_seconds_count", **tier_label)
        - value(before, "lhama_time_to_first_token_seconds_count", **tier_label),
        "time between tokens": value(after, "lhama_time_between_tokens_seconds_count", **tier_label)
        - value(before, "lhama_time_between_tokens_seconds_count", **tier_label),
        "tokens": value(after, "lhama_completion_tokens_total", **tier_label)
        - value(before, "lhama_completion_tokens_total", **tier_label),
        "ad served": value(after, "lhama_ad_decisions_total", outcome="served", reason="")
        - value(before, "lhama_ad_decisions_total", outcome="served", reason=""),
        "ad latency": value(after, "lhama_ad_decision_seconds_count") - value(before, "lhama_ad_decision_seconds_count"),
        "impression": value(after, "lhama_ad_impressions_total", state="served")
        - value(before, "lhama_ad_impressions_total", state="served"),
        "click": total(after, "lhama_ad_clicks_total") - total(before, "lhama_ad_clicks_total"),
        "webhook received": value(after, "lhama_webhook_events_total", state="received")
        - value(before, "lhama_webhook_events_total", state="received"),
        "webhook processed": value(after, "lhama_webhook_events_total", state="processed")
        - value(before, "lhama_webhook_events_total", state="processed"),
    }
    assert moved == {
        "run outcome": 1, "time to first token": 1, "time between tokens": 1, "tokens": 5, "ad served": 1,
        "ad latency": 1, "impression": 1, "click": 1, "webhook received": 1, "webhook processed": 1,
    }
    assert value(after, "lhama_webhook_events_unprocessed") == 0
    assert value(after, "lhama_webhook_lag_seconds") == 0
    assert ("lhama_runs_active", ()) in after and ("lhama_sockets_open", ()) in after
    assert ("lhama_celery_queue_depth", (("queue", "celery"),)) in after


async def test_a_quota_refusal_is_counted_by_kind(upstream, tier, member, free_plan, metrics_token):
    free_plan.daily_tokens = 1
    await sync_to_async(free_plan.save)()
    scraper = Client(HTTP_AUTHORIZATION=f"Bearer {TOKEN}")
    before = await sync_to_async(scrape)(scraper)
    socket = await open_socket(await sync_to_async(login_session)(member))
    await socket.send({"type": "message.send", "client_id": "c1", "conversation_id": None,
                       "content": "Hello", "tier": "llama-3.1-8b"})
    refused = await socket.until("error")
    await socket.close()
    kind = refused[-1]["code"]
    after = await sync_to_async(scrape)(scraper)
    assert value(after, "lhama_quota_refusals_total", kind=kind) - value(
        before, "lhama_quota_refusals_total", kind=kind) == 1
