"""Services, selectors, prompts, seed, export, health and the reaper (no sockets)."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest
from django.utils import timezone

from assistant import services
from assistant.inference import PER_MESSAGE_OVERHEAD, PROMPT_OVERHEAD, estimate_tokens, parse_chunk
from assistant.models import Conversation, GenerationRun, Message, ModelTier
from assistant.prompts import PromptTooLong, fit_messages, system_prompt
from assistant.selectors import Owner, tier_base_urls
from tests.factories import TEST_PASSWORD, UserFactory

# --- prompts and token counting --------------------------------------------------------------


def test_estimate_is_an_over_estimate_for_english_and_counts_other_scripts_per_character():
    assert estimate_tokens("abc" * 10) == 10
    assert estimate_tokens("日本語") == 5  # ceil(3 * 1.5)
    assert estimate_tokens("") == 0


def count_words(message: dict) -> int:
    return len(message["content"].split())


def test_fit_keeps_system_and_latest_turns_and_drops_the_oldest():
    turns = [{"role": "user" if i % 2 == 0 else "assistant", "content": " ".join(["x"] * 10) + f" t{i}"}
             for i in range(10)]
    messages, max_tokens = fit_messages(system="sys", turns=turns, context_length=PROMPT_OVERHEAD + 1 + 33 + 20,
                                        max_output_tokens=20, count=count_words)
    # 1 (system) + 3 turns of 11 "words" fit beside a 20-token answer; a kept history never starts with an answer.
    assert messages[0] == {"role": "system", "content": "sys"}
    assert [m["content"].split()[-1] for m in messages[1:]] == ["t8", "t9"]
    assert messages[1]["role"] == "user"
    assert max_tokens == 20


def test_fit_shrinks_the_answer_before_refusing_a_long_last_message():
    turns = [{"role": "user", "content": " ".join(["x"] * 100)}]
    messages, max_tokens = fit_messages(system="s", turns=turns, context_length=PROMPT_OVERHEAD + 1 + 100 + 64,
                                        max_output_tokens=500, count=count_words)
    assert (len(messages), max_tokens) == (2, 64)
    with pytest.raises(PromptTooLong):
        fit_messages(system="s", turns=turns, context_length=PROMPT_OVERHEAD + 1 + 100 + 63,
                     max_output_tokens=500, count=count_words)


def test_default_count_is_the_estimate_plus_template_overhead():
    messages, max_tokens = fit_messages(system="abc", turns=[{"role": "user", "content": "abcdef"}],
                                        context_length=1000, max_output_tokens=100)
    assert len(messages) == 2
    used = PROMPT_OVERHEAD + (1 + PER_MESSAGE_OVERHEAD) + (2 + PER_MESSAGE_OVERHEAD)
    assert max_tokens == min(100, 1000 - used)


def test_system_prompt_carries_custom_instructions():
    assert "Be brief." in system_prompt(custom_instructions="  Be brief. ")
    assert system_prompt(custom_instructions=" ") == system_prompt()


@pytest.mark.parametrize(
    ("payload", "text", "finish", "usage"),
    [
        ('{"choices":[{"delta":{"content":"Hi"},"finish_reason":null}]}', "Hi", None, None),
        ('{"choices":[{"delta":{},"finish_reason":"length"}]}', "", "length", None),
        ('{"choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}', "", None, (3, 2)),
        ('{"choices":[{"delta":{"content":"x"}}],"usage":null}', "x", None, None),
    ],
)
def test_parse_chunk(payload, text, finish, usage):
    chunk = parse_chunk(payload)
    assert (chunk.text, chunk.finish_reason) == (text, finish)
    assert (None if chunk.usage is None else (chunk.usage.prompt_tokens, chunk.usage.completion_tokens)) == usage


@pytest.mark.parametrize(
    ("payload", "code"),
    [("{oops", "upstream_malformed"), ("[1]", "upstream_malformed"), ('{"id": 1}', "upstream_malformed"),
     ('{"choices":[{"delta":{"content":5}}]}', "upstream_malformed"),
     ('{"error":{"message":"overloaded"}}', "upstream_error")],
)
def test_parse_chunk_rejects_what_is_not_a_chunk(payload, code):
    from assistant.inference import InferenceError

    with pytest.raises(InferenceError) as info:
        parse_chunk(payload)
    assert info.value.code == code


# --- seed, health, export -----------------------------------------------------------------------


@pytest.mark.django_db
def test_seed_points_every_tier_at_the_embedded_server_without_vllm(settings):
    settings.VLLM_BASE_URL = settings.VLLM_BASE_URL_8B = settings.VLLM_BASE_URL_70B = settings.VLLM_BASE_URL_405B = ""
    from assistant.seed import seed_demo

    seed_demo(stdout=io.StringIO())
    seed_demo(stdout=io.StringIO())
    tiers = list(ModelTier.objects.order_by("sort_order"))
    assert [t.slug for t in tiers] == ["llama-3.1-8b", "llama-3.1-70b", "llama-3.1-405b"]
    assert {t.base_url for t in tiers} == {settings.LLM_EMBEDDED_URL.rstrip("/")}
    assert {t.served_model_name for t in tiers} == {settings.LLM_EMBEDDED_ALIAS}
    assert all("embedded llama.cpp" in t.served_by for t in tiers)
    assert tiers[0].sampling["repeat_penalty"] > 1
    assert tiers[0].tokenizer == "llama.cpp"


@pytest.mark.django_db
def test_seed_repoints_tiers_when_vllm_is_configured_and_keeps_admin_edits(settings):
    from assistant.seed import seed_demo

    settings.VLLM_BASE_URL = ""
    seed_demo(stdout=io.StringIO())
    ModelTier.objects.filter(slug="llama-3.1-8b").update(display_name="Fast")
    settings.VLLM_BASE_URL = "http://gpu-router:8000/v1"
    settings.VLLM_BASE_URL_405B = "http://gpu-405b:8000/v1/"
    out = io.StringIO()
    seed_demo(stdout=out)
    tiers = {t.slug: t for t in ModelTier.objects.all()}
    assert tiers["llama-3.1-8b"].base_url == "http://gpu-router:8000/v1"
    assert tiers["llama-3.1-405b"].base_url == "http://gpu-405b:8000/v1"
    assert tiers["llama-3.1-405b"].served_model_name == "llama-3.1-405b-instruct"
    assert tiers["llama-3.1-8b"].sampling == {"temperature": 0.6, "top_p": 0.9, "repetition_penalty": 1.05}
    assert tiers["llama-3.1-8b"].display_name == "Fast"
    assert "re-pointed" in out.getvalue()


@pytest.mark.django_db
def test_readyz_probes_the_distinct_servers_of_active_tiers(settings):
    ModelTier.objects.create(slug="a", display_name="A", served_model_name="m", base_url="http://one:1/v1")
    ModelTier.objects.create(slug="b", display_name="B", served_model_name="m", base_url="http://one:1/v1/")
    ModelTier.objects.create(slug="c", display_name="C", served_model_name="m", base_url="http://two:1/v1")
    ModelTier.objects.create(slug="d", display_name="D", served_model_name="m", base_url="http://off:1/v1",
                             is_active=False)
    assert tier_base_urls() == ["http://one:1/v1", "http://two:1/v1"]
    ModelTier.objects.all().delete()
    settings.VLLM_BASE_URL = "http://configured:1/v1"
    assert tier_base_urls() == ["http://configured:1/v1"]


@pytest.mark.django_db
def test_user_export_has_conversations_and_messages(user, other_user):
    conversation = Conversation.objects.create(user=user, title="Pasta")
    Message.objects.create(conversation=conversation, role="user", content="How long to boil?")
    Message.objects.create(conversation=conversation, role="assistant", content="Ten minutes.", feedback="up",
                           created_at=timezone.now() + timedelta(seconds=1))
    Conversation.objects.create(user=other_user, title="Not mine")
    from accounts.services import user_data_export

    data = user_data_export(user=user)["assistant"]
    assert [c["title"] for c in data["conversations"]] == ["Pasta"]
    assert [(m["role"], m["content"], m["feedback"]) for m in data["conversations"][0]["messages"]] == [
        ("user", "How long to boil?", ""), ("assistant", "Ten minutes.", "up")]


# --- guests become users ----------------------------------------------------------------------------


@pytest.mark.django_db
def test_logging_in_keeps_the_guests_conversations(client):
    from assistant.signals import GUEST_KEY

    client.get("/")  # any page; then the chat socket would remember the guest key:
    session = client.session
    session[GUEST_KEY] = "guest-key-before-login"
    session.save()
    mine = Conversation.objects.create(session_key="guest-key-before-login", title="Guest chat")
    someone_else = Conversation.objects.create(session_key="another-guest", title="Other guest")
    user = UserFactory()
    response = client.post("/accounts/login/", {"login": user.email, "password": TEST_PASSWORD})
    assert response.status_code == 302
    mine.refresh_from_db()
    someone_else.refresh_from_db()
    assert (mine.user_id, mine.session_key) == (user.pk, "")
    assert (someone_else.user_id, someone_else.session_key) == (None, "another-guest")
    assert GUEST_KEY not in client.session


@pytest.mark.django_db
def test_signing_up_keeps_the_guests_conversations(client):
    from assistant.signals import GUEST_KEY

    client.get("/")
    session = client.session
    session[GUEST_KEY] = "new-person-guest-key"
    session.save()
    conversation = Conversation.objects.create(session_key="new-person-guest-key")
    response = client.post("/accounts/signup/", {"email": "new@example.com", "password1": TEST_PASSWORD,
                                                 "password2": TEST_PASSWORD})
    assert response.status_code == 302
    conversation.refresh_from_db()
    assert conversation.user.email == "new@example.com"


# --- reaper --------------------------------------------------------------------------------------------


def make_run(*, heartbeat_age_s: float, text: str = "partial answer") -> GenerationRun:
    user = UserFactory()
    conversation = Conversation.objects.create(user=user)
    question = Message.objects.create(conversation=conversation, role="user", content="q")
    answer = Message.objects.create(conversation=conversation, role="assistant", content=text, status="streaming",
                                    parent=question)
    return GenerationRun.objects.create(conversation=conversation, user_message=question, assistant_message=answer,
                                        owner="dead-host:1:abc",
                                        heartbeat_at=timezone.now() - timedelta(seconds=heartbeat_age_s))


@pytest.mark.django_db
def test_reaper_marks_runs_of_dead_owners_interrupted_and_keeps_their_text():
    from assistant.tasks import runs_reap_orphans

    dead = make_run(heartbeat_age_s=120)
    alive = make_run(heartbeat_age_s=1)
    runs_reap_orphans.delay()
    dead.refresh_from_db()
    alive.refresh_from_db()
    assert (dead.status, dead.error_code) == ("interrupted", "interrupted")
    answer = Message.objects.get(pk=dead.assistant_message_id)
    assert (answer.status, answer.content, answer.error_code) == ("interrupted", "partial answer", "interrupted")
    assert alive.status == "running"
    runs_reap_orphans.delay()  # idempotent
    assert GenerationRun.objects.filter(status="interrupted").count() == 1


def test_reaper_is_in_the_beat_schedule(settings):
    entries = [e for e in settings.CELERY_BEAT_SCHEDULE.values() if e["task"] == "assistant.runs_reap_orphans"]
    assert len(entries) == 1
    # As often as web processes beat (assistant/lifecycle.py): a dead owner's runs go within seconds.
    assert entries[0]["schedule"] == timedelta(seconds=settings.ASSISTANT_PROCESS_HEARTBEAT_S)


@pytest.mark.django_db
def test_run_finish_writes_once():
    run = make_run(heartbeat_age_s=0, text="")
    kwargs = dict(run_id=str(run.pk), assistant_message_id=str(run.assistant_message_id),
                  conversation_id=str(run.conversation_id), text="final", seq=3, finish_reason="stop")
    assert services.run_finish(status="complete", **kwargs) is True
    assert services.run_finish(status="stopped", **{**kwargs, "text": "other"}) is False
    answer = Message.objects.get(pk=run.assistant_message_id)
    assert (answer.status, answer.content) == ("complete", "final")


@pytest.mark.django_db
def test_owner_subjects():
    assert Owner(user_id=7).subject == "user:7"
    assert Owner(user_id=None, session_key="abc").subject == "guest:abc"
    assert Owner(user_id=None).is_known is False


@pytest.mark.parametrize(
    ("raw", "title"),
    [
        ("Boiling eggs", "Boiling eggs"),
        ('Title: "Boiling eggs at home."\nmore text', "Boiling eggs at home"),
        ("```python\ndef f(): pass", ""),
        ("python", ""),
        ("Boil an egg: a simple, yet powerful recipe that has been passed down", ""),
        ("", ""),
    ],
)
def test_model_titles_are_tidied_or_refused(raw, title):
    from assistant.titles import title_from_model

    assert title_from_model(raw) == title


def test_heuristic_title_is_the_first_words():
    from assistant.titles import title_from_text

    assert title_from_text("How do I **boil** an egg without cracking it?") == "How do I boil an egg"
    assert title_from_text("   ") == "New conversation"
