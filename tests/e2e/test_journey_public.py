"""Journey 1, a member of the public, end to end in a real browser: a live Lhama (Daphne)
with the demo campaigns, a real Celery worker on the embedded broker, Stripe at the
network edge (tests/e2e/stripe_edge.py) and the fake model server.

A guest asks the README's question, watches the answer stream, sees the Sponsored card
below it, opens "Why this ad?" and the ad library, clicks the sponsored link (counted;
the redirect goes to the approved landing page, answered here by Playwright so nothing
leaves the machine); signs up and finds the conversation kept; regenerates and switches
versions; subscribes to Plus through Checkout and the signed webhooks; sees 70B unlocked
and no more ads; reloads mid-answer; stops one; starts a temporary chat; exports a
conversation; creates an API key. axe-core runs on each page; docs/screenshots/ gets
chat-sponsored.png and pricing.png.
"""

from __future__ import annotations

import itertools
import re

import pytest

from bench.fake_upstream import Script
from tests.e2e.conftest import ROOT, SLOW_TOKENS, axe_serious, wait_until
from tests.e2e.stripe_edge import subscription_paid
from tests.e2e.test_chat import answer_text, last_answer, last_status, send, wait_status

pytestmark = pytest.mark.e2e

QUESTION = "Where can I rent an H100 GPU by the hour?"  # README.md's example
LANDING = "https://northwind-compute.example/gpus"  # the demo campaign's approved landing page
EMAIL = "pat@journey.example"
PASSWORD = "Journey-Public-Passw0rd"
SCREENSHOTS = ROOT / "docs" / "screenshots"
FULL_SLOW_TEXT = " ".join(t.strip() for t in SLOW_TOKENS)


@pytest.fixture(scope="module")
def answers(journey, fake_upstream):
    """The README question gets a numbered, streamed answer ("H100 answer 1: …"), so the
    versions of a regenerated answer differ, and a title that fits it; everything else as
    conftest's route."""
    numbers = itertools.count(1)
    inner = fake_upstream.route

    def route(body: dict) -> Script:
        messages = body.get("messages", [])
        is_title = any("short title" in str(m.get("content", "")) for m in messages if m.get("role") == "system")
        last = next((str(m.get("content", "")) for m in reversed(messages) if m.get("role") == "user"), "")
        if is_title and last == QUESTION:
            return Script(tokens=["Renting", " H100", " GPUs", " by", " the", " hour"])
        if not is_title and last == QUESTION:
            n = next(numbers)
            return Script(tokens=[f"H100 answer {n}:", " rent", " one", " by", " the", " hour", " from", " a",
                                  " cloud", " provider."], interval=0.08)
        return inner(body)

    fake_upstream.route = route
    yield
    fake_upstream.route = inner


def wait_open(page) -> None:
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")


