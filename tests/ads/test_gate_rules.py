"""The gate rules of the ad decision (ads/services/decision.py, the gate part): the
sensitive gate reads every turn of its window whole and on its own, before the cut
for retrieval, and the assistant hands it that window."""

from __future__ import annotations

import uuid

import pytest

from ads.models import CampaignKeyword
from ads.services.decision import MAX_CONTEXT_CHARS, AdRequest, ad_decide
from tests.ads.factories import CampaignFactory, CreativeFactory

pytestmark = pytest.mark.django_db

COMMERCIAL = "Where can I find a gpu rental for training my model this weekend?"
FILLER = (
    "I compared a few cloud providers and their hourly prices for training runs, "
    "looked at spot instances, storage and egress fees, and the setup time. "
)
SENSITIVE_TERM = "My chemo starts next week and I keep reading about the side effects."
SENSITIVE_MEANING = "Honestly I think everyone would be better off without me around."


@pytest.fixture
def gpu_campaign(db):
    campaign = CampaignFactory(language="en")
    CampaignKeyword.objects.create(campaign=campaign, text="gpu rental", match_type="phrase")
    return CreativeFactory(campaign=campaign, headline="GPUs by the hour")


def _request(*, context_text: str = COMMERCIAL, turns: tuple[str, ...] = (), **extra) -> AdRequest:
    return AdRequest(
        conversation_id=str(uuid.uuid4()),
        user_id=None,
        session_key=f"sess-{uuid.uuid4().hex[:8]}",
        context_text=context_text,
        is_adult=None,
        ads_enabled=True,
        ads_dismissed=False,
        turns=turns,
        **extra,
    )


def test_commercial_window_gets_the_ad(gpu_campaign):
    ad = ad_decide(request=_request(turns=(COMMERCIAL, FILLER, FILLER)))
    assert ad is not None and ad["headline"] == "GPUs by the hour"


@pytest.mark.parametrize("sensitive", [SENSITIVE_TERM, SENSITIVE_MEANING])
def test_one_sensitive_turn_among_commercial_ones_blocks(gpu_campaign, sensitive):
    turns = (COMMERCIAL, FILLER * 3, FILLER * 3, sensitive, FILLER * 3, COMMERCIAL)
    assert ad_decide(request=_request(turns=turns)) is None


def test_sensitive_sentence_after_the_retrieval_cut_blocks(gpu_campaign):
    long_turn = COMMERCIAL + " " + FILLER * 20 + SENSITIVE_MEANING
    assert long_turn.index(SENSITIVE_MEANING) > MAX_CONTEXT_CHARS
    # retrieval reads the first MAX_CONTEXT_CHARS of context_text; the gate reads the turn whole
    assert ad_decide(request=_request(context_text=long_turn, turns=(long_turn,))) is None
    assert ad_decide(request=_request(context_text=COMMERCIAL, turns=(long_turn,))) is None
    long_commercial = COMMERCIAL + " " + FILLER * 20
    assert ad_decide(request=_request(context_text=long_commercial, turns=(long_commercial,))) is not None


def test_attachment_text_is_one_more_turn(gpu_campaign):
    attachment = FILLER * 5 + SENSITIVE_TERM
    assert ad_decide(request=_request(turns=(COMMERCIAL, attachment))) is None


def _assistant_request(history: list[tuple[str, str]]):
    from assistant.selectors import Owner
    from assistant.services import _ad_request
    from billing.public import entitlements_for

    return _ad_request(
        owner=Owner(user_id=None, session_key="sess-gate"),
        user=None,
        conversation_id=str(uuid.uuid4()),
        turns=[{"role": role, "content": content} for role, content in history],
        entitlements=entitlements_for(user=None),
        ads_dismissed=False,
    )


def test_assistant_hands_the_gate_the_window(gpu_campaign, settings):
    settings.ADS_GATE_WINDOW_TURNS = 8
    history = [
        ("user", SENSITIVE_MEANING),  # 5 user messages back from the latest
        ("assistant", "I'm really sorry you feel this way."),
        ("user", "Thanks. Anyway, something else."),
        ("assistant", "Sure."),
        ("user", FILLER),
        ("assistant", "Ok."),
        ("user", FILLER),
        ("assistant", "Ok."),
        ("user", "Also about cloud prices."),
        ("assistant", "The last answer, about hourly prices."),
        ("user", COMMERCIAL),
    ]
    request = _assistant_request(history)
    assert request.turns[0] == COMMERCIAL  # the latest user turn first
    assert SENSITIVE_MEANING in request.turns
    assert request.turns[-1] == "The last answer, about hourly prices."  # the latest answer
    assert len(request.turns) == 7  # 6 user turns + the latest answer
    assert SENSITIVE_MEANING not in request.context_text  # retrieval reads only the last turns
    assert ad_decide(request=request) is None


