"""ad_decide: the gates, the payload the chat sends, the served impression."""

from __future__ import annotations

import uuid

import pytest

from ads import index as ad_index
from ads.models import Impression
from ads.services.campaigns import campaign_create, campaign_set_status
from ads.services.decision import AdRequest, ad_decide, ad_preview
from ads.services.review import creative_approve
from tests.ads.factories import AdvertiserFactory, CreativeFactory

GPU_TEXT = "Where can I rent an H100 GPU for a weekend to fine-tune llama?"


@pytest.fixture
def gpu_creative(db):
    advertiser = AdvertiserFactory(name="Northwind <b>Compute</b>", paid_by="Northwind Ltd.", balance_usd=100)
    campaign = campaign_create(
        advertiser=advertiser,
        name="GPUs",
        status="active",
        bid_type="cpc",
        max_bid_micros=1_000_000,
        keywords="rent gpu\nh100\n-free",
        context_hints="Renting cloud GPUs to train and fine-tune machine learning models.",
    )
    return CreativeFactory(
        campaign=campaign,
        headline="H100s by the hour",
        text="Rent GPUs <script>alert(1)</script> by the hour.",
        question="How much does fine-tuning cost?",
        landing_url="https://northwind.example/gpus",
        display_domain="northwind.example",
    )


def make_request(**overrides) -> AdRequest:
    values = {
        "conversation_id": str(uuid.uuid4()),
        "user_id": None,
        "session_key": "s" * 32,
        "context_text": GPU_TEXT,
        "is_adult": None,
        "ads_enabled": True,
        "ads_dismissed": False,
    }
    return AdRequest(**(values | overrides))


@pytest.mark.django_db
def test_payload_matches_the_contract_and_records_a_served_impression(gpu_creative, user):
    request = make_request(user_id=user.pk, is_adult=True)
    ad = ad_decide(request=request)
    assert set(ad) == {
        "impression_id",
        "advertiser",
        "headline",
        "text",
        "question",
        "display_domain",
        "click_url",
        "ack_url",
        "feedback_url",
        "dismiss_url",
        "library_url",
        "why",
    }
    assert set(ad["why"]) == {"advertiser", "paid_by", "matched", "explanation"}
    # Plain text, exactly as the advertiser wrote it: the browser inserts it with textContent.
    assert ad["advertiser"] == "Northwind <b>Compute</b>"
    assert ad["text"] == "Rent GPUs <script>alert(1)</script> by the hour."
    assert ad["why"]["paid_by"] == "Northwind Ltd."
    assert sorted(ad["why"]["matched"]) == ["h100", "rent gpu"]
    assert ad["ack_url"] == f"/ads/i/{ad['impression_id']}/ack"
    assert ad["feedback_url"] == f"/ads/i/{ad['impression_id']}/feedback"
    assert ad["dismiss_url"] == f"/ads/i/{ad['impression_id']}/dismiss"
    assert ad["click_url"].startswith("/ads/c/")
    impression = Impression.objects.get(pk=ad["impression_id"])
    assert impression.acknowledged_at is None
    assert impression.is_valid is None
    assert impression.cost_micros == 0
    assert impression.viewer_key == f"user:{user.pk}"
    assert impression.conversation_id == uuid.UUID(request.conversation_id)
    assert impression.price_micros == 50_000  # alone in the auction: the reserve


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("overrides", "why"),
    [
        ({"is_adult": False}, "under 18"),
        ({"ads_enabled": False}, "ad-free plan"),
        ({"ads_dismissed": True}, "dismissed in this conversation"),
        ({"session_key": "", "user_id": None}, "no viewer to bind the impression to"),
        ({"context_text": "I rent an H100 GPU but my doctor says my symptoms are getting worse"}, "health"),
        ({"context_text": "Should I rent an H100 GPU to analyse the election results for my party?"}, "politics"),
        (
            {"context_text": "I feel hopeless and empty, nothing matters any more, not even my GPU cluster"},
            "classifier",
        ),
        ({"context_text": "I'm 15 and I want to rent an H100 GPU for my school project"}, "says they are a minor"),
        ({"context_text": "Can I rent an H100 GPU for free?"}, "negative keyword"),
        ({"context_text": "What is the capital of Australia?"}, "nothing relevant"),
        ({"language": "de"}, "another language"),
    ],
)
def test_no_ad(gpu_creative, overrides, why):
    assert ad_decide(request=make_request(**overrides)) is None, why
    assert Impression.objects.count() == 0


@pytest.mark.django_db
def test_adult_unknown_still_gets_an_ad(gpu_creative):
    assert ad_decide(request=make_request(is_adult=None)) is not None


