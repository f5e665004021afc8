"""The chat in a real browser against a real Lhama and a fake model server."""

from __future__ import annotations

import re

import pytest

from tests.e2e.conftest import HOSTILE_TITLE, SLOW_TOKENS, wait_until

pytestmark = pytest.mark.e2e

FULL_SLOW_TEXT = " ".join(t.strip() for t in SLOW_TOKENS)


def last_answer(page):
    return page.locator("#thread .msg-assistant").last


def last_status(page) -> str:
    return last_answer(page).get_attribute("data-status") or ""


def wait_status(page, *statuses: str, timeout: float = 20000) -> None:
    page.wait_for_function(
        """(statuses) => {
            const all = document.querySelectorAll('#thread .msg-assistant');
            const a = all[all.length - 1];
            return a && statuses.includes(a.dataset.status);
        }""",
        arg=list(statuses),
        timeout=timeout,
    )


def answer_text(page) -> str:
    return " ".join(last_answer(page).locator(".msg-body").inner_text().split())


def send(page, text: str) -> None:
    box = page.locator("#composer-input")
    box.fill(text)
    box.press("Enter")


def open_chat(new_page, **options):
    page, errors = new_page(**options)
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    return page, errors


def slow_request(fake_upstream, prefix: str):
    def is_title(body: dict) -> bool:
        return any("short title" in str(m.get("content", "")) for m in body.get("messages", []) if m["role"] == "system")

    return next(
        r for r in reversed(fake_upstream.records)
        if not is_title(r.body)
        and any(str(m.get("content", "")).startswith(prefix) for m in r.body.get("messages", []) if m["role"] == "user")
    )


def test_message_streams_in_and_the_conversation_gets_a_url_and_title(new_page):
    page, errors = open_chat(new_page)
    assert page.locator("#served-by").inner_text() == (
        "Answered by SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)"
    )
    page.evaluate(
        """() => { window.__announced = []; const live = document.getElementById('live-region');
            new MutationObserver(() => window.__announced.push(live.textContent))
              .observe(live, {childList: true, characterData: true, subtree: true}); }"""
    )
    send(page, "SLOW hello there")
    assert page.locator("#composer-input").input_value() == ""
    # Tokens arrive while the answer is still being written…
    page.wait_for_function(
        "() => { const b = [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop();"
        " return b && b.textContent.includes('tok3'); }"
    )
    partial = answer_text(page)
    assert partial.startswith("tok0 tok1 tok2 tok3")
    assert "tok59" not in partial
    assert last_status(page) == "streaming"
    assert page.locator("#stop-button").is_visible()
    assert last_answer(page).locator(".msg-body").get_attribute("aria-busy") == "true"
    # …and the whole answer, once, at the end.
    wait_status(page, "complete", timeout=30000)
    assert answer_text(page) == FULL_SLOW_TEXT
    assert page.locator("#send-button").is_visible()
    assert re.fullmatch(r".*/c/[0-9a-f-]{36}/", page.url)
    page.wait_for_function("() => document.title === 'Pasta cooking tips · Lhama'")
    assert page.locator(".conv-item.is-active .conv-title").inner_text() == "Pasta cooking tips"
    assert page.locator("#conversation-title").inner_text() == "Pasta cooking tips"
    assert page.locator(".conv-item.is-active .conv-menu-label").text_content() == "Options for Pasta cooking tips"
    assert last_answer(page).locator(".msg-meta").inner_text() == (
        "Llama 3.1 8B · answered by SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)"
    )
    # Screen readers heard the answer once, in pieces, never the whole text again.
    announced = [a for a in page.evaluate("window.__announced") if a]
    assert len(announced) >= 3
    assert announced[-1].endswith("Answer complete.")
    assert max(len(a) for a in announced) < len(FULL_SLOW_TEXT) / 2
    heard = " ".join(a.removesuffix("Answer complete.") for a in announced).split()
    assert heard == FULL_SLOW_TEXT.split()
    assert errors == []


def test_stop_mid_stream_keeps_the_partial_answer_and_closes_the_upstream(new_page, fake_upstream, live):
    page, errors = open_chat(new_page)
    send(page, "SLOW please stop me")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok4')"
    )
    page.locator("#stop-button").click()
    wait_status(page, "stopped")
    stopped_text = answer_text(page)
    assert stopped_text.startswith("tok0 tok1 tok2 tok3 tok4")
    assert stopped_text.endswith("Stopped.")
    # The model server's stream was closed, so nothing more can come…
    record = slow_request(fake_upstream, "SLOW please stop me")
    assert fake_upstream.wait_for(lambda: record.disconnected, timeout=5)
    assert record.sent_tokens < len(SLOW_TOKENS)
    # …and the page shows exactly the answer the server saved as stopped.
    message_id = last_answer(page).get_attribute("data-message-id")
    saved = wait_until(
        lambda: live.query(
            "SELECT content FROM assistant_message WHERE replace(id, '-', '') = ? AND status = 'stopped'",
            (message_id.replace("-", ""),),
        ),
        page=page,
        message="the stopped answer in the server's database",
    )
    assert " ".join(saved[0][0].split()) + " Stopped." == stopped_text
    assert answer_text(page) == stopped_text
    # After a reload the saved, stopped answer is what the page shows.
    page.reload()
    assert last_status(page) == "stopped"
    assert answer_text(page) == stopped_text
    assert errors == []


