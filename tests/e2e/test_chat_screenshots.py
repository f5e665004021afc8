"""Screenshots of the chat page (desktop, phone, dark mode, the sponsored card) into
test-artifacts/ for people to look at; each also checks the layout it shows."""

from __future__ import annotations

import re

import pytest

from tests.e2e.test_chat_client import AD, HOSTILE, ScriptedSocket

pytestmark = pytest.mark.e2e


def chat_with_code(page) -> None:
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    page.locator("#composer-input").fill("CODE show me a Python greeting")
    page.locator("#composer-input").press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
    page.wait_for_function("() => document.title !== 'Lhama'")


def test_desktop_light_and_dark(new_page, artifacts):
    for scheme in ("light", "dark"):
        page, errors = new_page(viewport={"width": 1280, "height": 800}, color_scheme=scheme)
        chat_with_code(page)
        assert page.locator("#chat-sidebar").is_visible()
        assert not page.locator("#sidebar-toggle").is_visible()
        box = page.locator("#composer").bounding_box()
        assert box["y"] + box["height"] <= 800  # the composer stays on screen
        page.screenshot(path=artifacts / f"chat-desktop-{scheme}.png")
        assert errors == []


def test_phone_sidebar_collapses(new_page, artifacts):
    page, errors = new_page(viewport={"width": 390, "height": 844}, is_mobile=True, has_touch=True)
    chat_with_code(page)
    assert not page.locator("#chat-sidebar").is_visible()
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 390  # nothing overflows sideways
    page.screenshot(path=artifacts / "chat-phone.png")
    page.locator("#sidebar-toggle").click()
    assert page.locator("#sidebar-toggle").get_attribute("aria-expanded") == "true"
    page.locator("#chat-sidebar").wait_for(state="visible")
    # The sidebar slides in (a CSS transition): shoot it once it has arrived.
    page.wait_for_function("() => document.getElementById('chat-sidebar').getAnimations().length === 0")
    assert page.locator("#chat-sidebar").bounding_box()["x"] == 0
    assert page.locator(".conv-item.is-active .conv-title").inner_text() == page.locator("#conversation-title").inner_text()
    page.screenshot(path=artifacts / "chat-phone-sidebar.png")
    page.keyboard.press("Escape")
    page.locator("#chat-sidebar").wait_for(state="hidden")
    assert errors == []


def test_sponsored_card(new_page, artifacts):
    """The card sits below the answer it belongs to, in the same column, is labelled
    Sponsored, and shows the advertiser's hostile HTML as text."""
    page, errors = new_page(viewport={"width": 1100, "height": 760})
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    ScriptedSocket(page, ad=AD)
    page.route(re.compile(r".*/ads/i/.*"), lambda route: route.fulfill(status=200, body="{}"))
    page.route(re.compile(r".*/conversations/.*"), lambda route: route.fulfill(status=200, body=""))
    page.route(re.compile(r".*/c/[0-9a-f-]{36}/(header|title)$"), lambda route: route.fulfill(status=404, body=""))
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    page.locator("#composer-input").fill("How do I fine-tune Llama?")
    page.locator("#composer-input").press("Enter")
    card = page.locator(".ad-card")
    card.wait_for()
    page.wait_for_function("() => document.querySelector('.ad-card').dataset.acknowledged === 'yes'")
    answer = page.locator("#thread .msg-assistant").last
    answer_box, card_box = answer.bounding_box(), card.bounding_box()
    assert card_box["y"] >= answer_box["y"] + answer_box["height"]  # below the answer, not over it
    assert card_box["x"] < answer_box["x"] + answer_box["width"] and answer_box["x"] < card_box["x"] + card_box["width"]
    label = card.locator(".ad-label")
    assert label.is_visible() and label.text_content() == "Sponsored"
    label_box = label.bounding_box()
    assert card_box["y"] <= label_box["y"] and label_box["y"] + label_box["height"] <= card_box["y"] + card_box["height"]
    assert card.locator(".ad-advertiser").inner_text() == AD["advertiser"]
    assert card.locator(".ad-text").inner_text() == AD["text"]
    assert HOSTILE in card.inner_text()
    assert card.locator("img, b, script").count() == 0
    assert page.evaluate("window.__adpwned") is None
    page.locator(".ad-why summary").click()
    page.locator(".ad-why dl").wait_for()
    page.screenshot(path=artifacts / "chat-ad-card.png")
    assert dialogs == []
    assert errors == []


def test_shared_page_without_javascript(new_page, artifacts):
    page, errors = new_page()
    chat_with_code(page)
    page.locator(".share-menu summary").click()
    page.get_by_role("button", name="Create link").click()
    share_url = page.locator("#share-url").input_value()
    page.screenshot(path=artifacts / "chat-share-panel.png")
    reader, reader_errors = new_page(java_script_enabled=False, viewport={"width": 900, "height": 700})
    reader.goto(share_url)
    assert reader.locator(".msg-assistant .codeblock").count() == 0  # no JS: plain sanitised Markdown
    assert reader.locator(".msg-assistant pre code.language-python").inner_text() == (
        'def greet(name):\n    return f"Hi {name}"\n'
    )
    assert reader.locator("script").count() == 0
    reader.screenshot(path=artifacts / "chat-shared.png", full_page=True)
    assert errors == [] and reader_errors == []
