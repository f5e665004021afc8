"""The advertiser dashboard: organisations, members, balance, campaigns and creatives,
and who may see and change what."""

from __future__ import annotations

import pytest
from django.urls import reverse

from ads.models import Advertiser, AdvertiserMembership, Campaign, CampaignKeyword, Creative
from billing.ledger import balance_micros, ledger_credit
from tests.ads.factories import AdvertiserFactory, CampaignFactory, CreativeFactory, MembershipFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
Role = AdvertiserMembership.Role


def url(name: str, *args) -> str:
    return reverse(f"ads:dashboard:{name}", args=args)


@pytest.fixture
def owner(user):
    """`user` owns an advertiser with $20 on its balance."""
    MembershipFactory(user=user, advertiser=AdvertiserFactory(name="Acme GPU Cloud", balance_usd=20), role=Role.OWNER)
    return user


@pytest.fixture
def advertiser(owner) -> Advertiser:
    return owner.advertiser_memberships.get().advertiser


@pytest.fixture
def owner_client(client, owner):
    client.force_login(owner)
    return client


def campaign_post(**overrides) -> dict:
    data = {
        "name": "GPU rental, autumn",
        "starts_at": "",
        "ends_at": "",
        "daily_budget": "12.50",
        "lifetime_budget": "$1,000.00",
        "bid_type": "cpc",
        "max_bid": "0.4567",
        "pacing": "even",
        "keywords": 'gpu rental\n"fine-tune llama"\n[h100 price]',
        "negative_keywords": "free\ncrypto mining",
        "context_hints": "People training or fine-tuning open models who need GPUs for a few hours.",
        "language": "en",
        "frequency_cap_hour": "2",
        "frequency_cap_day": "5",
        "creative-headline": "Rent H100s by the hour",
        "creative-text": "Spin up a GPU in 60 seconds.",
        "creative-question": "How much does fine-tuning Llama cost on rented GPUs?",
        "creative-landing_url": "https://www.acme-gpu.example/llama",
        "creative-display_domain": "",
    }
    data.update(overrides)
    return data


# --- landing and organisation -------------------------------------------------------------------


def test_landing_explains_advertising_and_links_to_sign_up_when_logged_out(client):
    response = client.get("/ads/")
    assert response.status_code == 200
    html = response.content.decode()
    assert "Contextual only" in html
    assert "Sensitive topics excluded" in html
    assert "Every ad is reviewed" in html
    assert f'href="{reverse("account_signup")}?next=/ads/"' in html
    assert f'href="{reverse("account_login")}?next=/ads/"' in html


def test_landing_sends_a_member_to_the_dashboard(owner_client):
    response = owner_client.get("/ads/")
    assert response.status_code == 302
    assert response.url == url("overview")


def test_dashboard_pages_need_a_login(client):
    for name in ("overview", "campaigns", "campaign_create", "performance", "preview"):
        response = client.get(url(name))
        assert response.status_code == 302
        assert response.url.startswith(reverse("account_login"))


def test_a_logged_in_non_member_is_sent_to_create_an_organisation(client, user):
    client.force_login(user)
    for name in ("overview", "campaigns", "campaign_create", "performance", "preview"):
        response = client.get(url(name))
        assert response.status_code == 302
        assert response.url == url("org_create")


def test_creating_an_organisation_makes_the_user_its_owner(client, user):
    client.force_login(user)
    assert client.get(url("org_create")).status_code == 200
    response = client.post(
        url("org_create"), {"name": "  Acme   GPU  ", "paid_by": "", "website": "", "contact_email": ""}
    )
    assert response.status_code == 302
    assert response.url == url("overview")
    advertiser = Advertiser.objects.get()
    assert advertiser.name == "Acme GPU"
    assert advertiser.contact_email == user.email
    membership = AdvertiserMembership.objects.get()
    assert (membership.user, membership.advertiser, membership.role) == (user, advertiser, Role.OWNER)
    assert balance_micros(account_id=advertiser.balance_account_id) == 0
    page = client.get(url("overview")).content.decode()
    assert '<p class="balance-value" data-testid="balance">$0.00</p>' in page
    assert "Your balance is low ($0.00)" in page


def test_an_organisation_without_a_name_is_refused(client, user):
    client.force_login(user)
    response = client.post(url("org_create"), {"name": "   "})
    assert response.status_code == 200
    assert "This field is required." in response.content.decode()
    assert Advertiser.objects.count() == 0