def test_the_window_is_configurable(gpu_campaign, settings):
    history = [("user", SENSITIVE_TERM), ("user", FILLER), ("user", FILLER + "2"), ("user", COMMERCIAL)]
    settings.ADS_GATE_WINDOW_TURNS = 2
    request = _assistant_request(history)
    assert request.turns == (COMMERCIAL, FILLER + "2")
    assert ad_decide(request=request) is not None
    settings.ADS_GATE_WINDOW_TURNS = 4
    assert ad_decide(request=_assistant_request(history)) is None


def test_sensitive_latest_answer_blocks(gpu_campaign):
    history = [("user", COMMERCIAL), ("assistant", SENSITIVE_TERM), ("user", COMMERCIAL)]
    assert ad_decide(request=_assistant_request(history)) is None


# --- negative keywords as broad phrases ---------------------------------------------

NEGATIVE_CASES = [
    # (negative keyword line, conversation, blocks?)
    ("-free trial", "are there trials that are free for this?", True),  # any order, plural
    ("-free trial", "FREE TRIAL please", True),  # case
    ("-free trial", "is there a free option", False),  # every word is needed
    ("-free trial", "is there a gratis trial", False),  # no synonyms
    ("-crème brûlée", "a recipe for creme brulee", True),  # accents folded
    ("-creme brulee", "une crème brûlée, s'il vous plaît", True),
    ("-used laptop", "laptops, used ones", True),
    ('-"free trial"', "a free trial", True),  # phrase: together, in order
    ('-"free trial"', "free trials", True),  # phrase variants
    ('-"free trial"', "trials that are free", False),  # phrase: order matters
    ("-[free trial]", "a free trial", True),  # exact: verbatim
    ("-[free trial]", "free trials", False),
]


@pytest.mark.parametrize(("line", "text", "blocks"), NEGATIVE_CASES)
def test_negative_keyword_match_types(line, text, blocks):
    from ads.matching import keyword_matches, parse_keyword

    keyword = parse_keyword(line)
    assert keyword.is_negative
    assert keyword_matches(keyword, text) is blocks


@pytest.mark.parametrize(
    ("negative", "match_type", "text", "shown"),
    [
        ("free trial", "broad", "gpu rental: are there trials that are free?", False),
        ("crème brûlée", "broad", "gpu rental for a creme brulee startup", False),
        ("free trial", "phrase", "gpu rental: are there trials that are free?", True),
        ("free trial", "broad", "gpu rental: is there a gratis trial?", True),
        ("free trial", "broad", "gpu rental: is there a free tier?", True),
    ],
)
def test_negative_keyword_in_the_decision(db, negative, match_type, text, shown):
    campaign = CampaignFactory(language="en")
    CampaignKeyword.objects.create(campaign=campaign, text="gpu rental", match_type="phrase")
    CampaignKeyword.objects.create(campaign=campaign, text=negative, match_type=match_type, is_negative=True)
    CreativeFactory(campaign=campaign, headline="GPUs by the hour")
    from ads.services.decision import ad_preview

    # the preview runs retrieval and the auction without the per-turn gate: this tests matching only
    preview = ad_preview(text=text)
    assert (preview["ad"] is not None) is shown
    if not shown:
        assert [c["excluded"] for c in preview["candidates"]] == ["negative_keyword"]


# --- the conversation's language ------------------------------------------------------

LANGUAGE_CASES = [
    (("Where can I rent a GPU to train my model this weekend?",), "en"),
    (("Où puis-je louer un GPU pour entraîner mon modèle ce week-end ?",), "fr"),
    (("Wo kann ich am Wochenende eine GPU mieten, um mein Modell zu trainieren?",), "de"),
    (("¿Dónde puedo alquilar una GPU para entrenar mi modelo este fin de semana?",), "es"),
    (("ok merci", "Où puis-je louer un GPU pour entraîner mon modèle ?"), "fr"),  # short: earlier turns
    (("danke", "Wo kann ich eine GPU mieten, um mein Modell zu trainieren?"), "de"),
    (("ok",), "und"),  # too short, nothing earlier
    (("",), "und"),
    (("Где можно арендовать видеокарту для обучения модели?",), "und"),  # not an ad language
]


@pytest.mark.parametrize(("turns", "expected"), LANGUAGE_CASES)
def test_conversation_language(turns, expected):
    from ads.language import conversation_language

    assert conversation_language(turns) == expected


@pytest.fixture
def campaigns_by_language(db):
    made = {}
    for language, keyword in (("en", "gpu"), ("fr", "gpu"), ("", "gpu")):
        campaign = CampaignFactory(language=language, name=f"GPU {language or 'any'}", max_bid_micros=2_000_000 if language else 500_000)
        CampaignKeyword.objects.create(campaign=campaign, text=keyword, match_type="broad")
        made[language] = CreativeFactory(campaign=campaign, headline=f"GPUs {language or 'any'}")
    return made


