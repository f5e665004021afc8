"""The chat client's protocol handling and sponsored card, against a scripted socket.

The page comes from the real server; the WebSocket is answered by the test
(Playwright's routeWebSocket), so these tests can send exactly the frames the
protocol allows — an ad with hostile strings, a dropped connection — and read every
frame the client sends.
"""

from __future__ import annotations

import json
import re

import pytest

from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

# static/src/chat/ads.js: a card counts once it has been viewable this long without a break.
VIEWABLE_MS = 1000


def stays_quiet(page, ms: int) -> None:
    """That something does NOT happen can only be seen over the time in which it would
    have: wait the mechanism's own period plus a margin, on the page's clock."""
    page.wait_for_timeout(ms)

HOSTILE = '<img src=x onerror="window.__adpwned=1">'
AD = {
    "impression_id": "7f1c1a52-4a0c-4a57-9d0e-2f0f7cf2b0a1",
    "advertiser": f"Acme GPUs {HOSTILE}",
    "headline": "Rent <b>H100s</b> by the hour",
    "text": "Fine-tune Llama on your data. <script>window.__adpwned=2</script>",
    "question": "How do I fine-tune Llama 3.1 8B?",
    "display_domain": "acme.example",
    "click_url": "/ads/c/signed-token",
    "ack_url": "/ads/i/7f1c1a52-4a0c-4a57-9d0e-2f0f7cf2b0a1/ack",
    "feedback_url": "/ads/i/7f1c1a52-4a0c-4a57-9d0e-2f0f7cf2b0a1/feedback",
    "dismiss_url": "/ads/i/7f1c1a52-4a0c-4a57-9d0e-2f0f7cf2b0a1/dismiss",
    "why": {
        "advertiser": "Acme GPUs Ltd",
        "paid_by": "Acme Holdings",
        "matched": ["fine-tune", "llama"],
        "explanation": "Shown because this conversation is about fine-tuning models.",
    },
}
CONVERSATION = "3b0c1f7e-9a57-4c1e-8a1e-6c0f2f1d2e3a"


class ScriptedSocket:
    """Plays the server side of protocol v1 for one page."""

    def __init__(self, page, *, ad: dict | None = None) -> None:
        self.received: list[dict] = []
        self.sockets: list = []
        self.ad = ad
        self.runs = 0
        page.route_web_socket(re.compile(r".*/ws/chat/$"), self._connect)

    def _connect(self, ws) -> None:
        self.sockets.append(ws)
        ws.on_message(lambda message: self._on_message(ws, message))
        ws.send(json.dumps({
            "type": "hello", "protocol": 1, "user": {"authenticated": False, "display_name": ""},
            "limits": {"max_message_chars": 500},
        }))

    def _on_message(self, ws, message) -> None:
        frame = json.loads(message)
        self.received.append(frame)
        if frame["type"] == "message.send":
            self.runs += 1
            run_id = f"00000000-0000-0000-0000-00000000000{self.runs}"
            ws.send(json.dumps({
                "type": "run.started", "client_id": frame["client_id"], "run_id": run_id,
                "conversation_id": CONVERSATION, "user_message_id": f"10000000-0000-0000-0000-00000000000{self.runs}",
                "assistant_message_id": f"20000000-0000-0000-0000-00000000000{self.runs}",
                "tier": {"slug": "llama-3.1-8b", "display_name": "Llama 3.1 8B", "served_by": "SmolLM2 (embedded)"},
            }))
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 1, "text": "Use **LoRA** "}))
            # A duplicate (seq already seen) must be ignored.
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 1, "text": "Use **LoRA** "}))
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 2, "text": "adapters."}))
            ws.send(json.dumps({
                "type": "done", "run_id": run_id, "seq": 2, "message_id": f"20000000-0000-0000-0000-00000000000{self.runs}",
                "status": "complete", "finish_reason": "stop", "usage": {"prompt_tokens": 5, "completion_tokens": 3},
            }))
            if self.ad and self.runs == 1:
                ws.send(json.dumps({"type": "ad", "run_id": run_id, "conversation_id": CONVERSATION, "ad": self.ad}))


@pytest.fixture
def ad_requests(new_page):
    def attach(page):
        seen: list[dict] = []

        def handle(route, request):
            seen.append({"url": request.url, "body": request.post_data or "", "csrf": request.headers.get("x-csrftoken")})
            route.fulfill(status=200, content_type="application/json", body='{"ok": true}')

        page.route(re.compile(r".*/ads/i/.*"), handle)
        return seen

    return attach


