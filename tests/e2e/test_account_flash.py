"""What a person is told after signing up and after deleting the account: the chat page
(where both land) shows the message instead of hiding it."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def test_sign_up_and_account_deletion_messages_are_shown_on_the_chat_page(new_page):
    page, errors = new_page()
    page.goto("/accounts/signup/")
    page.fill("input[name=email]", "flash@e2e.example")
    page.fill("input[name=password1]", "Corr3ct-Horse-Battery")
    if page.locator("input[name=password2]").count():
        page.fill("input[name=password2]", "Corr3ct-Horse-Battery")
    page.locator("main form button[type=submit]").click()
    page.wait_for_url("**/")
    page.wait_for_selector("#chat[data-ready=yes]")
    flash = page.locator(".messages .message")
    assert flash.first.is_visible()
    assert "flash@e2e.example" in " ".join(flash.all_inner_texts())
    # The strip sits above the chat; the composer stays on screen.
    assert page.locator("#composer-input").is_visible()

    page.goto("/account/")
    page.locator("input[name=confirm_email]").fill("flash@e2e.example")
    page.locator("input[name=password]").fill("Corr3ct-Horse-Battery")
    page.get_by_role("button", name="Delete my account and data").click()
    page.wait_for_url("**/")
    page.wait_for_selector("#chat[data-ready=yes]")
    assert page.locator(".messages .message").all_inner_texts() == ["Your account and all its data have been deleted."]
    assert page.locator(".messages .message").is_visible()
    assert errors == []