@pytest.mark.parametrize(
    ("text", "headline"),
    [
        ("Where can I rent a gpu to train my model this weekend?", "GPUs en"),
        ("Où puis-je louer un gpu pour entraîner mon modèle ce week-end ?", "GPUs fr"),
        ("Wo kann ich am Wochenende eine gpu mieten, um mein Modell zu trainieren?", "GPUs any"),  # no German campaign
        ("gpu?", "GPUs any"),  # unknown: only the campaign without a language
    ],
)
def test_campaigns_serve_only_their_language(campaigns_by_language, text, headline):
    from ads.models import Impression

    ad = ad_decide(request=_request(context_text=text, turns=(text,)))
    assert ad is not None and ad["headline"] == headline
    assert Impression.objects.get(pk=ad["impression_id"]).language == {
        "GPUs en": "en", "GPUs fr": "fr", "GPUs any": "de" if "Modell" in text else "und"
    }[headline]


@pytest.mark.parametrize(
    "sensitive",
    [
        "Ma chimiothérapie commence la semaine prochaine et j'ai peur.",
        "Meine Chemotherapie beginnt nächste Woche und ich habe Angst.",
        "Mi quimioterapia empieza la semana que viene y tengo miedo.",
        "Ehrlich gesagt glaube ich, dass alle ohne mich besser dran wären.",
        "Honnêtement, je crois que tout le monde serait mieux sans moi.",
        "Sinceramente creo que todos estarían mejor sin mí.",
    ],
)
def test_the_gate_works_in_every_ad_language(campaigns_by_language, sensitive):
    commercial = "Où puis-je louer un gpu pour entraîner mon modèle ce week-end ?"
    assert ad_decide(request=_request(context_text=commercial, turns=(commercial,))) is not None
    assert ad_decide(request=_request(context_text=commercial, turns=(commercial, sensitive))) is None


# --- people who say they are under 18 -----------------------------------------------

SAYS_MINOR = [
    "I'm 15", "I am 15 years old and I need a laptop", "im 14 lol", "I’m 16, what phone should I get?",
    "i'm fifteen", "I'm only 13 so I can't have a card", "As a 16-year-old, what job can I get?",
    "I'm a 14 year old gamer", "I'm in 8th grade", "I'm in the 10th grade", "my mom won't let me, I'm in year 9",
    "I'm in high school", "I am a sophomore in high school", "I'm in middle school", "my age is 12", "I'm 17 y/o",
    "j'ai 14 ans", "J'ai quinze ans et je veux un vélo", "je suis en 4e", "je suis au lycée",
    "ich bin 15", "Ich bin 15 Jahre alt", "ich gehe in die 9. Klasse",
    "tengo 14 años", "estoy en 3º de la ESO", "estoy en la secundaria",
]
NOT_MINOR = [
    "I'm 15 minutes late", "my son is 12", "I have 15 years of experience", "I'm 25", "I am 18 years old",
    "I'm 40 years old", "my daughter is in 8th grade", "I teach 8th grade", "I was 15 when I started coding",
    "when I was in year 9 we had a trip", "I'm 5 feet tall", "I'm 15% sure", "I'm 2 hours away", "I'm 12th in line",
    "I'm in year 2 of my PhD", "I'm 16 days into my diet", "I'm 3.5 km from the station", "room 15 is booked",
    "I'm 17:30 at the latest", "j'ai 14 ans d'expérience", "mon fils a 12 ans", "ich bin 15 Minuten zu spät",
    "meine Tochter ist 12", "tengo 14 años de experiencia", "mi hijo tiene 12 años",
]


@pytest.mark.parametrize("text", SAYS_MINOR)
def test_says_minor(text):
    from ads.minors import text_says_minor

    assert text_says_minor(text)


@pytest.mark.parametrize("text", NOT_MINOR)
def test_does_not_say_minor(text):
    from ads.minors import text_says_minor

    assert text_says_minor(text) is None


def test_a_person_who_says_they_are_under_18_gets_no_ad(gpu_campaign):
    history = [("user", "my mom won't let me, I'm in year 9"), ("assistant", "Ok."), ("user", COMMERCIAL)]
    request = _assistant_request(history)
    assert request.is_adult is False
    assert ad_decide(request=request) is None
    # another person's age is not the user's (whether the sensitive gate blocks it is its own matter)
    assert _assistant_request([("user", "my son is 12"), ("user", COMMERCIAL)]).is_adult is None
    assert ad_decide(request=_assistant_request([("user", "I'm 25, " + COMMERCIAL)])) is not None


def test_the_accounts_age_answer_is_cleared_to_be_asked_again(gpu_campaign, django_user_model):
    from assistant.selectors import Owner
    from assistant.services import _ad_request
    from billing.public import entitlements_for

    user = django_user_model.objects.create_user(email="kid@example.com", password="pw-123456789", is_adult=True)

    def request_for(text):
        return _ad_request(
            owner=Owner(user_id=user.pk), user=user, conversation_id=str(uuid.uuid4()),
            turns=[{"role": "user", "content": text}], entitlements=entitlements_for(user=None), ads_dismissed=False,
        )

    assert request_for(COMMERCIAL).is_adult is True
    user.refresh_from_db()
    assert user.is_adult is True
    request = request_for("j'ai 14 ans, " + COMMERCIAL)
    assert request.is_adult is False and ad_decide(request=request) is None
    user.refresh_from_db()
    assert user.is_adult is None