def test_overview_shows_the_ledger_balance_and_no_low_notice_above_the_threshold(owner_client, advertiser):
    ledger_credit(account_id=advertiser.balance_account_id, amount_micros=1_234_565_000, reference="t-1")
    page = owner_client.get(url("overview")).content.decode()
    # 20 USD from the fixture + 1,234.565 USD, rounded half up to cents.
    assert '<p class="balance-value" data-testid="balance">$1,254.57</p>' in page
    assert "Your balance is low" not in page


def test_overview_warns_when_the_balance_is_below_the_threshold(owner_client, advertiser):
    advertiser.low_balance_threshold_micros = 25_000_000
    advertiser.save()
    page = owner_client.get(url("overview")).content.decode()
    assert "Your balance is low ($20.00)" in page


# --- top-up ---------------------------------------------------------------------------------


def test_top_up_without_stripe_says_billing_is_not_configured(owner_client, settings):
    settings.STRIPE_SECRET_KEY = ""
    page = owner_client.get(url("overview")).content.decode()
    assert "Top-ups are unavailable" in page
    response = owner_client.post(url("topup"), {"amount": "50"})
    assert response.status_code == 503
    assert "Online payments are not configured on this server" in response.content.decode()


def test_top_up_redirects_to_stripe_checkout_for_the_amount_in_cents(owner_client, advertiser, settings):
    from billing import stripe_api
    from tests.billing.conftest import RecordingStripeHTTP

    settings.STRIPE_SECRET_KEY = "sk_test_lhama"
    settings.SITE_URL = "https://lhama.example"
    fake = RecordingStripeHTTP(
        routes={
            ("POST", "/v1/checkout/sessions"): lambda p: {
                "id": "cs_1",
                "object": "checkout.session",
                "url": "https://checkout.stripe.com/c/pay/cs_1",
            }
        }
    )
    stripe_api.stripe_http_client_set(fake)
    try:
        response = owner_client.post(url("topup"), {"amount": "$1,250.75"})
    finally:
        stripe_api.stripe_http_client_set(None)
    assert response.status_code == 302
    assert response.url == "https://checkout.stripe.com/c/pay/cs_1"
    (sent,) = fake.sent("POST", "/v1/checkout/sessions")
    assert sent.params["mode"] == "payment"
    assert sent.params["line_items[0][price_data][unit_amount]"] == "125075"
    assert sent.params["metadata[balance_account_id]"] == str(advertiser.balance_account_id)
    assert sent.params["metadata[amount_micros]"] == "1250750000"
    assert sent.params["success_url"] == "https://lhama.example/ads/account/?topup=success"
    assert sent.params["cancel_url"] == "https://lhama.example/ads/account/?topup=cancelled"


@pytest.mark.parametrize(
    ("amount", "error"),
    [
        ("4.99", "Ensure this value is greater than or equal to 5."),
        ("10000.01", "Ensure this value is less than or equal to 10000."),
        ("12.345", "Ensure that there are no more than 2 decimal places."),
        ("ten", "Enter a number."),
    ],
)
def test_bad_top_up_amounts_are_refused(owner_client, settings, amount, error):
    settings.STRIPE_SECRET_KEY = "sk_test_lhama"
    response = owner_client.post(url("topup"), {"amount": amount})
    assert response.status_code == 400
    assert error in response.content.decode()


def test_only_owners_top_up_and_manage_members(client, advertiser):
    manager = UserFactory()
    MembershipFactory(user=manager, advertiser=advertiser, role=Role.MANAGER)
    client.force_login(manager)
    assert client.post(url("topup"), {"amount": "50"}).status_code == 403
    assert client.post(url("member_invite"), {"email": "x@example.com", "role": "viewer"}).status_code == 403


# --- members -------------------------------------------------------------------------------