def test_ad_card_is_separate_labelled_inert_and_acknowledged_once(new_page, ad_requests):
    page, errors = new_page(viewport={"width": 1100, "height": 900})
    socket = ScriptedSocket(page, ad=AD)
    seen = ad_requests(page)
    page.route(re.compile(r".*/conversations/.*"), lambda route: route.fulfill(status=200, body=""))
    page.route(re.compile(r".*/c/[0-9a-f-]{36}/(header|title)$"), lambda route: route.fulfill(status=404, body=""))
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    assert page.locator("#char-count").inner_text() == "0 / 500"  # the limit from hello

    page.locator("#composer-input").fill("How to fine-tune?")
    page.locator("#composer-input").press("Enter")
    card = page.locator(".ad-card")
    card.wait_for()
    sent = socket.received[0]
    assert sent["type"] == "message.send"
    assert sent["content"] == "How to fine-tune?"
    assert sent["conversation_id"] is None
    assert sent["tier"] == "llama-3.1-8b"

    answer = page.locator("#thread .msg-assistant").last
    assert " ".join(answer.locator(".msg-body").inner_text().split()) == "Use LoRA adapters."
    assert answer.get_attribute("data-status") == "complete"
    # The card is its own element right after the answer, never inside it.
    assert answer.locator(".ad-card").count() == 0
    assert page.evaluate("document.querySelector('.ad-card').previousElementSibling.classList.contains('msg-assistant')")
    assert card.locator(".ad-label").text_content() == "Sponsored"
    assert card.locator(".ad-advertiser").inner_text() == AD["advertiser"]
    assert card.locator(".ad-headline").inner_text() == AD["headline"]
    assert card.locator(".ad-text").inner_text() == AD["text"]
    assert card.locator("img, b, script").count() == 0
    assert page.evaluate("window.__adpwned") is None
    link = card.locator("a.ad-headline")
    assert link.get_attribute("href").endswith("/ads/c/signed-token")
    assert link.get_attribute("rel") == "sponsored noopener"

    why = card.locator("details.ad-why")
    assert not why.locator("dl").is_visible()
    why.locator("summary").click()
    assert why.locator("dl").inner_text().split("\n") == [
        "Advertiser", "Acme GPUs Ltd", "Paid for by", "Acme Holdings", "Matched", "fine-tune, llama",
    ]

    # Acknowledged once, when visible, with the CSRF token: the request itself, as the
    # route saw it (the page sets its flag just before sending it).
    wait_until(lambda: [r for r in seen if r["url"].endswith("/ack")], page=page, message="the acknowledgement request")
    # Scrolled away and back, then in view for longer than it takes to count: no second one.
    page.evaluate("document.getElementById('thread').scrollTop = 0")
    page.evaluate("document.getElementById('thread').scrollTop = 1e6")
    stays_quiet(page, VIEWABLE_MS + 500)
    acks = [r for r in seen if r["url"].endswith("/ack")]
    assert len(acks) == 1
    assert acks[0]["csrf"]

    card.get_by_role("button", name="Not relevant").click()
    card.locator(".ad-feedback-status").filter(has_text="Thanks, noted.").wait_for()

    feedback = [r for r in seen if r["url"].endswith("/feedback")]
    assert [r["body"] for r in feedback] == ["kind=not_relevant"]

    # The sponsored question is a button that asks the assistant.
    card.get_by_role("button", name=AD["question"]).click()
    page.wait_for_function("() => document.querySelectorAll('#thread .msg-assistant').length === 2")
    asked = [f for f in socket.received if f["type"] == "message.send"][-1]
    assert asked["content"] == AD["question"]
    assert asked["conversation_id"] == CONVERSATION

    card.get_by_role("button", name="Dismiss this ad").click()
    assert page.locator(".ad-card").count() == 0
    assert [r["url"].rsplit("/", 1)[1] for r in seen].count("dismiss") == 1
    assert errors == []