def test_public_journey(journey, journey_page, answers, artifacts):
    server = journey.server
    page, errors = journey_page()
    context = page.context
    # The approved landing page is on the internet: Playwright answers it, nothing leaves the machine.
    landed: list[str] = []

    def landing(route):
        landed.append(route.request.url)
        route.fulfill(status=200, content_type="text/html", body="<!doctype html><title>Northwind</title><h1>GPUs</h1>")

    context.route("https://northwind-compute.example/**", landing)
    journey.stripe.route_checkout(context)

    # --- a guest asks the README's question and watches the answer stream ---------------
    # The engine is warm, but a decision has a hard time budget a loaded machine can miss
    # (then: no ad, never a slower answer); that timeout is the one thing retried, in a new
    # conversation.
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    card = page.locator(".ad-card")
    for attempt in range(1, 4):
        page.goto("/")
        wait_open(page)
        send(page, QUESTION)
        page.wait_for_function(
            "() => { const a = [...document.querySelectorAll('#thread .msg-assistant')].pop();"
            " return a && a.dataset.status === 'streaming' && a.textContent.includes('H100 answer'); }"
        )
        partial = answer_text(page)
        wait_status(page, "complete")
        full = answer_text(page)
        assert re.match(r"H100 answer \d+: rent one by the hour", full), full
        assert len(partial) < len(full), (partial, full)  # seen while it was being written
        try:
            card.wait_for(timeout=8000)
            break
        except PlaywrightTimeout:
            if attempt == 3:
                raise

    # --- the Sponsored card below it ------------------------------------------------------
    answer_box = last_answer(page).bounding_box()
    assert card.bounding_box()["y"] >= answer_box["y"] + answer_box["height"]
    assert last_answer(page).locator(".ad-card").count() == 0
    assert card.locator(".ad-label").text_content() == "Sponsored"
    assert card.locator(".ad-headline").inner_text() == "H100s by the hour"
    page.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    impression_id = card.get_attribute("data-impression-id")
    page.screenshot(path=str(SCREENSHOTS / "chat-sponsored.png"))
    axe_serious(page, "chat with a sponsored card")

    # --- "Why this ad?" and its library link ------------------------------------------------
    card.locator(".ad-why summary").click()
    why = card.locator(".ad-why")
    assert why.get_attribute("open") is not None
    assert "Lhama Demo Advertiser" in why.inner_text()
    with page.expect_popup() as popup_info:
        why.locator("a.ad-library-link").click()
    library = popup_info.value
    library.wait_for_load_state()
    assert re.search(r"/ads/library/", library.url), library.url
    assert "H100s by the hour" in library.locator("main").inner_text()
    axe_serious(library, "ad library entry")
    library.close()

    # --- the sponsored link: counted, and the redirect goes to the approved page -----------
    with page.expect_popup() as popup_info:
        card.locator("a.ad-headline").click()
    landing_page = popup_info.value
    landing_page.wait_for_url(LANDING)
    assert landed == [LANDING]
    clicks = wait_until(
        lambda: server.query(
            "SELECT c.is_valid FROM ads_click c WHERE replace(c.impression_id, '-', '') = ?",
            (impression_id.replace("-", ""),),
        ),
        page=page, message="the click in the server's database",
    )
    assert clicks == [(1,)]
    landing_page.close()

    # --- signs up; the conversation is kept ---------------------------------------------------
    conversation_url = page.url
    assert re.search(r"/c/[0-9a-f-]{36}/$", conversation_url), conversation_url
    page.locator(".guest-banner a", has_text="Sign up").click()
    page.wait_for_url("**/accounts/signup/**")
    axe_serious(page, "sign-up")
    page.fill("input[name=email]", EMAIL)
    page.fill("input[name=password1]", PASSWORD)
    if page.locator("input[name=password2]").count():
        page.fill("input[name=password2]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#chat[data-ready=yes]")
    # In the new account's sidebar, and in the database its own.
    conversation_id = conversation_url.rstrip("/").rsplit("/", 1)[1]
    page.locator(f"#conversation-list .conv-item[data-conversation-id='{conversation_id}'] a.conv-link").click()
    page.wait_for_url(conversation_url)
    assert server.query(
        "SELECT u.email FROM assistant_conversation c JOIN accounts_user u ON u.id = c.user_id"
        " WHERE replace(c.id, '-', '') = ?", (conversation_id.replace("-", ""),),
    ) == [(EMAIL,)]
    wait_open(page)
    assert page.locator("#thread .msg-user .msg-body").all_inner_texts() == [QUESTION]
    assert answer_text(page) == full
    assert page.locator(".guest-banner").count() == 0

    # --- regenerates, and switches between the versions ------------------------------------
    def last_answer_is(text: str) -> None:
        page.wait_for_function(
            "(t) => { const a = [...document.querySelectorAll('#thread .msg-assistant')].pop();"
            " return a && a.dataset.status === 'complete'"
            " && a.querySelector('.msg-body').textContent.replace(/\\s+/g, ' ').trim() === t; }",
            arg=text,
        )

    last_answer(page).get_by_role("button", name="Regenerate").click()
    page.wait_for_function(
        "(t) => { const a = [...document.querySelectorAll('#thread .msg-assistant')].pop();"
        " return a && a.dataset.status === 'complete' && !a.textContent.includes(t); }",
        arg=full,
    )
    second = answer_text(page)
    assert re.match(r"H100 answer \d+: rent one by the hour", second) and second != full
    versions = last_answer(page).locator(".versions")
    assert versions.locator(".version-label").inner_text() == "2 / 2"
    versions.get_by_role("button", name="Previous version").click()
    last_answer_is(full)
    assert last_answer(page).locator(".version-label").inner_text() == "1 / 2"
    last_answer(page).get_by_role("button", name="Next version").click()
    last_answer_is(second)
    page.reload()
    wait_open(page)
    assert answer_text(page) == second  # the active branch is kept
    assert last_answer(page).locator(".version-label").inner_text() == "2 / 2"

    # --- pricing, and Plus through Stripe Checkout (at the edge) and the signed webhooks ----
    page.goto("/billing/pricing")
    page.screenshot(path=str(SCREENSHOTS / "pricing.png"), full_page=True)
    axe_serious(page, "pricing")
    page.locator("[data-plan=plus]").get_by_role("button", name="Subscribe monthly").click()
    page.wait_for_url("https://checkout.stripe.com/c/pay/cs_*")
    (session,) = journey.stripe.sessions_of("subscription")
    assert session["success_url"].startswith(f"{journey.url}/billing/success")
    page.locator("#pay").click()
    page.wait_for_url("**/billing/success?session_id=*")
    assert "Confirming your payment" in page.locator("#checkout-status").inner_text()
    results = subscription_paid(journey.url, session, lookup_key="lhama_plus_monthly")
    assert results == [(200, "ok"), (200, "ok")]
    # The worker processes the events; the page, polling, says so by itself.
    page.wait_for_function(
        "() => document.querySelector('#checkout-status')?.textContent.includes('Your Plus plan is active')",
        timeout=30000,
    )
    axe_serious(page, "checkout success")
    assert server.query("SELECT type, result FROM billing_stripeevent ORDER BY id") == [
        ("checkout.session.completed", f"checkout {session['id']} linked to subscription sub_{session['id']}"),
        ("customer.subscription.created", f"subscription sub_{session['id']}: active"),
    ]

    # --- 70B unlocked, and no more ads ------------------------------------------------------
    page.goto("/")
    wait_open(page)
    option = page.locator("#tier-select option[value='llama-3.1-70b']")
    assert option.get_attribute("disabled") is None
    assert "locked" not in option.inner_text()
    page.locator("#tier-select").select_option("llama-3.1-70b")
    send(page, QUESTION)
    wait_status(page, "complete")
    page.wait_for_url(re.compile(r".*/c/[0-9a-f-]{36}/"))
    plus_conversation = page.url.rstrip("/").rsplit("/", 1)[1]
    assert "70B" in last_answer(page).locator(".msg-meta").inner_text()
    # An ad comes within the decision's budget after the answer; Plus makes no ad request at all.
    page.wait_for_timeout(3000)
    assert page.locator(".ad-card").count() == 0
    assert server.query(
        "SELECT COUNT(*) FROM ads_impression WHERE replace(conversation_id, '-', '') = ?",
        (plus_conversation.replace("-", ""),),
    ) == [(0,)]

    # --- reloads mid-answer: the answer continues -------------------------------------------
    page.goto("/")
    wait_open(page)
    send(page, "SLOW survive a reload")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok6')"
    )
    page.wait_for_url(re.compile(r".*/c/[0-9a-f-]{36}/"))
    page.reload()
    wait_open(page)
    assert last_status(page) == "streaming"
    wait_status(page, "complete", timeout=30000)
    assert answer_text(page) == FULL_SLOW_TEXT

    # --- stops one --------------------------------------------------------------------------
    send(page, "SLOW please stop")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok3')"
    )
    page.locator("#stop-button").click()
    wait_status(page, "stopped")
    assert answer_text(page).endswith("Stopped.")
    stopped_id = last_answer(page).get_attribute("data-message-id")
    wait_until(
        lambda: server.query(
            "SELECT status FROM assistant_message WHERE replace(id, '-', '') = ?", (stopped_id.replace("-", ""),)
        ) == [("stopped",)],
        page=page, message="the stopped answer saved",
    )

    # --- exports a conversation -------------------------------------------------------------
    page.goto(conversation_url)
    wait_open(page)
    page.locator(".conv-tools summary", has_text="Export").click()
    with page.expect_download() as download_info:
        page.locator(".conv-tools a", has_text="Markdown").click()
    exported = (download_info.value.path()).read_text()
    assert QUESTION in exported
    assert second in " ".join(exported.split())

    # --- starts a temporary chat ------------------------------------------------------------
    page.goto("/")
    wait_open(page)
    page.locator("#temporary-toggle").check()
    assert page.locator("#temporary-banner").is_visible()
    before = server.query("SELECT COUNT(*) FROM assistant_conversation WHERE is_temporary = 0")
    send(page, "A temporary question")
    wait_status(page, "complete")
    assert answer_text(page) == "Hello there!"
    assert "/c/" not in page.url
    assert page.locator("#conversation-list").inner_text().count("A temporary question") == 0
    assert server.query("SELECT COUNT(*) FROM assistant_conversation WHERE is_temporary = 0") == before
    page.screenshot(path=str(artifacts / "journey-public-temporary.png"))

    # --- creates an API key -----------------------------------------------------------------
    page.goto("/account/api-keys/")
    axe_serious(page, "API keys")
    page.fill("input[name=name]", "laptop")
    page.get_by_role("button", name="Create key").click()
    secret = page.locator("[data-testid=new-api-key]").inner_text()
    assert secret.startswith("lhm_")
    assert server.query("SELECT name, revoked_at IS NULL FROM api_apikey") == [("laptop", 1)]
    page.goto("/account/api-keys/")
    assert page.locator("[data-testid=new-api-key]").count() == 0  # shown once
    assert secret not in page.content()
    page.screenshot(path=str(artifacts / "journey-public-api-keys.png"), full_page=True)
    assert errors == []
