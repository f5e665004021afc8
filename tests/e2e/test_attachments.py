"""Attachments in the browser: attach a PDF, ask about it, and see the answer use it;
what cannot be read is refused on the page with the server's reason."""

from __future__ import annotations

import pytest

from bench.fake_upstream import Script
from tests.assistant.test_attachments import encrypted, pdf_bytes
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

REPORT = pdf_bytes(["Lhama quarterly report: revenue was 42 million euros.", "Margins grew to 18 percent."])


def open_chat(new_page):
    page, errors = new_page()
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    return page, errors


def attach(page, name: str, data: bytes, mime: str = "application/pdf") -> None:
    page.locator("#attach-input").set_input_files({"name": name, "mimeType": mime, "buffer": data})


def test_attach_a_pdf_and_ask_about_it(new_page, live, fake_upstream, upstream_control, monkeypatch):
    """The fake model answers from what the request holds: it 'reads' the revenue only
    when the PDF's text reached it inside the question's turn."""

    def route(body: dict) -> Script:
        question = next(m["content"] for m in reversed(body["messages"]) if m["role"] == "user")
        if question.startswith("What was the revenue?") and "42 million euros" in question:
            return Script(tokens=["The report says revenue ", "was **42 million euros**."], interval=0.02)
        return upstream_control.route(body)

    monkeypatch.setattr(fake_upstream, "route", route)
    page, errors = open_chat(new_page)
    attach(page, "report.pdf", REPORT)
    chip = page.locator("#attachment-chips .attachment-chip[data-state=ready]")
    chip.wait_for()
    assert chip.locator(".chip-name").inner_text() == "report.pdf"
    assert chip.locator(".chip-meta").inner_text() == "PDF · 2 pages"

    page.locator("#composer-input").fill("What was the revenue?")
    page.locator("#composer-input").press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
    answer = page.locator("#thread .msg-assistant").last.locator(".msg-body")
    assert " ".join(answer.inner_text().split()) == "The report says revenue was 42 million euros."
    assert page.locator("#attachment-chips").is_hidden()  # the composer's chips went with the message
    sent = page.locator("#thread .msg-user").last
    assert sent.locator(".attachment-chip .chip-name").inner_text() == "report.pdf"

    # Stored with the message: after a reload the server renders the chip itself.
    wait_until(lambda: "/c/" in page.url, page=page, message="the page to take the conversation's URL")
    page.reload()
    page.wait_for_selector("#thread .msg-user .attachment-chip")
    assert page.locator("#thread .msg-user .attachment-chip").inner_text().strip() == "report.pdf"
    assert errors == []


def test_an_unreadable_pdf_is_refused_on_the_page_with_the_reason(new_page, live):
    page, errors = open_chat(new_page)
    attach(page, "secret.pdf", encrypted(REPORT, user_password="hunter2"))
    toast = page.locator("#chat-toast")
    toast.wait_for()
    assert toast.inner_text() == "secret.pdf is password-protected. Remove the password and attach it again."
    assert page.locator("#attachment-chips .attachment-chip").count() == 0
    assert live.query("SELECT COUNT(*) FROM assistant_attachment WHERE name = ?", ("secret.pdf",)) == [(0,)]
    assert errors == []
