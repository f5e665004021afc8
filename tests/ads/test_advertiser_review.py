"""An advertiser's name and "paid by" appear on every card, so a change of them goes to
staff review as an edited creative does: the card keeps the approved name until staff
approve the new one (the review queue is in the admin: approve, or reject with a reason)."""

from __future__ import annotations

import uuid

import pytest
from django.urls import reverse

from ads.models import Advertiser, AdvertiserIdentityRevision, AdvertiserMembership
from ads.services import review
from ads.services.campaigns import advertiser_update, campaign_create
from ads.services.decision import AdRequest, ad_decide
from tests.ads.factories import AdvertiserFactory, CreativeFactory, MembershipFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
GPU_TEXT = "Where can I rent an H100 GPU for a weekend to fine-tune llama?"
Status = AdvertiserIdentityRevision.Status


@pytest.fixture
def advertiser():
    advertiser = AdvertiserFactory(name="Northwind Compute", paid_by="Northwind Ltd.", balance_usd=100)
    campaign = campaign_create(
        advertiser=advertiser, name="GPUs", status="active", bid_type="cpc", max_bid_micros=1_000_000,
        keywords="rent gpu\nh100",
    )
    CreativeFactory(campaign=campaign, headline="H100s by the hour", landing_url="https://northwind.example/gpus",
                    display_domain="northwind.example")
    return advertiser


@pytest.fixture
def owner_client(client, advertiser):
    owner = UserFactory()
    MembershipFactory(user=owner, advertiser=advertiser, role=AdvertiserMembership.Role.OWNER)
    client.force_login(owner)
    client.user = owner
    return client


@pytest.fixture
def staff_client(db):
    from django.test import Client

    staff = UserFactory(is_staff=True, is_superuser=True)
    client = Client()
    client.force_login(staff)
    client.user = staff
    return client


def card() -> dict:
    request = AdRequest(conversation_id=str(uuid.uuid4()), user_id=None, session_key="s" * 32, context_text=GPU_TEXT,
                        is_adult=None, ads_enabled=True, ads_dismissed=False)
    ad = ad_decide(request=request)
    assert ad is not None
    return {"advertiser": ad["advertiser"], "paid_by": ad["why"]["paid_by"]}


def edit(client, **values):
    data = {"name": "Northwind Compute", "paid_by": "Northwind Ltd.", "website": "", "contact_email": ""} | values
    return client.post(reverse("ads:dashboard:org_edit"), data)


def test_a_new_name_waits_for_review_and_the_card_keeps_the_approved_one(owner_client, advertiser):
    assert card() == {"advertiser": "Northwind Compute", "paid_by": "Northwind Ltd."}
    response = edit(owner_client, name="Free Money Compute", paid_by="Someone Else Inc.",
                    website="https://northwind.example")
    assert response.status_code == 302
    advertiser.refresh_from_db()
    assert (advertiser.name, advertiser.paid_by, advertiser.website) == (
        "Northwind Compute", "Northwind Ltd.", "https://northwind.example"  # the website needs no review
    )
    change = AdvertiserIdentityRevision.objects.get()
    assert (change.name, change.paid_by, change.status, change.submitted_by) == (
        "Free Money Compute", "Someone Else Inc.", Status.PENDING, owner_client.user
    )
    assert card() == {"advertiser": "Northwind Compute", "paid_by": "Northwind Ltd."}
    overview = owner_client.get(reverse("ads:dashboard:overview")).content.decode()
    assert "Waiting for review:</strong> name “Free Money Compute”" in overview
    assert "<dt>Name on the card</dt><dd>Northwind Compute</dd>" in overview
    # The form shows the change waiting, so a second edit starts from it.
    assert owner_client.get(reverse("ads:dashboard:org_edit")).context["form"]["name"].value() == "Free Money Compute"


def test_approval_puts_the_new_name_on_the_cards(owner_client, advertiser, staff_client):
    edit(owner_client, name="Northwind Cloud", paid_by="Northwind Cloud GmbH")
    change = AdvertiserIdentityRevision.objects.get()
    response = staff_client.post(
        reverse("admin:ads_advertiseridentityrevision_changelist"),
        {"action": "approve", "_selected_action": [change.pk]},
    )
    assert response.status_code == 302
    change.refresh_from_db()
    assert (change.status, change.reviewed_by) == (Status.APPROVED, staff_client.user)
    advertiser.refresh_from_db()
    assert (advertiser.name, advertiser.paid_by) == ("Northwind Cloud", "Northwind Cloud GmbH")
    assert card() == {"advertiser": "Northwind Cloud", "paid_by": "Northwind Cloud GmbH"}
    assert "Waiting for review" not in owner_client.get(reverse("ads:dashboard:overview")).content.decode()


