"""A temporary chat in a real browser: the toggle, its banner, no address and no place in
the list, and gone — page and rows — after a reload."""

from __future__ import annotations

import pytest

from tests.e2e.conftest import wait_until
from tests.e2e.test_chat import open_chat, send, wait_status

pytestmark = pytest.mark.e2e


def test_a_temporary_chat_vanishes_on_reload(new_page, live):
    page, errors = open_chat(new_page)
    banner = page.locator("#temporary-banner")
    assert banner.is_hidden()
    page.locator("#temporary-toggle").check()
    assert banner.is_visible()
    assert "Temporary chat — not saved" in banner.inner_text()
    send(page, "Hello from a temporary chat about quinces")
    wait_status(page, "complete")
    assert page.locator("#temporary-toggle").is_disabled()  # the chat has started: it stays temporary
    # No address of its own, nothing in the list, and the server marked it temporary.
    assert page.url.rstrip("/") == live.url
    assert page.locator("#conversation-list .conv-item").count() == 0
    conversation_id = page.locator("#chat").get_attribute("data-conversation-id")
    assert live.query("SELECT is_temporary FROM assistant_conversation WHERE id = ?",
                      (conversation_id.replace("-", ""),)) == [(1,)]

    page.reload()
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    assert "quinces" not in page.locator("#thread").inner_text()
    assert page.locator("#conversation-list .conv-item").count() == 0
    assert page.locator("#temporary-banner").is_hidden()
    # The socket that started it closed with the reload: every row is gone.
    wait_until(lambda: live.query("SELECT COUNT(*) FROM assistant_conversation WHERE id = ?",
                                  (conversation_id.replace("-", ""),)) == [(0,)],
               message="the temporary conversation's rows were not deleted")
    assert live.query("SELECT COUNT(*) FROM assistant_message WHERE content LIKE '%quinces%'") == [(0,)]
    assert errors == []