def test_owner_invites_a_member_who_joins_by_accepting(owner_client, advertiser):
    # Invitations in full: tests/ads/test_member_invite.py.
    from django.core import mail
    from django.test import Client

    colleague = UserFactory(email="colleague@example.com")
    response = owner_client.post(url("member_invite"), {"email": "Colleague@Example.com", "role": "viewer"})
    assert response.status_code == 302
    assert not AdvertiserMembership.objects.filter(user=colleague).exists()
    link = "/ads/join/" + mail.outbox[0].body.split("/ads/join/", 1)[1].split()[0]
    accepting = Client()
    accepting.force_login(colleague)
    assert accepting.post(link).status_code == 302
    membership = AdvertiserMembership.objects.get(user=colleague)
    assert (membership.advertiser, membership.role) == (advertiser, Role.VIEWER)
    assert "colleague@example.com" in owner_client.get(url("overview")).content.decode()


def test_inviting_an_existing_member_is_refused(owner_client, owner):
    response = owner_client.post(url("member_invite"), {"email": owner.email, "role": "viewer"})
    assert response.status_code == 400
    assert "already a member" in response.content.decode()
    assert AdvertiserMembership.objects.count() == 1


# --- campaigns -------------------------------------------------------------------------------


def test_create_a_campaign_converts_dollars_to_micros_and_keeps_keywords(owner_client, advertiser):
    assert owner_client.get(url("campaign_create")).status_code == 200
    response = owner_client.post(url("campaign_create"), campaign_post())
    campaign = Campaign.objects.get()
    assert response.status_code == 302
    assert response.url == url("campaign_detail", campaign.pk)
    assert campaign.advertiser == advertiser
    assert campaign.status == Campaign.Status.DRAFT
    assert campaign.daily_budget_micros == 12_500_000
    assert campaign.lifetime_budget_micros == 1_000_000_000
    assert campaign.max_bid_micros == 456_700
    assert (campaign.bid_type, campaign.pacing, campaign.language) == ("cpc", "even", "en")
    assert (campaign.frequency_cap_hour, campaign.frequency_cap_day) == (2, 5)
    keywords = sorted(campaign.keywords.values_list("text", "match_type", "is_negative"))
    assert keywords == [
        ("crypto mining", "broad", True),
        ("fine tune llama", "phrase", False),  # the engine tokenizes hyphens away
        ("free", "broad", True),
        ("gpu rental", "broad", False),
        ("h100 price", "exact", False),
    ]
    creative = campaign.creatives.get()
    assert creative.review_status == Creative.ReviewStatus.PENDING
    assert creative.landing_url == "https://www.acme-gpu.example/llama"
    assert creative.display_domain == "acme-gpu.example"


@pytest.mark.parametrize(
    ("field", "value", "error"),
    [
        ("daily_budget", "1.005", "Ensure that there are no more than 2 decimal places."),
        ("max_bid", "0.00001", "Ensure that there are no more than 4 decimal places."),
        ("max_bid", "0.01", "The bid is below the reserve price"),
        ("daily_budget", "2000", "The daily budget cannot exceed the lifetime budget."),
        ("keywords", "[ ]", "has no words"),
        ("frequency_cap_hour", "6", "The hourly cap cannot be more than the daily cap."),
        ("ends_at", "2020-01-01T00:00", "The end must be after the start."),
    ],
)
def test_bad_campaign_input_is_refused_and_nothing_is_saved(owner_client, field, value, error):
    data = campaign_post(**{field: value})
    if field == "ends_at":
        data["starts_at"] = "2020-02-01T00:00"
    response = owner_client.post(url("campaign_create"), data)
    assert response.status_code == 400
    html = response.content.decode()
    assert error in html
    assert "nothing was saved yet" in html
    assert 'value="GPU rental, autumn"' in html  # what was typed comes back
    assert Campaign.objects.count() == 0
    assert Creative.objects.count() == 0


@pytest.mark.parametrize(
    "landing_url",
    [
        "javascript:alert(1)",
        "data:text/html,<script>alert(1)</script>",
        "http://acme-gpu.example/",
        "JaVaScRiPt:alert(1)",
    ],
)
def test_landing_urls_other_than_https_are_refused(owner_client, landing_url):
    response = owner_client.post(url("campaign_create"), campaign_post(**{"creative-landing_url": landing_url}))
    assert response.status_code == 400
    assert "The landing URL must start with https://" in response.content.decode()
    assert Campaign.objects.count() == 0