def test_reload_mid_stream_resumes_without_losing_or_repeating_text(new_page):
    page, errors = open_chat(new_page)
    send(page, "SLOW survive a reload")
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok6')"
    )
    page.wait_for_url(re.compile(r".*/c/[0-9a-f-]{36}/"))
    page.reload()
    # The page comes back mid-answer and keeps streaming live.
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    assert last_status(page) == "streaming"
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant .msg-body')].pop()?.textContent.includes('tok20')"
    )
    assert last_status(page) == "streaming"
    wait_status(page, "complete", timeout=30000)
    assert answer_text(page) == FULL_SLOW_TEXT
    assert page.evaluate("sessionStorage.getItem('lhama.activeRun')") is None
    assert errors == []


def test_html_in_a_model_answer_is_shown_not_run(new_page):
    page, errors = open_chat(new_page)
    send(page, "XSS try me")
    wait_status(page, "complete")
    body = last_answer(page).locator(".msg-body")
    assert body.locator("img, script").count() == 0  # no element made, so no handler to run
    assert page.evaluate("window.__pwned") is None
    assert answer_text(page) == (
        'Look: <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script> done.'
    )
    # The server-rendered history (markdown-it-py + nh3) is just as inert.
    page.reload()
    page.wait_for_selector("#chat[data-ready=yes]", state="attached")
    assert page.evaluate("window.__pwned") is None
    assert page.locator("#thread img, #thread script").count() == 0
    assert answer_text(page) == (
        'Look: <img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script> done.'
    )
    assert errors == []


def test_a_hostile_model_made_title_is_shown_as_text(new_page, lhama_server):
    """The title task's output is the model's: <img onerror> and <script> in it stay text
    in the sidebar, the header, the tab title, the menu label and the shared page."""
    page, errors = open_chat(new_page)
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    send(page, "XSSTITLE name this conversation")
    wait_status(page, "complete")
    page.wait_for_function("t => document.title === t + ' · Lhama'", arg=HOSTILE_TITLE)

    def assert_inert(where) -> None:
        assert where.locator(".conv-item.is-active .conv-title").inner_text() == HOSTILE_TITLE
        assert where.locator("#conversation-title").inner_text() == HOSTILE_TITLE
        assert where.locator("img[src=x]").count() == 0
        assert where.locator("#chat-sidebar script, header script, #conversation-title script").count() == 0
        assert dialogs == []

    assert_inert(page)
    assert page.locator(".conv-item.is-active .conv-menu-label").text_content() == f"Options for {HOSTILE_TITLE}"
    # Server-rendered after a reload (the sidebar and the conversation page).
    page.reload()
    page.wait_for_selector("#chat[data-ready=yes]", state="attached")
    assert page.title() == f"{HOSTILE_TITLE} · Lhama"
    assert_inert(page)
    # The shared page, as a reader without an account sees it.
    page.locator(".share-menu summary").click()
    page.get_by_role("button", name="Create link").click()
    share_url = page.locator("#share-url").input_value()
    reader, reader_errors = new_page()
    reader_dialogs: list[str] = []
    reader.on("dialog", lambda dialog: (reader_dialogs.append(dialog.message), dialog.dismiss()))
    reader.goto(share_url)
    assert reader.locator("h1").inner_text() == HOSTILE_TITLE
    assert reader.locator("img[src=x], h1 script").count() == 0
    assert reader_dialogs == [] and dialogs == []
    assert errors == [] and reader_errors == []


def test_upstream_error_shows_a_message_and_retry_works(new_page, upstream_control):
    page, errors = open_chat(new_page)
    upstream_control.fail = True
    try:
        send(page, "FAIL the first time")
        wait_status(page, "error", timeout=30000)
        alert = last_answer(page).locator(".msg-error")
        assert alert.get_attribute("role") == "alert"
        assert alert.locator("p").first.inner_text() != ""
        assert page.locator("#send-button").is_visible()
        # No answer came: Retry is the only action, not Copy/Regenerate/Good/Bad on nothing.
        assert last_answer(page).locator(".msg-actions").is_hidden()
    finally:
        upstream_control.fail = False
    alert.get_by_role("button", name="Retry").click()
    wait_status(page, "complete")
    assert answer_text(page) == "Hello there!"
    assert last_answer(page).locator(".msg-actions").is_visible()
    # Retry re-ran the same question: one question on the page, one answer.
    assert page.locator("#thread .msg-user").count() == 1
    assert page.locator("#thread .msg-user .msg-body").inner_text() == "FAIL the first time"
    assert errors == []


