"""Dashboard-side writes that ads.services does not offer: the rules for when an
advertiser may pause, launch or resume a campaign, and switching a creative on or off.
Everything else (organisations, members, campaigns, creatives and their review) is
written through ads.services."""

from __future__ import annotations

from django.db import transaction

from ads import index as ad_index
from ads.models import Advertiser, Campaign, Creative
from ads.services import decision as ads_services
from billing.ledger import balance_micros


class CampaignStateError(Exception):
    """The campaign cannot make this change now (the message says why)."""


@transaction.atomic
def campaign_pause(*, campaign: Campaign) -> Campaign:
    campaign = Campaign.objects.select_for_update().get(pk=campaign.pk)
    if campaign.status != Campaign.Status.ACTIVE:
        raise CampaignStateError(
            f"Only an active campaign can be paused; this one is {campaign.get_status_display().lower()}."
        )
    return ads_services.campaign_set_status(campaign=campaign, status=Campaign.Status.PAUSED)


@transaction.atomic
def campaign_activate(*, campaign: Campaign) -> Campaign:
    """Launch a draft or resume a paused campaign. A campaign paused by staff stays paused;
    one that ran out of budget or balance needs more first."""
    campaign = Campaign.objects.select_for_update().select_related("advertiser").get(pk=campaign.pk)
    if campaign.status not in (Campaign.Status.DRAFT, Campaign.Status.PAUSED):
        raise CampaignStateError(
            f"This campaign is {campaign.get_status_display().lower()}; it cannot be started again."
        )
    if campaign.pause_reason == Campaign.PauseReason.STAFF:
        raise CampaignStateError("Our staff paused this campaign; contact us to resume it.")
    if campaign.spent_micros >= campaign.lifetime_budget_micros:
        raise CampaignStateError("The lifetime budget is spent: raise it before resuming.")
    if balance_micros(account_id=campaign.advertiser.balance_account_id) <= 0:
        raise CampaignStateError("Your balance is empty: top up before starting this campaign.")
    if not campaign.advertiser.is_active:
        raise CampaignStateError("This advertiser account is switched off; contact us.")
    return ads_services.campaign_set_status(campaign=campaign, status=Campaign.Status.ACTIVE)


def creative_set_active(*, creative: Creative, is_active: bool) -> Creative:
    """Switch a creative off (or back on) without sending it back to review."""
    if creative.is_active != is_active:
        creative.is_active = is_active
        creative.save(update_fields=["is_active", "updated_at"])
        transaction.on_commit(ad_index.invalidate)
    return creative


def advertiser_update(
    *, advertiser: Advertiser, name: str, paid_by: str, website: str, contact_email: str
) -> Advertiser:
    """The organisation's details; the name and "paid by" appear on served cards, so the index is refreshed."""
    advertiser.name = name
    advertiser.paid_by = paid_by.strip()
    advertiser.website = website.strip()
    advertiser.contact_email = contact_email.strip()
    advertiser.save(update_fields=["name", "paid_by", "website", "contact_email", "updated_at"])
    transaction.on_commit(ad_index.invalidate)
    return advertiser