def test_creative_text_fails_the_automatic_review_with_its_reason(owner_client):
    response = owner_client.post(
        url("campaign_create"),
        campaign_post(**{"creative-text": "A miracle <b>deal</b>", "creative-display_domain": "other.example"}),
    )
    assert response.status_code == 400
    html = response.content.decode()
    assert "“miracle” is not allowed in ads." in html
    assert "Ads are plain text: no HTML or script." in html
    assert "The display domain must be the landing URL&#x27;s host (acme-gpu.example) or a parent of it." in html
    assert Campaign.objects.count() == 0


def test_edit_a_campaign(owner_client, advertiser):
    campaign = CampaignFactory(advertiser=advertiser, name="Old", max_bid_micros=1_000_000)
    CampaignKeyword.objects.create(campaign=campaign, text="old word", match_type="exact")
    form_page = owner_client.get(url("campaign_edit", campaign.pk)).content.decode()
    assert "[old word]</textarea>" in form_page
    assert 'name="max_bid" value="1.00"' in form_page
    data = {
        k: v
        for k, v in campaign_post(name="New name", max_bid="2.5", keywords="[h100]").items()
        if not k.startswith("creative-")
    }
    response = owner_client.post(url("campaign_edit", campaign.pk), data)
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.name, campaign.max_bid_micros, campaign.status) == ("New name", 2_500_000, Campaign.Status.ACTIVE)
    assert sorted(campaign.keywords.filter(is_negative=False).values_list("text", "match_type")) == [("h100", "exact")]


def test_launch_pause_and_resume(owner_client, advertiser):
    campaign = CampaignFactory(advertiser=advertiser, status=Campaign.Status.DRAFT)
    response = owner_client.post(url("campaign_activate", campaign.pk))
    assert response.status_code == 302
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (Campaign.Status.ACTIVE, "")
    owner_client.post(url("campaign_pause", campaign.pk))
    campaign.refresh_from_db()
    assert (campaign.status, campaign.pause_reason) == (Campaign.Status.PAUSED, Campaign.PauseReason.ADVERTISER)
    response = owner_client.post(url("campaign_pause", campaign.pk), follow=True)
    assert "Only an active campaign can be paused; this one is paused." in response.content.decode()
    owner_client.post(url("campaign_activate", campaign.pk))
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE
    assert owner_client.get(url("campaign_pause", campaign.pk)).status_code == 405


def test_a_campaign_paused_by_staff_or_without_balance_stays_paused(owner_client, advertiser):
    by_staff = CampaignFactory(
        advertiser=advertiser, status=Campaign.Status.PAUSED, pause_reason=Campaign.PauseReason.STAFF
    )
    response = owner_client.post(url("campaign_activate", by_staff.pk), follow=True)
    assert "Our staff paused this campaign" in response.content.decode()
    by_staff.refresh_from_db()
    assert by_staff.status == Campaign.Status.PAUSED

    broke = CampaignFactory(advertiser=AdvertiserFactory(), status=Campaign.Status.PAUSED)
    MembershipFactory(user=UserFactory(), advertiser=broke.advertiser)
    owner_client.force_login(broke.advertiser.memberships.get().user)
    response = owner_client.post(url("campaign_activate", broke.pk), follow=True)
    assert "Your balance is empty: top up before starting this campaign." in response.content.decode()
    broke.refresh_from_db()
    assert broke.status == Campaign.Status.PAUSED


def test_duplicate_copies_settings_keywords_and_sends_creatives_to_review(owner_client, advertiser):
    campaign = CampaignFactory(advertiser=advertiser, name="Original", max_bid_micros=750_000, frequency_cap_day=3)
    CampaignKeyword.objects.create(campaign=campaign, text="gpu", match_type="broad")
    CampaignKeyword.objects.create(campaign=campaign, text="free", match_type="broad", is_negative=True)
    CreativeFactory(campaign=campaign, headline="Approved one", review_status=Creative.ReviewStatus.APPROVED)
    response = owner_client.post(url("campaign_duplicate", campaign.pk))
    copy = Campaign.objects.exclude(pk=campaign.pk).get()
    assert response.url == url("campaign_detail", copy.pk)
    assert (copy.name, copy.status, copy.max_bid_micros, copy.frequency_cap_day, copy.spent_micros) == (
        "Original (copy)",
        Campaign.Status.DRAFT,
        750_000,
        3,
        0,
    )
    assert sorted(copy.keywords.values_list("text", "is_negative")) == [("free", True), ("gpu", False)]
    (creative,) = copy.creatives.all()
    assert (creative.headline, creative.review_status) == ("Approved one", Creative.ReviewStatus.PENDING)


