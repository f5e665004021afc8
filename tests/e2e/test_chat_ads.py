"""The sponsored card end to end: a real Lhama with the demo campaigns, the real ad
decision beside a (fake-model) answer, and the impression acknowledged by the page."""

from __future__ import annotations

import json

import pytest

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def ads_live(fake_upstream, tmp_path_factory):
    from tests.e2e.conftest import _needs_frontend

    _needs_frontend()
    server = LiveServer(upstream_url=fake_upstream.base_url, base=tmp_path_factory.mktemp("ads-live"), seed_ads=True)
    yield server
    server.stop()


def test_contextual_ad_below_the_answer_is_acknowledged_once_when_seen(new_page, ads_live, fake_upstream):
    page, errors = new_page(base_url=ads_live.url)
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    card = page.locator(".ad-card")
    # The first decision may miss its time budget while the matcher warms up: then no ad,
    # never a slower answer. Ask again (a fresh conversation) until one is shown.
    for attempt in range(3):
        if attempt:
            page.goto("/")
            page.wait_for_selector("#connection-status[data-state=open]", state="attached")
        page.locator("#composer-input").fill("Where can I rent an H100 cloud GPU to fine-tune llama?")
        page.locator("#composer-input").press("Enter")
        page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
        try:
            card.wait_for(timeout=3000)
            break
        except Exception:  # noqa: BLE001, S112 -- no ad this time: try again
            continue
    card.wait_for(timeout=1000)
    answer = page.locator("#thread .msg-assistant").last
    assert " ".join(answer.locator(".msg-body").inner_text().split()) == "Hello there!"
    assert answer.locator(".ad-card").count() == 0  # beside the answer, never inside it
    assert card.locator(".ad-label").text_content() == "Sponsored"
    assert card.locator(".ad-advertiser").inner_text() == "Lhama Demo Advertiser"
    assert card.locator(".ad-headline").inner_text() == "H100s by the hour"
    assert card.locator("a.ad-headline").get_attribute("href").startswith(f"{ads_live.url}/ads/c/")
    page.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    impression_id = card.get_attribute("data-impression-id")
    page.wait_for_timeout(500)
    rows = ads_live.query(
        "SELECT acknowledged_at IS NOT NULL FROM ads_impression WHERE replace(id, '-', '') = ?",
        (impression_id.replace("-", ""),),
    )
    assert rows == [(1,)]
    # Answer independence: no request to the model ever carried the ad's text.
    assert fake_upstream.requests
    assert not [r for r in fake_upstream.requests if "H100s by the hour" in json.dumps(r)]
    assert errors == []


def test_ad_card_that_arrives_below_the_fold_is_scrolled_into_view(new_page, ads_live):
    # A short window: the card, added after the answer, lands below the thread's visible area.
    page, errors = new_page(base_url=ads_live.url, viewport={"width": 1280, "height": 560})
    card = page.locator(".ad-card")
    for _attempt in range(3):
        page.goto("/")
        page.wait_for_selector("#connection-status[data-state=open]", state="attached")
        page.locator("#composer-input").fill("Where can I rent an H100 cloud GPU to fine-tune llama?")
        page.locator("#composer-input").press("Enter")
        page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
        try:
            card.wait_for(timeout=3000)
            break
        except Exception:  # noqa: BLE001, S112 -- the matcher was cold: no ad this time, ask again
            continue
    card.wait_for(timeout=1000)
    page.wait_for_timeout(300)
    gap = page.evaluate("(() => { const t = document.getElementById('thread'); return t.scrollHeight - t.scrollTop - t.clientHeight; })()")
    assert gap < 40
    thread_box = page.locator("#thread").bounding_box()
    card_box = card.bounding_box()
    assert card_box["y"] + card_box["height"] <= thread_box["y"] + thread_box["height"] + 1
    page.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    assert errors == []
