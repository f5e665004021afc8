"""The chat page and its HTTP endpoints: ownership (another person's id is a 404),
rename, delete, search, share/revoke, export, feedback, and inert model output."""

from __future__ import annotations

import json
import uuid

import pytest
from django.test import Client
from django.urls import reverse

from assistant.models import Conversation, Message, ModelTier
from tests.factories import TEST_PASSWORD, UserFactory

pytestmark = pytest.mark.django_db

XSS = '<img src=x onerror="window.__pwned=1"> and <script>window.__pwned=2</script>'


@pytest.fixture
def tier(db):
    return ModelTier.objects.create(
        slug="llama-3.1-8b",
        display_name="Llama 3.1 8B",
        served_model_name="smollm2-135m-instruct",
        served_by="SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)",
        base_url="http://127.0.0.1:1/v1",
        sort_order=10,
    )


@pytest.fixture
def big_tier(db):
    return ModelTier.objects.create(
        slug="llama-3.1-70b", display_name="Llama 3.1 70B", served_model_name="m70", base_url="http://x/v1", sort_order=20
    )


def make_conversation(*, user=None, session_key="", title="Cooking pasta", tier=None, turns=(("q", "a"),)):
    """A linear conversation: each message's parent is the one before it (assistant.branches)."""
    conversation = Conversation.objects.create(user=user, session_key=session_key, title=title, tier=tier)
    previous = None
    for question, answer in turns:
        q = Message.objects.create(
            conversation=conversation, role=Message.Role.USER, content=question, tier=tier, parent=previous
        )
        previous = Message.objects.create(
            conversation=conversation, role=Message.Role.ASSISTANT, content=answer, tier=tier, parent=q
        )
    return conversation


def login(client: Client, user) -> Client:
    assert client.login(email=user.email, password=TEST_PASSWORD)
    return client


def guest_client() -> tuple[Client, str]:
    client = Client()
    response = client.get(reverse("assistant:home"))
    assert response.status_code == 200
    return client, client.session.session_key


# ---------------------------------------------------------------- the page


def test_home_gives_a_guest_a_session_cookie_and_the_signup_banner(tier):
    client = Client()
    response = client.get("/")
    assert response.status_code == 200
    assert "sessionid" in response.cookies
    assert client.session.session_key
    assert "You are chatting as a guest" in response.content.decode()


def test_home_lists_only_my_conversations(tier, user, other_user):
    make_conversation(user=user, title="Mine about pasta", tier=tier)
    make_conversation(user=other_user, title="Theirs about taxes", tier=tier)
    body = login(Client(), user).get("/").content.decode()
    assert "Mine about pasta" in body
    assert "Theirs about taxes" not in body
    assert "You are chatting as a guest" not in body


def test_page_has_no_inline_script_and_loads_bundles(tier):
    body = Client().get("/").content.decode()
    assert '<script type="module" src="/static/dist/chat.js"></script>' in body
    assert "<script>" not in body
    assert " onclick=" not in body
    assert 'href="/static/css/chat.css"' in body


def test_model_picker_shows_locked_tier_disabled_with_what_unlocks_it(tier, big_tier):
    from billing.models import Plan

    Plan.objects.create(
        slug="plus", name="Plus", daily_tokens=1, requests_per_minute=1, max_context=1, sort_order=20,
        model_tier_slugs=[tier.slug, big_tier.slug],
    )
    body = Client().get("/").content.decode()
    assert (
        '<option value="llama-3.1-8b" selected data-served-by="SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)">'
        "Llama 3.1 8B</option>"
    ) in body
    assert '<option value="llama-3.1-70b" disabled data-served-by="">Llama 3.1 70B (locked: with Plus)</option>' in body
    assert "Llama 3.1 70B unlocks with Plus" in body


def test_conversation_page_renders_history_with_model_html_inert(tier, user):
    conversation = make_conversation(user=user, tier=tier, turns=[("hi **there**", "**bold** " + XSS)])
    body = login(Client(), user).get(reverse("assistant:conversation", args=[conversation.pk])).content.decode()
    assert "<strong>bold</strong>" in body
    assert "<img" not in body
    assert "<script>window" not in body
    assert "&lt;img src=x onerror=&quot;window.__pwned=1&quot;&gt;" in body
    # The user's own text is shown as text, never Markdown or HTML.
    assert "hi **there**" in body
    assert "answered by SmolLM2-135M-Instruct (embedded llama.cpp server, CPU)" in body


