"""Keyboard shortcuts and the scroll-to-latest button (static/src/chat/keyboard.js)."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.e2e


def open_chat(new_page, **options):
    page, errors = new_page(**options)
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    return page, errors


def test_question_mark_lists_the_shortcuts_and_escape_closes_the_list(new_page):
    page, errors = open_chat(new_page)
    page.locator("#thread").focus()
    page.keyboard.press("?")
    dialog = page.locator("#shortcuts")
    dialog.wait_for(state="visible")
    assert "Edit your last message" in dialog.inner_text()
    page.keyboard.press("Escape")
    dialog.wait_for(state="hidden")
    # Typed in the message box, "?" is just a character.
    page.locator("#composer-input").press("?")
    assert page.locator("#composer-input").input_value() == "?"
    assert dialog.is_hidden()
    assert errors == []


def test_up_arrow_in_the_empty_box_edits_the_last_message(new_page):
    page, errors = open_chat(new_page)
    box = page.locator("#composer-input")
    box.fill("First question")
    box.press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
    box.fill("Second question")
    box.press("Enter")
    page.wait_for_function("() => document.querySelectorAll('#thread .msg-assistant[data-status=complete]').length === 2")
    box.press("ArrowUp")
    edit = page.locator("#thread .msg-user").last.locator(".edit-form textarea")
    edit.wait_for()
    assert edit.input_value() == "Second question"
    assert page.locator("#thread .msg-user").first.locator(".edit-form").count() == 0
    assert errors == []


def test_escape_stops_the_answer_being_written(new_page):
    page, errors = open_chat(new_page)
    box = page.locator("#composer-input")
    box.fill("SLOW stop me with the keyboard")
    box.press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-run-id][data-status=streaming]")
    page.locator("#thread").focus()  # anywhere on the page, not only in the box
    page.keyboard.press("Escape")
    page.wait_for_selector("#thread .msg-assistant[data-status=stopped]")
    assert errors == []


def test_scroll_to_latest_appears_while_streaming_when_scrolled_up(new_page):
    page, errors = open_chat(new_page, viewport={"width": 1000, "height": 420})
    box = page.locator("#composer-input")
    for n in range(3):  # enough text above for the thread to scroll
        box.fill(f"CODE example {n}")
        box.press("Enter")
        page.wait_for_function(f"() => document.querySelectorAll('#thread .msg-assistant[data-status=complete]').length === {n + 1}")
    button = page.locator("#scroll-latest")
    assert button.is_hidden()
    box.fill("SLOW a long answer")
    box.press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-status=streaming]")
    page.evaluate("() => { document.getElementById('thread').scrollTop = 0; }")
    button.wait_for(state="visible")
    button.click()
    page.wait_for_function(
        "() => { const t = document.getElementById('thread'); return t.scrollHeight - t.scrollTop - t.clientHeight < 120; }"
    )
    assert button.is_hidden()
    page.keyboard.press("Escape")  # done with it
    assert errors == []