def test_ad_card_out_of_view_is_not_acknowledged_until_scrolled_to(new_page, ad_requests):
    page, errors = new_page(viewport={"width": 1100, "height": 700})
    socket = ScriptedSocket(page, ad=None)
    seen = ad_requests(page)
    page.route(re.compile(r".*/conversations/.*"), lambda route: route.fulfill(status=200, body=""))
    page.route(re.compile(r".*/c/[0-9a-f-]{36}/(header|title)$"), lambda route: route.fulfill(status=404, body=""))
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    page.locator("#composer-input").fill("hello")
    page.locator("#composer-input").press("Enter")
    page.wait_for_selector("#thread .msg-assistant[data-status=complete]")
    # The person scrolls up to read (a tall block above the answer), then the ad arrives.
    page.evaluate(
        "() => { const s = document.createElement('div'); s.style.height = '4000px';"
        " document.getElementById('thread').prepend(s); document.getElementById('thread').scrollTop = 0; }"
    )
    run_id = "00000000-0000-0000-0000-000000000001"
    socket.sockets[0].send(json.dumps({"type": "ad", "run_id": run_id, "conversation_id": CONVERSATION, "ad": AD}))
    page.locator(".ad-card").wait_for(state="attached")
    # Out of view for longer than a viewable card takes to count: nothing is sent.
    stays_quiet(page, VIEWABLE_MS + 500)
    assert [r for r in seen if r["url"].endswith("/ack")] == []
    assert page.locator(".ad-card").get_attribute("data-acknowledged") is None
    page.evaluate("document.getElementById('thread').scrollTop = 1e6")
    wait_until(lambda: [r for r in seen if r["url"].endswith("/ack")], page=page, message="the acknowledgement request")
    assert len([r for r in seen if r["url"].endswith("/ack")]) == 1
    # The same ad again (a resync replays it) does not make a second card. Frames are
    # handled in order: once the title sent after it shows, the replayed ad was handled.
    socket.sockets[0].send(json.dumps({"type": "ad", "run_id": run_id, "conversation_id": CONVERSATION, "ad": AD}))
    socket.sockets[0].send(json.dumps({"type": "title", "conversation_id": CONVERSATION, "title": "After the replay"}))
    page.wait_for_function("() => document.getElementById('conversation-title')?.textContent === 'After the replay'")
    assert page.locator(".ad-card").count() == 1
    assert errors == []


def test_reconnect_resubscribes_with_the_last_seq_and_resync_replaces_text(new_page):
    page, errors = new_page()
    frames: list[dict] = []
    sockets: list = []
    run_id = "00000000-0000-0000-0000-0000000000aa"

    def connect(ws):
        sockets.append(ws)
        ws.on_message(lambda message: frames.append(json.loads(message)) or on_message(ws, json.loads(message)))
        ws.send(json.dumps({"type": "hello", "protocol": 1, "user": {"authenticated": False, "display_name": ""},
                            "limits": {"max_message_chars": 8000}}))

    def on_message(ws, frame):
        if frame["type"] == "message.send":
            ws.send(json.dumps({
                "type": "run.started", "client_id": frame["client_id"], "run_id": run_id,
                "conversation_id": CONVERSATION, "user_message_id": "10000000-0000-0000-0000-0000000000aa",
                "assistant_message_id": "20000000-0000-0000-0000-0000000000aa",
                "tier": {"slug": "llama-3.1-8b", "display_name": "Llama 3.1 8B", "served_by": "Llama 3.1 8B"},
            }))
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 1, "text": "one "}))
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 2, "text": "two "}))
        elif frame["type"] == "run.subscribe":
            ws.send(json.dumps({"type": "run.resync", "run_id": run_id, "conversation_id": CONVERSATION,
                                "seq": 3, "text": "one two three ", "status": "running"}))
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 3, "text": "three "}))  # overlap: ignored
            ws.send(json.dumps({"type": "delta", "run_id": run_id, "seq": 4, "text": "four"}))
            ws.send(json.dumps({"type": "done", "run_id": run_id, "seq": 4, "message_id": "20000000-0000-0000-0000-0000000000aa",
                                "status": "complete", "finish_reason": "stop",
                                "usage": {"prompt_tokens": 1, "completion_tokens": 4}}))

    page.route_web_socket(re.compile(r".*/ws/chat/$"), connect)
    page.route(re.compile(r".*/conversations/.*"), lambda route: route.fulfill(status=200, body=""))
    page.route(re.compile(r".*/c/[0-9a-f-]{36}/(header|title)$"), lambda route: route.fulfill(status=404, body=""))
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    page.locator("#composer-input").fill("count")
    page.locator("#composer-input").press("Enter")
    page.wait_for_function("() => document.querySelector('#thread .msg-assistant .msg-body').textContent.includes('two')")
    stored = json.loads(page.evaluate("sessionStorage.getItem('lhama.activeRun')"))
    assert stored == {"run_id": run_id, "seq": 2, "conversation_id": CONVERSATION,
                      "message_id": "20000000-0000-0000-0000-0000000000aa"}
    sockets[0].close(code=1011, reason="server restart")
    page.wait_for_selector("#connection-status[data-state=connecting]", state="attached")
    page.wait_for_function("() => document.querySelector('#thread .msg-assistant').dataset.status === 'complete'",
                           timeout=20000)
    assert [f for f in frames if f["type"] == "run.subscribe"] == [
        {"type": "run.subscribe", "run_id": run_id, "after_seq": 2}
    ]
    text = " ".join(page.locator("#thread .msg-assistant .msg-body").inner_text().split())
    assert text == "one two three four"
    assert page.evaluate("sessionStorage.getItem('lhama.activeRun')") is None
    assert errors == []