def test_regenerate_edit_feedback_and_copy(new_page):
    page, errors = open_chat(new_page, permissions=["clipboard-read", "clipboard-write"])
    send(page, "CODE show me")
    wait_status(page, "complete")
    code = last_answer(page).locator(".codeblock")
    assert code.locator(".codeblock-bar span").inner_text() == "python"
    assert code.locator("code .hljs-keyword").first.inner_text() == "def"
    code.get_by_role("button", name="Copy").click()
    assert page.evaluate("navigator.clipboard.readText()") == 'def greet(name):\n    return f"Hi {name}"'

    first_id = last_answer(page).get_attribute("data-message-id")
    last_answer(page).get_by_role("button", name="Regenerate").click()
    wait_status(page, "complete")
    assert page.locator("#thread .msg-assistant").count() == 1
    assert last_answer(page).get_attribute("data-message-id") != first_id

    up = last_answer(page).get_by_role("button", name="Good answer")
    up.click()
    page.wait_for_function(
        "() => document.querySelector('#thread .msg-assistant [data-value=up]').getAttribute('aria-pressed') === 'true'"
    )

    user = page.locator("#thread .msg-user").first
    user.hover()
    user.get_by_role("button", name="Edit").click()
    editor = user.locator("textarea")
    assert editor.input_value() == "CODE show me"
    editor.fill("Plain hello instead")
    editor.press("Enter")
    wait_status(page, "complete")
    assert answer_text(page) == "Hello there!"
    page.reload()
    assert page.locator("#thread .msg-user .msg-body").all_inner_texts() == ["Plain hello instead"]
    assert page.locator("#thread .msg-assistant").count() == 1
    assert answer_text(page) == "Hello there!"
    assert errors == []


def test_composer_keys_and_character_limit(new_page):
    page, errors = open_chat(new_page)
    box = page.locator("#composer-input")
    box.fill("line one")
    box.press("Shift+Enter")
    box.type("line two")
    assert box.input_value() == "line one\nline two"
    assert page.locator("#char-count").inner_text() == "17 / 8,000"
    box.fill("x" * 8001)
    assert page.locator("#char-count").inner_text() == "8,001 / 8,000"
    assert page.locator("#send-button").is_disabled()
    box.press("Enter")
    assert page.locator("#chat-toast").inner_text() == "Your message is 8001 characters; the limit is 8000."
    assert page.locator("#thread .msg").count() == 0
    assert box.input_value() == "x" * 8001  # nothing lost
    assert errors == []


def test_sidebar_rename_search_delete_and_share(new_page, lhama_server):
    page, errors = open_chat(new_page)
    send(page, "Hello for the sidebar")
    wait_status(page, "complete")
    page.wait_for_function("() => document.title === 'Pasta cooking tips · Lhama'")
    item = page.locator(".conv-item.is-active")
    item.locator("summary").click()
    item.get_by_role("button", name="Rename").click()
    field = page.locator(".rename-form input[name=title]")
    field.fill("My <b>renamed</b> chat")
    field.press("Enter")
    page.wait_for_function(
        "() => document.querySelector('.conv-item.is-active .conv-title')?.textContent === 'My <b>renamed</b> chat'"
    )
    assert page.locator("#conversation-title").inner_text() == "My <b>renamed</b> chat"

    page.locator("#conv-search").fill("nothing like this")
    page.wait_for_selector(".conv-empty")
    page.locator("#conv-search").fill("renamed")
    page.wait_for_selector(".conv-item")

    page.locator(".share-menu summary").click()
    page.get_by_role("button", name="Create link").click()
    share_url = page.locator("#share-url").input_value()
    assert re.fullmatch(rf"{re.escape(lhama_server)}/s/[\w-]{{32}}/", share_url)
    reader, _ = new_page()
    reader.goto(share_url)
    assert reader.locator("h1").inner_text() == "My <b>renamed</b> chat"
    assert reader.locator(".msg-assistant .msg-body").inner_text() == "Hello there!"
    page.get_by_role("button", name="Revoke link").click()
    page.get_by_role("button", name="Create link").wait_for()
    assert reader.goto(share_url).status == 404

    page.once("dialog", lambda dialog: dialog.accept())
    item = page.locator(".conv-item").first
    item.locator("summary").click()
    item.get_by_role("button", name="Delete").click()
    page.wait_for_url(f"{lhama_server}/")
    assert page.locator(".conv-item").count() == 0
    assert errors == []
