"""The first minute of a fresh Lhama with the real embedded llama.cpp server: /readyz
says ready only once the model server is warmed up, and then the very first question of
a new person gets a real answer (not the system prompt recited back) and the README
example's Sponsored card, on the first try."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest

from assistant.prompts import DEFAULT_SYSTEM_PROMPT
from tests.e2e.conftest import ROOT, LiveServer, _needs_frontend
from tests.e2e.test_chat_ads import BROWSER_UA

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.llama,
    pytest.mark.skipif(importlib.util.find_spec("llama_cpp") is None, reason="llama-cpp-python is not installed"),
]

README_QUESTION = "Where can I rent an H100 GPU by the hour?"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _readyz(url: str) -> int:
    try:
        with urllib.request.urlopen(f"{url}/readyz", timeout=5) as response:  # noqa: S310 -- our own server
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


@pytest.fixture(scope="module")
def fresh_lhama(tmp_path_factory):
    """A fresh model server (started the way make run starts it: manage.py embedded_serve)
    and a fresh web process with the demo tiers and campaigns, sharing LHAMA_VAR_DIR."""
    _needs_frontend()
    base = tmp_path_factory.mktemp("first-minute")
    port = _free_port()
    model_url = f"http://127.0.0.1:{port}/v1"
    env = {**os.environ, "LHAMA_VAR_DIR": str(base / "var"), "LLM_EMBEDDED_PORT": str(port),
           "LLM_EMBEDDED_URL": model_url, "LLM_EMBEDDED_THREADS": "2", "LLM_EMBEDDED_CTX": "4096"}
    for name in ("PORT", "HOST", "DATABASE_URL", "LLM_MODEL_PATH"):
        env.pop(name, None)
    log = (base / "model.log").open("wb")
    model = subprocess.Popen([sys.executable, str(ROOT / "manage.py"), "embedded_serve"], env=env, cwd=ROOT,
                             stdout=log, stderr=subprocess.STDOUT)
    server = None
    try:
        # The default decision budget: the model answers on the same CPU cores as the ad
        # decision here, and the decision may go on past its budget while the answer is
        # being written (assistant/generation.py, _decide_ad).
        server = LiveServer(upstream_url=model_url, base=base, seed_ads=True)
        yield server, model, base
    finally:
        if server is not None:
            server.stop()
        model.terminate()
        try:
            model.wait(15)
        except subprocess.TimeoutExpired:
            model.kill()
        log.close()


def test_the_first_answer_on_a_fresh_server_is_a_real_one_with_its_card(fresh_lhama, new_page):
    server, model, base = fresh_lhama
    # Ready only once the model server has been warmed up (tests/assistant/test_warmup.py
    # holds the not-ready side; here the web process may start after the warm-up ended).
    deadline = time.monotonic() + 300
    while _readyz(server.url) != 200:
        assert model.poll() is None, (base / "model.log").read_text()[-3000:]
        assert time.monotonic() < deadline, "the embedded server was not warmed up within 300 s"
        time.sleep(0.5)
    assert "warmed up" in (base / "model.log").read_text()

    page, errors = new_page(base_url=server.url, user_agent=BROWSER_UA)
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    page.locator("#composer-input").fill(README_QUESTION)
    page.locator("#composer-input").press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-status=complete]", timeout=120_000)
    answer = " ".join(page.locator("#thread .msg-assistant").last.locator(".msg-body").inner_text().split())
    assert answer
    # Not the system prompt recited back (what a cold llama.cpp server's first completion is).
    assert "helpful, honest assistant" not in answer and "honest assistant" not in answer, answer
    assert DEFAULT_SYSTEM_PROMPT[:40] not in answer, answer
    card = page.locator(".ad-card")
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    try:
        card.wait_for(timeout=15_000)
    except PlaywrightTimeout:
        pytest.fail("no Sponsored card on the first answer; the web process said:\n"
                    + (base / "daphne.log").read_text()[-3000:])
    assert card.locator(".ad-label").text_content() == "Sponsored"
    assert errors == []