@pytest.mark.django_db
def test_unapproved_or_paused_creatives_never_serve(gpu_creative):
    gpu_creative.review_status = "pending"
    gpu_creative.text = "Rent GPUs by the hour."
    gpu_creative.save()
    ad_index.invalidate()
    assert ad_decide(request=make_request()) is None
    creative_approve(creative=gpu_creative, reviewer=None)
    assert ad_decide(request=make_request()) is not None
    campaign_set_status(campaign=gpu_creative.campaign, status="paused")
    ad_index.invalidate()
    assert ad_decide(request=make_request()) is None


@pytest.mark.django_db
def test_preview_explains_the_decision(gpu_creative):
    result = ad_preview(text=GPU_TEXT)
    assert result["ad"]["campaign"] == "GPUs"
    assert result["auction"]["price_micros"] == 50_000
    assert result["auction"]["bid_micros"] == 1_000_000
    assert sorted(result["candidates"][0]["matched_keywords"]) == ["h100", "rent gpu"]
    sensitive = ad_preview(text="What are the symptoms of diabetes?")
    assert sensitive["ad"] is None
    assert sensitive["reason"] == "sensitive"
    assert sensitive["sensitive"] == {"topic": "health", "method": "terms", "detail": "symptoms"}
    other = AdvertiserFactory()
    own_only = ad_preview(text=GPU_TEXT, advertiser_id=other.pk)
    assert own_only["ad"] is None
    assert own_only["candidates"] == []


def _wait_warm_up_done() -> None:
    import threading
    import time

    for _ in range(400):
        if ad_index.is_loaded() and not any(t.name == "ads-warm-up" for t in threading.enumerate()):
            return
        time.sleep(0.05)
    raise AssertionError("the ad engine's warm-up did not finish")


@pytest.mark.django_db(transaction=True)
def test_a_cold_process_s_first_decision_waits_for_a_quick_warm_up(gpu_creative, settings):
    """The web process starts the warm-up when it starts; a decision arriving while it
    loads waits for it (up to half its budget) instead of giving no ad."""
    settings.ADS_INDEX_SYNC = False
    settings.ADS_DECISION_BUDGET_S = 30  # generous: this test is about waiting, not about speed
    ad_index.reset()
    assert ad_decide(request=make_request()) is not None
    _wait_warm_up_done()


@pytest.mark.django_db(transaction=True)
def test_a_warm_up_slower_than_half_the_budget_gives_no_ad_and_goes_on_in_the_background(
    gpu_creative, settings, monkeypatch
):
    import threading
    import time

    from ads.services import decision

    settings.ADS_INDEX_SYNC = False
    settings.ADS_DECISION_BUDGET_S = 0.4
    release = threading.Event()
    real_warm_up = decision.ads_warm_up

    def slow_warm_up() -> None:
        release.wait(20)
        real_warm_up()

    monkeypatch.setattr(decision, "ads_warm_up", slow_warm_up)
    ad_index.reset()
    started = time.monotonic()
    assert ad_decide(request=make_request()) is None  # still loading after half its budget: no ad
    assert time.monotonic() - started < 0.4 + 1.0  # it waited about half the budget, not for the load
    release.set()
    _wait_warm_up_done()
    assert ad_decide(request=make_request()) is not None


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("change", ["advertiser_suspended", "campaign_paused", "creative_rejected"])
def test_a_change_since_the_index_was_built_stops_serving_at_once(gpu_creative, settings, change):
    """The index in memory is rebuilt in the background seconds after a change (in every
    process); the decision checks its winner against the database, so nothing changed
    meanwhile serves. The change is written directly, as another process's would be:
    this process's index still holds the creative."""
    from ads.models import Advertiser, Campaign, Creative

    settings.ADS_INDEX_SYNC = False
    settings.ADS_DECISION_BUDGET_S = 30  # this test is about what serves, not how fast
    ad_index.reset()
    assert ad_decide(request=make_request(session_key="a" * 32)) is not None
    campaign = gpu_creative.campaign
    if change == "advertiser_suspended":
        Advertiser.objects.filter(pk=campaign.advertiser_id).update(is_active=False)
    elif change == "campaign_paused":
        Campaign.objects.filter(pk=campaign.pk).update(status=Campaign.Status.PAUSED)
    else:
        Creative.objects.filter(pk=gpu_creative.pk).update(review_status=Creative.ReviewStatus.REJECTED)
    served = Impression.objects.count()
    assert gpu_creative.pk in {e.creative_id for e in ad_index.get_index().entries}  # still in the index here
    assert ad_decide(request=make_request(session_key="b" * 32)) is None  # another viewer: no cap applies
    assert Impression.objects.count() == served
