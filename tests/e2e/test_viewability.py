"""Viewability in a real browser: the sponsored card is acknowledged only once at least
half of it has been in view, on a visible and focused tab, for one continuous second
(static/src/chat/ads.js); never while it is scrolled away, under half in view, or the tab
is hidden or not focused. Waits are deadlines on the page's requests and the server's
database, not fixed sleeps."""

from __future__ import annotations

import time

import pytest

from tests.e2e.conftest import LiveServer

pytestmark = pytest.mark.e2e

QUESTION = "Where can I rent an H100 cloud GPU to fine-tune llama?"
# Headless Chromium says "HeadlessChrome", which crawlerdetect rightly takes for a bot.
BROWSER = "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36"
# Before the page's own code sees the card: push it far below the fold (as a long answer
# would), so it arrives out of view, and let the test hide the tab.
INIT = """
window.__hidden = false;
Object.defineProperty(Document.prototype, "visibilityState", {
  configurable: true, get() { return window.__hidden ? "hidden" : "visible"; } });
Object.defineProperty(Document.prototype, "hidden", { configurable: true, get() { return window.__hidden; } });
window.__setHidden = (hidden) => { window.__hidden = hidden; document.dispatchEvent(new Event("visibilitychange")); };
new MutationObserver((records) => {
  for (const r of records) for (const node of r.addedNodes) {
    if (!(node instanceof HTMLElement) || !node.classList.contains("ad-card")) continue;
    const spacer = document.createElement("div");
    spacer.className = "test-spacer";
    spacer.style.height = "3000px";
    node.before(spacer);
    document.getElementById("thread").scrollTop = 0;
  }
}).observe(document, { childList: true, subtree: true });
"""
SCROLL_TO = """(share) => {
  const thread = document.getElementById("thread");
  const card = document.querySelector(".ad-card");
  const t = thread.getBoundingClientRect(), c = card.getBoundingClientRect();
  // Bring the card's top to where `share` of its height is above the thread's bottom edge.
  thread.scrollTop += (c.top - t.bottom) + share * c.height;
  return (Math.min(t.bottom, card.getBoundingClientRect().bottom) - card.getBoundingClientRect().top) / c.height;
}"""


@pytest.fixture(scope="module")
def ads_live(fake_upstream, tmp_path_factory):
    from tests.e2e.conftest import _needs_frontend

    _needs_frontend()
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ADS_GUEST_SESSIONS_PER_IP_HOUR", "1000")  # every test here is a new guest on 127.0.0.1
        server = LiveServer(upstream_url=fake_upstream.base_url, base=tmp_path_factory.mktemp("viewability"),
                            seed_ads=True)
    yield server
    server.stop()


def _card_shown(page):
    """Ask until the card comes (the first decision may miss its budget while the matcher warms up)."""
    card = page.locator(".ad-card")
    for _attempt in range(5):
        page.goto("/")
        page.wait_for_selector("#connection-status[data-state=open]", state="attached")
        page.locator("#composer-input").fill(QUESTION)
        page.locator("#composer-input").press("Enter")
        page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
        try:
            card.wait_for(timeout=3000)
            return card
        except Exception:  # noqa: BLE001, S112 -- no ad this time: ask again
            continue
    card.wait_for(timeout=1000)
    return card


def _acks(page) -> list[tuple[float, str]]:
    sent: list[tuple[float, str]] = []
    page.on(
        "request",
        lambda r: sent.append((time.monotonic(), r.post_data or ""))
        if r.method == "POST" and r.url.endswith("/ack") else None,
    )
    return sent


def _acknowledged(live, impression_id: str) -> list[tuple]:
    return live.query(
        "SELECT acknowledged_at IS NOT NULL, is_valid, invalid_reason, visible_ms FROM ads_impression WHERE replace(id, '-', '') = ?",
        (impression_id.replace("-", ""),),
    )