def test_a_rejection_keeps_the_approved_name_and_tells_the_advertiser_why(owner_client, advertiser, staff_client):
    edit(owner_client, name="Northwind Official Government Partner")
    change = AdvertiserIdentityRevision.objects.get()
    url = reverse("admin:ads_advertiseridentityrevision_changelist")
    form = staff_client.post(url, {"action": "reject", "_selected_action": [change.pk]})
    assert form.status_code == 200 and b"The reason is shown to the advertiser" in form.content
    staff_client.post(url, {"action": "reject", "_selected_action": [change.pk], "apply": "1",
                            "reason": "Do not claim a government partnership."})
    change.refresh_from_db()
    assert (change.status, change.review_reason) == (Status.REJECTED, "Do not claim a government partnership.")
    advertiser.refresh_from_db()
    assert advertiser.name == "Northwind Compute"
    assert card()["advertiser"] == "Northwind Compute"
    overview = owner_client.get(reverse("ads:dashboard:overview")).content.decode()
    assert "Not approved:</strong> name “Northwind Official Government Partner”" in overview
    assert "Do not claim a government partnership." in overview


def test_the_admin_queue_lists_the_changes_waiting(owner_client, advertiser, staff_client):
    edit(owner_client, name="Northwind Cloud")
    other = AdvertiserFactory(name="Acme")
    review.advertiser_identity_submit(advertiser=other, name="Acme Rockets", paid_by="")
    page = staff_client.get(reverse("admin:ads_advertiseridentityrevision_changelist"), {"status__exact": "pending"})
    assert page.status_code == 200
    html = page.content.decode()
    assert "Northwind Cloud" in html and "Acme Rockets" in html
    assert page.context["cl"].result_count == 2


def test_a_newer_change_replaces_the_one_waiting_and_changing_back_withdraws_it(advertiser):
    first = review.advertiser_identity_submit(advertiser=advertiser, name="Northwind One", paid_by="Northwind Ltd.")
    again = review.advertiser_identity_submit(advertiser=advertiser, name="Northwind  One ", paid_by="Northwind Ltd.")
    assert again == first  # the same change (whitespace aside) is not queued twice
    second = review.advertiser_identity_submit(advertiser=advertiser, name="Northwind Two", paid_by="Northwind Ltd.")
    first.refresh_from_db()
    assert (first.status, second.status) == (Status.WITHDRAWN, Status.PENDING)
    assert review.advertiser_identity_submit(advertiser=advertiser, name="Northwind Compute",
                                             paid_by="Northwind Ltd.") is None
    second.refresh_from_db()
    assert second.status == Status.WITHDRAWN
    assert not AdvertiserIdentityRevision.objects.filter(status=Status.PENDING).exists()


def test_the_automatic_checks_refuse_html_and_banned_claims_and_save_nothing(owner_client, advertiser):
    response = edit(owner_client, name="Northwind <script>", paid_by="Casino Royale", website="https://x.example")
    assert response.status_code == 400
    errors = response.context["form"].errors
    assert errors["name"] == ["Plain text only: no HTML or script."]
    assert errors["paid_by"] == ["“casino” is not allowed on ads."]
    advertiser.refresh_from_db()
    assert advertiser.website == ""
    assert AdvertiserIdentityRevision.objects.count() == 0


def test_a_change_reviewed_already_cannot_be_approved_again(advertiser, staff_client):
    change = review.advertiser_identity_submit(advertiser=advertiser, name="Northwind Cloud", paid_by="")
    review.advertiser_identity_reject(revision=change, reviewer=staff_client.user, reason="No.")
    with pytest.raises(review.ReviewStateError):
        review.advertiser_identity_approve(revision=change, reviewer=staff_client.user)
    assert Advertiser.objects.get(pk=advertiser.pk).name == "Northwind Compute"


def test_only_the_details_that_need_no_review_change_at_once(advertiser):
    assert advertiser_update(advertiser=advertiser, name="Northwind Compute", paid_by="Northwind Ltd.",
                             website="https://northwind.example", contact_email="ads@northwind.example") is None
    advertiser.refresh_from_db()
    assert (advertiser.website, advertiser.contact_email) == ("https://northwind.example", "ads@northwind.example")
    assert AdvertiserIdentityRevision.objects.count() == 0
