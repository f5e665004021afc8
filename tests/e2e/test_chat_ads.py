"""The sponsored card end to end: a real Lhama with the demo campaigns (and one hostile
advertiser), the real ad decision beside a (fake-model) answer, and the impression
acknowledged by the page."""

from __future__ import annotations

import json
import time

import pytest

from tests.e2e.conftest import LiveServer, wait_until

pytestmark = pytest.mark.e2e

# Headless chromium says "HeadlessChrome" in its User-Agent, which the tracking refuses as
# a bot (rightly): these pages present themselves as the desktop browser they are.
BROWSER_UA = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
GPU_QUESTION = "Where can I rent an H100 cloud GPU to fine-tune llama?"
FISH_QUESTION = "Which aquarium heater should I buy for a 60 litre tank?"
# Advertiser text as legacy or imported data could hold it (written straight to the
# database: the review refuses HTML), sent to the page by the real server.
HOSTILE = {
    "advertiser": "Fish <img src=x onerror=alert(6)> Co",
    "headline": "<img src=x onerror=alert(3)>Aquarium heaters",
    "text": "<script>alert(4)</script> Heaters for every tank. <b>bold</b>",
    "question": '"><svg onload=alert(5)> Which heater for 60 litres?',
}
HOSTILE_SEED = r"""
from accounts.models import User
from ads.models import Creative
from ads.services.campaigns import advertiser_create, campaign_create
from billing.ledger import ledger_credit

H = __HOSTILE__
owner = User.objects.create_user(email="fish@e2e.example", password="fish e2e password 7")
advertiser = advertiser_create(name=H["advertiser"], owner=owner)
ledger_credit(account_id=advertiser.balance_account_id, amount_micros=100_000_000, reference="e2e-fish")
campaign = campaign_create(advertiser=advertiser, name="Aquarium heaters", keywords='"aquarium heater"',
    status="active", pacing="asap", max_bid_micros=800_000)
Creative.objects.create(campaign=campaign, headline=H["headline"], text=H["text"], question=H["question"],
    landing_url="https://fish.example/heaters", display_domain="fish.example", review_status="approved")
""".replace("__HOSTILE__", repr(HOSTILE))


@pytest.fixture(scope="module")
def ads_live(fake_upstream, tmp_path_factory):
    """A live server with the demo campaigns and the hostile one, its ad engine warm: the
    first decisions of a process load the embedding model and the index in the
    background and serve no ad meanwhile (never a slower answer), so ask over the
    server's own socket until a decision serves one."""
    from tests.e2e.conftest import _needs_frontend

    _needs_frontend()
    server = LiveServer(upstream_url=fake_upstream.base_url, base=tmp_path_factory.mktemp("ads-live"), seed_ads=True,
                        seed=HOSTILE_SEED)
    try:
        deadline = time.monotonic() + 120
        while not any(f["type"] == "ad" for f in server.ask(GPU_QUESTION)):
            if time.monotonic() > deadline:
                pytest.fail("the live server's ad engine served no ad within 120 s")
        yield server
    finally:
        server.stop()


def ask_for_an_ad(page, question: str, *, attempts: int = 3):
    """Ask in a fresh conversation until the card is shown. The engine is warm, but a
    decision still has a hard time budget that a loaded test machine can miss (then: no
    ad); that, a timeout, is the only failure retried."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    card = page.locator(".ad-card")
    for _ in range(attempts):
        page.goto("/")
        page.wait_for_selector("#connection-status[data-state=open]", state="attached")
        page.locator("#composer-input").fill(question)
        page.locator("#composer-input").press("Enter")
        page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
        try:
            card.wait_for(timeout=5000)
            return card
        except PlaywrightTimeout:
            continue
    pytest.fail(f"no ad card after {attempts} conversations asking {question!r}")


def ack_responses(page) -> list:
    """The responses to the page's impression acknowledgements, as they complete."""
    seen: list = []
    page.on("response", lambda r: seen.append(r) if r.request.method == "POST" and r.url.endswith("/ack") else None)
    return seen