def _never_within(page, live, sent, impression_id: str, seconds: float) -> None:
    """Polls the page's requests and the database until the deadline: no acknowledgement."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        assert sent == []
        assert _acknowledged(live, impression_id)[0][0] == 0
        page.wait_for_timeout(100)
    assert sent == []


def _first_within(page, sent, seconds: float) -> tuple[float, str]:
    deadline = time.monotonic() + seconds
    while not sent:
        assert time.monotonic() < deadline, "no acknowledgement was sent"
        page.wait_for_timeout(25)
    return sent[0]


def test_ack_waits_for_half_the_card_in_view_for_a_second_on_a_visible_tab(new_page, ads_live):
    page, errors = new_page(base_url=ads_live.url, viewport={"width": 1280, "height": 700}, user_agent=BROWSER)
    page.add_init_script(INIT)
    sent = _acks(page)
    card = _card_shown(page)
    impression_id = card.get_attribute("data-impression-id")

    # Arrived below the fold: nothing is sent, however long it stays there.
    assert page.evaluate(SCROLL_TO, -1.0) <= 0
    _never_within(page, ads_live, sent, impression_id, 2.5)

    # In view, but the tab is hidden: nothing.
    page.evaluate("() => window.__setHidden(true)")
    assert page.evaluate(SCROLL_TO, 1.0) == pytest.approx(1.0, abs=0.02)
    _never_within(page, ads_live, sent, impression_id, 2.0)

    # Tab visible again, but under half of the card in view: nothing.
    assert page.evaluate(SCROLL_TO, 0.3) == pytest.approx(0.3, abs=0.05)
    page.evaluate("() => window.__setHidden(false)")
    _never_within(page, ads_live, sent, impression_id, 2.0)

    # Well over half in view for 0.6 s, then scrolled away: the clock starts again from zero.
    page.evaluate(SCROLL_TO, 0.8)
    page.wait_for_timeout(600)
    page.evaluate(SCROLL_TO, -1.0)
    _never_within(page, ads_live, sent, impression_id, 1.5)

    # In view, on a visible tab: sent once, about a second later, with the time measured.
    page.evaluate(SCROLL_TO, 0.6)
    in_view_at = time.monotonic()
    at, body = _first_within(page, sent, 5.0)
    assert 0.95 <= at - in_view_at < 3.0
    visible_ms = int(body.split("visible_ms=")[1].split("&")[0])
    assert 1000 <= visible_ms < 3000
    deadline = time.monotonic() + 5
    while not _acknowledged(ads_live, impression_id)[0][0]:
        assert time.monotonic() < deadline, "the server did not record the acknowledgement"
        page.wait_for_timeout(50)
    assert _acknowledged(ads_live, impression_id) == [(1, 1, "", visible_ms)]  # counted: valid, measured
    assert card.get_attribute("data-acknowledged") == "yes"
    page.wait_for_timeout(1200)
    assert len(sent) == 1  # once
    assert errors == []


def test_ack_waits_while_the_window_is_not_focused(new_page, ads_live, browser):
    page, errors = new_page(base_url=ads_live.url, viewport={"width": 1280, "height": 700}, user_agent=BROWSER)
    page.add_init_script(INIT)
    sent = _acks(page)
    card = _card_shown(page)
    impression_id = card.get_attribute("data-impression-id")
    page.evaluate(SCROLL_TO, -1.0)
    # A real focus, that another tab can take (after the navigation: a new renderer resets it).
    cdp = page.context.new_cdp_session(page)
    cdp.send("Emulation.setFocusEmulationEnabled", {"enabled": False})
    _never_within(page, ads_live, sent, impression_id, 1.0)

    # Another tab takes the focus, then the card scrolls into view: nothing is sent.
    other = page.context.new_page()
    browser_cdp = browser.new_browser_cdp_session()
    other_target = page.context.new_cdp_session(other).send("Target.getTargetInfo")["targetInfo"]["targetId"]
    browser_cdp.send("Target.activateTarget", {"targetId": other_target})
    deadline = time.monotonic() + 5
    while page.evaluate("() => document.hasFocus()"):
        assert time.monotonic() < deadline, "the other tab did not take the focus"
        page.wait_for_timeout(50)
    page.evaluate(SCROLL_TO, 1.0)
    _never_within(page, ads_live, sent, impression_id, 2.0)

    # The focus comes back: sent about a second later.
    own_target = cdp.send("Target.getTargetInfo")["targetInfo"]["targetId"]
    browser_cdp.send("Target.activateTarget", {"targetId": own_target})
    page.bring_to_front()
    focused_at = time.monotonic()
    at, _body = _first_within(page, sent, 5.0)
    assert 0.9 <= at - focused_at < 3.0
    assert errors == []