def test_regenerated_answer_replaces_the_old_one_on_screen(tier, user):
    conversation = make_conversation(user=user, tier=tier, turns=[("question", "first answer")])
    question = conversation.messages.get(role="user")
    Message.objects.create(
        conversation=conversation, role="assistant", content="second answer", tier=tier, parent=question
    )
    body = login(Client(), user).get(reverse("assistant:conversation", args=[conversation.pk])).content.decode()
    assert "second answer" in body
    assert "first answer" not in body


def test_streaming_message_carries_its_run_id_for_resume(tier, user):
    from django.utils import timezone

    from assistant.models import GenerationRun

    conversation = make_conversation(user=user, tier=tier, turns=[])
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    answer = Message.objects.create(
        conversation=conversation, role="assistant", content="partial", status="streaming", parent=question
    )
    run = GenerationRun.objects.create(
        conversation=conversation, user_message=question, assistant_message=answer, owner="x", heartbeat_at=timezone.now()
    )
    body = login(Client(), user).get(reverse("assistant:conversation", args=[conversation.pk])).content.decode()
    assert f'data-message-id="{answer.pk}" data-status="streaming" data-run-id="{run.pk}"' in body


# ---------------------------------------------------------------- ownership: guessed ids are 404


@pytest.mark.parametrize(
    ("method", "name", "suffix"),
    [
        ("get", "assistant:conversation", ()),
        ("get", "assistant:conversation_header", ()),
        ("get", "assistant:conversation_title", ()),
        ("get", "assistant:conversation_rename", ()),
        ("post", "assistant:conversation_rename", ()),
        ("post", "assistant:conversation_delete", ()),
        ("post", "assistant:conversation_share", ()),
        ("post", "assistant:conversation_share_revoke", ()),
        ("get", "assistant:conversation_export", ("md",)),
        ("get", "assistant:conversation_export", ("json",)),
    ],
)
def test_another_users_conversation_is_404_and_untouched(tier, user, other_user, method, name, suffix):
    theirs = make_conversation(user=other_user, title="Secret plans", tier=tier)
    client = login(Client(), user)
    url = reverse(name, args=[theirs.pk, *suffix])
    response = getattr(client, method)(url, {"title": "hijacked"} if method == "post" else None)
    assert response.status_code == 404
    assert b"Secret plans" not in response.content
    theirs.refresh_from_db()
    assert theirs.title == "Secret plans"
    assert theirs.share_token is None
    # An id that does not exist at all answers exactly the same.
    missing = getattr(client, method)(reverse(name, args=[uuid.uuid4(), *suffix]))
    assert missing.status_code == 404


def test_guest_cannot_reach_a_users_conversation_nor_another_guests(tier, user):
    owned = make_conversation(user=user, tier=tier)
    other_guest = make_conversation(session_key="someone-elses-session-key", tier=tier)
    client, _ = guest_client()
    for conversation in (owned, other_guest):
        assert client.get(reverse("assistant:conversation", args=[conversation.pk])).status_code == 404
        assert client.post(reverse("assistant:conversation_delete", args=[conversation.pk])).status_code == 404
    assert Conversation.objects.filter(pk__in=[owned.pk, other_guest.pk]).count() == 2


def test_feedback_on_another_users_message_is_404(tier, user, other_user):
    theirs = make_conversation(user=other_user, tier=tier)
    answer = theirs.messages.get(role="assistant")
    response = login(Client(), user).post(reverse("assistant:message_feedback", args=[answer.pk]), {"value": "down"})
    assert response.status_code == 404
    answer.refresh_from_db()
    assert answer.feedback == ""


# ---------------------------------------------------------------- operations


def test_guest_owns_their_conversation_through_the_session(tier):
    client, session_key = guest_client()
    conversation = make_conversation(session_key=session_key, title="Guest chat", tier=tier)
    page = client.get(reverse("assistant:conversation", args=[conversation.pk]))
    assert page.status_code == 200
    assert "Guest chat" in page.content.decode()
    response = client.post(reverse("assistant:conversation_rename", args=[conversation.pk]), {"title": "Renamed"})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.title == "Renamed"