def test_contextual_ad_below_the_answer_is_acknowledged_once_when_seen(new_page, ads_live, fake_upstream):
    page, errors = new_page(base_url=ads_live.url, user_agent=BROWSER_UA)
    acks = ack_responses(page)
    card = ask_for_an_ad(page, GPU_QUESTION)
    answer = page.locator("#thread .msg-assistant").last
    assert " ".join(answer.locator(".msg-body").inner_text().split()) == "Hello there!"
    assert answer.locator(".ad-card").count() == 0  # beside the answer, never inside it
    assert card.locator(".ad-label").text_content() == "Sponsored"
    assert card.locator(".ad-advertiser").inner_text() == "Lhama Demo Advertiser"
    assert card.locator(".ad-headline").inner_text() == "H100s by the hour"
    assert card.locator("a.ad-headline").get_attribute("href").startswith(f"{ads_live.url}/ads/c/")
    impression_id = card.get_attribute("data-impression-id")
    # The page's POST completed and was counted, and the server stored it: read after the
    # response, not after the flag the page sets before sending it.
    wait_until(lambda: acks, page=page, message="the acknowledgement's response")
    assert acks[0].status == 200
    assert acks[0].json()["counted"] is True, acks[0].json()
    rows = wait_until(
        lambda: ads_live.query(
            "SELECT acknowledged_at IS NOT NULL, is_valid FROM ads_impression WHERE replace(id, '-', '') = ?",
            (impression_id.replace("-", ""),),
        ) == [(1, 1)],
        page=page,
        message="the acknowledged impression in the server's database",
    )
    assert rows
    assert card.get_attribute("data-acknowledged") == "yes"
    assert len(acks) == 1
    # Answer independence: no request to the model ever carried the ad's text.
    assert fake_upstream.requests
    assert not [r for r in fake_upstream.requests if "H100s by the hour" in json.dumps(r)]
    assert errors == []


def test_ad_card_that_arrives_below_the_fold_is_scrolled_into_view(new_page, ads_live):
    # A short window: the card, added after the answer, lands below the thread's visible area.
    page, errors = new_page(base_url=ads_live.url, user_agent=BROWSER_UA, viewport={"width": 1280, "height": 560})
    card = ask_for_an_ad(page, GPU_QUESTION)
    # Scrolled to the end: the thread's scroll position settles with the card at its bottom.
    page.wait_for_function(
        "() => { const t = document.getElementById('thread'); return t.scrollHeight - t.scrollTop - t.clientHeight < 40; }"
    )
    thread_box = page.locator("#thread").bounding_box()
    card_box = card.bounding_box()
    assert card_box["y"] + card_box["height"] <= thread_box["y"] + thread_box["height"] + 1
    page.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    assert errors == []


def test_a_hostile_ad_sent_by_the_server_is_shown_as_text(new_page, ads_live):
    page, errors = new_page(base_url=ads_live.url, user_agent=BROWSER_UA)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    card = ask_for_an_ad(page, FISH_QUESTION)
    # Shown for a second and acknowledged: long enough for any injected handler to have run.
    page.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    assert card.locator(".ad-label").text_content() == "Sponsored"
    assert card.locator(".ad-advertiser").inner_text() == HOSTILE["advertiser"]
    assert card.locator(".ad-headline").inner_text() == HOSTILE["headline"]
    assert card.locator(".ad-text").inner_text() == HOSTILE["text"]
    assert card.get_by_role("button", name=HOSTILE["question"]).count() == 1
    assert card.locator("img, script, svg, b").count() == 0
    assert page.locator("img[src=x], svg[onload]").count() == 0
    assert dialogs == []
    # The reloaded conversation (its server-rendered history) runs nothing either.
    page.reload()
    page.wait_for_selector("#chat[data-ready=yes]", state="attached")
    assert page.locator("img[src=x], svg[onload]").count() == 0
    assert dialogs == []
    assert errors == []