def test_campaign_list_shows_status_budget_and_spend(owner_client, advertiser):
    CampaignFactory(advertiser=advertiser, name="Alpha", daily_budget_micros=7_000_000, spent_micros=1_234_567)
    html = owner_client.get(url("campaigns")).content.decode()
    assert "Alpha</a>" in html
    assert '<td class="num">$7.00</td>' in html
    assert '<td class="num">$1.23</td>' in html
    assert '<span class="status status-active"' in html


# --- creatives ------------------------------------------------------------------------------


def test_a_new_creative_goes_to_review(owner_client, advertiser):
    campaign = CampaignFactory(advertiser=advertiser)
    response = owner_client.post(
        url("creative_create", campaign.pk),
        {
            "headline": "Cheap GPUs",
            "text": "Per-second billing.",
            "question": "Which GPU should I rent?",
            "landing_url": "https://gpu.example/x",
            "display_domain": "",
        },
    )
    assert response.status_code == 302
    creative = campaign.creatives.get()
    assert (creative.review_status, creative.display_domain) == (Creative.ReviewStatus.PENDING, "gpu.example")
    assert "Pending review" in owner_client.get(url("campaign_detail", campaign.pk)).content.decode()


def test_editing_an_approved_creative_sends_it_back_to_review(owner_client, advertiser, staff_user):
    creative = CreativeFactory(campaign=CampaignFactory(advertiser=advertiser), reviewed_by=staff_user)
    data = {
        "headline": creative.headline,
        "text": "A new description.",
        "question": creative.question,
        "landing_url": creative.landing_url,
        "display_domain": creative.display_domain,
    }
    response = owner_client.post(url("creative_edit", creative.pk), data)
    assert response.status_code == 302
    creative.refresh_from_db()
    assert (creative.text, creative.review_status, creative.reviewed_by) == (
        "A new description.",
        Creative.ReviewStatus.PENDING,
        None,
    )


def test_the_rejection_reason_is_shown_to_the_advertiser(owner_client, advertiser):
    creative = CreativeFactory(
        campaign=CampaignFactory(advertiser=advertiser),
        review_status=Creative.ReviewStatus.REJECTED,
        review_reason="The landing page does not mention GPUs.",
    )
    html = owner_client.get(url("campaign_detail", creative.campaign_id)).content.decode()
    assert "<strong>Rejected:</strong> The landing page does not mention GPUs." in html
    html = owner_client.get(url("creative_edit", creative.pk)).content.decode()
    assert "The landing page does not mention GPUs." in html
    assert "1 creative was rejected" in owner_client.get(url("overview")).content.decode()


def test_switching_a_creative_off_keeps_its_review(owner_client, advertiser):
    creative = CreativeFactory(campaign=CampaignFactory(advertiser=advertiser))
    owner_client.post(url("creative_toggle", creative.pk))
    creative.refresh_from_db()
    assert (creative.is_active, creative.review_status) == (False, Creative.ReviewStatus.APPROVED)
    owner_client.post(url("creative_toggle", creative.pk))
    creative.refresh_from_db()
    assert creative.is_active is True


# --- access ------------------------------------------------------------------------------------


def test_another_organisations_ids_answer_404_and_change_nothing(owner_client):
    theirs = CampaignFactory(name="Theirs", status=Campaign.Status.ACTIVE)
    creative = CreativeFactory(campaign=theirs, headline="Their headline")
    for name in ("campaign_detail", "campaign_edit", "creative_create"):
        assert owner_client.get(url(name, theirs.pk)).status_code == 404, name
    for name in ("campaign_pause", "campaign_activate", "campaign_duplicate", "campaign_edit"):
        assert owner_client.post(url(name, theirs.pk), campaign_post()).status_code == 404, name
    assert owner_client.get(url("creative_edit", creative.pk)).status_code == 404
    assert owner_client.post(url("creative_edit", creative.pk), {"headline": "Mine now"}).status_code == 404
    assert owner_client.post(url("creative_toggle", creative.pk)).status_code == 404
    assert owner_client.post(url("org_switch", theirs.advertiser_id)).status_code == 404
    theirs.refresh_from_db()
    creative.refresh_from_db()
    assert (theirs.name, theirs.status, Campaign.objects.count()) == ("Theirs", Campaign.Status.ACTIVE, 1)
    assert (creative.headline, creative.is_active) == ("Their headline", True)
    for name in ("campaigns", "performance"):
        assert "Theirs" not in owner_client.get(url(name)).content.decode()