def test_rename_with_htmx_returns_the_item_and_updates_the_heading(tier, user):
    conversation = make_conversation(user=user, tier=tier)
    response = login(Client(), user).post(
        reverse("assistant:conversation_rename", args=[conversation.pk]),
        {"title": "  Weekly <b>menu</b>  ", "active": str(conversation.pk)},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    body = response.content.decode()
    assert f'data-conversation-id="{conversation.pk}"' in body
    assert "Weekly &lt;b&gt;menu&lt;/b&gt;" in body
    assert 'id="conversation-title" class="conv-heading" hx-swap-oob="true">Weekly &lt;b&gt;menu&lt;/b&gt;</h1>' in body
    conversation.refresh_from_db()
    assert conversation.title == "Weekly <b>menu</b>"
    assert conversation.title_is_custom is True


def test_rename_rejects_an_empty_title_and_keeps_the_old_one(tier, user):
    conversation = make_conversation(user=user, tier=tier, title="Keep me")
    response = login(Client(), user).post(
        reverse("assistant:conversation_rename", args=[conversation.pk]), {"title": "   "}, HTTP_HX_REQUEST="true"
    )
    assert response.status_code == 400
    assert "Give the conversation a title." in response.content.decode()
    conversation.refresh_from_db()
    assert conversation.title == "Keep me"


def test_delete_removes_the_conversation_and_its_messages(tier, user):
    conversation = make_conversation(user=user, tier=tier)
    client = login(Client(), user)
    response = client.post(
        reverse("assistant:conversation_delete", args=[conversation.pk]),
        {"active": str(conversation.pk)},
        HTTP_HX_REQUEST="true",
    )
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/"
    assert not Conversation.objects.filter(pk=conversation.pk).exists()
    assert not Message.objects.filter(conversation_id=conversation.pk).exists()


def test_search_matches_titles_and_message_text_of_my_conversations_only(tier, user, other_user):
    make_conversation(user=user, title="Pasta", tier=tier, turns=[("how long to boil", "ten minutes")])
    make_conversation(user=user, title="Taxes", tier=tier, turns=[("deductions?", "ask an accountant")])
    make_conversation(user=other_user, title="Pasta too", tier=tier)
    client = login(Client(), user)
    by_text = client.get(reverse("assistant:conversation_list"), {"q": "ACCOUNTANT"}).content.decode()
    assert "Taxes" in by_text
    assert "Pasta" not in by_text
    by_title = client.get(reverse("assistant:conversation_list"), {"q": "past"}).content.decode()
    assert "Pasta" in by_title
    assert "Pasta too" not in by_title
    none = client.get(reverse("assistant:conversation_list"), {"q": "zebra"}).content.decode()
    assert "No conversation matches “zebra”." in none


def test_share_create_revoke_and_the_shared_page(tier, user):
    conversation = make_conversation(user=user, tier=tier, title="Shared pasta")
    client = login(Client(), user)
    response = client.post(reverse("assistant:conversation_share", args=[conversation.pk]), HTTP_HX_REQUEST="true")
    assert response.status_code == 200
    conversation.refresh_from_db()
    token = conversation.share_token
    assert token and len(token) >= 32
    share_url = f"http://testserver/s/{token}/"
    assert f'value="{share_url}"' in response.content.decode()

    # Creating again keeps the same link.
    client.post(reverse("assistant:conversation_share", args=[conversation.pk]))
    conversation.refresh_from_db()
    assert conversation.share_token == token

    anonymous = Client().get(f"/s/{token}/")
    assert anonymous.status_code == 200
    assert "Shared pasta" in anonymous.content.decode()
    assert anonymous["X-Robots-Tag"] == "noindex"

    revoked = client.post(reverse("assistant:conversation_share_revoke", args=[conversation.pk]), HTTP_HX_REQUEST="true")
    assert "Create link" in revoked.content.decode()
    conversation.refresh_from_db()
    assert conversation.share_token is None
    assert Client().get(f"/s/{token}/").status_code == 404


def test_shared_page_escapes_script_and_html_from_the_model(tier, user):
    conversation = make_conversation(
        user=user, tier=tier, turns=[("<script>alert('q')</script>", "# Title\n\n" + XSS + "\n\n```js\nx<y\n```")]
    )
    conversation.share_token = "tok-" + "a" * 40
    conversation.save()
    response = Client().get(f"/s/{conversation.share_token}/")
    body = response.content.decode()
    assert response.status_code == 200
    assert "<script>" not in body
    assert "<img" not in body
    assert "&lt;script&gt;alert(&#x27;q&#x27;)&lt;/script&gt;" in body
    assert "&lt;script&gt;window.__pwned=2&lt;/script&gt;" in body
    assert "<h1>Title</h1>" in body
    assert '<pre><code class="language-js">x&lt;y\n</code></pre>' in body
    # No script at all on the shared page: it renders without JavaScript.
    assert "<script" not in body


def test_shared_page_unknown_token_is_404(db):
    assert Client().get("/s/nope/").status_code == 404


def test_export_markdown_and_json(tier, user):
    conversation = make_conversation(
        user=user, tier=tier, title="Pasta night", turns=[("How long?", "About **10** minutes."), ("Salt?", "Yes.")]
    )
    client = login(Client(), user)
    md = client.get(reverse("assistant:conversation_export", args=[conversation.pk, "md"]))
    assert md.status_code == 200
    assert md["Content-Type"] == "text/markdown; charset=utf-8"
    assert md["Content-Disposition"] == 'attachment; filename="lhama-pasta-night.md"'
    text = md.content.decode()
    assert text.startswith("# Pasta night\n\nExported from Lhama · started ")
    assert text.endswith(
        "## You\n\nHow long?\n\n## Llama 3.1 8B\n\nAbout **10** minutes.\n\n## You\n\nSalt?\n\n## Llama 3.1 8B\n\nYes.\n"
    )

    js = client.get(reverse("assistant:conversation_export", args=[conversation.pk, "json"]))
    assert js["Content-Disposition"] == 'attachment; filename="lhama-pasta-night.json"'
    data = json.loads(js.content)
    assert data["id"] == str(conversation.pk)
    assert data["title"] == "Pasta night"
    assert data["tier"] == "llama-3.1-8b"
    assert [(m["role"], m["content"], m["model"]) for m in data["messages"]] == [
        ("user", "How long?", "Llama 3.1 8B"),
        ("assistant", "About **10** minutes.", "Llama 3.1 8B"),
        ("user", "Salt?", "Llama 3.1 8B"),
        ("assistant", "Yes.", "Llama 3.1 8B"),
    ]

    assert client.get(reverse("assistant:conversation_export", args=[conversation.pk, "pdf"])).status_code == 404


def test_feedback_sets_toggles_and_rejects_bad_values(tier, user):
    conversation = make_conversation(user=user, tier=tier)
    answer = conversation.messages.get(role="assistant")
    question = conversation.messages.get(role="user")
    client = login(Client(), user)
    url = reverse("assistant:message_feedback", args=[answer.pk])

    assert client.post(url, {"value": "up"}).json() == {"id": str(answer.pk), "feedback": "up"}
    answer.refresh_from_db()
    assert answer.feedback == "up"
    assert client.post(url, {"value": ""}).json() == {"id": str(answer.pk), "feedback": ""}

    bad = client.post(url, {"value": "love"})
    assert bad.status_code == 400
    assert bad.json() == {"error": "Feedback must be up, down or empty."}

    on_question = client.post(reverse("assistant:message_feedback", args=[question.pk]), {"value": "up"})
    assert on_question.status_code == 400
    assert client.get(url).status_code == 405


def test_feedback_needs_csrf(tier, user):
    conversation = make_conversation(user=user, tier=tier)
    answer = conversation.messages.get(role="assistant")
    client = Client(enforce_csrf_checks=True)
    login(client, user)
    response = client.post(reverse("assistant:message_feedback", args=[answer.pk]), {"value": "up"})
    assert response.status_code == 403


def test_title_endpoint(tier, user):
    conversation = make_conversation(user=user, tier=tier, title="")
    client = login(Client(), user)
    url = reverse("assistant:conversation_title", args=[conversation.pk])
    assert client.get(url).json() == {"id": str(conversation.pk), "title": ""}
    conversation.title = "Boiling pasta"
    conversation.save()
    assert client.get(url).json() == {"id": str(conversation.pk), "title": "Boiling pasta"}


def test_signed_up_user_sees_conversations_claimed_from_their_guest_session(tier):
    from assistant.services import conversations_claim_for_user

    client, session_key = guest_client()
    conversation = make_conversation(session_key=session_key, title="Before signing up", tier=tier)
    person = UserFactory()
    conversations_claim_for_user(session_key=session_key, user=person)
    body = login(Client(), person).get("/").content.decode()
    assert "Before signing up" in body
    conversation.refresh_from_db()
    assert conversation.user == person


@pytest.mark.parametrize(
    ("code", "text"),
    [
        ("upstream_unavailable", "The model server could not be reached. Use Regenerate to try again."),
        ("upstream_timeout", "The model took too long to answer. Use Regenerate to try again."),
        ("upstream_malformed", "This answer failed. Use Regenerate to try again."),
    ],
)
def test_a_failed_answer_in_history_says_what_happened_in_words_not_codes(tier, user, code, text):
    conversation = make_conversation(user=user, tier=tier, turns=[("question", "")])
    conversation.messages.filter(role="assistant").update(status=Message.Status.ERROR, error_code=code)
    body = login(Client(), user).get(reverse("assistant:conversation", args=[conversation.pk])).content.decode()
    assert f'<div class="msg-error" data-error-code="{code}"><p>{text}</p></div>' in body
    assert f"({code})" not in body
