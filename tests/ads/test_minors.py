"""A person who says in a conversation that they are under 18 gets no ad in it for
good (ads.minors.minor_conversation_gate, ads.models.MinorConversation), also once the
statement has left the gate's window; the account's '18 or older' answer is set back
to not answered, so the profile asks it again."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from ads.models import CampaignKeyword, MinorConversation
from ads.services.decision import ad_decide
from tests.ads.factories import CampaignFactory, CreativeFactory

pytestmark = pytest.mark.django_db

COMMERCIAL = "Where can I find a gpu rental for training my model this weekend?"
ANSWER = "Here are some options."
FILLER = "I compared a few cloud providers and their hourly prices for training runs."


@pytest.fixture
def gpu_campaign(db):
    campaign = CampaignFactory(language="en")
    CampaignKeyword.objects.create(campaign=campaign, text="gpu rental", match_type="phrase")
    return CreativeFactory(campaign=campaign, headline="GPUs by the hour")


def _request(history: list[tuple[str, str]], *, conversation_id: str, user=None):
    from assistant.selectors import Owner
    from assistant.services import _ad_request
    from billing.public import entitlements_for

    return _ad_request(
        owner=Owner(user_id=user.pk) if user else Owner(user_id=None, session_key="sess-minor"),
        user=user,
        conversation_id=conversation_id,
        turns=[{"role": role, "content": content} for role, content in history],
        entitlements=entitlements_for(user=None),
        ads_dismissed=False,
    )


def test_the_statement_blocks_ads_after_it_left_the_window(gpu_campaign, settings):
    settings.ADS_GATE_WINDOW_TURNS = 2
    conversation = str(uuid.uuid4())
    said = [("user", "I'm in 8th grade and we have a coding club"), ("assistant", ANSWER), ("user", COMMERCIAL)]
    first = _request(said, conversation_id=conversation)
    assert first.is_adult is False and ad_decide(request=first) is None
    assert MinorConversation.objects.filter(conversation_id=conversation).exists()

    later_turns = [("assistant", ANSWER), ("user", FILLER), ("assistant", ANSWER), ("user", FILLER + " Again."),
                   ("assistant", ANSWER), ("user", COMMERCIAL)]
    later = _request(said + later_turns, conversation_id=conversation)
    # out of the gate's window and of the retrieval text now
    assert not any("8th grade" in text for text in (*later.turns, later.context_text))
    assert later.is_adult is None
    assert ad_decide(request=later) is None

    # the same turns in another conversation get the ad: the record is per conversation
    other = _request(said + later_turns, conversation_id=str(uuid.uuid4()))
    assert ad_decide(request=other) is not None
    assert MinorConversation.objects.count() == 1


def test_saying_it_again_keeps_one_record(gpu_campaign):
    conversation = str(uuid.uuid4())
    for _ in range(3):
        request = _request([("user", "im 14 lol, " + COMMERCIAL)], conversation_id=conversation)
        assert ad_decide(request=request) is None
    assert MinorConversation.objects.filter(conversation_id=conversation).count() == 1


def test_an_age_in_the_answer_or_about_someone_else_records_nothing(gpu_campaign):
    conversation = str(uuid.uuid4())
    in_answer = [("user", "write a diary entry for my novel's narrator"), ("assistant", "Dear diary, I'm 15 and..."),
                 ("user", COMMERCIAL)]
    request = _request(in_answer, conversation_id=conversation)
    assert request.is_adult is None
    ad_decide(request=request)  # (the answer's "I'm 15" is the term lists' matter, for this answer only)
    about_a_son = _request([("user", "my son is 12 and wants to learn, " + COMMERCIAL)], conversation_id=conversation)
    assert about_a_son.is_adult is None
    assert ad_decide(request=about_a_son) is not None
    assert not MinorConversation.objects.exists()


def test_the_accounts_answer_alone_is_not_recorded(gpu_campaign, django_user_model):
    user = django_user_model.objects.create_user(email="young@example.com", password="pw-123456789", is_adult=False)
    conversation = str(uuid.uuid4())
    request = _request([("user", COMMERCIAL)], conversation_id=conversation, user=user)
    assert request.is_adult is False and ad_decide(request=request) is None
    assert not MinorConversation.objects.exists()  # the account answers for all its conversations


def test_the_profile_asks_the_age_again(gpu_campaign, django_user_model, client):
    user = django_user_model.objects.create_user(email="kid@example.com", password="pw-123456789", is_adult=True)
    client.force_login(user)
    page = client.get(reverse("accounts:profile"))
    assert page.context["form"]["age"].value() == "yes"
    request = _request([("user", "je suis en 4e, " + COMMERCIAL)], conversation_id=str(uuid.uuid4()), user=user)
    assert ad_decide(request=request) is None
    user.refresh_from_db()
    assert user.is_adult is None
    page = client.get(reverse("accounts:profile"))
    assert page.context["form"]["age"].value() == ""  # "I'd rather not say": the question is open again