def test_offline_warning_goes_away_once_reconnected(new_page):
    page, errors = new_page()
    state = {"accept": True}
    sockets: list = []

    def connect(ws):
        sockets.append(ws)
        if not state["accept"]:
            ws.close()
            return
        ws.send(json.dumps({"type": "hello", "protocol": 1, "user": {"authenticated": False, "display_name": ""},
                            "limits": {"max_message_chars": 8000}}))

    page.route_web_socket(re.compile(r".*/ws/chat/$"), connect)
    page.goto("/")
    page.wait_for_selector("#connection-status[data-state=open]", state="attached")
    state["accept"] = False
    sockets[0].close()
    page.wait_for_selector("#connection-status[data-state=connecting]", state="attached")
    page.locator("#composer-input").fill("still there?")
    page.locator("#composer-input").press("Enter")
    toast = page.locator("#chat-toast")
    assert toast.inner_text() == "Not connected yet — Lhama is reconnecting. Your message is kept."
    assert page.locator("#composer-input").input_value() == "still there?"
    state["accept"] = True
    page.wait_for_selector("#connection-status[data-state=open]", state="attached", timeout=20000)
    assert toast.is_hidden()
    assert page.locator("#composer-input").input_value() == "still there?"
    assert errors == []


def test_a_refused_edit_or_regenerate_puts_the_later_turns_back(new_page):
    page, errors = new_page()
    socket = ScriptedSocket(page)
    refusals: list[dict] = []
    original = socket._on_message

    def on_message(ws, message):
        frame = json.loads(message)
        if frame["type"] in {"message.edit", "message.regenerate"}:
            socket.received.append(frame)
            refusals.append(frame)
            ws.send(json.dumps({
                "type": "error", "code": "rate_limited", "message": "Too many messages: wait a minute.",
                "run_id": None, "client_id": frame["client_id"], "retryable": True,
                "reset_at": None, "upgrade_url": None,
            }))
            return
        original(ws, message)

    socket._on_message = on_message
    page.goto("/")
    composer = page.locator("#composer-input")
    for text in ("first question", "second question"):
        composer.fill(text)
        composer.press("Enter")
        page.wait_for_function("n => document.querySelectorAll('.msg-assistant[data-status=complete]').length >= n", arg=1 if text.startswith("first") else 2)
    assert page.locator(".msg").count() == 4

    # Edit the first question: refused before any answer starts, so nothing is lost.
    page.locator(".msg-user").first.locator("[data-action=edit]").click()
    page.locator(".edit-form textarea").fill("a better question")
    page.locator(".edit-form textarea").press("Enter")
    page.wait_for_function("() => document.getElementById('chat-toast') && !document.getElementById('chat-toast').hidden")
    assert page.locator(".msg").count() == 4
    assert page.locator(".msg-user .msg-body").all_inner_texts() == ["first question", "second question"]
    assert "Too many messages" in page.locator("#chat-toast").inner_text()

    # Regenerate the last answer: refused (the toast shows the refusal again), the answer stays.
    page.evaluate("document.getElementById('chat-toast').hidden = true")
    page.locator(".msg-assistant.is-last [data-action=regenerate]").click()
    page.wait_for_function("() => !document.getElementById('chat-toast').hidden")
    assert "Too many messages" in page.locator("#chat-toast").inner_text()
    assert page.locator(".msg").count() == 4
    assert page.locator(".msg-assistant").last.locator(".msg-body").inner_text().startswith("Use LoRA")
    assert [f["type"] for f in refusals] == ["message.edit", "message.regenerate"]
    assert errors == []