def test_guessed_ids_next_to_mine_answer_404(owner_client, advertiser):
    mine = CampaignFactory(advertiser=advertiser)
    other = CampaignFactory()
    for pk in (mine.pk + 1, other.pk, 999_999):
        if pk == mine.pk:
            continue
        assert owner_client.get(url("campaign_detail", pk)).status_code == 404
    assert owner_client.get(url("campaign_detail", mine.pk)).status_code == 200


def test_a_viewer_reads_but_cannot_change(client, advertiser):
    viewer = UserFactory()
    MembershipFactory(user=viewer, advertiser=advertiser, role=Role.VIEWER)
    campaign = CampaignFactory(advertiser=advertiser)
    client.force_login(viewer)
    assert client.get(url("campaigns")).status_code == 200
    assert client.get(url("campaign_detail", campaign.pk)).status_code == 200
    assert client.get(url("campaign_create")).status_code == 403
    assert client.post(url("campaign_pause", campaign.pk)).status_code == 403
    campaign.refresh_from_db()
    assert campaign.status == Campaign.Status.ACTIVE


def test_a_member_of_two_organisations_switches_between_them(client, user, advertiser):
    second = AdvertiserFactory(name="Second Org")
    MembershipFactory(user=user, advertiser=second, role=Role.VIEWER)
    client.force_login(user)
    assert "<strong>Acme GPU Cloud</strong>" in client.get(url("overview")).content.decode()
    response = client.post(url("org_switch", second.pk))
    assert response.status_code == 302
    assert "<strong>Second Org</strong>" in client.get(url("overview")).content.decode()


def test_owner_edits_the_organisation_and_others_cannot(client, owner_client, advertiser):
    assert owner_client.get(url("org_edit")).status_code == 200
    response = owner_client.post(
        url("org_edit"),
        {"name": "Acme  Compute", "paid_by": "Acme Ltd.", "website": "https://acme.example", "contact_email": ""},
    )
    assert response.status_code == 302
    advertiser.refresh_from_db()
    # The name and "paid by" wait for staff review (tests/ads/test_advertiser_review.py); the website does not.
    assert advertiser.website == "https://acme.example"
    assert list(advertiser.identity_revisions.values_list("name", "paid_by", "status")) == [
        ("Acme Compute", "Acme Ltd.", "pending")
    ]
    response = owner_client.post(url("org_edit"), {"name": "", "paid_by": "x"})
    assert response.status_code == 400
    assert list(advertiser.identity_revisions.values_list("paid_by", flat=True)) == ["Acme Ltd."]
    manager = UserFactory()
    MembershipFactory(user=manager, advertiser=advertiser, role=Role.MANAGER)
    client.force_login(manager)
    assert client.post(url("org_edit"), {"name": "Mine"}).status_code == 403


@pytest.mark.parametrize(
    ("impressions", "clicks", "line"),
    [(1, 1, "1 impression · 1 click ·"), (2, 0, "2 impressions · 0 clicks ·"), (1200, 3, "1,200 impressions · 3 clicks ·")],
)
def test_creative_counts_read_in_the_singular_and_plural(owner_client, advertiser, impressions, clicks, line):
    creative = CreativeFactory(campaign=CampaignFactory(advertiser=advertiser))
    Creative.objects.filter(pk=creative.pk).update(impressions_count=impressions, clicks_count=clicks)
    html = owner_client.get(url("campaign_detail", creative.campaign_id)).content.decode()
    assert line in html


def test_a_content_error_is_shown_under_the_field_that_has_it(owner_client):
    response = owner_client.post(
        url("campaign_create"),
        campaign_post(**{"creative-headline": "Kayaks <b>now</b>", "creative-question": "A miracle paddle?"}),
    )
    assert response.status_code == 400
    errors = response.context["creative_form"].errors
    assert errors["headline"] == ["Ads are plain text: no HTML or script."]
    assert errors["question"] == ["“miracle” is not allowed in ads."]
    assert "text" not in errors  # the description was fine
    assert Campaign.objects.count() == 0
