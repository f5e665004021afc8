"""Continue in a real browser: a stopped answer goes on in the same element."""

from __future__ import annotations

import pytest

from tests.e2e.test_chat import open_chat, send, wait_status

pytestmark = pytest.mark.e2e


def test_continue_appends_to_the_stopped_answer(new_page, live):
    page, errors = open_chat(new_page)
    send(page, "SLOW keep going please")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok2')"
    )
    page.locator("#stop-button").click()
    wait_status(page, "stopped")
    answer = page.locator("#thread .msg-assistant").last
    message_id = answer.get_attribute("data-message-id")
    partial = answer.locator(".msg-body").get_attribute("data-raw")
    answer.locator('button[data-action="continue"]').click()
    wait_status(page, "complete", timeout=30000)
    # The same element and message: the earlier text first, then the continuation.
    assert page.locator("#thread .msg-assistant").count() == 1
    assert answer.get_attribute("data-message-id") == message_id
    text = answer.locator(".msg-body").get_attribute("data-raw")
    assert text.startswith(partial) and len(text) > len(partial) and text.rstrip().endswith("tok59")
    assert "Stopped." not in answer.locator(".msg-body").inner_text()
    assert answer.locator('button[data-action="continue"]').count() == 0
    assert live.query("SELECT content, status FROM assistant_message WHERE id = ?",
                      (message_id.replace("-", ""),)) == [(text, "complete")]
    assert errors == []
