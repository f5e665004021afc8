"""Versions of an answer in a real browser: regenerate keeps the old answer, "‹ 1 / 2 ›"
switches between them, each version shows its own later turns, and the choice is stored."""

from __future__ import annotations

import pytest

from tests.e2e.test_chat import open_chat, send, wait_status

pytestmark = pytest.mark.e2e


def answers(page):
    return page.locator("#thread .msg-assistant")


def version_label(article) -> str:
    return article.locator(".version-label").inner_text()


def test_switch_between_two_versions_of_an_answer(new_page):
    page, errors = open_chat(new_page)
    # Version 1: stopped after a few tokens. Version 2: the whole answer (Regenerate).
    send(page, "SLOW tell me about branches")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok2')"
    )
    page.locator("#stop-button").click()
    wait_status(page, "stopped")
    first = answers(page).last
    assert first.locator('button[data-action="continue"]').is_visible()  # a stopped answer can be continued
    first.locator('button[data-action="regenerate"]').click()
    wait_status(page, "complete", timeout=30000)
    current = answers(page).last
    assert version_label(current) == "2 / 2"
    assert "tok59" in current.locator(".msg-body").inner_text()
    assert answers(page).count() == 1

    # ‹ shows version 1: the stopped answer, and the page keeps one answer for the question.
    current.locator('button[aria-label="Previous version"]').click()
    page.wait_for_function("() => document.querySelector('#thread .msg-assistant .version-label')?.textContent === '1 / 2'")
    old = answers(page).last
    assert old.get_attribute("data-status") == "stopped"
    assert "tok59" not in old.locator(".msg-body").inner_text()
    assert "Stopped." in old.locator(".msg-body").inner_text()
    assert answers(page).count() == 1

    # A follow-up on version 1 belongs to that branch only.
    send(page, "Hello on the first branch")
    wait_status(page, "complete")
    assert answers(page).count() == 2
    answers(page).first.locator('button[aria-label="Next version"]').click()
    page.wait_for_function("() => document.querySelector('#thread .msg-assistant .version-label')?.textContent === '2 / 2'")
    assert answers(page).count() == 1
    assert "Hello on the first branch" not in page.locator("#thread").inner_text()
    assert "tok59" in answers(page).first.locator(".msg-body").inner_text()

    # Back to version 1: its later turns come back; a reload shows the branch last chosen.
    answers(page).first.locator('button[aria-label="Previous version"]').click()
    page.wait_for_function("() => document.querySelectorAll('#thread .msg-assistant').length === 2")
    assert "Hello on the first branch" in page.locator("#thread").inner_text()
    page.reload()
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    assert answers(page).count() == 2
    assert version_label(answers(page).first) == "1 / 2"
    assert "Hello on the first branch" in page.locator("#thread").inner_text()
    assert errors == []
