"""Journey 1's first leg on the real embedded llama.cpp server (SmolLM2-135M on the CPU,
started as make run starts it: manage.py embedded_serve): a guest asks the README's
question and watches a real answer stream, the Sponsored card comes below it, the guest
signs up and finds the conversation kept, regenerates it and switches between the two
versions. The rest of the journey (scripted answers: reload mid-answer, stop) runs on
the fake model server in test_journey_public.py."""

from __future__ import annotations

import importlib.util
import re
import time

import pytest

from tests.e2e.conftest import axe_serious
from tests.e2e.test_chat import answer_text, last_answer, wait_status
from tests.e2e.test_chat_ads import BROWSER_UA
from tests.e2e.test_first_minute import README_QUESTION, _readyz, fresh_lhama  # noqa: F401 -- the fixture

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.llama,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
]

PASSWORD = "Journey-Llama-Passw0rd"


def test_public_journey_on_the_embedded_model(fresh_lhama, browser, artifacts):  # noqa: F811 -- the imported fixture
    server, model, base = fresh_lhama
    deadline = time.monotonic() + 300
    while _readyz(server.url) != 200:
        assert model.poll() is None, (base / "model.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the embedded server was not warmed up within 300 s"
        time.sleep(0.5)
    # The session's browser (conftest): a second sync_playwright in one process is refused.
    context = browser.new_context(base_url=server.url, user_agent=BROWSER_UA, color_scheme="light",
                                  viewport={"width": 1280, "height": 800})
    context.set_default_timeout(120_000)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    page.locator("#composer-input").fill(README_QUESTION)
    page.locator("#composer-input").press("Enter")
    # It streams: text is on the page while the answer is still being written.
    page.wait_for_function(
        "() => { const a = [...document.querySelectorAll('#thread .msg-assistant')].pop();"
        " return a && a.dataset.status === 'streaming' && a.querySelector('.msg-body').textContent.trim(); }"
    )
    wait_status(page, "complete", timeout=120_000)
    first = answer_text(page)
    assert first
    page.locator(".ad-card").wait_for(timeout=15_000)
    axe_serious(page, "chat on the embedded model")
    page.screenshot(path=str(artifacts / "journey-llama-chat.png"))
    conversation_url = page.url
    assert re.search(r"/c/[0-9a-f-]{36}/$", conversation_url), conversation_url

    page.locator(".guest-banner a", has_text="Sign up").click()
    page.fill("input[name=email]", "lee@journey.example")
    page.fill("input[name=password1]", PASSWORD)
    if page.locator("input[name=password2]").count():
        page.fill("input[name=password2]", PASSWORD)
    page.locator("main form button[type=submit]").click()
    page.wait_for_selector("#chat[data-ready=yes]")
    page.goto(conversation_url)
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    assert page.locator("#thread .msg-user .msg-body").all_inner_texts() == [README_QUESTION]
    assert answer_text(page) == first

    last_answer(page).get_by_role("button", name="Regenerate").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant')].pop()?.querySelector('.version-label')"
        "?.textContent.trim() === '2 / 2'"
    )
    wait_status(page, "complete", timeout=120_000)
    second = answer_text(page)
    last_answer(page).get_by_role("button", name="Previous version").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant')].pop()?.querySelector('.version-label')"
        "?.textContent.trim() === '1 / 2'"
    )
    assert answer_text(page) == first
    last_answer(page).get_by_role("button", name="Next version").click()
    page.wait_for_function(
        "() => [...document.querySelectorAll('#thread .msg-assistant')].pop()?.querySelector('.version-label')"
        "?.textContent.trim() === '2 / 2'"
    )
    assert answer_text(page) == second
    assert errors == []
    context.close()
